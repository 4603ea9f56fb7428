#include "pnpovss/segment/bridgetower_backbone.h"

#include <torch/torch.h>

#include <utility>

#include "pnpovss/error.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/runtime/placement.h"

namespace pnpovss::segment {

using runtime::cpu_float;

BridgeTowerBackbone::BridgeTowerBackbone(models::BridgeTowerItm model, models::ImagePreprocessConfig preprocess)
    : model_(std::move(model)), preprocess_(preprocess) {}

BridgeTowerBackbone BridgeTowerBackbone::load(const std::string& dir, const runtime::Placement& placement) {
  const std::string config = dir + "/preprocessor_config.json";
  models::ImagePreprocessConfig preprocess;  // CLIP mean and std, as BridgeTowerImageProcessor
  if (io::file_exists(config)) preprocess = models::ImagePreprocessConfig::from_file(config);
  models::BridgeTowerItm model = models::BridgeTowerItm::load(dir);
  if (!placement.is_default()) model.to(placement);
  return BridgeTowerBackbone(std::move(model), preprocess);
}

int64_t BridgeTowerBackbone::patch_size() const { return model_.config().vision.patch_size; }
int64_t BridgeTowerBackbone::num_text_layers() const { return model_.config().num_hidden_layers; }
// The cross-modal layers are built from the text config, so its head count applies.
int64_t BridgeTowerBackbone::num_heads() const { return model_.config().text.num_attention_heads; }
int64_t BridgeTowerBackbone::enc_token_id() const { return model_.config().text.bos_token_id; }

std::vector<AttentionGradient> BridgeTowerBackbone::attention_and_gradients(const torch::Tensor& pixels,
                                                                            const torch::Tensor& ids,
                                                                            const torch::Tensor& mask,
                                                                            const std::vector<int64_t>& layers) const {
  if (pixels.dim() != 4 || pixels.size(0) != 1 || ids.dim() != 2 || ids.size(0) != 1)
    throw Error("BridgeTower backbone: expected one image [1,3,S,S] and one prompt [1,T]");
  if (layers.empty()) throw Error("BridgeTower backbone: no layer requested");
  const auto capture = model_.itm_attention_gradients(pixels, ids, mask, layers);
  std::vector<AttentionGradient> out(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    out[i].itm_logits = cpu_float(capture.itm_logits[0]);
    out[i].probs = cpu_float(capture.probs[i][0]);
    out[i].grads = cpu_float(capture.grads[i][0]);
  }
  return out;
}

std::vector<HeadAttentionGradient> BridgeTowerBackbone::attention_and_gradient_batch(
    const torch::Tensor& pixels, const std::vector<const Prompt*>& prompts, int64_t layer, int64_t head) const {
  check_batch(pixels, prompts);
  if (head < 0 || head >= num_heads()) throw Error("BridgeTower backbone: head out of range");
  const auto [ids, mask] = padded_prompts(prompts, model_.config().text.pad_token_id);
  const auto capture = model_.itm_attention_gradients(pixels, ids, mask, {layer});
  return head_of_each_image(capture.itm_logits, capture.probs[0], capture.grads[0], head, prompts);
}

}  // namespace pnpovss::segment
