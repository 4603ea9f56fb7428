# Writes a C++ source that holds the bytes of a file: cmake -DINPUT=f -DOUTPUT=f.cpp
# -DNAMESPACE=ns -DFUNCTION=fn -P embed_text.cmake defines `std::string_view ns::fn()`.
# Bytes, not a raw string literal, so that any content (quotes, ")" sequences) is safe.
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
file(WRITE ${OUTPUT} "// Generated from ${INPUT} by cmake/embed_text.cmake; do not edit.
#include <string_view>

namespace ${NAMESPACE} {
namespace {
const char kBytes[] = {
${bytes}'\\0'};
}  // namespace

std::string_view ${FUNCTION}() { return std::string_view(kBytes, ${size}); }

}  // namespace ${NAMESPACE}
")
