// GradCAM class maps of every text layer and head from one forward and one backward pass: the
// model captures the cross-attention probabilities and their gradients at all requested layers
// at once (Backbone::attention_and_gradients), and a head is a slice of them. This is what
// makes an exhaustive layer x head search cost about one pass per image.
//
// Only the first Salience DropOut iteration can be shared this way: the later iterations' inputs
// depend on the chosen layer and head. The grid is therefore the paper's first tuning stage,
// "GradCAM masks" (one iteration, no dropout).
//
// Shapes: L layers, H heads, K classes, P grid side, S input side.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "pnpovss/segment/backbone.h"
#include "pnpovss/segment/prompt.h"
#include "pnpovss/settings.h"

namespace pnpovss::tune {

// Class maps [L, H, K, P, P] of `layers` (0-based) x `heads` (0-based) for `pixels` [3, S, S]:
// entry [i, j] equals salience_dropout's first-iteration class maps with layer layers[i] and
// head heads[j] (settings' map options apply, e.g. the last class's sum). Throws
// pnpovss::Error for layers or heads beyond the model.
torch::Tensor gradcam_grid(const segment::Backbone& backbone, const torch::Tensor& pixels,
                           const segment::Prompt& prompt, const MethodSettings& settings,
                           const std::vector<int64_t>& layers, const std::vector<int64_t>& heads);

// Binary masks [K, P, P] of class maps [K, P, P] at `threshold`: min-max normalised >= the
// threshold, none for a constant map (post-processing's rule, docs/method.md §5.1-5.2).
torch::Tensor threshold_masks(const torch::Tensor& maps, double threshold);

}  // namespace pnpovss::tune
