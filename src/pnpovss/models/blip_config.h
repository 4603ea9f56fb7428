// The configuration of a BLIP image-text-matching checkpoint (`config.json` of
// BlipForImageTextRetrieval). Absent fields take the Hugging Face defaults of
// transformers v4.43 (BlipVisionConfig, BlipTextConfig, BlipConfig); the values of the real
// Salesforce/blip-itm-large-flickr checkpoint are noted beside each default.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace pnpovss::models {

struct BlipVisionConfig {
  int64_t hidden_size = 768;         // large: 1024
  int64_t intermediate_size = 3072;  // large: 4096
  int64_t num_hidden_layers = 12;    // large: 24
  int64_t num_attention_heads = 12;  // large: 16
  int64_t image_size = 384;          // 384
  int64_t patch_size = 16;           // 16
  double layer_norm_eps = 1e-5;      // 1e-5 (the original BLIP ViT used 1e-6)
  std::string hidden_act = "gelu";   // exact erf GELU

  int64_t grid() const { return image_size / patch_size; }
  int64_t num_positions() const { return grid() * grid() + 1; }
};

struct BlipTextConfig {
  int64_t vocab_size = 30524;               // 30524: BERT's 30522 plus [DEC] and [ENC]
  int64_t hidden_size = 768;                // 768
  int64_t encoder_hidden_size = 768;        // forced to the vision hidden size (1024)
  int64_t intermediate_size = 3072;         // 3072
  int64_t num_hidden_layers = 12;           // 12
  int64_t num_attention_heads = 8;          // 12 (the HF default is 8)
  int64_t max_position_embeddings = 512;    // 512
  double layer_norm_eps = 1e-12;            // 1e-12
  std::string hidden_act = "gelu";
  int64_t pad_token_id = 0;
  int64_t sep_token_id = 102;
};

struct BlipConfig {
  BlipVisionConfig vision;
  BlipTextConfig text;
  int64_t image_text_hidden_size = 256;  // ITC projection width
  // [ENC]: the first-token id the original BLIP ITM uses instead of [CLS]. Not in HF configs.
  int64_t enc_token_id = 30523;
  std::string model_type = "blip";

  // Parses a BlipForImageTextRetrieval config. `where` names the source in error messages.
  // Throws pnpovss::Error for another model type or inconsistent sizes.
  static BlipConfig from_json(const nlohmann::json& json, const std::string& where);
  static BlipConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace pnpovss::models
