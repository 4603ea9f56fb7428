// Writing output files so that a reader (or a rerun after a kill) never sees half a file: the
// bytes go to a temporary file beside the target, which is then renamed into place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pnpovss::io {

// Writes `size` bytes to `path` through `<path>.tmp<pid>`. Throws pnpovss::Error naming the
// path (the temporary file is removed on failure).
void write_file_atomic(const std::string& path, const void* data, size_t size);
inline void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}
inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

}  // namespace pnpovss::io
