#include "pnpovss/models/bridgetower_config.h"

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"

namespace pnpovss::models {
namespace {

using io::json_bool;
using io::json_int;
using io::json_number;
using io::json_string;
using io::require_config_size;

void check_gelu(const std::string& act, const std::string& where) {
  if (act != "gelu")
    throw Error(where + ": hidden_act '" + act + "' is not supported (BridgeTower uses 'gelu')");
}

BridgeTowerVisionConfig parse_vision(const nlohmann::json& j, const std::string& where) {
  BridgeTowerVisionConfig c;
  c.hidden_size = json_int(j, "hidden_size", c.hidden_size, where);
  c.num_hidden_layers = json_int(j, "num_hidden_layers", c.num_hidden_layers, where);
  c.image_size = json_int(j, "image_size", c.image_size, where);
  c.patch_size = json_int(j, "patch_size", c.patch_size, where);
  c.layer_norm_eps = json_number(j, "layer_norm_eps", c.layer_norm_eps, where);
  c.share_layernorm = json_bool(j, "share_layernorm", c.share_layernorm, where);
  c.remove_last_layer = json_bool(j, "remove_last_layer", c.remove_last_layer, where);
  if (json_int(j, "num_channels", 3, where) != 3) throw Error(where + ": num_channels must be 3 (RGB)");
  require_config_size(c.hidden_size, "vision hidden_size", where);
  require_config_size(c.num_hidden_layers, "vision num_hidden_layers", where);
  require_config_size(c.image_size, "vision image_size", where);
  require_config_size(c.patch_size, "vision patch_size", where);
  // nn.MultiheadAttention(D, D // 64): the width must give whole 64-wide heads.
  if (c.hidden_size % 64 != 0)
    throw Error(where + ": vision hidden_size " + std::to_string(c.hidden_size) +
                " must be a multiple of 64 (BridgeTower's vision heads are 64 wide)");
  if (c.image_size < c.patch_size)
    throw Error(where + ": vision image_size " + std::to_string(c.image_size) + " is smaller than patch_size " +
                std::to_string(c.patch_size));
  return c;
}

BridgeTowerTextConfig parse_text(const nlohmann::json& j, const std::string& where) {
  BridgeTowerTextConfig c;
  c.vocab_size = json_int(j, "vocab_size", c.vocab_size, where);
  c.hidden_size = json_int(j, "hidden_size", c.hidden_size, where);
  c.num_hidden_layers = json_int(j, "num_hidden_layers", c.num_hidden_layers, where);
  c.num_attention_heads = json_int(j, "num_attention_heads", c.num_attention_heads, where);
  c.intermediate_size = json_int(j, "intermediate_size", c.intermediate_size, where);
  c.max_position_embeddings = json_int(j, "max_position_embeddings", c.max_position_embeddings, where);
  c.type_vocab_size = json_int(j, "type_vocab_size", c.type_vocab_size, where);
  c.layer_norm_eps = json_number(j, "layer_norm_eps", c.layer_norm_eps, where);
  c.hidden_act = json_string(j, "hidden_act", c.hidden_act, where);
  c.pad_token_id = json_int(j, "pad_token_id", c.pad_token_id, where);
  c.bos_token_id = json_int(j, "bos_token_id", c.bos_token_id, where);
  c.eos_token_id = json_int(j, "eos_token_id", c.eos_token_id, where);
  require_config_size(c.vocab_size, "text vocab_size", where);
  require_config_size(c.hidden_size, "text hidden_size", where);
  require_config_size(c.num_hidden_layers, "text num_hidden_layers", where);
  require_config_size(c.num_attention_heads, "text num_attention_heads", where);
  require_config_size(c.intermediate_size, "text intermediate_size", where);
  require_config_size(c.max_position_embeddings, "text max_position_embeddings", where);
  require_config_size(c.type_vocab_size, "text type_vocab_size", where);
  if (c.hidden_size % c.num_attention_heads != 0)
    throw Error(where + ": text hidden_size " + std::to_string(c.hidden_size) +
                " is not a multiple of num_attention_heads " + std::to_string(c.num_attention_heads));
  for (int64_t id : {c.pad_token_id, c.bos_token_id, c.eos_token_id})
    if (id < 0 || id >= c.vocab_size)
      throw Error(where + ": special token id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(c.vocab_size));
  // Real tokens take positions pad+1, pad+2, ...: at least one must exist.
  if (c.max_position_embeddings <= c.pad_token_id + 1)
    throw Error(where + ": max_position_embeddings " + std::to_string(c.max_position_embeddings) +
                " leaves no position after the padding index " + std::to_string(c.pad_token_id));
  check_gelu(c.hidden_act, where);
  return c;
}

// Options with which the reference forward pass itself cannot run.
void check_fusion_options(const nlohmann::json& j, const std::string& where) {
  if (!json_bool(j, "share_cross_modal_transformer_layers", true, where))
    throw Error(where + ": share_cross_modal_transformer_layers=false is not supported (the reference "
                        "BridgeTowerModel only runs with one shared text and image transform)");
  if (json_bool(j, "share_link_tower_layers", false, where))
    throw Error(where + ": share_link_tower_layers=true is not supported (the reference BridgeTowerModel "
                        "indexes one link tower per layer)");
  const std::string link = json_string(j, "link_tower_type", "add", where);
  if (link != "add")
    throw Error(where + ": link_tower_type '" + link + "' is not supported; only 'add' (all published "
                        "BridgeTower checkpoints) is implemented");
}

}  // namespace

BridgeTowerConfig BridgeTowerConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": config is not a JSON object");
  BridgeTowerConfig c;
  c.model_type = json_string(j, "model_type", "", where);
  if (c.model_type != "bridgetower")
    throw Error(where + ": model_type '" + c.model_type +
                "' is not supported here; expected 'bridgetower' (a BridgeTowerForImageAndTextRetrieval "
                "checkpoint such as BridgeTower/bridgetower-large-itm-mlm-itc)");
  if (j.contains("architectures") && j["architectures"].is_array())
    for (const auto& a : j["architectures"])
      if (a.is_string() && a.get<std::string>() != "BridgeTowerForImageAndTextRetrieval")
        throw Error(where + ": architecture '" + a.get<std::string>() +
                    "' is not the image-text-matching model; use a BridgeTowerForImageAndTextRetrieval "
                    "checkpoint (BridgeTower/bridgetower-*-itm-*)");
  const nlohmann::json empty = nlohmann::json::object();
  const auto& vj = j.contains("vision_config") && j["vision_config"].is_object() ? j["vision_config"] : empty;
  const auto& tj = j.contains("text_config") && j["text_config"].is_object() ? j["text_config"] : empty;
  c.vision = parse_vision(vj, where + " (vision_config)");
  c.text = parse_text(tj, where + " (text_config)");
  c.hidden_size = json_int(j, "hidden_size", c.hidden_size, where);
  c.num_attention_heads = json_int(j, "num_attention_heads", c.num_attention_heads, where);
  c.num_hidden_layers = json_int(j, "num_hidden_layers", c.num_hidden_layers, where);
  c.layer_norm_eps = json_number(j, "layer_norm_eps", c.layer_norm_eps, where);
  check_gelu(json_string(j, "hidden_act", "gelu", where), where);
  check_fusion_options(j, where);
  require_config_size(c.hidden_size, "hidden_size", where);
  require_config_size(c.num_attention_heads, "num_attention_heads", where);
  require_config_size(c.num_hidden_layers, "num_hidden_layers", where);
  // The cross-modal layers are built from the text config but take transformed features of
  // the cross-modal width.
  if (c.text.hidden_size != c.hidden_size)
    throw Error(where + ": text hidden_size " + std::to_string(c.text.hidden_size) +
                " differs from the cross-modal hidden_size " + std::to_string(c.hidden_size) +
                " (the cross-modal layers use the text config)");
  if (c.split_index() < 0)
    throw Error(where + ": " + std::to_string(c.num_hidden_layers) + " cross-modal layers need at least " +
                std::to_string(c.num_hidden_layers - 1) + " text layers, the config has " +
                std::to_string(c.text.num_hidden_layers));
  // The fusion loop runs vision block i beside text layer i.
  if (c.vision.num_blocks() < c.text.num_hidden_layers)
    throw Error(where + ": the vision tower has " + std::to_string(c.vision.num_blocks()) +
                " blocks, fewer than the " + std::to_string(c.text.num_hidden_layers) + " text layers");
  return c;
}

BridgeTowerConfig BridgeTowerConfig::from_file(const std::string& path) {
  return from_json(io::read_json_file(path), path);
}

nlohmann::json BridgeTowerConfig::to_json() const {
  return {
      {"model_type", model_type},
      {"architectures", {"BridgeTowerForImageAndTextRetrieval"}},
      {"hidden_size", hidden_size},
      {"num_attention_heads", num_attention_heads},
      {"num_hidden_layers", num_hidden_layers},
      {"layer_norm_eps", layer_norm_eps},
      {"hidden_act", "gelu"},
      {"link_tower_type", "add"},
      {"share_cross_modal_transformer_layers", true},
      {"share_link_tower_layers", false},
      {"vision_config",
       {{"hidden_size", vision.hidden_size}, {"num_hidden_layers", vision.num_hidden_layers},
        {"image_size", vision.image_size}, {"patch_size", vision.patch_size},
        {"layer_norm_eps", vision.layer_norm_eps}, {"share_layernorm", vision.share_layernorm},
        {"remove_last_layer", vision.remove_last_layer}}},
      {"text_config",
       {{"vocab_size", text.vocab_size}, {"hidden_size", text.hidden_size},
        {"num_hidden_layers", text.num_hidden_layers}, {"num_attention_heads", text.num_attention_heads},
        {"intermediate_size", text.intermediate_size}, {"max_position_embeddings", text.max_position_embeddings},
        {"type_vocab_size", text.type_vocab_size}, {"layer_norm_eps", text.layer_norm_eps},
        {"hidden_act", text.hidden_act}, {"pad_token_id", text.pad_token_id},
        {"bos_token_id", text.bos_token_id}, {"eos_token_id", text.eos_token_id}}},
  };
}

}  // namespace pnpovss::models
