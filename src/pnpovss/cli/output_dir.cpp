#include "pnpovss/cli/output_dir.h"

#include <unistd.h>

#include <cstdio>
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
  const std::string probe = dir + "/.pnpovss_write_test." + std::to_string(::getpid());
  try {
    io::write_file_atomic(probe, std::string("ok"));
  } catch (const Error&) {
    throw Error("cannot write into the output folder '" + dir + "': choose another with --out");
  }
  std::remove(probe.c_str());
}

}  // namespace pnpovss::cli
