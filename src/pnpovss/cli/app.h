// The whole pnp-ovss command line: parses argv (argv[0] is the program name), runs the
// subcommand and returns the process exit status (0 success, 1 a failed input or run, 2 a
// usage error or an internal failure). Errors are printed as one "error: ..." line on stderr.
#pragma once

namespace pnpovss::cli {

int run_cli(int argc, const char* const* argv);

}  // namespace pnpovss::cli
