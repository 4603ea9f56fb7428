// Where a model named on the command line lives: a directory in Hugging Face layout, or a
// hub id ("Salesforce/blip-itm-large-flickr") already present in the local Hugging Face
// cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub).
#pragma once

#include <string>

namespace pnpovss::io {

// The directory holding config.json for `spec`; throws pnpovss::Error explaining how to get
// the model when it is neither a directory nor in the cache.
std::string resolve_model_dir(const std::string& spec);

}  // namespace pnpovss::io
