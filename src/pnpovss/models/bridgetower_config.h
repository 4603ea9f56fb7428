// The configuration of a BridgeTower image-text-matching checkpoint (`config.json` of
// BridgeTowerForImageAndTextRetrieval). Absent fields take the Hugging Face defaults of
// transformers v4.43 (BridgeTowerVisionConfig, BridgeTowerTextConfig, BridgeTowerConfig); the
// values of BridgeTower/bridgetower-large-itm-mlm-itc are noted beside each default.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace pnpovss::models {

// CLIP-like ViT. Heads are hidden_size / 64 and the MLP is 4 x hidden_size, as in the reference.
struct BridgeTowerVisionConfig {
  int64_t hidden_size = 768;      // large: 1024
  int64_t num_hidden_layers = 12; // large: 24
  int64_t image_size = 288;       // large: 294 (a 21 x 21 grid of 14-pixel patches)
  int64_t patch_size = 16;        // large: 14
  double layer_norm_eps = 1e-5;
  bool share_layernorm = true;    // false: per-layer `ln_separate` norms exist but are unused
  bool remove_last_layer = false; // true: one residual block fewer

  int64_t num_heads() const { return hidden_size / 64; }
  int64_t num_blocks() const { return remove_last_layer ? num_hidden_layers - 1 : num_hidden_layers; }
  // Side of the trained position grid: image_size // patch_size (floor, as the reference).
  int64_t grid() const { return image_size / patch_size; }
  int64_t num_positions() const { return grid() * grid() + 1; }
};

// RoBERTa text encoder.
struct BridgeTowerTextConfig {
  int64_t vocab_size = 50265;              // 50265
  int64_t hidden_size = 768;               // 1024
  int64_t num_hidden_layers = 12;          // 24
  int64_t num_attention_heads = 12;        // 16
  int64_t intermediate_size = 3072;        // 4096
  int64_t max_position_embeddings = 514;   // 514: positions start after the padding index
  int64_t type_vocab_size = 1;             // 1
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "gelu";
  int64_t pad_token_id = 1;
  int64_t bos_token_id = 0;
  int64_t eos_token_id = 2;
};

struct BridgeTowerConfig {
  BridgeTowerVisionConfig vision;
  BridgeTowerTextConfig text;
  int64_t hidden_size = 768;          // cross-modal width; large: 1024
  int64_t num_attention_heads = 12;   // large: 16 (the cross-modal layers use the text config's)
  int64_t num_hidden_layers = 6;      // cross-modal layers; large: 6
  double layer_norm_eps = 1e-5;
  std::string model_type = "bridgetower";

  // Unimodal layers run before the first cross-modal layer (text layers - cross layers + 1).
  int64_t split_index() const { return text.num_hidden_layers - num_hidden_layers + 1; }

  // Parses a BridgeTowerForImageAndTextRetrieval config. `where` names the source in error
  // messages. Throws pnpovss::Error for another model type, sizes that do not fit together, or
  // options the reference implementation cannot run either (unshared cross-modal transforms,
  // shared link towers, link towers other than "add").
  static BridgeTowerConfig from_json(const nlohmann::json& json, const std::string& where);
  static BridgeTowerConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace pnpovss::models
