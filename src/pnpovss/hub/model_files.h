// Which files of a hub repository a model needs: config.json, then the safetensors weights
// (one file or an index and its shards), the tokenizer (vocab.txt, or vocab.json + merges.txt
// for byte-level BPE models) and the optional tokenizer and preprocessor configs. Nothing else
// is fetched.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "pnpovss/hub/download.h"

namespace pnpovss::hub {

// Gets every file the model of `repo` needs (from the cache or the hub) and returns the
// snapshot folder that holds them. Throws pnpovss::Error as HubRepo::get does.
std::string fetch_model_files(HubRepo& repo);

// The shard files a downloaded model.safetensors.index.json lists in its "weight_map" (`where`
// names it in messages). Throws pnpovss::Error when there is no such object, or for a shard that
// is not a file name inside the snapshot folder.
std::set<std::string> index_shard_files(const nlohmann::json& index, const std::string& where);

}  // namespace pnpovss::hub
