// The output folder of a command (segment, tune): created when missing and proven writable
// before any work starts, so a bad --out fails in a second rather than after the first image.
#pragma once

#include <string>

#include "pnpovss/error.h"
#include "pnpovss/io/file_write.h"

namespace pnpovss::cli {

// Removes the temporary files that a killed run left in `dir` (io::remove_stale_temporaries).
// Throws pnpovss::Error (suggesting another --out) when `dir` cannot be created or written.
void prepare_output_dir(const std::string& dir);

// The error that stops a run on a write every later file would fail too (a full disk): the
// write's message and that a rerun goes on from the finished images.
Error run_stopped_by(const io::WriteError& e);

}  // namespace pnpovss::cli
