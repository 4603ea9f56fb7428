#include "pnpovss/check/bridgetower_fixture.h"

#include <torch/torch.h>

#include <optional>

#include "pnpovss/models/bridgetower_itm.h"

namespace pnpovss::check {
namespace {

using models::BridgeTowerItm;

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// A reference tensor name taken apart: base[_swapped][.layer]
struct TensorName {
  std::string base;
  bool swapped = false;
  std::optional<int64_t> layer;
};

TensorName parse_name(std::string name) {
  TensorName n;
  const auto dot = name.rfind('.');
  if (dot != std::string::npos) {
    const std::string tail = name.substr(dot + 1);
    if (!tail.empty() && tail.size() < 10 && tail.find_first_not_of("0123456789") == std::string::npos) {
      n.layer = std::stoll(tail);
      name = name.substr(0, dot);
    }
  }
  if (ends_with(name, "_swapped")) {
    n.swapped = true;
    name = name.substr(0, name.size() - 8);
  }
  n.base = name;
  return n;
}

TensorCheck unknown(const std::string& name, const std::string& why) {
  TensorCheck c;
  c.name = name;
  c.skipped = true;
  c.note = why;
  return c;
}

class BridgeTowerChecker {
 public:
  BridgeTowerChecker(const Fixture& fx, const runtime::Placement& placement)
      : fx_(fx), model_(BridgeTowerItm::load(fx.dir())) {
    if (!placement.is_default()) model_.to(placement);
  }

  // nullopt for the inputs, which check_bridgetower_inputs covers.
  std::optional<TensorCheck> check(const std::string& name) {
    for (const char* input : {"pixel_values", "pixel_mask", "input_ids", "attention_mask"})
      if (starts_with(name, input)) return std::nullopt;
    const TensorName n = parse_name(name);
    const models::BridgeTowerOutputs& out = outputs(n.swapped);
    if (n.layer) {
      if (n.base != "cross_attn_probs" && n.base != "cross_attn_grad") return unknown(name, "no rule computes this tensor");
      if (*n.layer >= model_.config().num_hidden_layers) return unknown(name, "layer beyond the model's depth");
      return fx_.compare(name, (n.base == "cross_attn_probs" ? out.probs : out.grads)[*n.layer]);
    }
    if (n.base == "itm_logits") return fx_.compare(name, out.itm_logits);
    if (n.base == "text_features") return fx_.compare(name, out.text_features);
    if (n.base == "image_features") return fx_.compare(name, out.image_features);
    if (n.base == "pooler_output") return fx_.compare(name, out.pooler_output);
    return unknown(name, "no rule computes this tensor");
  }

 private:
  const Fixture& fx_;
  BridgeTowerItm model_;
  std::optional<models::BridgeTowerOutputs> plain_, swapped_;

  // One forward and backward pass per text order, capturing every cross-modal layer.
  const models::BridgeTowerOutputs& outputs(bool swapped) {
    auto& slot = swapped ? swapped_ : plain_;
    if (slot) return *slot;
    torch::Tensor ids = fx_.tensor("input_ids").to(torch::kInt64);
    torch::Tensor mask = fx_.tensor("attention_mask").to(torch::kInt64);
    if (swapped) {
      ids = ids.flip(0);
      mask = mask.flip(0);
    }
    std::vector<int64_t> layers;
    for (int64_t l = 0; l < model_.config().num_hidden_layers; ++l) layers.push_back(l);
    slot = model_.itm_attention_gradients(fx_.tensor("pixel_values").to(torch::kFloat32), ids, mask, layers);
    return *slot;
  }
};

}  // namespace

bool is_bridgetower_itm_fixture(const Fixture& fixture) {
  return fixture.reference().value("model", std::string()) == "BridgeTowerForImageAndTextRetrieval";
}

std::vector<TensorCheck> check_bridgetower_itm_fixture(const Fixture& fixture, const runtime::Placement& placement) {
  std::vector<TensorCheck> checks;
  BridgeTowerChecker checker(fixture, placement);
  for (const auto& name : fixture.tensor_names())
    if (auto c = checker.check(name)) checks.push_back(*c);
  return checks;
}

}  // namespace pnpovss::check
