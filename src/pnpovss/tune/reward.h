// The label-free reward of PnP-OVSS (docs/method.md §8): a class's mask "wins"
// when the image cut out by the mask is more recognisable as that class than an empty image,
// judged by an image-text scorer (CLIP) among the image's own class names:
//
//   reward(I) = sum over k in K(I) of [ Pr(m_k * I, k) > Pr(0, k) ],
//   Pr(x, k)  = softmax over k' in K(I) of f(x, k').
//
// m_k * I is the scorer's preprocessed image times the mask brought to the scorer's input (the
// mask goes through the same resize and centre crop as the image, so mask and pixels line up).
// The empty image is black (the paper) or the mean colour, i.e. zeros after normalisation (the
// released code). A tie is not a win.
//
// Shapes: K classes of one image, h x w a mask's grid (the model's P x P patch grid or the
// image's H x W pixels; either covers the whole image), S the scorer's square input.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pnpovss/image/codec.h"
#include "pnpovss/tune/trial.h"

namespace pnpovss::tune {

enum class EmptyImage { Black, Mean };
std::string to_string(EmptyImage v);
EmptyImage parse_empty_image(const std::string& name);  // black | mean

// Scores images against class names. The CLIP implementation is ClipScorer; tests use
// hand-made scorers whose outputs are known.
class MaskScorer {
 public:
  virtual ~MaskScorer() = default;

  // `image` as the scorer's input [3, S, S] (normalised).
  virtual torch::Tensor preprocess(const Image& image) const = 0;
  // The empty image [3, S, S] a masked image has to beat.
  virtual torch::Tensor empty_image(EmptyImage kind) const = 0;
  // Masks [K, h, w] (values in [0, 1]) over an image of `height` x `width` pixels, brought to
  // the scorer's input geometry: [K, S, S].
  virtual torch::Tensor masks_to_input(const torch::Tensor& masks, int height, int width) const = 0;
  // Per image of `pixels` [B, 3, S, S], the softmax over `class_names` of its scores: [B, K].
  virtual torch::Tensor class_probabilities(const torch::Tensor& pixels,
                                            const std::vector<std::string>& class_names) const = 0;
};

// Masks [K, h, w] (each covering a whole image) through a processor's geometry: bilinear
// (align_corners=false) to resize_h x resize_w, then the centre crop_h x crop_w (top =
// (resize_h - crop_h) / 2; a side shorter than the crop is zero-padded, ceil(diff / 2) before).
// Returns [K, crop_h, crop_w].
torch::Tensor resize_and_crop_masks(const torch::Tensor& masks, int resize_h, int resize_w, int crop_h, int crop_w);

// One image prepared for scoring: its scorer input and Pr(0, k) of the empty image.
struct ScoredImage {
  int height = 0, width = 0;
  std::vector<std::string> classes;  // K(I), in the order of the prompt
  torch::Tensor pixels;              // [3, S, S]
  torch::Tensor empty_probs;         // [K] Pr(0, k)
  bool empty_is_zero = false;        // the empty image is all zeros (EmptyImage::Mean)
};

ScoredImage prepare_scored_image(const MaskScorer& scorer, const Image& image,
                                 const std::vector<std::string>& classes, EmptyImage empty);

// Whether each mask wins for its class: masks [M, h, w], classes[m] the index (into
// image.classes) of the class mask m is scored for. A class's verdict depends on its own mask
// only, so masks of several settings can share a batch. Scored in batches of `batch` images.
// With EmptyImage::Mean an all-zero mask is a loss without scoring (see class_wins).
std::vector<bool> mask_wins(const MaskScorer& scorer, const ScoredImage& image, const std::vector<int64_t>& classes,
                            const torch::Tensor& masks, int64_t batch = 32);

// Per class, whether its mask wins: masks [K, h, w], one per class of `image` in its order.
// With EmptyImage::Mean an all-zero mask is a loss without scoring: its masked image is the
// empty image itself, a tie (scoring it could turn rounding noise into a win).
std::vector<bool> class_wins(const MaskScorer& scorer, const ScoredImage& image, const torch::Tensor& masks);

}  // namespace pnpovss::tune
