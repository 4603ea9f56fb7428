# One static library per layer of src/pnpovss, each seeing only its own folders and the layers
# it links. A layer's headers are reached through an include root of its own in the build tree
# (build/layers/<layer>/pnpovss/<folder> links to src/pnpovss/<folder>; its public headers link
# to include/pnpovss/), and roots pass only downward through target_link_libraries: a file that
# includes a header of a higher layer does not compile ("No such file"). See docs/architecture.md.
#
#   pnpovss_layer(<name> FOLDERS <folder>... [PUBLIC_HEADERS <header>...] SOURCES <file>...
#                 [LINKS <target>...] [PRIVATE_LINKS <target>...])
#
# makes the target pnpovss_<name> from src/pnpovss/<SOURCES>, linking LINKS publicly.
function(pnpovss_layer name)
  cmake_parse_arguments(L "" "" "FOLDERS;PUBLIC_HEADERS;GENERATED_HEADERS;SOURCES;LINKS;PRIVATE_LINKS" ${ARGN})
  set(root ${CMAKE_BINARY_DIR}/layers/${name})
  file(MAKE_DIRECTORY ${root}/pnpovss)
  foreach(folder IN LISTS L_FOLDERS)
    pnpovss_link(${PROJECT_SOURCE_DIR}/src/pnpovss/${folder} ${root}/pnpovss/${folder})
  endforeach()
  foreach(header IN LISTS L_PUBLIC_HEADERS)
    pnpovss_link(${PROJECT_SOURCE_DIR}/include/pnpovss/${header} ${root}/pnpovss/${header})
  endforeach()
  foreach(header IN LISTS L_GENERATED_HEADERS)
    pnpovss_link(${PNPOVSS_GENERATED_DIR}/pnpovss/${header} ${root}/pnpovss/${header})
  endforeach()
  list(TRANSFORM L_SOURCES PREPEND ${PROJECT_SOURCE_DIR}/src/pnpovss/)
  add_library(pnpovss_${name} STATIC ${L_SOURCES})
  target_include_directories(pnpovss_${name} PUBLIC $<BUILD_INTERFACE:${root}>)
  target_link_libraries(pnpovss_${name} PUBLIC ${L_LINKS} PRIVATE ${L_PRIVATE_LINKS})
  target_compile_options(pnpovss_${name} PRIVATE ${PNPOVSS_WARNINGS})
endfunction()

# A symbolic link at `link` to `target`, replaced when it points elsewhere.
function(pnpovss_link target link)
  if(IS_SYMLINK ${link})
    file(READ_SYMLINK ${link} current)
    if(current STREQUAL target)
      return()
    endif()
    file(REMOVE ${link})
  endif()
  file(CREATE_LINK ${target} ${link} SYMBOLIC)
endfunction()
