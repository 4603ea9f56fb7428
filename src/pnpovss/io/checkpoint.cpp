#include "pnpovss/io/checkpoint.h"

#include <set>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"

namespace pnpovss::io {

void Checkpoint::add(SafetensorsFile file) {
  files_.push_back(std::move(file));
}

Checkpoint Checkpoint::open_file(const std::string& path) {
  Checkpoint ckpt;
  ckpt.description_ = path;
  ckpt.add(SafetensorsFile::open(path));
  for (const auto& t : ckpt.files_.back().tensors()) ckpt.by_name_[t.name] = &t;
  return ckpt;
}

Checkpoint Checkpoint::open_dir(const std::string& dir) {
  const std::string single = dir + "/model.safetensors";
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (file_exists(single)) return open_file(single);
  if (!file_exists(index_path)) {
    std::string hint = file_exists(dir + "/pytorch_model.bin")
                           ? " (only pytorch_model.bin is present: convert it to safetensors, e.g. with "
                             "transformers' save_pretrained(..., safe_serialization=True))"
                           : "";
    throw Error("no weights in '" + dir + "': expected model.safetensors or model.safetensors.index.json" + hint);
  }
  nlohmann::json index = read_json_file(index_path);
  auto map_it = index.find("weight_map");
  if (!index.is_object() || map_it == index.end() || !map_it->is_object())
    throw Error(index_path + ": missing 'weight_map' object");
  std::set<std::string> shard_names;
  for (const auto& [name, shard] : map_it->items()) {
    if (!shard.is_string()) throw Error(index_path + ": weight_map entry '" + name + "' is not a file name");
    const std::string shard_name = shard.get<std::string>();
    if (shard_name.find('/') != std::string::npos || shard_name.find("..") != std::string::npos)
      throw Error(index_path + ": shard name '" + shard_name + "' must be a plain file name");
    shard_names.insert(shard_name);
  }
  Checkpoint ckpt;
  ckpt.description_ = index_path;
  ckpt.files_.reserve(shard_names.size());
  for (const auto& shard_name : shard_names) ckpt.add(SafetensorsFile::open(dir + "/" + shard_name));
  for (const auto& file : ckpt.files_)
    for (const auto& t : file.tensors()) {
      if (ckpt.by_name_.count(t.name)) throw Error(index_path + ": tensor '" + t.name + "' appears in two shards");
      ckpt.by_name_[t.name] = &t;
    }
  for (const auto& [name, shard] : map_it->items())
    if (!ckpt.by_name_.count(name))
      throw Error(index_path + ": tensor '" + name + "' is listed for " + shard.get<std::string>() +
                  " but that shard does not contain it");
  return ckpt;
}

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& kv : by_name_) out.push_back(kv.first);
  return out;
}

}  // namespace pnpovss::io
