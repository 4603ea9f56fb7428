// A rerun of `segment` into the same --out keeps the images that an earlier run already
// segmented there the same way, so an interrupted folder goes on where it stopped instead of
// starting over. "The same way" means every input of an image's outputs: the image file's path
// and bytes, the model, device and dtype, the settings, the prompt's classes with their labels,
// and the program's version. The JSON record is written last and atomically, so an image whose
// record is there finished; a record of another run, a missing file or a changed image means
// the image is segmented again.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pnpovss/run/record.h"

namespace pnpovss::cli {

// True when every file of `outputs` exists and the record at `record_path` holds `identity`.
// The image's hash in `identity` is not used: the file named by its "image" field is hashed
// here, and only when everything else already matches, so a fresh folder costs no hashing.
// An unreadable or damaged record counts as absent.
bool written_earlier(const std::string& record_path, const std::vector<std::string>& outputs,
                     const nlohmann::ordered_json& identity);

}  // namespace pnpovss::cli
