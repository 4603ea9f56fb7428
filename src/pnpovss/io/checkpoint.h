// A Hugging Face checkpoint's weights: `model.safetensors`, or the shards listed in
// `model.safetensors.index.json`. All files stay memory-mapped while the Checkpoint lives.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pnpovss/io/safetensors.h"

namespace pnpovss::io {

class Checkpoint {
 public:
  Checkpoint() = default;
  Checkpoint(Checkpoint&&) = default;
  Checkpoint& operator=(Checkpoint&&) = default;
  // Views point into files_; a copy would point into the original's.
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  // Opens the weights of the model directory `dir`; throws pnpovss::Error when there are none
  // or a shard is missing or corrupt.
  static Checkpoint open_dir(const std::string& dir);
  // Opens one safetensors file.
  static Checkpoint open_file(const std::string& path);

  const TensorView* find(const std::string& name) const;
  // All tensor names, sorted.
  std::vector<std::string> names() const;
  const std::vector<SafetensorsFile>& files() const { return files_; }
  std::string description() const { return description_; }

 private:
  std::string description_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, const TensorView*> by_name_;
  void add(SafetensorsFile file);
};

}  // namespace pnpovss::io
