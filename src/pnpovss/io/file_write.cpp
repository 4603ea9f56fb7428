#include "pnpovss/io/file_write.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "pnpovss/error.h"

namespace pnpovss::io {

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  std::FILE* file = std::fopen(tmp.c_str(), "wb");
  if (file == nullptr) throw Error("cannot create '" + tmp + "': " + std::strerror(errno));
  const size_t written = size == 0 ? 0 : std::fwrite(data, 1, size, file);
  const int write_errno = errno;
  const bool closed = std::fclose(file) == 0;
  if (written != size || !closed) {
    std::remove(tmp.c_str());
    throw Error("cannot write '" + tmp + "': " + std::strerror(write_errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error("cannot move '" + tmp + "' to '" + path + "': " + std::strerror(err));
  }
}

}  // namespace pnpovss::io
