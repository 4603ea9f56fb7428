#include "pnpovss/tune/clip_scorer.h"

#include <torch/torch.h>

#include <tuple>
#include <utility>

#include "pnpovss/error.h"
#include "pnpovss/image/crop.h"

namespace pnpovss::tune {

ClipScorer::ClipScorer(models::ClipModel model, text::ClipTokenizer tokenizer,
                       models::ClipPreprocessConfig preprocess, double scale)
    : model_(std::make_shared<models::ClipModel>(std::move(model))),
      tokenizer_(std::make_shared<text::ClipTokenizer>(std::move(tokenizer))),
      preprocess_(preprocess),
      scale_(scale) {}

ClipScorer ClipScorer::load(const std::string& dir, double logit_scale) {
  models::ClipModel model = models::ClipModel::load(dir);
  text::ClipTokenizer tokenizer = text::ClipTokenizer::from_dir(dir);
  models::ClipPreprocessConfig pre = models::ClipPreprocessConfig::from_dir(dir);
  const auto size = static_cast<int>(model.config().vision.image_size);
  // CLIP's vision tower takes exactly image_size x image_size pixels.
  const int out_h = pre.do_center_crop ? pre.crop_height : (pre.shortest_edge > 0 ? -1 : pre.resize_height);
  const int out_w = pre.do_center_crop ? pre.crop_width : (pre.shortest_edge > 0 ? -1 : pre.resize_width);
  if (!pre.do_resize || out_h != size || out_w != size)
    throw Error(dir + "/preprocessor_config.json: the processor must resize and crop to the model's " +
                std::to_string(size) + " x " + std::to_string(size) + " input");
  const double scale = logit_scale > 0 ? logit_scale : model.logit_scale();
  return ClipScorer(std::move(model), std::move(tokenizer), pre, scale);
}

torch::Tensor ClipScorer::preprocess(const Image& image) const {
  return models::clip_pixel_values(image, preprocess_);
}

torch::Tensor ClipScorer::empty_image(EmptyImage kind) const {
  const int s = input_size();
  torch::Tensor out = torch::zeros({3, s, s}, torch::kFloat32);
  if (kind == EmptyImage::Mean) return out;
  // A black image through the processor: x = 0, normalised to -mean / std.
  for (int c = 0; c < 3; ++c)
    out[c].fill_(preprocess_.do_normalize ? (0.0f - preprocess_.mean[c]) / preprocess_.std[c] : 0.0f);
  return out;
}

torch::Tensor ClipScorer::masks_to_input(const torch::Tensor& masks, int height, int width) const {
  int w = preprocess_.resize_width, h = preprocess_.resize_height;
  if (preprocess_.shortest_edge > 0) std::tie(w, h) = image::shortest_edge_size(width, height, preprocess_.shortest_edge);
  const int crop_h = preprocess_.do_center_crop ? preprocess_.crop_height : h;
  const int crop_w = preprocess_.do_center_crop ? preprocess_.crop_width : w;
  return resize_and_crop_masks(masks, h, w, crop_h, crop_w);
}

torch::Tensor ClipScorer::text_embeddings(const std::vector<std::string>& names) const {
  const std::lock_guard<std::mutex> hold(text_cache_lock_);
  std::vector<std::string> missing;
  for (const auto& n : names)
    if (!text_cache_.count(n)) missing.push_back(n);
  if (!missing.empty()) {
    const auto enc = tokenizer_->encode_batch(missing);
    const torch::Tensor ids = torch::tensor(enc.ids, torch::kInt64).view({enc.rows, enc.cols});
    const torch::Tensor mask = torch::tensor(enc.mask, torch::kInt64).view({enc.rows, enc.cols});
    const torch::Tensor embeds = model_->text_embeds(ids, mask);
    for (size_t i = 0; i < missing.size(); ++i) text_cache_[missing[i]] = embeds[static_cast<int64_t>(i)].clone();
  }
  std::vector<torch::Tensor> rows;
  for (const auto& n : names) rows.push_back(text_cache_.at(n));
  return torch::stack(rows);
}

torch::Tensor ClipScorer::class_probabilities(const torch::Tensor& pixels,
                                              const std::vector<std::string>& class_names) const {
  if (class_names.empty()) throw Error("CLIP scoring needs at least one class name");
  torch::NoGradGuard no_grad;
  const torch::Tensor images = model_->image_embeds(pixels.to(torch::kFloat32));
  const torch::Tensor texts = text_embeddings(class_names);
  // Cosine similarity (both L2-normalised) times the chosen logit scale, softmax over classes.
  const torch::Tensor logits = torch::matmul(images, texts.t()) * scale_;
  return torch::softmax(logits, 1);
}

}  // namespace pnpovss::tune
