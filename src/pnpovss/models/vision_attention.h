// The fused CPU attention kernel (cpu_attention.h) on libtorch tensors, for the vision towers
// of BLIP, CLIP and BridgeTower.
#pragma once

#include <torch/types.h>

namespace pnpovss::models {

// softmax(q k^T * scale) v for q, k, v [B, H, N, dh] -> [B, N, H * dh] (heads merged), when
// the fused kernel applies: float32 on the CPU, no gradient recorded, the last dimension
// contiguous, and a vector width for dh on this CPU. Returns an undefined tensor otherwise,
// and the caller computes it with libtorch.
torch::Tensor fused_cpu_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  double scale);

}  // namespace pnpovss::models
