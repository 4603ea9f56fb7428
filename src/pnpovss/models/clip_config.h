// The configuration of a CLIP checkpoint (`config.json` of CLIPModel). Absent fields take the
// Hugging Face defaults of transformers v4.43 (CLIPTextConfig, CLIPVisionConfig, CLIPConfig);
// openai/clip-vit-large-patch14-336 values are noted beside each default.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace pnpovss::models {

struct ClipTextConfig {
  int64_t vocab_size = 49408;             // 49408
  int64_t hidden_size = 512;              // 768
  int64_t intermediate_size = 2048;       // 3072
  int64_t num_hidden_layers = 12;         // 12
  int64_t num_attention_heads = 8;        // 12
  int64_t max_position_embeddings = 77;   // 77
  double layer_norm_eps = 1e-5;           // 1e-5
  std::string hidden_act = "quick_gelu";  // quick_gelu
  // 2 (the value of configs converted by old transformers versions) selects the legacy pooling
  // at input_ids.argmax(-1); any other value pools at the first position holding this id.
  int64_t eos_token_id = 49407;           // 2
};

struct ClipVisionConfig {
  int64_t hidden_size = 768;              // 1024
  int64_t intermediate_size = 3072;       // 4096
  int64_t num_hidden_layers = 12;         // 24
  int64_t num_attention_heads = 12;       // 16
  int64_t num_channels = 3;
  int64_t image_size = 224;               // 336
  int64_t patch_size = 32;                // 14
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";

  int64_t grid() const { return image_size / patch_size; }
  int64_t num_positions() const { return grid() * grid() + 1; }
};

struct ClipConfig {
  ClipTextConfig text;
  ClipVisionConfig vision;
  int64_t projection_dim = 512;           // 768
  double logit_scale_init_value = 2.6592;  // only the initial value; the checkpoint holds the real one
  std::string model_type = "clip";

  // Parses a CLIPModel config. `where` names the source in error messages. Throws
  // pnpovss::Error for another model type, an unsupported activation or inconsistent sizes.
  static ClipConfig from_json(const nlohmann::json& json, const std::string& where);
  static ClipConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

// True when `json` is a CLIP config (model_type "clip" or a CLIPModel architecture).
bool is_clip_config(const nlohmann::json& json);

}  // namespace pnpovss::models
