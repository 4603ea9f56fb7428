// The whole pnp-ovss command line: parses argv (argv[0] is the program name), runs the
// subcommand and returns the process exit status (0 success, 1 a failed input or run, 2 a
// usage error or an internal failure). Errors are printed as one "error: ..." line on stderr.
#pragma once

#include <string>

namespace pnpovss::cli {

// `error` not null: the one-line message of a failed run is stored there instead of printed
// (the Python module raises it). Per-image failures of `segment` are printed either way.
int run_cli(int argc, const char* const* argv, std::string* error = nullptr);

}  // namespace pnpovss::cli
