// Where a model named on the command line lives: a local directory in Hugging Face layout, or a
// hub id "org/name[@revision]" ("Salesforce/blip-itm-large-flickr") looked up in the Hugging Face
// cache and downloaded into it when missing (hub_download.h: environment, cache layout).
#pragma once

#include <string>

namespace pnpovss::hub {

// The directory holding config.json (and the rest of the model) for `spec`; throws
// pnpovss::Error saying what to do when it is neither a model directory nor obtainable as a
// hub id.
std::string resolve_model_dir(const std::string& spec);

}  // namespace pnpovss::hub
