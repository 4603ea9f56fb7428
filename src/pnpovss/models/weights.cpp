#include "pnpovss/models/weights.h"

#include <torch/torch.h>

#include "pnpovss/error.h"

namespace pnpovss::models {

WeightLoader::WeightLoader(runtime::TensorMap tensors, std::string origin)
    : tensors_(std::move(tensors)), origin_(std::move(origin)) {}

torch::Tensor WeightLoader::take(const std::string& name, const std::vector<int64_t>& shape) {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw Error(origin_ + ": missing weight '" + name + "' (expected shape " + io::shape_string(shape) +
                "); the checkpoint does not match its config.json");
  const torch::Tensor& t = it->second;
  if (t.sizes().vec() != shape)
    throw Error(origin_ + ": weight '" + name + "' has shape " + io::shape_string(t.sizes().vec()) +
                ", expected " + io::shape_string(shape) + " from config.json");
  if (t.scalar_type() != torch::kFloat32)
    throw Error(origin_ + ": weight '" + name + "' is not a floating-point tensor");
  taken_.insert(name);
  return t;
}

void WeightLoader::finish() const {
  std::vector<std::string> unused;
  for (const auto& kv : tensors_) {
    const std::string& name = kv.first;
    const bool ignorable = name.size() >= 13 && name.compare(name.size() - 13, 13, ".position_ids") == 0;
    if (!taken_.count(name) && !ignorable) unused.push_back(name);
  }
  if (unused.empty()) return;
  std::sort(unused.begin(), unused.end());
  std::string list;
  for (size_t i = 0; i < unused.size() && i < 5; ++i) list += (i ? ", '" : "'") + unused[i] + "'";
  if (unused.size() > 5) list += " and " + std::to_string(unused.size() - 5) + " more";
  throw Error(origin_ + ": unexpected weight" + (unused.size() > 1 ? "s " : " ") + list +
              " (shape " + io::shape_string(tensors_.at(unused[0]).sizes().vec()) +
              " for the first); the checkpoint holds a different model than config.json describes");
}

}  // namespace pnpovss::models
