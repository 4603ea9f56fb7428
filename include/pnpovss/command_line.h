// The pnp-ovss command line in this process: what the `pnp-ovss` executable runs, for programs
// that embed it (the Python module's pnpovss.run_cli).
#pragma once

#include <string>

namespace pnpovss {

// Parses argv (argv[0] is the program name), runs the subcommand and returns the exit status:
// 0 success, 1 a failed input or run, 2 a usage error or an internal failure. A failure is one
// "error: ..." line on stderr, or, with `error` not null, stored there instead. Per-image
// failures of segment and eval are printed either way. Throws util::Interrupted only when the
// embedding program installed an interrupt check (util/interrupt.h) and it fired.
int run_command_line(int argc, const char* const* argv, std::string* error = nullptr);

}  // namespace pnpovss
