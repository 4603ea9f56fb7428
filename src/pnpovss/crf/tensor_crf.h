// The Dense CRF of densecrf.h written with tensor operations (tensor_lattice.h), so that it runs
// on the device the scores are on: a GPU post-processes there instead of waiting for the CPU.
// Every step performs the exact CRF's float operations: the unary in double with its sum in
// label order, the mean-field softmax with the reference's packet exponential (Eigen's
// polynomial, written out as tensor operations), its exponential of the last labels rounded
// from double, and its sums in the reference's order. On the CPU the result therefore equals
// the exact CRF's (tests compare them); on a GPU the splat adds atomically in varying order,
// so Q differs by float roundings and labels can change at near-ties (docs/performance.md).
#pragma once

#include <torch/types.h>

#include "pnpovss/densecrf_params.h"

namespace pnpovss::crf {

struct TensorCrfResult {
  torch::Tensor q;       // [labels, H, W] float32 marginals (undefined unless asked for)
  torch::Tensor labels;  // [H, W] int64, argmax of Q (ties: lowest label)
};

// The CRF on the unary of unary_from_probabilities(scores), as dense_crf_labels_from_scores.
//   rgb:    [H, W, 3] uint8 (any device; moved to the scores' device)
//   scores: [labels, H, W] float32 on the device to compute on
// `params.threads` and `params.vector_width` do not apply. Throws pnpovss::Error on bad shapes,
// non-finite scores or bad parameters.
TensorCrfResult tensor_crf_from_scores(const torch::Tensor& rgb, const torch::Tensor& scores,
                                       const DenseCrfParams& params, bool marginals = false);

// The same from a unary [labels, H, W] float32 (-log p), as dense_crf.
TensorCrfResult tensor_crf(const torch::Tensor& rgb, const torch::Tensor& unary, const DenseCrfParams& params,
                           bool marginals = true);

// The kernels' features per pixel, already divided by their standard deviations: (x, y) / sxy
// for the Gaussian kernel, then the colours / srgb for the bilateral one.
struct CrfFeatures {
  torch::Tensor gaussian;   // [pixels, 2] float32
  torch::Tensor bilateral;  // [pixels, 5] float32
};

// The features of the pixels of rgb [H, W, 3] uint8, in row-major order, on its device.
CrfFeatures image_crf_features(const torch::Tensor& rgb, const DenseCrfParams& params);

// Q [pixels, labels] after params.iterations mean-field updates from -U [pixels, labels], the
// pixels in any order (the order only decides the order of each vertex's splat additions).
torch::Tensor tensor_mean_field(const torch::Tensor& neg_unary, const CrfFeatures& features,
                                const DenseCrfParams& params);

// The unary of unary_from_probabilities for scores [labels, pixels] float32: [labels, pixels].
torch::Tensor tensor_unary_from_scores(const torch::Tensor& scores);

// Per row of logits [pixels, labels], the reference's softmax (see the file comment).
torch::Tensor reference_softmax_rows(const torch::Tensor& logits);

}  // namespace pnpovss::crf
