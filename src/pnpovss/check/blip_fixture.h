// The parity protocol of a BLIP ITM model fixture (see tests/data/blip_itm): which reference
// tensor is computed how is derived from its name, so fixtures of any size, depth, head
// count or image size are checked the same way.
//
//   pixel_values[_large]           preprocessing of the fixture's images (preprocessing_atol)
//   input_ids, attention_mask      tokenization of reference.json "prompts" (exact)
//   input_ids_enc                  the same with [ENC] as first token
//   vision_last_hidden_state, vision_pooler_output
//   itm_logits, text_last_hidden_state, cross_attn_probs.L, cross_attn_grad.L, itc_score
//   ... with suffix _enc (first token [ENC]), _swapped (texts in reverse order),
//   ... with prefix large_ (pixel_values_large, first texts, position table interpolated)
#pragma once

#include <string>
#include <vector>

#include "pnpovss/check/compare.h"
#include "pnpovss/check/fixture.h"
#include "pnpovss/runtime/placement.h"

namespace pnpovss::check {

bool is_blip_itm_fixture(const Fixture& fixture);
// The model's outputs (every tensor but the inputs), computed from the reference inputs.
// `placement`: where the model runs (tolerances as recorded, so reduced precision fails).
std::vector<TensorCheck> check_blip_itm_fixture(const Fixture& fixture, const runtime::Placement& placement = {});

// Tokenization records, prompts and preprocessing (the model-free part of the protocol).
std::vector<TensorCheck> check_blip_inputs(const Fixture& fixture);

}  // namespace pnpovss::check
