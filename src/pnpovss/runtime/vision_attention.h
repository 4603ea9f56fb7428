// Attention helpers shared by the models: the head layout, the fused CPU kernel
// (cpu_attention.h) on libtorch tensors for the vision towers of BLIP, CLIP and BridgeTower, and
// libtorch's fused kernel on a GPU.
#pragma once

#include <torch/types.h>

namespace pnpovss::runtime {

// [B, T, H*dh] -> [B, H, T, dh] (a view)
torch::Tensor split_heads(const torch::Tensor& x, int64_t heads);
// [B, H, T, dh] -> [B, T, H*dh]
torch::Tensor merge_heads(const torch::Tensor& x);

// softmax(q k^T * scale) v for q, k, v [B, H, N, dh] -> [B, N, H * dh] (heads merged), when
// the fused kernel applies: float32 on the CPU, no gradient recorded, the last dimension
// contiguous, and a vector width for dh on this CPU. Returns an undefined tensor otherwise,
// and the caller computes it with libtorch.
torch::Tensor fused_cpu_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  double scale);

// softmax(q k^T / sqrt(dh)) v -> [B, N, H * dh] with libtorch's fused kernel, which never
// writes the [B, H, N, N] probabilities to memory, when q is on a GPU and libtorch is 2.x or
// later (the vision towers do not need the probabilities). Undefined otherwise.
torch::Tensor fused_gpu_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

}  // namespace pnpovss::runtime
