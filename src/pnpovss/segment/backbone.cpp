#include "pnpovss/segment/backbone.h"

#include <torch/torch.h>

namespace pnpovss::segment {

torch::Tensor prompt_row(const std::vector<int64_t>& values) {
  return torch::tensor(values, torch::kInt64).view({1, static_cast<int64_t>(values.size())});
}

void check_batch(const torch::Tensor& pixels, const std::vector<const Prompt*>& prompts) {
  if (pixels.dim() != 4 || pixels.size(1) != 3 || pixels.size(0) != static_cast<int64_t>(prompts.size()))
    throw Error("a batch needs pixels [B, 3, S, S] and one prompt per image");
  for (const Prompt* p : prompts)
    if (p == nullptr || p->input_ids.empty() || p->input_ids.size() != p->attention_mask.size())
      throw Error("every image of a batch needs a prompt with one mask value per token");
}

std::vector<HeadAttentionGradient> Backbone::attention_and_gradient_batch(const torch::Tensor& pixels,
                                                                          const std::vector<const Prompt*>& prompts,
                                                                          int64_t layer, int64_t head) const {
  check_batch(pixels, prompts);
  std::vector<HeadAttentionGradient> out;
  for (size_t b = 0; b < prompts.size(); ++b) {
    const AttentionGradient ag =
        attention_and_gradient(pixels.narrow(0, static_cast<int64_t>(b), 1), prompt_row(prompts[b]->input_ids),
                               prompt_row(prompts[b]->attention_mask), layer);
    out.push_back({ag.itm_logits, ag.probs[head], ag.grads[head]});
  }
  return out;
}

}  // namespace pnpovss::segment
