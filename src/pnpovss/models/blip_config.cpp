#include "pnpovss/models/blip_config.h"

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"

namespace pnpovss::models {
namespace {

using io::json_int;
using io::json_number;
using io::json_string;
using io::require_config_size;

void check_activation(const std::string& act, const std::string& where) {
  if (act != "gelu")
    throw Error(where + ": hidden_act '" + act + "' is not supported (BLIP uses 'gelu')");
}

BlipVisionConfig parse_vision(const nlohmann::json& j, const std::string& where) {
  BlipVisionConfig c;
  c.hidden_size = json_int(j, "hidden_size", c.hidden_size, where);
  c.intermediate_size = json_int(j, "intermediate_size", c.intermediate_size, where);
  c.num_hidden_layers = json_int(j, "num_hidden_layers", c.num_hidden_layers, where);
  c.num_attention_heads = json_int(j, "num_attention_heads", c.num_attention_heads, where);
  c.image_size = json_int(j, "image_size", c.image_size, where);
  c.patch_size = json_int(j, "patch_size", c.patch_size, where);
  c.layer_norm_eps = json_number(j, "layer_norm_eps", c.layer_norm_eps, where);
  c.hidden_act = json_string(j, "hidden_act", c.hidden_act, where);
  require_config_size(c.hidden_size, "vision hidden_size", where);
  require_config_size(c.intermediate_size, "vision intermediate_size", where);
  require_config_size(c.num_hidden_layers, "vision num_hidden_layers", where);
  require_config_size(c.num_attention_heads, "vision num_attention_heads", where);
  require_config_size(c.patch_size, "vision patch_size", where);
  if (c.image_size > io::kMaxConfigSize)
    throw Error(where + ": vision image_size " + std::to_string(c.image_size) + " is too large (corrupt config?)");
  if (c.hidden_size % c.num_attention_heads != 0)
    throw Error(where + ": vision hidden_size " + std::to_string(c.hidden_size) +
                " is not a multiple of num_attention_heads " + std::to_string(c.num_attention_heads));
  if (c.image_size < c.patch_size || c.image_size % c.patch_size != 0)
    throw Error(where + ": vision image_size " + std::to_string(c.image_size) +
                " must be a positive multiple of patch_size " + std::to_string(c.patch_size));
  check_activation(c.hidden_act, where);
  return c;
}

BlipTextConfig parse_text(const nlohmann::json& j, const std::string& where) {
  BlipTextConfig c;
  c.vocab_size = json_int(j, "vocab_size", c.vocab_size, where);
  c.hidden_size = json_int(j, "hidden_size", c.hidden_size, where);
  c.encoder_hidden_size = json_int(j, "encoder_hidden_size", c.encoder_hidden_size, where);
  c.intermediate_size = json_int(j, "intermediate_size", c.intermediate_size, where);
  c.num_hidden_layers = json_int(j, "num_hidden_layers", c.num_hidden_layers, where);
  c.num_attention_heads = json_int(j, "num_attention_heads", c.num_attention_heads, where);
  c.max_position_embeddings = json_int(j, "max_position_embeddings", c.max_position_embeddings, where);
  c.layer_norm_eps = json_number(j, "layer_norm_eps", c.layer_norm_eps, where);
  c.hidden_act = json_string(j, "hidden_act", c.hidden_act, where);
  c.pad_token_id = json_int(j, "pad_token_id", c.pad_token_id, where);
  c.sep_token_id = json_int(j, "sep_token_id", c.sep_token_id, where);
  require_config_size(c.vocab_size, "text vocab_size", where);
  require_config_size(c.hidden_size, "text hidden_size", where);
  require_config_size(c.intermediate_size, "text intermediate_size", where);
  require_config_size(c.num_hidden_layers, "text num_hidden_layers", where);
  require_config_size(c.num_attention_heads, "text num_attention_heads", where);
  require_config_size(c.max_position_embeddings, "text max_position_embeddings", where);
  if (c.hidden_size % c.num_attention_heads != 0)
    throw Error(where + ": text hidden_size " + std::to_string(c.hidden_size) +
                " is not a multiple of num_attention_heads " + std::to_string(c.num_attention_heads));
  check_activation(c.hidden_act, where);
  return c;
}

}  // namespace

BlipConfig BlipConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": config is not a JSON object");
  BlipConfig c;
  c.model_type = json_string(j, "model_type", "", where);
  if (c.model_type != "blip")
    throw Error(where + ": model_type '" + c.model_type +
                "' is not supported here; expected 'blip' (a BlipForImageTextRetrieval checkpoint "
                "such as Salesforce/blip-itm-large-flickr)");
  if (j.contains("architectures") && j["architectures"].is_array()) {
    for (const auto& a : j["architectures"])
      if (a.is_string() && a.get<std::string>() != "BlipForImageTextRetrieval")
        throw Error(where + ": architecture '" + a.get<std::string>() +
                    "' is not an image-text-matching model; use a BlipForImageTextRetrieval "
                    "checkpoint (Salesforce/blip-itm-*)");
  }
  const nlohmann::json empty = nlohmann::json::object();
  const auto& vj = j.contains("vision_config") && j["vision_config"].is_object() ? j["vision_config"] : empty;
  const auto& tj = j.contains("text_config") && j["text_config"].is_object() ? j["text_config"] : empty;
  c.vision = parse_vision(vj, where + " (vision_config)");
  c.text = parse_text(tj, where + " (text_config)");
  // BlipConfig.__init__ always sets this, whatever the file says.
  c.text.encoder_hidden_size = c.vision.hidden_size;
  c.image_text_hidden_size = json_int(j, "image_text_hidden_size", c.image_text_hidden_size, where);
  require_config_size(c.image_text_hidden_size, "image_text_hidden_size", where);
  if (c.enc_token_id >= c.text.vocab_size) c.enc_token_id = -1;  // no [ENC] row in this vocabulary
  return c;
}

BlipConfig BlipConfig::from_file(const std::string& path) {
  return from_json(io::read_json_file(path), path);
}

nlohmann::json BlipConfig::to_json() const {
  return {
      {"model_type", model_type},
      {"architectures", {"BlipForImageTextRetrieval"}},
      {"image_text_hidden_size", image_text_hidden_size},
      {"vision_config",
       {{"hidden_size", vision.hidden_size}, {"intermediate_size", vision.intermediate_size},
        {"num_hidden_layers", vision.num_hidden_layers}, {"num_attention_heads", vision.num_attention_heads},
        {"image_size", vision.image_size}, {"patch_size", vision.patch_size},
        {"layer_norm_eps", vision.layer_norm_eps}, {"hidden_act", vision.hidden_act}}},
      {"text_config",
       {{"vocab_size", text.vocab_size}, {"hidden_size", text.hidden_size},
        {"encoder_hidden_size", text.encoder_hidden_size}, {"intermediate_size", text.intermediate_size},
        {"num_hidden_layers", text.num_hidden_layers}, {"num_attention_heads", text.num_attention_heads},
        {"max_position_embeddings", text.max_position_embeddings}, {"layer_norm_eps", text.layer_norm_eps},
        {"hidden_act", text.hidden_act}}},
  };
}

}  // namespace pnpovss::models
