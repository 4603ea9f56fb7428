// The Backbone of the method on BridgeTower ITM (models::BridgeTowerItm). Its "text layers" are
// the cross-modal text layers (1..6 for the published checkpoints, 1-based in the CLI), whose
// cross-attention from text to image tokens gives the maps. The whole model, both unimodal
// towers included, runs on every call, since Salience DropOut changes the image's pixels.
//
// BridgeTower has no [ENC] token: enc_token_id() is <s>, so both first-token settings feed the
// prompt as the tokenizer writes it.
#pragma once

#include <string>

#include "pnpovss/models/blip_preprocess.h"
#include "pnpovss/models/bridgetower_itm.h"
#include "pnpovss/runtime/placement.h"
#include "pnpovss/segment/backbone.h"

namespace pnpovss::segment {

class BridgeTowerBackbone : public Backbone {
 public:
  BridgeTowerBackbone(models::BridgeTowerItm model, models::ImagePreprocessConfig preprocess);
  // Loads the model of `dir` and the rescale and normalisation constants of its
  // preprocessor_config.json (CLIP's when absent); throws pnpovss::Error. The position table
  // follows another input grid by bicubic resizing to the target size (see
  // BridgeTowerItm::positions_for_grid) whatever MethodSettings::input_position_resize says:
  // transformers v4.43.4 has no interpolation of its own for BridgeTower. The model runs on
  // `placement`'s device and type.
  static BridgeTowerBackbone load(const std::string& dir, const runtime::Placement& placement = {});

  const models::BridgeTowerItm& model() const { return model_; }

  int64_t patch_size() const override;
  int64_t num_text_layers() const override;
  int64_t num_heads() const override;
  int64_t enc_token_id() const override;
  const models::ImagePreprocessConfig& image_preprocess() const override { return preprocess_; }
  std::vector<AttentionGradient> attention_and_gradients(const torch::Tensor& pixels, const torch::Tensor& ids,
                                                         const torch::Tensor& mask,
                                                         const std::vector<int64_t>& layers) const override;
  // One forward and one backward for the whole batch; the prompts are padded with <pad> and
  // masked, and RoBERTa's positions skip the padding, so each image's result is its own.
  std::vector<HeadAttentionGradient> attention_and_gradient_batch(const torch::Tensor& pixels,
                                                                  const std::vector<const Prompt*>& prompts,
                                                                  int64_t layer, int64_t head) const override;

 private:
  models::BridgeTowerItm model_;
  models::ImagePreprocessConfig preprocess_;
};

}  // namespace pnpovss::segment
