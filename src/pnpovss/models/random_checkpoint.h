// Random-weight models with the shapes of real checkpoints, for benchmarks and for testing
// that every key of a real checkpoint maps onto the model (no real weights are needed).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pnpovss/models/blip_config.h"
#include "pnpovss/models/weights.h"
#include "pnpovss/runtime/tensor_bridge.h"

namespace pnpovss::models {

// A checkpoint manifest (tests/data/manifests/*.json): config and state_dict names/shapes.
struct Manifest {
  std::string checkpoint;                // e.g. "Salesforce/blip-itm-large-flickr"
  nlohmann::json config;                 // the checkpoint's full config.json
  std::vector<ParameterSpec> parameters; // every state_dict key with its shape
};
Manifest read_manifest(const std::string& path);

// Weights of the given shapes drawn like the reference fixtures' random models: linear
// weights ~ N(0, 1/fan_in), embeddings N(0, 0.04), norms around 1, small biases.
runtime::TensorMap random_weights(const std::vector<ParameterSpec>& specs, uint64_t seed);

// Writes config.json and model.safetensors of a random-weight BLIP ITM model into `dir`
// (created if needed); a later call with the same config reuses what is there.
void write_random_blip_checkpoint(const BlipConfig& config, const std::string& dir, uint64_t seed);

}  // namespace pnpovss::models
