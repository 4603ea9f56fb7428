#include "pnpovss/hub/model_files.h"

#include <nlohmann/json.hpp>
#include <set>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"

namespace pnpovss::hub {
namespace {

// Model types whose tokenizer is byte-level BPE (vocab.json + merges.txt), not WordPiece.
bool uses_bpe_tokenizer(const std::string& model_type) {
  return model_type == "bridgetower" || model_type == "clip" || model_type == "roberta";
}

// Shard names come from a downloaded file: keep them inside the snapshot.
bool safe_file_name(const std::string& name) {
  return !name.empty() && name.front() != '/' && name.find("..") == std::string::npos &&
         name.find('\\') == std::string::npos;
}

// Offline, a file missing from the cache may still exist on the hub.
std::string offline_note(const HubRepo& repo) {
  return repo.offline() ? " in the cache, and HF_HUB_OFFLINE=1 forbids downloading" : "";
}

void fetch_weights(HubRepo& repo) {
  if (repo.get("model.safetensors", false)) return;
  const auto index = repo.get("model.safetensors.index.json", false);
  if (!index)
    throw Error("'" + repo.id().text() + "' has no safetensors weights (model.safetensors or " +
                "model.safetensors.index.json)" + offline_note(repo) + "; only safetensors checkpoints are read");
  for (const auto& shard : index_shard_files(io::read_json_file(*index), *index)) repo.get(shard, true);
}

}  // namespace

std::set<std::string> index_shard_files(const nlohmann::json& index, const std::string& where) {
  const auto map = index.find("weight_map");
  if (map == index.end() || !map->is_object()) throw Error(where + " has no \"weight_map\" object");
  std::set<std::string> shards;
  for (const auto& [tensor, shard] : map->items()) {
    if (!shard.is_string() || !safe_file_name(shard.get<std::string>()))
      throw Error(where + ": tensor '" + tensor + "' names an invalid shard file");
    shards.insert(shard.get<std::string>());
  }
  return shards;
}

std::string fetch_model_files(HubRepo& repo) {
  const std::string config_path = *repo.get("config.json", true);
  const nlohmann::json config = io::read_json_file(config_path);
  const auto type = config.find("model_type");
  const std::string model_type = type != config.end() && type->is_string() ? type->get<std::string>() : "";
  fetch_weights(repo);
  if (uses_bpe_tokenizer(model_type) || !repo.get("vocab.txt", false)) {
    if (!repo.get("vocab.json", false))
      throw Error("'" + repo.id().text() + "' has no tokenizer vocabulary (vocab.txt, or vocab.json and merges.txt)" +
                  offline_note(repo));
    repo.get("merges.txt", true);
  }
  for (const char* optional : {"tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json"})
    repo.get(optional, false);
  return repo.snapshot_dir();
}

}  // namespace pnpovss::hub
