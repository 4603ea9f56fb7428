#include "pnpovss/check/blip_fixture.h"

#include <torch/torch.h>

#include <map>
#include <optional>

#include "pnpovss/error.h"
#include "pnpovss/models/blip_itm.h"

namespace pnpovss::check {
namespace {

using models::BlipItm;

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// A reference tensor name taken apart: [large_]base[_enc|_swapped][.layer]
struct TensorName {
  bool large = false;
  bool enc = false;
  bool swapped = false;
  std::string base;
  std::optional<int64_t> layer;
  std::string variant_key() const { return std::string(large ? "L" : "-") + (enc ? "E" : "-") + (swapped ? "S" : "-"); }
};

TensorName parse_name(std::string name) {
  TensorName n;
  if (starts_with(name, "large_")) {
    n.large = true;
    name = name.substr(6);
  }
  const auto dot = name.rfind('.');
  if (dot != std::string::npos) {
    const std::string tail = name.substr(dot + 1);
    if (!tail.empty() && tail.find_first_not_of("0123456789") == std::string::npos) {
      n.layer = std::stoll(tail);
      name = name.substr(0, dot);
    }
  }
  if (ends_with(name, "_enc")) {
    n.enc = true;
    name = name.substr(0, name.size() - 4);
  } else if (ends_with(name, "_swapped")) {
    n.swapped = true;
    name = name.substr(0, name.size() - 8);
  }
  n.base = name;
  return n;
}

// Everything the model computes for one input variant.
struct VariantOutputs {
  torch::Tensor image_embeds;
  torch::Tensor input_ids, attention_mask;
  models::CrossAttentionCapture capture;
};

class BlipChecker {
 public:
  BlipChecker(const Fixture& fx, const runtime::Placement& placement) : fx_(fx), model_(BlipItm::load(fx.dir())) {
    if (!placement.is_default()) model_.to(placement);
  }

  // nullopt for the inputs, which check_blip_inputs covers.
  std::optional<TensorCheck> check(const std::string& name) {
    const TensorName n = parse_name(name);
    for (const char* input : {"pixel_values", "input_ids", "attention_mask"})
      if (starts_with(name, input)) return std::nullopt;
    const VariantOutputs& out = outputs(n);
    if (n.base == "vision_last_hidden_state") return fx_.compare(name, out.image_embeds);
    if (n.base == "vision_pooler_output") return fx_.compare(name, model_.pool_image(out.image_embeds));
    if (n.base == "itm_logits") return fx_.compare(name, out.capture.itm_logits);
    if (n.base == "text_last_hidden_state") return fx_.compare(name, out.capture.text_hidden);
    if (n.base == "itc_score")
      return fx_.compare(name, model_.itc_scores(out.input_ids, out.attention_mask, out.image_embeds));
    if ((n.base == "cross_attn_probs" || n.base == "cross_attn_grad") && n.layer) {
      const int64_t depth = model_.config().text.num_hidden_layers;
      if (*n.layer >= depth) return unknown(name, "layer beyond the model's depth");
      const auto& list = n.base == "cross_attn_probs" ? out.capture.probs : out.capture.grads;
      return fx_.compare(name, list[*n.layer]);
    }
    return unknown(name, "no rule computes this tensor");
  }

 private:
  const Fixture& fx_;
  BlipItm model_;
  std::map<std::string, VariantOutputs> cache_;

  static TensorCheck unknown(const std::string& name, const std::string& why) {
    TensorCheck c;
    c.name = name;
    c.skipped = true;
    c.note = why;
    return c;
  }

  torch::Tensor enc_ids() const {
    if (fx_.has("input_ids_enc")) return fx_.tensor("input_ids_enc").to(torch::kInt64);
    torch::Tensor ids = fx_.tensor("input_ids").to(torch::kInt64).clone();
    ids.select(1, 0).fill_(model_.config().enc_token_id);
    return ids;
  }

  const VariantOutputs& outputs(const TensorName& n) {
    const std::string key = n.variant_key();
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    VariantOutputs v;
    torch::Tensor pixels = fx_.tensor(n.large ? "pixel_values_large" : "pixel_values").to(torch::kFloat32);
    v.input_ids = n.enc ? enc_ids() : fx_.tensor("input_ids").to(torch::kInt64);
    v.attention_mask = fx_.tensor("attention_mask").to(torch::kInt64);
    if (n.swapped) {
      v.input_ids = v.input_ids.flip(0);
      v.attention_mask = v.attention_mask.flip(0);
    }
    if (n.large) {  // the first texts, one per large image
      v.input_ids = v.input_ids.narrow(0, 0, pixels.size(0));
      v.attention_mask = v.attention_mask.narrow(0, 0, pixels.size(0));
    }
    // The fixtures feed a non-native size through transformers' interpolate_pos_encoding.
    v.image_embeds = model_.encode_image(pixels, PositionResize::HuggingFace);
    std::vector<int64_t> all_layers;
    for (int64_t l = 0; l < model_.config().text.num_hidden_layers; ++l) all_layers.push_back(l);
    v.capture = model_.itm_attention_gradients(v.input_ids, v.attention_mask, v.image_embeds, all_layers);
    return cache_.emplace(key, std::move(v)).first->second;
  }
};

}  // namespace

bool is_blip_itm_fixture(const Fixture& fixture) {
  return fixture.reference().value("model", std::string()) == "BlipForImageTextRetrieval";
}

std::vector<TensorCheck> check_blip_itm_fixture(const Fixture& fixture, const runtime::Placement& placement) {
  std::vector<TensorCheck> checks;
  BlipChecker checker(fixture, placement);
  for (const auto& name : fixture.tensor_names()) {
    if (auto c = checker.check(name)) checks.push_back(*c);
  }
  return checks;
}

}  // namespace pnpovss::check
