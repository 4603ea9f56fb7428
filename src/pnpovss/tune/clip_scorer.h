// The MaskScorer of the paper: CLIP (ViT-L/14 at 336 px in the paper) comparing an image with
// the raw class names. f(x, k) = cosine(image embedding, text embedding of name k) times the
// logit scale: CLIP's own exp(logit_scale) (the paper), or a fixed value (the released code
// divides by 0.01, i.e. 100; trained CLIP checkpoints hold ln 100 anyway).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pnpovss/models/clip_model.h"
#include "pnpovss/models/clip_preprocess.h"
#include "pnpovss/text/clip_tokenizer.h"
#include "pnpovss/tune/reward.h"

namespace pnpovss::tune {

class ClipScorer : public MaskScorer {
 public:
  // Loads the CLIP checkpoint in `dir` (Hugging Face layout: config.json, weights,
  // vocab.json, merges.txt, preprocessor_config.json). `logit_scale` > 0 replaces the
  // checkpoint's exp(logit_scale). Throws pnpovss::Error.
  static ClipScorer load(const std::string& dir, double logit_scale = 0.0);

  int input_size() const { return preprocess_.crop_height; }
  double logit_scale() const { return scale_; }

  torch::Tensor preprocess(const Image& image) const override;
  torch::Tensor empty_image(EmptyImage kind) const override;
  torch::Tensor masks_to_input(const torch::Tensor& masks, int height, int width) const override;
  torch::Tensor class_probabilities(const torch::Tensor& pixels,
                                    const std::vector<std::string>& class_names) const override;

 private:
  ClipScorer(models::ClipModel model, text::ClipTokenizer tokenizer, models::ClipPreprocessConfig preprocess,
             double scale);
  // Text embeddings [K, D] of the names, computed once per name.
  torch::Tensor text_embeddings(const std::vector<std::string>& names) const;

  std::shared_ptr<models::ClipModel> model_;
  std::shared_ptr<text::ClipTokenizer> tokenizer_;
  models::ClipPreprocessConfig preprocess_;
  double scale_ = 100.0;
  mutable std::mutex text_cache_lock_;  // images are scored side by side
  mutable std::map<std::string, torch::Tensor> text_cache_;
};

}  // namespace pnpovss::tune
