#include "pnpovss/cpu/cpu_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "pnpovss/cpu/parallel.h"
#include "pnpovss/cpu/simd.h"
#include "pnpovss/error.h"

namespace pnpovss::cpu {
namespace {

// Everything below is inlined into the entry points compiled for AVX-512 (W = 16) or AVX2
// with FMA (W = 8), so no vector crosses a call.
using namespace ::pnpovss::cpu::simd;  // the kernels below are written in simd.h's vocabulary

// Register blocking of the products: R rows of the left operand times J vectors of columns,
// R * J accumulators (24 of AVX-512's 32 registers, 12 of AVX2's 16).
template <int W>
struct Blocking;
template <>
struct Blocking<16> {
  static constexpr int R = 6, J = 4;
};
template <>
struct Blocking<8> {
  static constexpr int R = 6, J = 2;
};

// c[r, 0 : J * W] = alpha * sum_k a[r, k] * b[k, 0 : J * W] for the first `rows` (<= R) rows:
// a is read one element at a time (broadcast), b a row of J vectors at a time. Rows past
// `rows` repeat row 0 and are not stored.
template <int W, int R, int J>
PNPOVSS_INLINE void product_block(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t depth,
                                  float* c, int64_t ldc, int rows, float alpha) {
  using F = typename Vec<W>::F;
  F acc[R][J];
  PNPOVSS_UNROLL
  for (int r = 0; r < R; ++r)
    PNPOVSS_UNROLL
    for (int j = 0; j < J; ++j) acc[r][j] = splat_value<W>(0.0f);
  for (int64_t k = 0; k < depth; ++k) {
    F bk[J];
    PNPOVSS_UNROLL
    for (int j = 0; j < J; ++j) bk[j] = load<W>(b + k * ldb + j * W);
    PNPOVSS_UNROLL
    for (int r = 0; r < R; ++r) {
      const F ar = splat_value<W>(a[(r < rows ? r : 0) * lda + k]);
      PNPOVSS_UNROLL
      for (int j = 0; j < J; ++j) acc[r][j] += ar * bk[j];
    }
  }
  PNPOVSS_UNROLL
  for (int r = 0; r < R; ++r)
    if (r < rows)
      PNPOVSS_UNROLL
      for (int j = 0; j < J; ++j) store<W>(c + r * ldc + j * W, acc[r][j] * alpha);
}

// The same over `cols` columns (a multiple of W): blocks of J vectors, then single vectors.
template <int W>
PNPOVSS_INLINE void product(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t depth, float* c,
                            int64_t ldc, int rows, int64_t cols, float alpha) {
  constexpr int R = Blocking<W>::R, J = Blocking<W>::J;
  int64_t col = 0;
  for (; col + J * W <= cols; col += J * W)
    product_block<W, R, J>(a, lda, b + col, ldb, depth, c + col, ldc, rows, alpha);
  for (; col < cols; col += W) product_block<W, R, 1>(a, lda, b + col, ldb, depth, c + col, ldc, rows, alpha);
}

// Row `s` (n scores) becomes exp(s - max s); returns 1 / their sum. Vectors over whole groups
// of W, then the scalar tail.
template <int W>
PNPOVSS_INLINE float exp_row(float* s, int64_t n) {
  using F = typename Vec<W>::F;
  F m = splat_value<W>(-std::numeric_limits<float>::infinity());
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    const F x = load<W>(s + j);
    m = m > x ? m : x;
  }
  float top = -std::numeric_limits<float>::infinity();
  for (int l = 0; l < W; ++l) top = std::max(top, m[l]);
  for (int64_t t = j; t < n; ++t) top = std::max(top, s[t]);

  F sum = splat_value<W>(0.0f);
  for (j = 0; j + W <= n; j += W) {
    const F e = packet_exp<W>(load<W>(s + j) - top);
    store<W>(s + j, e);
    sum += e;
  }
  float total = 0.0f;
  for (int l = 0; l < W; ++l) total += sum[l];
  for (; j < n; ++j) {
    s[j] = std::exp(s[j] - top);
    total += s[j];
  }
  return 1.0f / total;
}

// Per-thread scratch: one head's keys transposed (head_dim rows of `padded` floats, zero past
// the tokens) and a block of R score rows.
struct Workspace {
  Workspace(int64_t head_dim, int64_t padded, int rows)
      : keys_t(static_cast<size_t>(head_dim * padded), 0.0f), scores(static_cast<size_t>(rows * padded)) {}
  std::vector<float> keys_t, scores;
};

struct Job {
  AttentionShape shape;
  AttentionOperand q, k, v;
  float* out;
  int64_t out_item_stride, out_row_stride;
  float scale;
};

// Heads [first, last) of the flattened (item, head) pairs.
template <int W>
PNPOVSS_INLINE void attention_heads(const Job& job, int64_t first, int64_t last) {
  constexpr int R = Blocking<W>::R;
  const int64_t n = job.shape.tokens, d = job.shape.head_dim, heads = job.shape.heads;
  const int64_t padded = (n + W - 1) / W * W;
  Workspace ws(d, padded, R);
  float* kt = ws.keys_t.data();
  float* s = ws.scores.data();
  for (int64_t pair = first; pair < last; ++pair) {
    const int64_t b = pair / heads, h = pair % heads;
    const float* q = job.q.data + b * job.q.item_stride + h * job.q.head_stride;
    const float* k = job.k.data + b * job.k.item_stride + h * job.k.head_stride;
    const float* v = job.v.data + b * job.v.item_stride + h * job.v.head_stride;
    float* out = job.out + b * job.out_item_stride + h * d;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < d; ++c) kt[c * padded + t] = k[t * job.k.row_stride + c];
    for (int64_t row = 0; row < n; row += R) {
      const int rows = static_cast<int>(std::min<int64_t>(R, n - row));
      product<W>(q + row * job.q.row_stride, job.q.row_stride, kt, padded, d, s, padded, rows, padded, job.scale);
      float inverse_sum[R];
      for (int r = 0; r < rows; ++r) inverse_sum[r] = exp_row<W>(s + r * padded, n);
      float* o = out + row * job.out_row_stride;
      product<W>(s, padded, v, job.v.row_stride, n, o, job.out_row_stride, rows, d, 1.0f);
      for (int r = 0; r < rows; ++r)
        for (int64_t c = 0; c < d; ++c) o[r * job.out_row_stride + c] *= inverse_sum[r];
    }
  }
}

__attribute__((target("avx512f"))) void attention_heads_avx512(const Job& job, int64_t first, int64_t last) {
  attention_heads<16>(job, first, last);
}

__attribute__((target("avx2,fma"))) void attention_heads_avx2(const Job& job, int64_t first, int64_t last) {
  attention_heads<8>(job, first, last);
}

}  // namespace

int attention_vector_width(int64_t head_dim) {
  if (head_dim <= 0) return 0;
  if (cpu_has_avx512() && head_dim % 16 == 0) return 16;
  if (cpu_has_avx2_fma() && head_dim % 8 == 0) return 8;
  return 0;
}

void fused_attention(const AttentionShape& shape, const AttentionOperand& q, const AttentionOperand& k,
                     const AttentionOperand& v, float* out, int64_t out_item_stride, int64_t out_row_stride,
                     float scale, int threads, int vector_width) {
  if (shape.items <= 0 || shape.heads <= 0 || shape.tokens <= 0 || shape.head_dim <= 0)
    throw Error("fused attention: empty shape (items " + std::to_string(shape.items) + ", heads " +
                std::to_string(shape.heads) + ", tokens " + std::to_string(shape.tokens) + ", head size " +
                std::to_string(shape.head_dim) + ")");
  const int width = vector_width == 0 ? attention_vector_width(shape.head_dim) : vector_width;
  if (width != 8 && width != 16)
    throw Error("fused attention: no vector width for head size " + std::to_string(shape.head_dim) + " on this CPU");
  if (shape.head_dim % width != 0)
    throw Error("fused attention: head size " + std::to_string(shape.head_dim) + " is not a multiple of " +
                std::to_string(width));
  if ((width == 16 && !cpu_has_avx512()) || (width == 8 && !cpu_has_avx2_fma()))
    throw Error("fused attention: vector width " + std::to_string(width) + " needs a CPU with " +
                (width == 16 ? "AVX-512" : "AVX2 and FMA"));
  const Job job{shape, q, k, v, out, out_item_stride, out_row_stride, scale};
  parallel_ranges(
      shape.items * shape.heads, resolve_threads(threads),
      [&](int64_t first, int64_t last) {
        if (width == 16)
          attention_heads_avx512(job, first, last);
        else
          attention_heads_avx2(job, first, last);
      },
      /*min_per_thread=*/1);
}

}  // namespace pnpovss::cpu
