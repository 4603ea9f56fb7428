#include "pnpovss/segment/blip_backbone.h"

#include <torch/torch.h>

#include <utility>

#include "pnpovss/error.h"
#include "pnpovss/io/mapped_file.h"

namespace pnpovss::segment {

BlipBackbone::BlipBackbone(models::BlipItm model, io::ImagePreprocessConfig preprocess, PositionResize resize)
    : model_(std::move(model)),
      preprocess_(preprocess),
      resize_(resize == PositionResize::SizeBased ? models::PositionResize::SizeBased
                                                  : models::PositionResize::HuggingFace) {}

BlipBackbone BlipBackbone::load(const std::string& dir, PositionResize resize) {
  const std::string config = dir + "/preprocessor_config.json";
  io::ImagePreprocessConfig preprocess;
  if (io::file_exists(config)) preprocess = io::ImagePreprocessConfig::from_file(config);
  return BlipBackbone(models::BlipItm::load(dir), preprocess, resize);
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
    out[i].itm_logits = capture.itm_logits[0];
    out[i].probs = capture.probs[i][0];
    out[i].grads = capture.grads[i][0];
  }
  return out;
}

}  // namespace pnpovss::segment
