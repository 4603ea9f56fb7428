// The download display of the front ends, on stderr: on a terminal one bar per file, redrawn in
// place ("model.safetensors  45% [#########           ] 845.2/1878.0 MB  12.3 MB/s"); otherwise
// (logs, tests) one line when a file starts and one when it is done.
#pragma once

#include "pnpovss/hub/download.h"

namespace pnpovss::console {

// For hub::set_download_progress. While a file downloads, where SIGINT has its default action
// (the command line), Ctrl-C first prints "interrupted: the download of FILE of 'REPO' stopped at
// X of Y MB; the partial file is kept, and running the command again resumes it", then ends the
// process as SIGINT does.
hub::DownloadProgressFn download_display();

// That line, when a download is under way; nothing otherwise. Async-signal-safe, for front ends
// that handle SIGINT themselves.
void report_interrupted_download();

}  // namespace pnpovss::console
