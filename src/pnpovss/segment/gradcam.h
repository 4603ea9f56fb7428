// GradCAM token maps, class maps and the class-agnostic salience U (docs/method.md
// §3-4), from one layer's cross-attention probabilities and their gradients.
//
// Shapes: H heads, T text tokens, P grid side, N = 1 + P*P image tokens (column 0 = the ViT
// class token, then patches row-major: patch (i, j) is column 1 + i*P + j), K classes.
// Token maps drop text row 0 ([ENC]/[CLS]): token row r is input position r + 1.
#pragma once

#include <torch/types.h>

#include <vector>

#include "pnpovss/segment/prompt.h"

namespace pnpovss::segment {

// [T, N] -> [T, P, P]: the patch columns of one head's map, row-major.
torch::Tensor patch_columns(const torch::Tensor& head_map, int64_t grid);

// probs * relu(grads) * text mask on the patch columns, text row 0 dropped.
//   probs, grads [T, N] (one head), mask [T] -> [T-1, P, P]
torch::Tensor gradcam_tokens(const torch::Tensor& probs, const torch::Tensor& grads, const torch::Tensor& mask,
                             int64_t grid);

// Per class, the mean of its wordpiece rows of `tokens` [T-1, P, P] -> [K, P, P]. With
// `last_class_sum` the last class's rows are summed (the released code's quirk).
torch::Tensor class_maps(const torch::Tensor& tokens, const std::vector<ClassSpan>& spans, bool last_class_sum);

// The sum of every class wordpiece row of `tokens` (the released code's U): [P, P].
torch::Tensor wordpiece_row_sum(const torch::Tensor& tokens, const std::vector<ClassSpan>& spans);

// `maps` [..., P, P] with the patches where `dropped` [P, P] is non-zero set to 0.
torch::Tensor zero_dropped(const torch::Tensor& maps, const torch::Tensor& dropped);

}  // namespace pnpovss::segment
