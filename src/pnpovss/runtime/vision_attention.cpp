#include "pnpovss/runtime/vision_attention.h"

#include <torch/torch.h>
#include <torch/version.h>

#include "pnpovss/cpu/cpu_attention.h"

namespace pnpovss::runtime {

torch::Tensor split_heads(const torch::Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, x.size(2) / heads}).permute({0, 2, 1, 3});
}

torch::Tensor merge_heads(const torch::Tensor& x) {
  return x.permute({0, 2, 1, 3}).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

torch::Tensor fused_cpu_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  double scale) {
  // The kernel writes into a buffer, which autograd cannot follow.
  if (torch::GradMode::is_enabled()) return {};
  for (const torch::Tensor* t : {&q, &k, &v})
    if (t->dim() != 4 || !t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || t->stride(3) != 1)
      return {};
  const int64_t B = q.size(0), H = q.size(1), N = q.size(2), dh = q.size(3);
  if (k.sizes() != q.sizes() || v.sizes() != q.sizes() || cpu::attention_vector_width(dh) == 0 || B * H * N == 0) return {};
  torch::Tensor context = torch::empty({B, N, H * dh}, q.options());
  auto operand = [](const torch::Tensor& t) {
    return cpu::AttentionOperand{t.data_ptr<float>(), t.stride(0), t.stride(2), t.stride(1)};
  };
  cpu::fused_attention(cpu::AttentionShape{B, H, N, dh}, operand(q), operand(k), operand(v), context.data_ptr<float>(),
                  N * H * dh, H * dh, static_cast<float>(scale));
  return context;
}

torch::Tensor fused_gpu_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
#if TORCH_VERSION_MAJOR >= 2
  if (q.device().is_cuda()) return merge_heads(at::scaled_dot_product_attention(q, k, v));
#else
  (void)q;
  (void)k;
  (void)v;
#endif
  return {};
}

}  // namespace pnpovss::runtime
