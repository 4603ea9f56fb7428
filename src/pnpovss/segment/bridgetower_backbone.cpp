#include "pnpovss/segment/bridgetower_backbone.h"

#include <torch/torch.h>

#include <utility>

#include "pnpovss/error.h"
#include "pnpovss/io/mapped_file.h"

namespace pnpovss::segment {

BridgeTowerBackbone::BridgeTowerBackbone(models::BridgeTowerItm model, io::ImagePreprocessConfig preprocess)
    : model_(std::move(model)), preprocess_(preprocess) {}

BridgeTowerBackbone BridgeTowerBackbone::load(const std::string& dir) {
  const std::string config = dir + "/preprocessor_config.json";
  io::ImagePreprocessConfig preprocess;  // CLIP mean and std, as BridgeTowerImageProcessor
  if (io::file_exists(config)) preprocess = io::ImagePreprocessConfig::from_file(config);
  return BridgeTowerBackbone(models::BridgeTowerItm::load(dir), preprocess);
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
    out[i].itm_logits = capture.itm_logits[0];
    out[i].probs = capture.probs[i][0];
    out[i].grads = capture.grads[i][0];
  }
  return out;
}

}  // namespace pnpovss::segment
