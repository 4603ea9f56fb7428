# The library others build on: libpnpovss.so with every layer inside, behind the public headers
# of include/pnpovss (no libtorch header among them), installed with a CMake package and a
# pkg-config file:
#
#   find_package(pnpovss REQUIRED)                         # CMAKE_PREFIX_PATH=<prefix>
#   target_link_libraries(app PRIVATE pnpovss::pnpovss)
#
#   g++ app.cpp $(pkg-config --cflags --libs pnpovss)      # PKG_CONFIG_PATH=<prefix>/lib/pkgconfig
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Every static layer's objects in one shared object (the static archives are linked after them
# only for their dependencies: libtorch, libcurl, MPI).
set(PNPOVSS_LAYER_TARGETS pnpovss_util pnpovss_io pnpovss_cpu pnpovss_image pnpovss_text pnpovss_hub pnpovss_crf
    pnpovss_settings pnpovss_models_core pnpovss_eval pnpovss_check_core pnpovss_console pnpovss_tune_core
    pnpovss_runtime pnpovss_models pnpovss_segment pnpovss_tune pnpovss_check pnpovss_run pnpovss_cli)
if(TARGET pnpovss_serve)
  list(APPEND PNPOVSS_LAYER_TARGETS pnpovss_serve)
endif()
set(PNPOVSS_LAYER_OBJECTS "")
foreach(layer IN LISTS PNPOVSS_LAYER_TARGETS)
  list(APPEND PNPOVSS_LAYER_OBJECTS $<TARGET_OBJECTS:${layer}>)
endforeach()
add_library(pnpovss SHARED ${PNPOVSS_LAYER_OBJECTS})
add_library(pnpovss::pnpovss ALIAS pnpovss)
target_link_libraries(pnpovss PRIVATE ${PNPOVSS_LAYER_TARGETS})
target_include_directories(pnpovss PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
                                          $<BUILD_INTERFACE:${PNPOVSS_GENERATED_DIR}>
                                          $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(pnpovss INTERFACE cxx_std_17)
set_target_properties(pnpovss PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
                                         INSTALL_RPATH_USE_LINK_PATH ON)

install(TARGETS pnpovss EXPORT pnpovssTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS pnp-ovss RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/pnpovss DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(FILES ${PNPOVSS_GENERATED_DIR}/pnpovss/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/pnpovss)

set(PNPOVSS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/pnpovss)
install(EXPORT pnpovssTargets NAMESPACE pnpovss:: DESTINATION ${PNPOVSS_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/pnpovssConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/pnpovssConfig.cmake INSTALL_DESTINATION ${PNPOVSS_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/pnpovssConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/pnpovssConfig.cmake ${CMAKE_BINARY_DIR}/pnpovssConfigVersion.cmake
        DESTINATION ${PNPOVSS_CMAKE_DIR})

# The prefix relative to the .pc file, so that `cmake --install --prefix DIR` anywhere stays right.
file(RELATIVE_PATH PNPOVSS_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${PROJECT_SOURCE_DIR}/cmake/pnpovss.pc.in ${CMAKE_BINARY_DIR}/pnpovss.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/pnpovss.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
