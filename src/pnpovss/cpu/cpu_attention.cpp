#include "pnpovss/cpu/cpu_attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "pnpovss/cpu/large_blocks.h"
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

// c[r, 0 : J * W] = alpha * (c0[r] + sum_k a[r, k] * b[k, 0 : J * W]) for the first `rows`
// (<= R) rows, where c0 is c's value before (kAccumulate) or zero: a is read one element at a
// time (broadcast), b a row of J vectors at a time. Rows past `rows` repeat row 0 and are not
// stored. Accumulating over consecutive ranges of k adds the same terms in the same order as
// one call over all of them, so splitting a product this way leaves its result unchanged.
template <int W, int R, int J, bool kAccumulate>
PNPOVSS_INLINE void product_block(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t depth,
                                  float* c, int64_t ldc, int rows, float alpha) {
  using F = typename Vec<W>::F;
  F acc[R][J];
  PNPOVSS_UNROLL
  for (int r = 0; r < R; ++r)
    PNPOVSS_UNROLL
    for (int j = 0; j < J; ++j)
      acc[r][j] = kAccumulate && r < rows ? load<W>(c + r * ldc + j * W) : splat_value<W>(0.0f);
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

// The same for any number of rows over `cols` columns (a multiple of W): column blocks of J
// vectors (then single vectors) outside, groups of R rows inside, so that a block of b stays
// in the first-level cache while every row group uses it.
template <int W, bool kAccumulate>
PNPOVSS_INLINE void product(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t depth, float* c,
                            int64_t ldc, int64_t rows, int64_t cols, float alpha) {
  constexpr int R = Blocking<W>::R, J = Blocking<W>::J;
  auto group = [&](int64_t r) { return static_cast<int>(std::min<int64_t>(R, rows - r)); };
  int64_t col = 0;
  for (; col + J * W <= cols; col += J * W)
    for (int64_t r = 0; r < rows; r += R)
      product_block<W, R, J, kAccumulate>(a + r * lda, lda, b + col, ldb, depth, c + r * ldc + col, ldc, group(r),
                                          alpha);
  for (; col < cols; col += W)
    for (int64_t r = 0; r < rows; r += R)
      product_block<W, R, 1, kAccumulate>(a + r * lda, lda, b + col, ldb, depth, c + r * ldc + col, ldc, group(r),
                                          alpha);
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

// GCC 12 sees the undefined pass-through operand inside its own AVX-512 intrinsic headers as
// maybe uninitialized (a false positive of those headers, not of this code).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// exp(x - top) for x <= top (see exp_row_avx512).
__attribute__((target("avx512f"))) inline __m512 exp_below(__m512 x, __m512 top) {
  using C = simd::PacketExp;
  x = _mm512_max_ps(_mm512_sub_ps(x, top), _mm512_set1_ps(C::kLow));
  const __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(C::kLog2e), _mm512_set1_ps(0.5f));
  const __m512 k = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  x = _mm512_fnmadd_ps(k, _mm512_set1_ps(C::kLn2High), x);
  x = _mm512_fnmadd_ps(k, _mm512_set1_ps(C::kLn2Low), x);
  const __m512 z = _mm512_mul_ps(x, x);
  __m512 y = _mm512_set1_ps(C::kPoly[0]);
  PNPOVSS_UNROLL
  for (int i = 1; i < 6; ++i) y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(C::kPoly[i]));
  y = _mm512_add_ps(_mm512_fmadd_ps(y, z, x), _mm512_set1_ps(1.0f));
  // 2^k for k >= -126; 0 below, where packet_exp's exponent bits are 0.
  const __mmask16 normal = _mm512_cmp_ps_mask(k, _mm512_set1_ps(-127.0f), _CMP_GT_OQ);
  return _mm512_maskz_scalef_ps(normal, y, k);
}

// exp_row for AVX-512 with its own instructions: the same range reduction (n = floor(x log2 e +
// 1/2)) and polynomial as packet_exp, but the floor in one rounding instruction and 2^n applied
// by scaling instead of built from integer bits, and no upper clamp (x <= 0 here): about half the
// instructions (attention at 768 px: 89 -> 82 ms a layer on 2 cores), and values within a few
// units in the last place of packet_exp's. Below x = -88.38 the result is 0, as packet_exp's.
// Not inlined: called per row.
__attribute__((target("avx512f"))) float exp_row_avx512(float* s, int64_t n) {
  const int64_t whole = n / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (n - whole)) - 1u);
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < whole; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(s + j));
  m = _mm512_mask_max_ps(m, tail, m, _mm512_maskz_loadu_ps(tail, s + whole));
  const __m512 top = _mm512_set1_ps(_mm512_reduce_max_ps(m));
  __m512 sum = _mm512_setzero_ps();

  for (int64_t j = 0; j < whole; j += 16) {
    const __m512 e = exp_below(_mm512_loadu_ps(s + j), top);
    _mm512_storeu_ps(s + j, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (tail != 0) {
    const __m512 e = _mm512_maskz_mov_ps(tail, exp_below(_mm512_maskz_loadu_ps(tail, s + whole), top));
    _mm512_mask_storeu_ps(s + whole, tail, e);
    sum = _mm512_add_ps(sum, e);
  }
  return 1.0f / _mm512_reduce_add_ps(sum);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// Query rows per block: their scores (kQueryBlock x N floats, 297 KB at 768 px) stay in the
// second-level cache between the two products, and each block of keys and values read from
// memory serves all of them (the kernel first read both whole for every 6 rows).
constexpr int64_t kQueryBlock = 32;
// Values per step of the second product: 64 rows of v (16 KB) stay in the first-level cache
// while every group of query rows uses them.
constexpr int64_t kValueChunk = 64;

// Per-thread scratch: one head's keys transposed (head_dim rows of `padded` floats, zero past
// the tokens), its values and a block of its queries packed row after row, and a block of
// score rows. In the fused qkv projection one head's rows lie 3 * width floats apart (12 KiB
// for BLIP's large tower): a multiple of 4 KiB, so that every row of a block of values or
// queries fell into the same few sets of the first-level cache and evicted the others.
// All of it is one block from large_blocks.h (1.5 MB at 768 px), kept between calls: fresh
// pages cost a fault each on first touch, several milliseconds a layer.
class Workspace {
 public:
  Workspace(int64_t tokens, int64_t head_dim, int64_t padded)
      : bytes_(sizeof(float) * static_cast<size_t>(head_dim * padded + tokens * head_dim + kQueryBlock * head_dim +
                                                   kQueryBlock * padded)),
        block_(static_cast<float*>(take_large_block(bytes_))) {
    keys_t = block_;
    values = keys_t + head_dim * padded;
    queries = values + tokens * head_dim;
    scores = queries + kQueryBlock * head_dim;
    for (int64_t c = 0; c < head_dim; ++c)
      std::fill(keys_t + c * padded + tokens, keys_t + (c + 1) * padded, 0.0f);
  }
  ~Workspace() { give_back_large_block(block_); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  float *keys_t, *values, *queries, *scores;

 private:
  size_t bytes_;
  float* block_;
};

// rows x cols floats from `from` (rows `stride` apart) to `to` (rows `cols` apart).
PNPOVSS_INLINE void pack_rows(const float* from, int64_t stride, int64_t rows, int64_t cols, float* to) {
  for (int64_t r = 0; r < rows; ++r) std::memcpy(to + r * cols, from + r * stride, sizeof(float) * cols);
}

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
  const int64_t n = job.shape.tokens, d = job.shape.head_dim, heads = job.shape.heads;
  const int64_t padded = (n + W - 1) / W * W;
  Workspace ws(n, d, padded);
  float* kt = ws.keys_t;
  float* vp = ws.values;
  float* qp = ws.queries;
  float* s = ws.scores;
  float inverse_sum[kQueryBlock];
  for (int64_t pair = first; pair < last; ++pair) {
    const int64_t b = pair / heads, h = pair % heads;
    const float* q = job.q.data + b * job.q.item_stride + h * job.q.head_stride;
    const float* k = job.k.data + b * job.k.item_stride + h * job.k.head_stride;
    const float* v = job.v.data + b * job.v.item_stride + h * job.v.head_stride;
    float* out = job.out + b * job.out_item_stride + h * d;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < d; ++c) kt[c * padded + t] = k[t * job.k.row_stride + c];
    pack_rows(v, job.v.row_stride, n, d, vp);
    for (int64_t row = 0; row < n; row += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, n - row);
      pack_rows(q + row * job.q.row_stride, job.q.row_stride, rows, d, qp);
      product<W, false>(qp, d, kt, padded, d, s, padded, rows, padded, job.scale);
      for (int64_t r = 0; r < rows; ++r) {
        if constexpr (W == 16)
          inverse_sum[r] = exp_row_avx512(s + r * padded, n);
        else
          inverse_sum[r] = exp_row<W>(s + r * padded, n);
      }
      float* o = out + row * job.out_row_stride;
      for (int64_t key = 0; key < n; key += kValueChunk) {
        const int64_t depth = std::min(kValueChunk, n - key);
        if (key == 0)
          product<W, false>(s, padded, vp, d, depth, o, job.out_row_stride, rows, d, 1.0f);
        else
          product<W, true>(s + key, padded, vp + key * d, d, depth, o, job.out_row_stride, rows, d, 1.0f);
      }
      for (int64_t r = 0; r < rows; ++r)
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
