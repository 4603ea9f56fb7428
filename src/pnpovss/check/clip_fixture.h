// The parity protocol of a CLIP model fixture (see tests/data/clip). Which reference tensor is
// computed how is derived from its name and the config, so fixtures of any size are checked
// the same way:
//
//   pixel_values                     preprocessing of reference.json files.images (preprocessing_atol)
//   input_ids, attention_mask        tokenization of reference.json "class_prompts", padded to the
//                                    reference width (padding='max_length'; exact)
//   tokenization_with_ftfy           every record of reference.json "tokenization_with_ftfy" (the
//                                    reference with ftfy installed, the cleaning the tokenizer
//                                    claims; ids and tokens, exact)
//   tokenization_without_ftfy        only when those are absent: every record of "tokenization"
//                                    (the reference without ftfy) with the tokenizer's
//                                    BasicTokenizer cleaning (ids and tokens, exact)
//   vision_last_hidden_state, vision_pooler_output, text_last_hidden_state, text_pooler_output,
//   image_embeds, text_embeds, logits_per_image, logits_per_text
//                                    the model on the reference inputs
//   ... with suffix _nomask          the same without attention_mask (causal mask only)
//
// The class prompts are tokenized with the default (ftfy) cleaning; see text/clip_tokenizer.h.
#pragma once

#include <vector>

#include "pnpovss/check/compare.h"
#include "pnpovss/check/fixture.h"

namespace pnpovss::check {

bool is_clip_fixture(const Fixture& fixture);
// Tokenization records, prompts and preprocessing (the model-free part of the protocol).
std::vector<TensorCheck> check_clip_inputs(const Fixture& fixture);
// The model's outputs (every tensor but the inputs), computed from the reference inputs.
std::vector<TensorCheck> check_clip_fixture(const Fixture& fixture);

}  // namespace pnpovss::check
