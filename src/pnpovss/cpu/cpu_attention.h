// Multi-head scaled dot-product attention on the CPU, fused per head: for a block of 32 query
// rows, the scores q k^T * scale, their softmax and the product with v are computed while the
// block's scores stay in the second-level cache, on all cores, with AVX-512 or AVX2 vectors
// chosen at run time. The [heads, N, N] probabilities never reach memory, each block of keys
// and values read serves 32 query rows, and the small per-head products (head size 64) run
// near the core's peak, where a BLAS call per head does not.
//
// Used by the vision towers when no gradient is needed; the probabilities that the method
// reads (the text cross-attention) are computed with libtorch as before.
#pragma once

#include <cstdint>

namespace pnpovss::cpu {

// Where the elements of one operand live: element c of head h for token t of item b is at
// data[b * item_stride + t * row_stride + h * head_stride + c] (a [B, N, H * dh] tensor, one of
// q, k, v inside a fused [B, N, 3 * H * dh] projection, or a [B, H, N, dh] tensor).
struct AttentionOperand {
  const float* data = nullptr;
  int64_t item_stride = 0;
  int64_t row_stride = 0;
  int64_t head_stride = 0;
};

struct AttentionShape {
  int64_t items = 0;  // batch
  int64_t heads = 0;
  int64_t tokens = 0;  // N: queries and keys alike
  int64_t head_dim = 0;
};

// The vector width (floats) the kernel uses for `head_dim` on this CPU: 16 with AVX-512F, 8
// with AVX2 and FMA, 0 when neither fits (head_dim not a multiple of the width, or an older
// CPU): the caller then uses another implementation.
int attention_vector_width(int64_t head_dim);

// out = softmax(q k^T * scale) v for every item and head, written in the layout of `out`
// (element c of head h for token t of item b at out[b * out_item_stride + t * out_row_stride +
// h * head_dim + c]). `threads` as resolve_threads (0: all hardware threads); `vector_width`
// 0 picks attention_vector_width, 8 or 16 forces one (tests). Throws pnpovss::Error for a
// shape or width the kernel cannot run.
void fused_attention(const AttentionShape& shape, const AttentionOperand& q, const AttentionOperand& k,
                     const AttentionOperand& v, float* out, int64_t out_item_stride, int64_t out_row_stride,
                     float scale, int threads = 0, int vector_width = 0);

}  // namespace pnpovss::cpu
