#include "pnpovss/crf/densecrf.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>

#include "pnpovss/cpu/parallel.h"
#include "pnpovss/cpu/simd.h"
#include "pnpovss/cpu/zeroed_array.h"
#include "pnpovss/crf/permutohedral.h"
#include "pnpovss/error.h"

namespace pnpovss::crf {

namespace {

// The per-pixel code below runs over a compile-time number of vectors (simd.h); unrolled and
// inlined, a pixel's labels stay in registers. W = 4 is plain SSE2; W = 8 is compiled for AVX2
// only (no FMA) and chosen at run time. Every operation is lane-wise IEEE arithmetic without
// fused multiply-add, so both widths give bit-identical results.
using namespace ::pnpovss::cpu::simd;  // the kernels below are written in simd.h's vocabulary

// Helpers that take or return 8-float vectors are only ever inlined into functions compiled
// for AVX2, so the non-AVX calling convention GCC warns about is never used.
#pragma GCC diagnostic ignored "-Wpsabi"

// The explicit alignment matters: without AVX enabled GCC caps the alignment of a 32-byte
// vector type at 16, and heap or stack blocks must still suit the AVX2 code's aligned moves.
template <int W>
struct alignas(4 * W) Block {
  typename Vec<W>::F v;
};

// Packet k (4 floats) of a row of W-float vectors: a whole vector for W = 4, half of one for
// W = 8. With k known at compile time (unrolled loops) this stays in registers.
typedef float F4 __attribute__((vector_size(16)));

template <int W>
PNPOVSS_INLINE F4 packet_of(const Block<W>* v, int k) {
  F4 p;
  std::memcpy(&p, reinterpret_cast<const char*>(&v[k * 4 / W].v) + 16 * (k % (W / 4)), sizeof p);
  return p;
}

// Lane permutations (GCC and Clang spell them differently).
#if defined(__clang__)
#define PNPOVSS_SHUFFLE4(v, a, b, c, d) __builtin_shufflevector(v, v, a, b, c, d)
#define PNPOVSS_SHUFFLE8(v, a, b, c, d, e, f, g, h) __builtin_shufflevector(v, v, a, b, c, d, e, f, g, h)
#else
#define PNPOVSS_SHUFFLE4(v, a, b, c, d) __builtin_shuffle(v, Vec<4>::I{a, b, c, d})
#define PNPOVSS_SHUFFLE8(v, a, b, c, d, e, f, g, h) __builtin_shuffle(v, Vec<8>::I{a, b, c, d, e, f, g, h})
#endif

// The largest lane, by halving (log2(W) steps instead of W - 1).
PNPOVSS_INLINE float horizontal_max(Vec<4>::F m) {
  m = m > PNPOVSS_SHUFFLE4(m, 2, 3, 0, 1) ? m : PNPOVSS_SHUFFLE4(m, 2, 3, 0, 1);
  m = m > PNPOVSS_SHUFFLE4(m, 1, 0, 3, 2) ? m : PNPOVSS_SHUFFLE4(m, 1, 0, 3, 2);
  return m[0];
}
PNPOVSS_INLINE float horizontal_max(Vec<8>::F m) {
  const Vec<8>::F halves = PNPOVSS_SHUFFLE8(m, 4, 5, 6, 7, 0, 1, 2, 3);
  m = m > halves ? m : halves;
  const Vec<8>::F pairs = PNPOVSS_SHUFFLE8(m, 2, 3, 0, 1, 6, 7, 4, 5);
  m = m > pairs ? m : pairs;
  const Vec<8>::F neighbours = PNPOVSS_SHUFFLE8(m, 1, 0, 3, 2, 5, 4, 7, 6);
  m = m > neighbours ? m : neighbours;
  return m[0];
}

// The reference's expAndNormalize for one pixel as Eigen evaluates it on a 16-byte aligned
// VectorXf: subtract the max; exp by 4-float packets over whole groups of four labels and
// std::exp on the rest; sum with two packet accumulators, a horizontal add and the scalar tail
// (plain left to right below four labels); divide. Lanes past `labels` come out 0.
// P pixels at once (rows t[p * nb ...], q likewise): each step is one long dependency chain per
// pixel, and interleaving independent pixels keeps the vector units busy. Loops run over
// compile-time indices (runtime bounds are tested inside), so that for a fixed NB the rows stay
// in registers.
template <int NB, int W, int P = 1>
PNPOVSS_INLINE void softmax(const Block<W>* t, Block<W>* q, int labels, int nb_runtime) {
  using F = typename Vec<W>::F;
  using I = typename Vec<W>::I;
  const int nb = NB > 0 ? NB : nb_runtime;
  const int packets = labels / 4;  // whole groups of four labels
  const int tail = 4 * packets;    // first label of the scalar tail
  I lane;
  for (int j = 0; j < W; ++j) lane[j] = j;

  // Maximum over the labels (order-free, exact).
  const F lowest = splat_value<W>(-std::numeric_limits<float>::infinity());
  F m[P];
  PNPOVSS_UNROLL
  for (int p = 0; p < P; ++p) m[p] = lowest;
  PNPOVSS_UNROLL
  for (int b = 0; b < nb; ++b) {
    PNPOVSS_UNROLL
    for (int p = 0; p < P; ++p) {
      const F x = t[p * nb + b].v;
      const F v = W * (b + 1) > labels ? ((lane + W * b) < labels ? x : lowest) : x;
      m[p] = m[p] > v ? m[p] : v;
    }
  }
  float top[P];
  PNPOVSS_UNROLL
  for (int p = 0; p < P; ++p) top[p] = horizontal_max(m[p]);

  // The tail's exponentials first, all pixels together: the library calls clobber the vector
  // registers, so they are best kept out of the vector code.
  float tail_exp[P][4];
  if (tail < labels) {
    PNPOVSS_UNROLL
    for (int p = 0; p < P; ++p)
      for (int l = tail; l < labels; ++l) tail_exp[p][l - tail] = t[p * nb + l / W].v[l % W] - top[p];
    PNPOVSS_UNROLL
    for (int p = 0; p < P; ++p)
      for (int l = tail; l < labels; ++l) tail_exp[p][l - tail] = std::exp(tail_exp[p][l - tail]);
  }

  // Exponentials: packets for whole groups of four, std::exp for the tail, 0 past the labels.
  PNPOVSS_UNROLL
  for (int b = 0; b < nb; ++b) {
    PNPOVSS_UNROLL
    for (int p = 0; p < P; ++p) {
      F e = packet_exp<W>(t[p * nb + b].v - top[p]);
      if (W * (b + 1) > tail) {
        e = (lane + W * b) < tail ? e : splat_value<W>(0.0f);
        PNPOVSS_UNROLL
        for (int j = 0; j < W; ++j)
          if (W * b + j >= tail && W * b + j < labels) e[j] = tail_exp[p][W * b + j - tail];
      }
      q[p * nb + b].v = e;
    }
  }

  float sum[P];
  if (packets == 0) {
    PNPOVSS_UNROLL
    for (int p = 0; p < P; ++p) {
      sum[p] = q[p * nb].v[0];
      for (int l = 1; l < labels; ++l) sum[p] += q[p * nb].v[l];
    }
  } else {
    const int row_packets = nb * W / 4;
    F4 r0[P];
    PNPOVSS_UNROLL
    for (int p = 0; p < P; ++p) r0[p] = packet_of<W>(q + p * nb, 0);
    if (packets > 1 && row_packets > 1) {  // the second test only tells the compiler
      F4 r1[P];
      PNPOVSS_UNROLL
      for (int p = 0; p < P; ++p) r1[p] = packet_of<W>(q + p * nb, 1);
      const int paired = packets / 2 * 2;
      PNPOVSS_UNROLL
      for (int k = 2; k + 1 < row_packets; k += 2)
        if (k < paired) {
          PNPOVSS_UNROLL
          for (int p = 0; p < P; ++p) {
            r0[p] = r0[p] + packet_of<W>(q + p * nb, k);
            r1[p] = r1[p] + packet_of<W>(q + p * nb, k + 1);
          }
        }
      PNPOVSS_UNROLL
      for (int p = 0; p < P; ++p) r0[p] = r0[p] + r1[p];
      PNPOVSS_UNROLL
      for (int k = 2; k < row_packets; k += 2)
        if (k == paired && packets > paired) {
          PNPOVSS_UNROLL
          for (int p = 0; p < P; ++p) r0[p] = r0[p] + packet_of<W>(q + p * nb, k);
        }
    }
    PNPOVSS_UNROLL
    for (int p = 0; p < P; ++p) sum[p] = (r0[p][0] + r0[p][2]) + (r0[p][1] + r0[p][3]);
    PNPOVSS_UNROLL
    for (int b = 0; b < nb; ++b)
      if (W * (b + 1) > tail) {
        PNPOVSS_UNROLL
        for (int j = 0; j < W; ++j)
          if (W * b + j >= tail && W * b + j < labels) {
            PNPOVSS_UNROLL
            for (int p = 0; p < P; ++p) sum[p] += q[p * nb + b].v[j];
          }
      }
  }
  PNPOVSS_UNROLL
  for (int b = 0; b < nb; ++b) {
    PNPOVSS_UNROLL
    for (int p = 0; p < P; ++p) q[p * nb + b].v = q[p * nb + b].v / sum[p];
  }
}

// Kernels with at least one lattice vertex per this many pixels are prefetched pixel by pixel.
// With fewer vertices each row serves many nearby pixels and stays in cache, and prefetching
// costs about 13% on one thread (the synthetic benchmark scene: one bilateral vertex per 6.4
// pixels). Photos have one per 0.7-1.4 pixels; there it saves 9-25%.
constexpr int64_t kPrefetchPixelsPerVertex = 4;

struct PairwiseKernel {
  float weight = 0.0f;
  PermutohedralLattice lattice;
  cpu::ZeroedArray<float> norm;  // 1/sqrt(K*1): NORMALIZE_SYMMETRIC
  // Vertex values: `source` holds the blurred Q of the previous pass (read by the slice),
  // `target` receives the splat of the new Q, `spare` is the blur's second buffer. Row 0 (the
  // missing blur neighbour) stays zero in all three; the splat stores where a vertex is first
  // touched, so only untouched rows need clearing between passes.
  cpu::ZeroedArray<float> buffers[3];
  int source = 0, target = 1, spare = 2;
  cpu::ZeroedArray<float> rings;  // the blur's ring buffers (PermutohedralLattice::blur)
  bool prefetch = false;  // whether the passes prefetch this kernel's rows (see prefetch_rows)
};

void init_kernel(PairwiseKernel& kernel, const cpu::ZeroedArray<float>& features, int dim, int64_t pixels, int stride,
                 int threads) {
  LatticeOptions options;
  options.threads = threads;
  kernel.lattice.build(features.data(), pixels, dim, options);
  kernel.norm = cpu::ZeroedArray<float>(static_cast<size_t>(pixels));
  float* norm = kernel.norm.data();
  std::fill(norm, norm + pixels, 1.0f);
  kernel.lattice.compute(norm, norm, 1, threads);
  // As the reference: float row sum, then 1/sqrt(n + 1e-20) in double, stored as float.
  for (int64_t i = 0; i < pixels; ++i) norm[i] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(norm[i]) + 1e-20));
  for (auto& b : kernel.buffers) b = cpu::ZeroedArray<float>(static_cast<size_t>(kernel.lattice.vertices() + 1) * stride);
  kernel.rings = cpu::ZeroedArray<float>(kernel.lattice.blur_ring_floats(stride, threads));
  kernel.prefetch = kernel.lattice.vertices() * kPrefetchPixelsPerVertex >= pixels;
}

// Blurs each kernel's freshly splatted target; the result becomes the next source and the
// old source the next target, with the rows that no splat overwrites cleared.
void blur_targets(std::vector<PairwiseKernel>& kernels, int stride, int threads) {
  for (PairwiseKernel& k : kernels) {
    float* result =
        k.lattice.blur(k.buffers[k.target].data(), k.buffers[k.spare].data(), stride, threads, k.rings.data());
    const int done = result == k.buffers[k.target].data() ? k.target : k.spare;
    const int other = done == k.target ? k.spare : k.target;
    const int old_source = k.source;
    k.source = done;
    k.target = old_source;
    k.spare = other;
    float* t = k.buffers[k.target].data();
    for (const int32_t v : k.lattice.untouched_vertices())
      std::fill(t + static_cast<int64_t>(v + 1) * stride, t + static_cast<int64_t>(v + 2) * stride, 0.0f);
  }
}

// One mean-field pass over the pixels: Q_i = softmax(-U_i + sum_k w_k norm_k,i (K_k norm_k Q)_i)
// from the previous blur (just softmax(-U_i) in the first pass), optionally splatted into the
// kernels' targets for the next update. Rows are `nb` vectors of W floats.
struct Pass {
  int labels = 0;
  int nb = 0;
  bool slice = false;
  bool splat = false;
  bool alpha_last = false;  // <= 2 labels: the reference's scalar lattice code
  const float* neg_unary = nullptr;
  float* q_out = nullptr;         // the last pass: Q in the API layout (labels x pixels), or none
  int32_t* labels_out = nullptr;  // and its argmax
  PairwiseKernel* kernels = nullptr;
  int kernel_count = 0;
  int64_t pixels = 0;
};

template <int NB, int W>
PNPOVSS_INLINE void load_row(const float* row, Block<W>* v, int nb) {
  PNPOVSS_UNROLL
  for (int b = 0; b < nb; ++b) v[b].v = load<W>(row + W * b);
}

template <int NB, int W>
PNPOVSS_INLINE void store_row(float* row, const Block<W>* v, int nb) {
  PNPOVSS_UNROLL
  for (int b = 0; b < nb; ++b) store<W>(row + W * b, v[b].v);
}

// Adds the messages of kernels [first, last) to the logits t of pixel i: the slice of the
// blurred normalised Q, times norm_i and the Potts weight. The reference forms -w * (norm * KQ)
// and subtracts it, which rounds exactly as adding w * (norm * KQ).
template <int NB, int W>
PNPOVSS_INLINE void add_messages(const Pass& p, int64_t i, int first, int last, Block<W>* t, Block<W>* acc) {
  const int nb = NB > 0 ? NB : p.nb;
  const int64_t stride = W * nb;
  for (int k = first; k < last; ++k) {
    const PairwiseKernel& kernel = p.kernels[k];
    const PermutohedralLattice& lattice = kernel.lattice;
    const int32_t* vertex = lattice.corner_vertices(i);
    const float* weight = lattice.corner_weights(i);
    const float alpha = lattice.alpha();
    const float* rows = kernel.buffers[kernel.source].data();
    PNPOVSS_UNROLL
    for (int b = 0; b < nb; ++b) acc[b].v = splat_value<W>(0.0f);
    for (int r = 0; r <= lattice.dim(); ++r) {
      const float* row = rows + (vertex[r] + 1) * stride;
      if (p.alpha_last) {
        PNPOVSS_UNROLL
        for (int b = 0; b < nb; ++b) acc[b].v = acc[b].v + weight[r] * load<W>(row + W * b) * alpha;
      } else {
        const float w = weight[r] * alpha;
        PNPOVSS_UNROLL
        for (int b = 0; b < nb; ++b) acc[b].v = acc[b].v + w * load<W>(row + W * b);
      }
    }
    const float norm = kernel.norm[i];
    PNPOVSS_UNROLL
    for (int b = 0; b < nb; ++b) t[b].v = t[b].v + kernel.weight * (acc[b].v * norm);
  }
}

// Adds pixel i's w * (Q_i * norm_i) to its simplex corners in every kernel's target, as the
// reference's splat does point by point. Where pixel i is the first on a vertex the row holds
// whatever the buffer held before and is multiplied by 0 instead: Q and norm are non-negative,
// so 0 * old + w * x rounds as 0 + w * x (old values are finite and non-negative too).
template <int NB, int W>
PNPOVSS_INLINE void splat_pixel(const Pass& p, int64_t i, const Block<W>* q, Block<W>* x) {
  const int nb = NB > 0 ? NB : p.nb;
  const int64_t stride = W * nb;
  for (int k = 0; k < p.kernel_count; ++k) {
    PairwiseKernel& kernel = p.kernels[k];
    const int32_t* vertex = kernel.lattice.corner_vertices(i);
    const float* weight = kernel.lattice.corner_weights(i);
    const uint32_t first = kernel.lattice.first_touches(i);
    float* rows = kernel.buffers[kernel.target].data();
    const float norm = kernel.norm[i];
    PNPOVSS_UNROLL
    for (int b = 0; b < nb; ++b) x[b].v = q[b].v * norm;
    for (int r = 0; r <= kernel.lattice.dim(); ++r) {
      float* row = rows + (vertex[r] + 1) * stride;
      const float w = weight[r];
      const float keep = (first >> r) & 1u ? 0.0f : 1.0f;
      PNPOVSS_UNROLL
      for (int b = 0; b < nb; ++b) store<W>(row + W * b, load<W>(row + W * b) * keep + w * x[b].v);
    }
  }
}

// Pixels whose softmax runs interleaved (see softmax): enough independent work to hide the
// latency of short rows, and one pixel for long rows (which have enough on their own) and for
// row counts only known at run time.
constexpr int pixels_per_group(int nb, int w) { return nb == 0 ? 1 : nb * w <= 32 ? 4 : nb * w <= 64 ? 2 : 1; }

// The working vectors of a group of P pixels: locals (registers, once inlined) for a
// compile-time count, heap memory otherwise.
template <int NB, int W, int P = pixels_per_group(NB, W)>
struct PixelVectors {
  explicit PixelVectors(int) {}
  Block<W> t[P * NB], q[P * NB], acc[NB], x[NB];
};
template <int W, int P>
struct PixelVectors<0, W, P> {
  explicit PixelVectors(int nb) : t(P * nb), q(P * nb), acc(nb), x(nb) {}
  std::vector<Block<W>> t, q, acc, x;
};

// Q of the P pixels from i on: their logit rows (`logits`, consecutive), plus the messages of
// kernels [first, last), through the softmax into v.q and the consecutive rows `out` (unless
// null).
template <int NB, int W, int P, int NBV>
PNPOVSS_INLINE void q_of_group(const Pass& p, int64_t i, int first, int last, const float* logits, float* out,
                               PixelVectors<NBV, W>& v) {
  const int nb = NB > 0 ? NB : p.nb;
  const int64_t stride = W * nb;
  Block<W>* t = std::data(v.t);
  Block<W>* q = std::data(v.q);
  PNPOVSS_UNROLL
  for (int k = 0; k < P; ++k) {
    load_row<NB, W>(logits + k * stride, t + k * nb, nb);
    if (first < last) add_messages<NB, W>(p, i + k, first, last, t + k * nb, std::data(v.acc));
  }
  softmax<NB, W, P>(t, q, p.labels, nb);
  if (out == nullptr) return;
  PNPOVSS_UNROLL
  for (int k = 0; k < P; ++k) store_row<NB, W>(out + k * stride, q + k * nb, nb);
}

// Pixels per tile when converting between the label-major API layout and the pixel-major
// working layout.
constexpr int64_t kTransposeTile = 256;

// Pixels per chunk handed between the two threads of a pipelined pass.
constexpr int64_t kPipelineChunk = 1024;

// Blocks until `counter` reaches `value`.
void wait_for(const std::atomic<int64_t>& counter, int64_t value) {
  while (counter.load(std::memory_order_acquire) < value) std::this_thread::yield();
}

// Shared by the two threads of a pipelined pass: progress counters (in chunks) and two rings,
// logits sliced ahead by the splatting thread and Q on its way to it.
constexpr int kQueueChunks = 4;
struct PipelineState {
  std::atomic<int64_t> sliced{0}, computed{0}, splatted{0};
  std::vector<float> logits_ring;  // 2 chunks
  std::vector<float> q_ring;       // kQueueChunks chunks
  int ahead = 0;                   // kernels the splatting thread slices
};

// Asks the caches for the lattice rows that pixel i slices (the sources of kernels
// [first, last)) and splats (their targets), one request per cache line. On photos the rows are
// scattered over megabytes, so fetched on demand each would stall the pixel loop. Requested this
// many pixels ahead (8 and 16 measured alike: 9-18% less time on 640x480 photos):
constexpr int64_t kPrefetchDistance = 8;
constexpr int64_t kFloatsPerCacheLine = 64 / sizeof(float);

template <int NB, int W>
PNPOVSS_INLINE void prefetch_rows(const Pass& p, int64_t i, int first, int last, bool source, bool target) {
  const int nb = NB > 0 ? NB : p.nb;
  const int64_t stride = W * nb;
  for (int k = first; k < last; ++k) {
    const PairwiseKernel& kernel = p.kernels[k];
    if (!kernel.prefetch) continue;
    const int32_t* vertex = kernel.lattice.corner_vertices(i);
    const float* from = kernel.buffers[kernel.source].data();
    const float* to = kernel.buffers[kernel.target].data();
    for (int r = 0; r <= kernel.lattice.dim(); ++r) {
      const int64_t offset = (vertex[r] + 1) * stride;
      for (int64_t line = 0; line < stride; line += kFloatsPerCacheLine) {
        if (source) __builtin_prefetch(from + offset + line, 0);
        if (target) __builtin_prefetch(to + offset + line, 1);
      }
    }
  }
}

// -U in the pixel-major working layout (each pixel's labels contiguous, as in the reference's
// Eigen M x N column-major matrices), padded with zeros to whole vectors. `unary_tile(begin, n,
// tile, scratch)` writes the unaries of pixels [begin, begin + n) label-major into `tile` (labels
// rows of kTransposeTile floats), with `scratch` a vector of doubles of its own per thread to
// size and use as it needs; tiles go to all threads, and each is transposed while in cache.
// Throws on the first non-finite unary.
template <typename UnaryTile>
cpu::ZeroedArray<float> negated_pixel_major(UnaryTile&& unary_tile, int labels, int width, int64_t pixels, int stride,
                                            int threads) {
  cpu::ZeroedArray<float> out(static_cast<size_t>(pixels) * stride);
  float* rows = out.data();
  cpu::parallel_ranges((pixels + kTransposeTile - 1) / kTransposeTile, threads, [&](int64_t first, int64_t last) {
    std::vector<float> tile(static_cast<size_t>(labels) * kTransposeTile);
    std::vector<double> scratch;
    for (int64_t t = first; t < last; ++t) {
      const int64_t begin = t * kTransposeTile, n = std::min(pixels - begin, kTransposeTile);
      unary_tile(begin, n, tile.data(), scratch);
      bool finite = true;
      for (int l = 0; l < labels; ++l) {
        const float* u = &tile[static_cast<size_t>(l) * kTransposeTile];
        for (int64_t i = 0; i < n; ++i) {
          finite &= std::fabs(u[i]) <= std::numeric_limits<float>::max();
          rows[(begin + i) * stride + l] = -u[i];
        }
      }
      if (finite) continue;
      for (int l = 0; l < labels; ++l)
        for (int64_t i = 0; i < n; ++i)
          if (!std::isfinite(tile[static_cast<size_t>(l) * kTransposeTile + i]))
            throw Error("dense CRF: unary of label " + std::to_string(l) + " at pixel (" +
                        std::to_string((begin + i) / width) + ", " + std::to_string((begin + i) % width) +
                        ") is not finite");
    }
  }, 1);
  return out;
}

// Q of pixels [begin, end) with the messages of kernels [first, last) (see q_of_group): groups
// of P pixels, the rest one by one. logits(i) and out(i) give pixel i's rows; the rows of a
// group's pixels must follow each other.
template <int NB, int W, typename Logits, typename Out>
PNPOVSS_INLINE void q_of_range(const Pass& p, int64_t begin, int64_t end, int first, int last, Logits logits, Out out,
                               PixelVectors<NB, W>& v) {
  constexpr int P = pixels_per_group(NB, W);
  int64_t i = begin;
  for (; i + P <= end; i += P) {
    PNPOVSS_UNROLL
    for (int k = 0; k < P; ++k)
      if (first < last && i + k + kPrefetchDistance < p.pixels)
        prefetch_rows<NB, W>(p, i + k + kPrefetchDistance, first, last, true, false);
    q_of_group<NB, W, P>(p, i, first, last, logits(i), out(i), v);
  }
  for (; i < end; ++i) {
    if (first < last && i + kPrefetchDistance < p.pixels)
      prefetch_rows<NB, W>(p, i + kPrefetchDistance, first, last, true, false);
    q_of_group<NB, W, 1>(p, i, first, last, logits(i), out(i), v);
  }
}

// The last pass: Q of pixels [begin, end) from -U and all messages, written tile by tile into
// the labels x pixels output (when there is one), with the argmax (first maximum, as numpy and Eigen).
template <int NB, int W>
PNPOVSS_INLINE void final_pass_impl(const Pass& p, int64_t begin, int64_t end) {
  const int nb = NB > 0 ? NB : p.nb;
  const int64_t stride = W * nb;
  PixelVectors<NB, W> v(nb);
  std::vector<float> tile(static_cast<size_t>(kTransposeTile) * stride);
  const int kernels = p.slice ? p.kernel_count : 0;
  for (int64_t first = begin; first < end; first += kTransposeTile) {
    const int64_t last = std::min(end, first + kTransposeTile);
    q_of_range<NB, W>(
        p, first, last, 0, kernels, [&](int64_t i) { return p.neg_unary + i * stride; },
        [&](int64_t i) { return &tile[(i - first) * stride]; }, v);
    for (int l = 0; l < p.labels && p.q_out != nullptr; ++l) {
      float* out = p.q_out + l * p.pixels;
      for (int64_t i = first; i < last; ++i) out[i] = tile[(i - first) * stride + l];
    }
    for (int64_t i = first; i < last; ++i) {
      const float* row = &tile[(i - first) * stride];
      int best = 0;
      float top = row[0];
      for (int l = 1; l < p.labels; ++l) {
        const bool higher = row[l] > top;  // selects, not branches: the winner is unpredictable
        best = higher ? l : best;
        top = higher ? row[l] : top;
      }
      p.labels_out[i] = best;
    }
  }
}

// A whole pass on one thread: Q of each group of pixels, then its splat in pixel order.
template <int NB, int W>
PNPOVSS_INLINE void fused_pass_impl(const Pass& p) {
  const int nb = NB > 0 ? NB : p.nb;
  const int64_t stride = W * nb;
  constexpr int P = pixels_per_group(NB, W);
  const int kernels = p.slice ? p.kernel_count : 0;
  PixelVectors<NB, W> v(nb);
  int64_t i = 0;
  for (; i + P <= p.pixels; i += P) {
    PNPOVSS_UNROLL
    for (int k = 0; k < P; ++k)
      if (i + k + kPrefetchDistance < p.pixels)
        prefetch_rows<NB, W>(p, i + k + kPrefetchDistance, 0, p.kernel_count, p.slice, p.splat);
    q_of_group<NB, W, P>(p, i, 0, kernels, p.neg_unary + i * stride, nullptr, v);
    PNPOVSS_UNROLL
    for (int k = 0; k < P; ++k) splat_pixel<NB, W>(p, i + k, std::data(v.q) + k * nb, std::data(v.x));
  }
  for (; i < p.pixels; ++i) {
    q_of_group<NB, W, 1>(p, i, 0, kernels, p.neg_unary + i * stride, nullptr, v);
    splat_pixel<NB, W>(p, i, std::data(v.q), std::data(v.x));
  }
}

// The pass on two threads. The splat must visit pixels in order (the reference's order of
// additions, which also keeps results independent of the thread count), so it runs on one
// thread, chunk by chunk behind the other, which computes Q. To balance the work the splatting
// thread also slices the first kernel one chunk ahead.
template <int NB, int W>
PNPOVSS_INLINE void pipeline_role_impl(const Pass& p, PipelineState& s, int role) {
  const int nb = NB > 0 ? NB : p.nb;
  const int64_t stride = W * nb;
  const int64_t chunks = (p.pixels + kPipelineChunk - 1) / kPipelineChunk;
  auto begin_of = [&](int64_t c) { return c * kPipelineChunk; };
  auto end_of = [&](int64_t c) { return std::min(p.pixels, (c + 1) * kPipelineChunk); };
  auto ring_row = [&](std::vector<float>& ring, int slots, int64_t i) {
    return ring.data() + ((i / kPipelineChunk) % slots * kPipelineChunk + i % kPipelineChunk) * stride;
  };
  PixelVectors<NB, W> v(nb);
  Block<W>* t = std::data(v.t);
  Block<W>* acc = std::data(v.acc);
  Block<W>* q = std::data(v.q);
  if (role == 0) {
    const int kernels = p.slice ? p.kernel_count : s.ahead;
    for (int64_t c = 0; c < chunks; ++c) {
      if (s.ahead) wait_for(s.sliced, c + 1);
      wait_for(s.splatted, c + 1 - kQueueChunks);  // the Q slot is free again
      q_of_range<NB, W>(
          p, begin_of(c), end_of(c), s.ahead, kernels,
          [&](int64_t i) { return s.ahead ? ring_row(s.logits_ring, 2, i) : p.neg_unary + i * stride; },
          [&](int64_t i) { return ring_row(s.q_ring, kQueueChunks, i); }, v);
      s.computed.store(c + 1, std::memory_order_release);
    }
    return;
  }
  for (int64_t c = -1; c < chunks; ++c) {
    if (s.ahead && c + 1 < chunks) {
      wait_for(s.computed, c);  // chunk c-1 is done, so its logits slot is free again
      for (int64_t i = begin_of(c + 1); i < end_of(c + 1); ++i) {
        if (i + kPrefetchDistance < p.pixels) prefetch_rows<NB, W>(p, i + kPrefetchDistance, 0, s.ahead, true, false);
        load_row<NB, W>(p.neg_unary + i * stride, t, nb);
        add_messages<NB, W>(p, i, 0, s.ahead, t, acc);
        store_row<NB, W>(ring_row(s.logits_ring, 2, i), t, nb);
      }
      s.sliced.store(c + 2, std::memory_order_release);
    }
    if (c < 0) continue;
    wait_for(s.computed, c + 1);
    for (int64_t i = begin_of(c); i < end_of(c); ++i) {
      if (i + kPrefetchDistance < p.pixels)
        prefetch_rows<NB, W>(p, i + kPrefetchDistance, 0, p.kernel_count, false, true);
      load_row<NB, W>(ring_row(s.q_ring, kQueueChunks, i), q, nb);
      splat_pixel<NB, W>(p, i, q, std::data(v.x));
    }
    s.splatted.store(c + 1, std::memory_order_release);
  }
}

template <int NB, int W>
struct PassKernels;

template <int NB>
struct PassKernels<NB, 4> {
  static void final_pass(const Pass& p, int64_t begin, int64_t end) { final_pass_impl<NB, 4>(p, begin, end); }
  static void fused(const Pass& p) { fused_pass_impl<NB, 4>(p); }
  static void pipeline_role(const Pass& p, PipelineState& s, int role) { pipeline_role_impl<NB, 4>(p, s, role); }
};

template <int NB>
struct PassKernels<NB, 8> {
  __attribute__((target("avx2"))) static void final_pass(const Pass& p, int64_t begin, int64_t end) {
    final_pass_impl<NB, 8>(p, begin, end);
  }
  __attribute__((target("avx2"))) static void fused(const Pass& p) { fused_pass_impl<NB, 8>(p); }
  __attribute__((target("avx2"))) static void pipeline_role(const Pass& p, PipelineState& s, int role) {
    pipeline_role_impl<NB, 8>(p, s, role);
  }
};

template <int NB, int W>
void run_pass(const Pass& p, int threads) {
  using K = PassKernels<NB, W>;
  if (!p.splat) {
    cpu::parallel_ranges(p.pixels, threads, [&](int64_t begin, int64_t end) { K::final_pass(p, begin, end); }, 4096);
  } else if (threads < 2 || p.pixels < 2 * kPipelineChunk) {
    K::fused(p);
  } else {
    PipelineState s;
    s.ahead = p.slice && p.kernel_count > 1 ? 1 : 0;
    if (s.ahead) s.logits_ring.assign(2 * kPipelineChunk * W * p.nb, 0.0f);
    s.q_ring.assign(kQueueChunks * kPipelineChunk * W * p.nb, 0.0f);
    cpu::parallel_ranges(2, 2, [&](int64_t role, int64_t) { K::pipeline_role(p, s, static_cast<int>(role)); }, 1);
  }
}

// Calls f(std::integral_constant<int, NB>) with NB = nb when NB * W <= kMaxUnrolledLabels,
// so that the per-pixel loops are unrolled; NB = 0 handles any count.
constexpr int kMaxUnrolledLabels = 64;

template <int W, int NB = 1, typename F>
void with_block_count(int nb, F&& f) {
  if constexpr (NB * W > kMaxUnrolledLabels) {
    f(std::integral_constant<int, 0>{});
  } else {
    if (nb == NB)
      f(std::integral_constant<int, NB>{});
    else
      with_block_count<W, NB + 1>(nb, f);
  }
}

// Vector width: `requested` (4 or 8) when given, else dense_crf_vector_width.
int vector_width(int requested, int labels) {
  if (requested == 8 && !::pnpovss::cpu::simd::cpu_has_avx2())
    throw Error("dense CRF: vector_width 8 needs a CPU with AVX2");
  return requested != 0 ? requested : dense_crf_vector_width(labels);
}

// Features divided by the stds up front (x = column, y = row), so the lattice filters with a
// unit Gaussian; int / float division as in DenseCRF2D. Fresh zero pages: hundreds of
// megabytes for large photos.
cpu::ZeroedArray<float> positional_features(int height, int width, float sxy) {
  cpu::ZeroedArray<float> f(static_cast<size_t>(height) * width * 2);
  float* out = f.data();
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      *out++ = static_cast<float>(x) / sxy;
      *out++ = static_cast<float>(y) / sxy;
    }
  return f;
}

cpu::ZeroedArray<float> bilateral_features(const uint8_t* rgb, int height, int width, float sxy, float srgb) {
  cpu::ZeroedArray<float> f(static_cast<size_t>(height) * width * 5);
  float* out = f.data();
  const uint8_t* px = rgb;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x, px += 3) {
      *out++ = static_cast<float>(x) / sxy;
      *out++ = static_cast<float>(y) / sxy;
      *out++ = static_cast<float>(px[0]) / srgb;
      *out++ = static_cast<float>(px[1]) / srgb;
      *out++ = static_cast<float>(px[2]) / srgb;
    }
  return f;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void require_positive(float value, const char* name) {
  if (!(std::isfinite(value) && value > 0.0f))
    throw Error(std::string("dense CRF: ") + name + " must be a positive finite number, got " +
                std::to_string(value));
}

void require_finite(float value, const char* name) {
  if (!std::isfinite(value))
    throw Error(std::string("dense CRF: ") + name + " must be finite, got " + std::to_string(value));
}

void check_params(const DenseCrfParams& p) {
  if (p.iterations < 0) throw Error("dense CRF: iterations must be >= 0, got " + std::to_string(p.iterations));
  require_positive(p.gaussian_sxy, "gaussian_sxy");
  require_positive(p.bilateral_sxy, "bilateral_sxy");
  require_positive(p.bilateral_srgb, "bilateral_srgb");
  require_finite(p.gaussian_weight, "gaussian_weight");
  require_finite(p.bilateral_weight, "bilateral_weight");
  if (p.threads < 0) throw Error("dense CRF: threads must be >= 0 (0 = all), got " + std::to_string(p.threads));
  if (p.vector_width != 0 && p.vector_width != 4 && p.vector_width != 8)
    throw Error("dense CRF: vector_width must be 0, 4 or 8, got " + std::to_string(p.vector_width));
}

void check_sizes(int height, int width, int labels) {
  if (labels < 1) throw Error("dense CRF: need at least one label, got " + std::to_string(labels));
  if (height < 1 || width < 1)
    throw Error("dense CRF: empty image (" + std::to_string(height) + "x" + std::to_string(width) + ")");
  // The lattice indexes (pixel, corner) pairs with 32-bit integers.
  const int64_t pixels = static_cast<int64_t>(height) * width;
  if (pixels > std::numeric_limits<int32_t>::max() / 8)
    throw Error("dense CRF: image too large (" + std::to_string(height) + "x" + std::to_string(width) + ")");
  if (labels > (1 << 20)) throw Error("dense CRF: too many labels (" + std::to_string(labels) + ")");
}

}  // namespace

// The passes are bound by memory traffic to the lattice rows, so padded lanes cost about what
// real ones do, and a row padded much further for 8-float vectors is slower (12, 20 and 28
// labels on a 640x480 photo: 4-float rows 8-19% faster). At 44 labels the two tie; from there
// on the padding is at most 9% of the row and the wider instructions win (59, 81 and 171
// labels: 8-float rows 9-12%, 2-4% and 13% faster, medians).
int dense_crf_vector_width(int labels) {
  if (!::pnpovss::cpu::simd::cpu_has_avx2()) return 4;
  const int64_t row4 = (static_cast<int64_t>(labels) + 3) / 4 * 4, row8 = (static_cast<int64_t>(labels) + 7) / 8 * 8;
  return row8 * 10 > row4 * 11 ? 4 : 8;
}

void check_dense_crf_arguments(int height, int width, int labels, const DenseCrfParams& params) {
  check_sizes(height, width, labels);
  check_params(params);
}

std::vector<int32_t> argmax_labels(const float* values, int labels, int64_t pixels) {
  if (values == nullptr || labels < 1 || pixels < 0) throw Error("argmax_labels: empty or null input");
  std::vector<int32_t> best(pixels, 0);
  std::vector<float> top(values, values + pixels);
  for (int l = 1; l < labels; ++l) {
    const float* v = values + static_cast<int64_t>(l) * pixels;
    for (int64_t i = 0; i < pixels; ++i)
      if (v[i] > top[i]) {
        top[i] = v[i];
        best[i] = l;
      }
  }
  return best;
}

namespace {

void check_scores(const float* scores, int labels, int64_t pixels) {
  if (scores == nullptr) throw Error("unary_from_probabilities: scores are null");
  if (labels < 1) throw Error("unary_from_probabilities: need at least one label");
  if (pixels < 1) throw Error("unary_from_probabilities: no pixels");
  const int64_t total = static_cast<int64_t>(labels) * pixels;
  for (int64_t k = 0; k < total; ++k)
    if (!std::isfinite(scores[k]))
      throw Error("unary_from_probabilities: score of label " + std::to_string(k / pixels) + " at pixel " +
                  std::to_string(k % pixels) + " is not finite");
}

// The unaries of pixels [begin, begin + n) from label-major `scores`: softmax in double (the
// reference uses float32 or float64 depending on the caller; double is within float rounding
// of both), then -log(clip(p, 1e-5, 1)) stored as float32 at out[l * out_stride + i]. Each
// exponential is computed once and kept for the division. `scratch`: (labels + 2) * n doubles.
void unary_of_block(const float* scores, int labels, int64_t pixels, int64_t begin, int64_t n, double* scratch,
                    float* out, int64_t out_stride) {
  double* top = scratch;
  double* sum = top + n;
  double* ex = sum + n;
  for (int64_t i = 0; i < n; ++i) top[i] = scores[begin + i];
  for (int l = 1; l < labels; ++l)
    for (int64_t i = 0; i < n; ++i) top[i] = std::max(top[i], static_cast<double>(scores[l * pixels + begin + i]));
  std::fill(sum, sum + n, 0.0);
  for (int l = 0; l < labels; ++l)
    for (int64_t i = 0; i < n; ++i) {
      const double e = std::exp(static_cast<double>(scores[l * pixels + begin + i]) - top[i]);
      ex[l * n + i] = e;
      sum[i] += e;
    }
  for (int l = 0; l < labels; ++l)
    for (int64_t i = 0; i < n; ++i) {
      const double p = ex[l * n + i] / sum[i];
      out[l * out_stride + i] = static_cast<float>(-std::log(std::clamp(p, 1e-5, 1.0)));
    }
}

}  // namespace

std::vector<float> unary_from_probabilities(const float* scores, int labels, int64_t pixels) {
  check_scores(scores, labels, pixels);
  // Blocks of pixels go to all hardware threads.
  constexpr int64_t kBlock = 1024;
  std::vector<float> unary(static_cast<size_t>(labels) * pixels);
  cpu::parallel_ranges((pixels + kBlock - 1) / kBlock, cpu::resolve_threads(0), [&](int64_t first, int64_t last) {
    std::vector<double> scratch(static_cast<size_t>(labels + 2) * kBlock);
    for (int64_t block = first; block < last; ++block) {
      const int64_t begin = block * kBlock, n = std::min(kBlock, pixels - begin);
      unary_of_block(scores, labels, pixels, begin, n, scratch.data(), unary.data() + begin, pixels);
    }
  }, 1);
  return unary;
}

namespace {

struct Layout {
  int threads = 1;
  int width_lanes = 4;
  int stride = 4;
};

Layout check_and_lay_out(const uint8_t* rgb, int height, int width, const float* values, int labels,
                         const DenseCrfParams& params, const char* what) {
  check_dense_crf_arguments(height, width, labels, params);
  if (rgb == nullptr) throw Error("dense CRF: image is null");
  if (values == nullptr) throw Error(std::string("dense CRF: ") + what + " is null");
  Layout layout;
  layout.threads = cpu::resolve_threads(params.threads);
  layout.width_lanes = vector_width(params.vector_width, labels);
  layout.stride = (labels + layout.width_lanes - 1) / layout.width_lanes * layout.width_lanes;
  return layout;
}

// Mean-field inference on -U already in the pixel-major layout (negated_pixel_major); Q into
// result.q unless `marginals` is false.
DenseCrfResult mean_field(const uint8_t* rgb, int height, int width, const cpu::ZeroedArray<float>& neg_unary,
                          int labels, const Layout& layout, const DenseCrfParams& params, bool marginals,
                          double unary_seconds) {
  const int threads = layout.threads, width_lanes = layout.width_lanes, stride = layout.stride;
  const int64_t pixels = static_cast<int64_t>(height) * width;
  DenseCrfResult result;
  result.num_labels = labels;
  result.height = height;
  result.width = width;
  result.timings.unary = unary_seconds;
  if (marginals) result.q.resize(static_cast<size_t>(pixels) * labels);
  result.labels.resize(pixels);

  // Kernels in the reference's order of addition: Gaussian, then bilateral. A zero weight
  // adds exactly 0 to every logit, so that kernel is left out.
  std::vector<PairwiseKernel> kernels;
  kernels.reserve(2);
  const auto lattices_start = std::chrono::steady_clock::now();
  if (params.iterations > 0 && params.gaussian_weight != 0.0f) {
    kernels.emplace_back();
    kernels.back().weight = params.gaussian_weight;
    init_kernel(kernels.back(), positional_features(height, width, params.gaussian_sxy), 2, pixels, stride, threads);
  }
  if (params.iterations > 0 && params.bilateral_weight != 0.0f) {
    kernels.emplace_back();
    kernels.back().weight = params.bilateral_weight;
    init_kernel(kernels.back(), bilateral_features(rgb, height, width, params.bilateral_sxy, params.bilateral_srgb),
                5, pixels, stride, threads);
  }
  result.timings.lattices = seconds_since(lattices_start);
  // Without kernels every update gives softmax(-U) again.
  const int passes = kernels.empty() ? 1 : params.iterations + 1;

  Pass pass;
  pass.labels = labels;
  pass.nb = stride / width_lanes;
  pass.pixels = pixels;
  pass.alpha_last = labels <= 2;
  pass.neg_unary = neg_unary.data();
  pass.q_out = marginals ? result.q.data() : nullptr;
  pass.labels_out = result.labels.data();
  pass.kernels = kernels.data();
  pass.kernel_count = static_cast<int>(kernels.size());
  auto run_passes = [&](auto width, auto nb) {
    for (int n = 0; n < passes; ++n) {
      if (n > 0) {
        const auto start = std::chrono::steady_clock::now();
        blur_targets(kernels, stride, threads);
        result.timings.blurs += seconds_since(start);
      }
      pass.slice = n > 0;
      pass.splat = n + 1 < passes;
      const auto start = std::chrono::steady_clock::now();
      run_pass<decltype(nb)::value, decltype(width)::value>(pass, threads);
      result.timings.passes += seconds_since(start);
    }
  };
  if (width_lanes == 8)
    with_block_count<8>(pass.nb, [&](auto nb) { run_passes(std::integral_constant<int, 8>{}, nb); });
  else
    with_block_count<4>(pass.nb, [&](auto nb) { run_passes(std::integral_constant<int, 4>{}, nb); });
  return result;
}

}  // namespace

DenseCrfResult dense_crf(const uint8_t* rgb, int height, int width, const float* unary, int labels,
                         const DenseCrfParams& params) {
  const Layout layout = check_and_lay_out(rgb, height, width, unary, labels, params, "unary");
  const int64_t pixels = static_cast<int64_t>(height) * width;
  const auto start = std::chrono::steady_clock::now();
  const cpu::ZeroedArray<float> neg_unary = negated_pixel_major(
      [&](int64_t begin, int64_t n, float* tile, std::vector<double>&) {
        for (int l = 0; l < labels; ++l)
          std::memcpy(tile + static_cast<int64_t>(l) * kTransposeTile, unary + l * pixels + begin, sizeof(float) * n);
      },
      labels, width, pixels, layout.stride, layout.threads);
  return mean_field(rgb, height, width, neg_unary, labels, layout, params, true, seconds_since(start));
}

DenseCrfResult dense_crf_labels_from_scores(const uint8_t* rgb, int height, int width, const float* scores,
                                            int labels, const DenseCrfParams& params) {
  const Layout layout = check_and_lay_out(rgb, height, width, scores, labels, params, "scores");
  const int64_t pixels = static_cast<int64_t>(height) * width;
  const auto start = std::chrono::steady_clock::now();
  check_scores(scores, labels, pixels);
  const cpu::ZeroedArray<float> neg_unary = negated_pixel_major(
      [&](int64_t begin, int64_t n, float* tile, std::vector<double>& scratch) {
        scratch.resize(static_cast<size_t>(labels + 2) * kTransposeTile);
        unary_of_block(scores, labels, pixels, begin, n, scratch.data(), tile, kTransposeTile);
      },
      labels, width, pixels, layout.stride, layout.threads);
  return mean_field(rgb, height, width, neg_unary, labels, layout, params, false, seconds_since(start));
}

DenseCrfResult dense_crf(const std::vector<uint8_t>& rgb, int height, int width, const std::vector<float>& unary,
                         int labels, const DenseCrfParams& params) {
  check_sizes(height, width, labels);
  const int64_t pixels = static_cast<int64_t>(height) * width;
  if (static_cast<int64_t>(rgb.size()) != pixels * 3)
    throw Error("dense CRF: image has " + std::to_string(rgb.size()) + " bytes, expected " +
                std::to_string(pixels * 3) + " for " + std::to_string(height) + "x" + std::to_string(width) + "x3");
  if (static_cast<int64_t>(unary.size()) != pixels * labels)
    throw Error("dense CRF: unary has " + std::to_string(unary.size()) + " values, expected " +
                std::to_string(pixels * labels) + " (" + std::to_string(labels) + " labels x " +
                std::to_string(height) + "x" + std::to_string(width) + ")");
  return dense_crf(rgb.data(), height, width, unary.data(), labels, params);
}

}  // namespace pnpovss::crf
