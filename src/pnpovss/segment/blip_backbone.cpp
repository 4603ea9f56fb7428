#include "pnpovss/segment/blip_backbone.h"

#include <torch/torch.h>

#include <utility>

#include "pnpovss/error.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/runtime/placement.h"

namespace pnpovss::segment {

using runtime::cpu_float;

BlipBackbone::BlipBackbone(models::BlipItm model, models::ImagePreprocessConfig preprocess, PositionResize resize)
    : model_(std::move(model)),
      preprocess_(preprocess),
      resize_(resize) {}

BlipBackbone BlipBackbone::load(const std::string& dir, PositionResize resize, const runtime::Placement& placement) {
  const std::string config = dir + "/preprocessor_config.json";
  models::ImagePreprocessConfig preprocess;
  if (io::file_exists(config)) preprocess = models::ImagePreprocessConfig::from_file(config);
  models::BlipItm model = models::BlipItm::load(dir);
  if (!placement.is_default()) model.to(placement);
  return BlipBackbone(std::move(model), preprocess, resize);
}

int64_t BlipBackbone::patch_size() const { return model_.config().vision.patch_size; }
int64_t BlipBackbone::num_text_layers() const { return model_.config().text.num_hidden_layers; }
int64_t BlipBackbone::num_heads() const { return model_.config().text.num_attention_heads; }
int64_t BlipBackbone::enc_token_id() const { return model_.config().enc_token_id; }

std::vector<AttentionGradient> BlipBackbone::attention_and_gradients(const torch::Tensor& pixels,
                                                                     const torch::Tensor& ids,
                                                                     const torch::Tensor& mask,
                                                                     const std::vector<int64_t>& layers) const {
  if (pixels.dim() != 4 || pixels.size(0) != 1 || ids.dim() != 2 || ids.size(0) != 1)
    throw Error("BLIP backbone: expected one image [1,3,S,S] and one prompt [1,T]");
  if (layers.empty()) throw Error("BLIP backbone: no layer requested");
  // encode_image runs without autograd itself: the gradient stops at the attention probs.
  const torch::Tensor image = model_.encode_image(pixels, resize_);
  auto capture = model_.itm_attention_gradients(ids, mask, image, layers);
  std::vector<AttentionGradient> out(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    out[i].itm_logits = cpu_float(capture.itm_logits[0]);
    out[i].probs = cpu_float(capture.probs[i][0]);
    out[i].grads = cpu_float(capture.grads[i][0]);
  }
  return out;
}

std::vector<HeadAttentionGradient> BlipBackbone::attention_and_gradient_batch(const torch::Tensor& pixels,
                                                                              const std::vector<const Prompt*>& prompts,
                                                                              int64_t layer, int64_t head) const {
  check_batch(pixels, prompts);
  if (head < 0 || head >= num_heads()) throw Error("BLIP backbone: head out of range");
  // BERT's [PAD] (id 0); masked, so its value does not matter.
  const auto [ids, mask] = padded_prompts(prompts, 0);
  const torch::Tensor image = model_.encode_image(pixels, resize_);
  const auto capture = model_.itm_attention_gradients(ids, mask, image, {layer});
  return head_of_each_image(capture.itm_logits, capture.probs[0], capture.grads[0], head, prompts);
}

}  // namespace pnpovss::segment
