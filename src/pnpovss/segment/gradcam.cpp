#include "pnpovss/segment/gradcam.h"

#include <torch/torch.h>

#include "pnpovss/error.h"

namespace pnpovss::segment {
namespace {

void check_span(const ClassSpan& s, int64_t rows) {
  // Span positions count the first token, which token maps drop.
  if (s.begin < 1 || s.end <= s.begin || s.end - 1 > rows)
    throw Error("class span [" + std::to_string(s.begin) + ", " + std::to_string(s.end) +
                ") lies outside the prompt's " + std::to_string(rows) + " token rows");
}

}  // namespace

torch::Tensor patch_columns(const torch::Tensor& head_map, int64_t grid) {
  if (head_map.dim() != 2 || head_map.size(1) != 1 + grid * grid)
    throw Error("cross-attention map has " + std::to_string(head_map.size(-1)) + " image tokens, expected 1 + " +
                std::to_string(grid) + "x" + std::to_string(grid) + ": the input size does not match the grid");
  return head_map.slice(1, 1).reshape({head_map.size(0), grid, grid});
}

torch::Tensor gradcam_tokens(const torch::Tensor& probs, const torch::Tensor& grads, const torch::Tensor& mask,
                             int64_t grid) {
  const torch::Tensor p = patch_columns(probs, grid);
  const torch::Tensor g = patch_columns(grads, grid);
  const torch::Tensor m = mask.to(p.scalar_type()).view({-1, 1, 1});
  return (p * g.clamp_min(0) * m).slice(0, 1).contiguous();
}

torch::Tensor class_maps(const torch::Tensor& tokens, const std::vector<ClassSpan>& spans, bool last_class_sum) {
  std::vector<torch::Tensor> maps;
  for (size_t k = 0; k < spans.size(); ++k) {
    check_span(spans[k], tokens.size(0));
    const torch::Tensor rows = tokens.slice(0, spans[k].begin - 1, spans[k].end - 1);
    const bool sum = last_class_sum && k + 1 == spans.size();
    maps.push_back(sum ? rows.sum(0) : rows.mean(0));
  }
  return torch::stack(maps);
}

torch::Tensor wordpiece_row_sum(const torch::Tensor& tokens, const std::vector<ClassSpan>& spans) {
  torch::Tensor total = torch::zeros({tokens.size(1), tokens.size(2)}, tokens.options());
  for (const auto& s : spans) {
    check_span(s, tokens.size(0));
    for (int64_t r = s.begin - 1; r < s.end - 1; ++r) total += tokens[r];
  }
  return total;
}

torch::Tensor zero_dropped(const torch::Tensor& maps, const torch::Tensor& dropped) {
  return maps * dropped.eq(0).to(maps.scalar_type());
}

}  // namespace pnpovss::segment
