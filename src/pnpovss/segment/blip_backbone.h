// The Backbone of the method on BLIP ITM (models::BlipItm). The image is re-encoded on every
// call, since Salience DropOut changes its pixels (docs/method.md §4).
#pragma once

#include <string>

#include "pnpovss/models/blip_itm.h"
#include "pnpovss/models/blip_preprocess.h"
#include "pnpovss/segment/backbone.h"
#include "pnpovss/settings.h"

namespace pnpovss::segment {

class BlipBackbone : public Backbone {
 public:
  // `resize`: how the position table follows another input grid (the method: SizeBased).
  BlipBackbone(models::BlipItm model, models::ImagePreprocessConfig preprocess,
               PositionResize resize = PositionResize::SizeBased);
  // Loads the model of `dir` and its preprocessor_config.json (BLIP's defaults when absent);
  // throws pnpovss::Error.
  // `placement`: the device and type the model runs in.
  static BlipBackbone load(const std::string& dir, PositionResize resize = PositionResize::SizeBased,
                           const runtime::Placement& placement = {});

  const models::BlipItm& model() const { return model_; }

  int64_t patch_size() const override;
  int64_t num_text_layers() const override;
  int64_t num_heads() const override;
  int64_t enc_token_id() const override;
  const models::ImagePreprocessConfig& image_preprocess() const override { return preprocess_; }
  std::vector<AttentionGradient> attention_and_gradients(const torch::Tensor& pixels, const torch::Tensor& ids,
                                                         const torch::Tensor& mask,
                                                         const std::vector<int64_t>& layers) const override;
  // A true batch: prompts are padded to the longest with masked [PAD] tokens.
  std::vector<HeadAttentionGradient> attention_and_gradient_batch(const torch::Tensor& pixels,
                                                                  const std::vector<const Prompt*>& prompts,
                                                                  int64_t layer, int64_t head) const override;

 private:
  models::BlipItm model_;
  models::ImagePreprocessConfig preprocess_;
  PositionResize resize_;
};

}  // namespace pnpovss::segment
