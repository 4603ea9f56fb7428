// The download display of the front ends, on stderr: on a terminal one bar per file, redrawn in
// place ("model.safetensors  45% [#########           ] 845.2/1878.0 MB  12.3 MB/s"); otherwise
// (logs, tests) one line when a file starts and one when it is done.
#pragma once

#include "pnpovss/hub/download.h"

namespace pnpovss::console {

// For hub::set_download_progress.
hub::DownloadProgressFn download_display();

}  // namespace pnpovss::console
