// The parity protocol of a BridgeTower ITM model fixture (see tests/data/bridgetower_itm). What
// each reference tensor is, and how it is computed, follows from its name, so fixtures of any
// size, depth, head count or image size are checked the same way:
//
//   pixel_values, pixel_mask        BridgeTowerProcessor preprocessing (with the centre crop)
//   pixel_values_default_call, pixel_mask_default_call
//                                   the image processor's own call (no crop, padded batch)
//   input_ids, attention_mask       RoBERTa tokenization of reference.json "prompts" (exact)
//   tokenization records            reference.json "tokenization" (exact ids)
//   itm_logits, text_features, image_features, pooler_output, cross_attn_probs.L, cross_attn_grad.L
//   ... with suffix _swapped        the texts in reverse order
#pragma once

#include <vector>

#include "pnpovss/check/compare.h"
#include "pnpovss/check/fixture.h"
#include "pnpovss/runtime/placement.h"

namespace pnpovss::check {

bool is_bridgetower_itm_fixture(const Fixture& fixture);
// The model's outputs (every tensor but the inputs), computed from the reference inputs.
// On `placement` when given (results are compared in float32 on the CPU).
std::vector<TensorCheck> check_bridgetower_itm_fixture(const Fixture& fixture,
                                                       const runtime::Placement& placement = {});
// Tokenization records, prompts and preprocessing (the model-free part of the protocol).
std::vector<TensorCheck> check_bridgetower_inputs(const Fixture& fixture);

}  // namespace pnpovss::check
