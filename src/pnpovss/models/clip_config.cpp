#include "pnpovss/models/clip_config.h"

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"

namespace pnpovss::models {
namespace {

using io::json_int;
using io::json_number;
using io::json_string;
using io::require_config_size;

void check_heads(int64_t width, int64_t heads, const std::string& tower, const std::string& where) {
  if (width % heads != 0)
    throw Error(where + ": " + tower + " hidden_size " + std::to_string(width) +
                " is not a multiple of num_attention_heads " + std::to_string(heads));
}

void check_activation(const std::string& act, const std::string& where) {
  if (act != "quick_gelu" && act != "gelu" && act != "gelu_new" && act != "gelu_pytorch_tanh")
    throw Error(where + ": hidden_act '" + act +
                "' is not supported (CLIP uses 'quick_gelu'; 'gelu' and the tanh GELUs also work)");
}

// Configs written by old transformers versions keep the tower settings in *_config_dict, which
// CLIPConfig lets override *_config.
nlohmann::json tower_json(const nlohmann::json& j, const std::string& key) {
  nlohmann::json out = nlohmann::json::object();
  for (const std::string& k : {key, key + "_dict"}) {
    auto it = j.find(k);
    if (it != j.end() && it->is_object())
      for (const auto& [name, value] : it->items()) out[name] = value;
  }
  return out;
}

ClipTextConfig parse_text(const nlohmann::json& j, const std::string& where) {
  ClipTextConfig c;
  c.vocab_size = json_int(j, "vocab_size", c.vocab_size, where);
  c.hidden_size = json_int(j, "hidden_size", c.hidden_size, where);
  c.intermediate_size = json_int(j, "intermediate_size", c.intermediate_size, where);
  c.num_hidden_layers = json_int(j, "num_hidden_layers", c.num_hidden_layers, where);
  c.num_attention_heads = json_int(j, "num_attention_heads", c.num_attention_heads, where);
  c.max_position_embeddings = json_int(j, "max_position_embeddings", c.max_position_embeddings, where);
  c.layer_norm_eps = json_number(j, "layer_norm_eps", c.layer_norm_eps, where);
  c.hidden_act = json_string(j, "hidden_act", c.hidden_act, where);
  c.eos_token_id = json_int(j, "eos_token_id", c.eos_token_id, where);
  require_config_size(c.vocab_size, "text vocab_size", where);
  require_config_size(c.hidden_size, "text hidden_size", where);
  require_config_size(c.intermediate_size, "text intermediate_size", where);
  require_config_size(c.num_hidden_layers, "text num_hidden_layers", where);
  require_config_size(c.num_attention_heads, "text num_attention_heads", where);
  require_config_size(c.max_position_embeddings, "text max_position_embeddings", where);
  check_heads(c.hidden_size, c.num_attention_heads, "text", where);
  if (!(c.layer_norm_eps > 0)) throw Error(where + ": text layer_norm_eps must be positive");
  check_activation(c.hidden_act, where);
  return c;
}

ClipVisionConfig parse_vision(const nlohmann::json& j, const std::string& where) {
  ClipVisionConfig c;
  c.hidden_size = json_int(j, "hidden_size", c.hidden_size, where);
  c.intermediate_size = json_int(j, "intermediate_size", c.intermediate_size, where);
  c.num_hidden_layers = json_int(j, "num_hidden_layers", c.num_hidden_layers, where);
  c.num_attention_heads = json_int(j, "num_attention_heads", c.num_attention_heads, where);
  c.num_channels = json_int(j, "num_channels", c.num_channels, where);
  c.image_size = json_int(j, "image_size", c.image_size, where);
  c.patch_size = json_int(j, "patch_size", c.patch_size, where);
  c.layer_norm_eps = json_number(j, "layer_norm_eps", c.layer_norm_eps, where);
  c.hidden_act = json_string(j, "hidden_act", c.hidden_act, where);
  require_config_size(c.hidden_size, "vision hidden_size", where);
  require_config_size(c.intermediate_size, "vision intermediate_size", where);
  require_config_size(c.num_hidden_layers, "vision num_hidden_layers", where);
  require_config_size(c.num_attention_heads, "vision num_attention_heads", where);
  require_config_size(c.patch_size, "vision patch_size", where);
  require_config_size(c.image_size, "vision image_size", where);
  if (c.num_channels != 3)
    throw Error(where + ": vision num_channels is " + std::to_string(c.num_channels) + "; only RGB (3) is supported");
  check_heads(c.hidden_size, c.num_attention_heads, "vision", where);
  if (c.image_size < c.patch_size)
    throw Error(where + ": vision image_size " + std::to_string(c.image_size) + " is smaller than patch_size " +
                std::to_string(c.patch_size));
  if (!(c.layer_norm_eps > 0)) throw Error(where + ": vision layer_norm_eps must be positive");
  check_activation(c.hidden_act, where);
  return c;
}

}  // namespace

bool is_clip_config(const nlohmann::json& j) {
  if (!j.is_object()) return false;
  if (j.value("model_type", std::string()) == "clip") return true;
  auto it = j.find("architectures");
  if (it == j.end() || !it->is_array()) return false;
  for (const auto& a : *it)
    if (a.is_string() && a.get<std::string>() == "CLIPModel") return true;
  return false;
}

ClipConfig ClipConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": config is not a JSON object");
  ClipConfig c;
  c.model_type = json_string(j, "model_type", "", where);
  if (c.model_type != "clip")
    throw Error(where + ": model_type '" + c.model_type +
                "' is not supported here; expected 'clip' (a CLIPModel checkpoint such as "
                "openai/clip-vit-base-patch16)");
  c.text = parse_text(tower_json(j, "text_config"), where + " (text_config)");
  c.vision = parse_vision(tower_json(j, "vision_config"), where + " (vision_config)");
  c.projection_dim = json_int(j, "projection_dim", c.projection_dim, where);
  c.logit_scale_init_value = json_number(j, "logit_scale_init_value", c.logit_scale_init_value, where);
  require_config_size(c.projection_dim, "projection_dim", where);
  return c;
}

ClipConfig ClipConfig::from_file(const std::string& path) { return from_json(io::read_json_file(path), path); }

nlohmann::json ClipConfig::to_json() const {
  return {
      {"model_type", model_type},
      {"architectures", {"CLIPModel"}},
      {"projection_dim", projection_dim},
      {"logit_scale_init_value", logit_scale_init_value},
      {"text_config",
       {{"vocab_size", text.vocab_size}, {"hidden_size", text.hidden_size},
        {"intermediate_size", text.intermediate_size}, {"num_hidden_layers", text.num_hidden_layers},
        {"num_attention_heads", text.num_attention_heads},
        {"max_position_embeddings", text.max_position_embeddings}, {"layer_norm_eps", text.layer_norm_eps},
        {"hidden_act", text.hidden_act}, {"eos_token_id", text.eos_token_id}}},
      {"vision_config",
       {{"hidden_size", vision.hidden_size}, {"intermediate_size", vision.intermediate_size},
        {"num_hidden_layers", vision.num_hidden_layers}, {"num_attention_heads", vision.num_attention_heads},
        {"num_channels", vision.num_channels}, {"image_size", vision.image_size},
        {"patch_size", vision.patch_size}, {"layer_norm_eps", vision.layer_norm_eps},
        {"hidden_act", vision.hidden_act}}},
  };
}

}  // namespace pnpovss::models
