#include "pnpovss/cli/output_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "pnpovss/error.h"
#include "pnpovss/io/file_write.h"

namespace pnpovss::cli {

namespace fs = std::filesystem;

void prepare_output_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error("cannot create the output folder '" + dir + "'" + (ec ? " (" + ec.message() + ")" : std::string()) +
                ": choose another with --out");
  // What a killed run left half-written goes first; the probe is named like such a temporary
  // file, so that one left by a kill is removed the same way.
  io::remove_stale_temporaries(dir);
  const std::string probe = dir + "/.pnpovss_write_test.tmp" + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  const bool written = fd >= 0 && ::write(fd, "ok", 2) == 2;
  const std::string reason = written ? "" : std::strerror(errno);
  if (fd >= 0) ::close(fd);
  ::unlink(probe.c_str());
  if (!written)
    throw Error("cannot write into the output folder '" + dir + "' (" + reason + "): choose another with --out");
}

Error run_stopped_by(const io::WriteError& e) {
  return Error(std::string(e.what()) + " (the finished images are kept: rerun the same command to go on)");
}

}  // namespace pnpovss::cli
