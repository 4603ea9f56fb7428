// Salience DropOut (docs/method.md §4): repeated GradCAM passes, each on the image
// with the most salient patches of the previous passes zeroed, summed into the final class maps.
//
// Shapes: S input side, ps patch size, P grid side, T text tokens, K classes.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "pnpovss/segment/backbone.h"
#include "pnpovss/segment/prompt.h"
#include "pnpovss/settings.h"

namespace pnpovss::segment {

// Everything one iteration computed (names as in the pipeline fixtures).
struct DropoutIteration {
  torch::Tensor dropped_before;         // [P, P] uint8, 1 = dropped by earlier iterations (not in S)
  torch::Tensor pixel_values;           // [3, S, S] this iteration's input
  torch::Tensor itm_logits;             // [2]
  torch::Tensor attn_probs;             // [T, P, P] the chosen head, patch columns
  torch::Tensor attn_cls_column;        // [T] the same head's ViT class-token column (unused)
  torch::Tensor attn_grad;              // [T, P, P]
  torch::Tensor gradcam_tokens;         // [T-1, P, P]
  torch::Tensor gradcam_tokens_zeroed;  // [T-1, P, P] dropped patches set to 0
  torch::Tensor class_maps;             // [K, P, P] from the zeroed tokens
  torch::Tensor salience;               // [P, P] U, 0 at dropped patches
  float eta = 0;                        // median of U over S (the halving rule's split, recorded)
  std::vector<int64_t> new_dropped;     // flat indices i*P+j chosen by this iteration
};

struct DropoutResult {
  std::vector<DropoutIteration> iterations;
  torch::Tensor aggregated_tokens;  // [T-1, P, P] sum of the zeroed tokens (first one twice: official)
  torch::Tensor final_maps;         // [K, P, P] class maps of the aggregate
};

// Runs settings.dropout_iterations passes of `backbone` on `pixels` [3, S, S] (normalised).
// Throws pnpovss::Error when the layer, head or input size do not fit the backbone.
DropoutResult salience_dropout(const Backbone& backbone, const torch::Tensor& pixels, const Prompt& prompt,
                               const MethodSettings& settings);
// The same for several images at once, each with its own prompt and drop set: every pass runs
// the whole batch through the backbone (Backbone::attention_and_gradient_batch). pixels[b]
// [3, S, S] (one S for all) goes with prompts[b]; entry b equals salience_dropout of that pair
// up to float rounding in the model.
std::vector<DropoutResult> salience_dropout_batch(const Backbone& backbone, const std::vector<torch::Tensor>& pixels,
                                                  const std::vector<const Prompt*>& prompts,
                                                  const MethodSettings& settings);

// The paper's rule: the ceil(|S|/2) patches of S (dropped == 0) with the largest U, ties to the
// lower flat index; returned in ascending index order. Empty when S is empty.
std::vector<int64_t> select_halving(const torch::Tensor& salience, const torch::Tensor& dropped);
// The released code's rule: the k largest of U over all patches (dropped ones hold 0), in
// ascending order of (U, index), the order of a stable ascending argsort's last k.
std::vector<int64_t> select_topk(const torch::Tensor& salience, int64_t k);
// numpy.median of U over S (mean of the two middle values for even |S|); 0 when S is empty.
float median_over_remaining(const torch::Tensor& salience, const torch::Tensor& dropped);

// `pixels` [3, S, S] with the ps x ps blocks of dropped patches ([P, P] non-zero) set to 0.
torch::Tensor zero_dropped_pixels(const torch::Tensor& pixels, const torch::Tensor& dropped, int64_t patch_size);

}  // namespace pnpovss::segment
