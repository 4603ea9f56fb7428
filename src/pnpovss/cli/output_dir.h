// The output folder of a command (segment, tune): created when missing and proven writable
// before any work starts, so a bad --out fails in a second rather than after the first image.
#pragma once

#include <string>

namespace pnpovss::cli {

// Removes the temporary files that a killed run left in `dir` (io::remove_stale_temporaries).
// Throws pnpovss::Error (suggesting another --out) when `dir` cannot be created or written.
void prepare_output_dir(const std::string& dir);

}  // namespace pnpovss::cli
