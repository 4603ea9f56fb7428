#include "pnpovss/tune/reward.h"

#include <torch/torch.h>

#include <algorithm>
#include <utility>

#include "pnpovss/error.h"

namespace pnpovss::tune {

std::string to_string(EmptyImage v) { return v == EmptyImage::Black ? "black" : "mean"; }

EmptyImage parse_empty_image(const std::string& name) {
  if (name == "black") return EmptyImage::Black;
  if (name == "mean") return EmptyImage::Mean;
  throw Error("unknown empty image '" + name + "' (valid: black, mean)");
}

torch::Tensor resize_and_crop_masks(const torch::Tensor& masks, int resize_h, int resize_w, int crop_h, int crop_w) {
  if (masks.dim() != 3 || masks.size(0) < 1) throw Error("masks must be [K, h, w] with K >= 1");
  if (resize_h < 1 || resize_w < 1 || crop_h < 1 || crop_w < 1) throw Error("mask geometry needs positive sizes");
  const torch::Tensor resized = torch::upsample_bilinear2d(masks.to(torch::kFloat32).unsqueeze(0),
                                                           {resize_h, resize_w}, /*align_corners=*/false)[0];
  torch::Tensor out = torch::zeros({masks.size(0), crop_h, crop_w}, torch::kFloat32);
  // (first source row or column, first output row or column) of the centre crop along one side.
  auto place = [](int64_t in, int64_t crop) {
    const int64_t diff = crop - in;
    return diff >= 0 ? std::pair<int64_t, int64_t>{0, (diff + 1) / 2} : std::pair<int64_t, int64_t>{-diff / 2, 0};
  };
  const auto [top_in, top_out] = place(resize_h, crop_h);
  const auto [left_in, left_out] = place(resize_w, crop_w);
  const int64_t h = std::min<int64_t>(resize_h - top_in, crop_h - top_out);
  const int64_t w = std::min<int64_t>(resize_w - left_in, crop_w - left_out);
  out.narrow(1, top_out, h).narrow(2, left_out, w).copy_(resized.narrow(1, top_in, h).narrow(2, left_in, w));
  return out;
}

ScoredImage prepare_scored_image(const MaskScorer& scorer, const Image& image,
                                 const std::vector<std::string>& classes, EmptyImage empty) {
  if (classes.empty()) throw Error("an image to score needs at least one class name");
  ScoredImage s;
  s.height = image.height;
  s.width = image.width;
  s.classes = classes;
  s.pixels = scorer.preprocess(image);
  s.empty_probs = scorer.class_probabilities(scorer.empty_image(empty).unsqueeze(0), classes)[0].contiguous();
  s.empty_is_zero = scorer.empty_image(empty).abs().max().item<float>() == 0.0f;
  return s;
}

std::vector<bool> mask_wins(const MaskScorer& scorer, const ScoredImage& image, const std::vector<int64_t>& classes,
                            const torch::Tensor& masks, int64_t batch) {
  const auto k = static_cast<int64_t>(image.classes.size());
  if (masks.dim() != 3 || masks.size(0) != static_cast<int64_t>(classes.size()))
    throw Error("got " + std::to_string(masks.dim() == 3 ? masks.size(0) : -1) + " masks for " +
                std::to_string(classes.size()) + " class indices");
  for (int64_t c : classes)
    if (c < 0 || c >= k) throw Error("class index " + std::to_string(c) + " is outside the image's " + std::to_string(k));
  const torch::Tensor m = masks.to(torch::kFloat32);
  std::vector<bool> wins(classes.size(), false);
  // Only the masks that can win are scored (an all-zero mask ties an all-zero empty image).
  std::vector<int64_t> scored;
  for (int64_t i = 0; i < m.size(0); ++i)
    if (!image.empty_is_zero || m[i].abs().max().item<float>() > 0.0f) scored.push_back(i);
  const torch::Tensor empty = image.empty_probs.to(torch::kFloat32).contiguous();
  for (size_t first = 0; first < scored.size(); first += static_cast<size_t>(std::max<int64_t>(batch, 1))) {
    const size_t last = std::min(scored.size(), first + static_cast<size_t>(std::max<int64_t>(batch, 1)));
    const std::vector<int64_t> part(scored.begin() + static_cast<std::ptrdiff_t>(first),
                                    scored.begin() + static_cast<std::ptrdiff_t>(last));
    const torch::Tensor index = torch::tensor(part, torch::kInt64);
    const torch::Tensor input_masks = scorer.masks_to_input(m.index_select(0, index), image.height, image.width);
    const torch::Tensor pixels = image.pixels.unsqueeze(0) * input_masks.unsqueeze(1);
    const torch::Tensor probs = scorer.class_probabilities(pixels, image.classes).to(torch::kFloat32).contiguous();
    if (probs.dim() != 2 || probs.size(0) != static_cast<int64_t>(part.size()) || probs.size(1) != k)
      throw Error("the scorer returned probabilities of the wrong shape");
    for (size_t j = 0; j < part.size(); ++j) {
      const int64_t c = classes[static_cast<size_t>(part[j])];
      wins[static_cast<size_t>(part[j])] = probs[static_cast<int64_t>(j)][c].item<float>() > empty[c].item<float>();
    }
  }
  return wins;
}

std::vector<bool> class_wins(const MaskScorer& scorer, const ScoredImage& image, const torch::Tensor& masks) {
  const auto k = static_cast<int64_t>(image.classes.size());
  if (masks.dim() != 3 || masks.size(0) != k)
    throw Error("got masks for " + std::to_string(masks.dim() == 3 ? masks.size(0) : -1) + " classes, the image has " +
                std::to_string(k));
  std::vector<int64_t> classes;
  for (int64_t c = 0; c < k; ++c) classes.push_back(c);
  return mask_wins(scorer, image, classes, masks);
}

}  // namespace pnpovss::tune
