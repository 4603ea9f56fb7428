#include "pnpovss/models/random_checkpoint.h"

#include <sys/stat.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/models/blip_itm.h"

namespace pnpovss::models {
namespace {

bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

torch::Tensor random_like_spec(const ParameterSpec& spec) {
  torch::Tensor t = torch::empty(spec.shape);
  const bool is_bias = ends_with(spec.name, ".bias");
  const bool is_norm = spec.name.find("LayerNorm") != std::string::npos || spec.name.find("layer_norm") != std::string::npos ||
                       spec.name.find("layernorm") != std::string::npos;
  if (is_norm && !is_bias) return t.normal_(1.0, 0.01);
  if (is_bias) return t.normal_(0.0, 0.05);
  if (spec.shape.size() >= 2 && spec.name.find("embedding") == std::string::npos) {
    int64_t fan_in = 1;
    for (size_t i = 1; i < spec.shape.size(); ++i) fan_in *= spec.shape[i];
    return t.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(fan_in)));
  }
  return t.normal_(0.0, 0.2);  // embeddings: N(0, 0.04) variance
}

}  // namespace

Manifest read_manifest(const std::string& path) {
  const nlohmann::json j = io::read_json_file(path);
  Manifest m;
  m.checkpoint = j.value("checkpoint", std::string());
  if (!j.contains("config") || !j.contains("state_dict") || !j["state_dict"].is_object())
    throw Error(path + ": not a checkpoint manifest (needs 'config' and 'state_dict')");
  m.config = j["config"];
  for (const auto& [name, entry] : j["state_dict"].items())
    m.parameters.push_back({name, entry.at("shape").get<std::vector<int64_t>>()});
  return m;
}

runtime::TensorMap random_weights(const std::vector<ParameterSpec>& specs, uint64_t seed) {
  torch::manual_seed(seed);
  runtime::TensorMap out;
  for (const auto& spec : specs) out[spec.name] = random_like_spec(spec);
  return out;
}

void write_random_blip_checkpoint(const BlipConfig& config, const std::string& dir, uint64_t seed) {
  ::mkdir(dir.c_str(), 0755);
  const std::string config_path = dir + "/config.json";
  const std::string weights_path = dir + "/model.safetensors";
  const std::string config_text = config.to_json().dump(2);
  if (io::file_exists(config_path) && io::file_exists(weights_path) && io::read_text_file(config_path) == config_text)
    return;
  const auto specs = blip_itm_parameters(config);
  runtime::TensorMap weights = random_weights(specs, seed);
  std::vector<io::TensorView> views;
  for (const auto& spec : specs) views.push_back(runtime::view_of(spec.name, weights.at(spec.name)));
  io::write_safetensors(weights_path, views, {{"format", "pt"}, {"note", "random weights"}});
  std::ofstream(config_path) << config_text;
}

}  // namespace pnpovss::models
