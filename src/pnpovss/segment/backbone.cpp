#include "pnpovss/segment/backbone.h"

#include <torch/torch.h>

#include <algorithm>

#include "pnpovss/runtime/placement.h"

namespace pnpovss::segment {

using runtime::cpu_float;

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

PaddedPrompts padded_prompts(const std::vector<const Prompt*>& prompts, int64_t pad_id) {
  size_t longest = 0;
  for (const Prompt* p : prompts) longest = std::max(longest, p->input_ids.size());
  const auto B = static_cast<int64_t>(prompts.size()), T = static_cast<int64_t>(longest);
  PaddedPrompts out{torch::full({B, T}, pad_id, torch::kInt64), torch::zeros({B, T}, torch::kInt64)};
  auto iv = out.ids.accessor<int64_t, 2>();
  auto mv = out.mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b)
    for (size_t t = 0; t < prompts[b]->input_ids.size(); ++t) {
      iv[b][static_cast<int64_t>(t)] = prompts[b]->input_ids[t];
      mv[b][static_cast<int64_t>(t)] = prompts[b]->attention_mask[t];
    }
  return out;
}

std::vector<HeadAttentionGradient> head_of_each_image(const torch::Tensor& logits, const torch::Tensor& probs,
                                                      const torch::Tensor& grads, int64_t head,
                                                      const std::vector<const Prompt*>& prompts) {
  const torch::Tensor all_logits = cpu_float(logits);
  const torch::Tensor head_probs = cpu_float(probs.select(1, head));
  const torch::Tensor head_grads = cpu_float(grads.select(1, head));
  std::vector<HeadAttentionGradient> out;
  for (size_t b = 0; b < prompts.size(); ++b) {
    const auto i = static_cast<int64_t>(b), T = static_cast<int64_t>(prompts[b]->input_ids.size());
    out.push_back({all_logits[i], head_probs[i].narrow(0, 0, T), head_grads[i].narrow(0, 0, T)});
  }
  return out;
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
