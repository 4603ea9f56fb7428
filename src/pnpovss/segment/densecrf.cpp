#include "pnpovss/segment/densecrf.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>

#include "pnpovss/error.h"
#include "pnpovss/segment/parallel.h"
#include "pnpovss/segment/permutohedral.h"

namespace pnpovss::segment {

namespace {

// The per-pixel code below runs over a compile-time number of vectors; unrolled and inlined,
// a pixel's labels stay in registers.
#define PNPOVSS_INLINE inline __attribute__((always_inline))
#define PNPOVSS_UNROLL _Pragma("GCC unroll 16")

// Vectors of W floats. W = 4 is plain SSE2; W = 8 is compiled for AVX2 only and chosen at run
// time. Every operation is lane-wise IEEE arithmetic without fused multiply-add, so both
// widths give bit-identical results.
template <int W>
struct Vec;
template <>
struct Vec<4> {
  typedef float F __attribute__((vector_size(16)));
  typedef int32_t I __attribute__((vector_size(16)));
};
template <>
struct Vec<8> {
  typedef float F __attribute__((vector_size(32)));
  typedef int32_t I __attribute__((vector_size(32)));
};

// Helpers that take or return 8-float vectors are only ever inlined into functions compiled
// for AVX2, so the non-AVX calling convention GCC warns about is never used.
#pragma GCC diagnostic ignored "-Wpsabi"

// The explicit alignment matters: without AVX enabled GCC caps the alignment of a 32-byte
// vector type at 16, and heap or stack blocks must still suit the AVX2 code's aligned moves.
template <int W>
struct alignas(4 * W) Block {
  typename Vec<W>::F v;
};

template <int W>
PNPOVSS_INLINE typename Vec<W>::F load(const float* p) {
  typename Vec<W>::F v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <int W>
PNPOVSS_INLINE void store(float* p, const typename Vec<W>::F& v) {
  std::memcpy(p, &v, sizeof v);
}

template <int W>
PNPOVSS_INLINE typename Vec<W>::F splat_value(float x) {
  typename Vec<W>::F v = {};
  return v + x;
}

// Eigen 3.3's SSE pexp, which the reference's softmax applies to each whole packet of four
// labels: Cephes range reduction and polynomial, clamped to +-88.376 (2^n underflows to 0 at
// the low end). SSE2 has no floor, so it truncates and corrects, as here. Lane-wise, so any
// vector width gives the same values.
template <int W>
PNPOVSS_INLINE typename Vec<W>::F packet_exp(typename Vec<W>::F x) {
  using F = typename Vec<W>::F;
  using I = typename Vec<W>::I;
  const F hi = splat_value<W>(88.3762626647950f), lo = splat_value<W>(-88.3762626647949f);
  x = x < hi ? x : hi;
  x = x > lo ? x : lo;
  const F t = x * 1.44269504088896341f + 0.5f;
  F n = __builtin_convertvector(__builtin_convertvector(t, I), F);
  n = n > t ? n - 1.0f : n;
  x = x - n * 0.693359375f;
  x = x - n * -2.12194440e-4f;
  const F z = x * x;
  F y = splat_value<W>(1.9875691500e-4f);
  y = y * x + 1.3981999507e-3f;
  y = y * x + 8.3334519073e-3f;
  y = y * x + 4.1665795894e-2f;
  y = y * x + 1.6666665459e-1f;
  y = y * x + 5.0000001201e-1f;
  y = y * z + x;
  y = y + 1.0f;
  const I bits = (__builtin_convertvector(n, I) + 127) << 23;
  F scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

// The reference's expAndNormalize for one pixel as Eigen evaluates it on a 16-byte aligned
// VectorXf: subtract the max; exp by 4-float packets over whole groups of four labels and
// std::exp on the rest; sum with two packet accumulators, a horizontal add and the scalar tail
// (plain left to right below four labels); divide. Lanes past `labels` come out 0. `ex` is
// scratch for nb * W floats.
template <int NB, int W>
PNPOVSS_INLINE void softmax(const Block<W>* t, Block<W>* q, int labels, int nb_runtime, float* ex) {
  using F = typename Vec<W>::F;
  typedef float F4 __attribute__((vector_size(16)));
  const int nb = NB > 0 ? NB : nb_runtime;
  labels = std::min(labels, nb * W);  // always true; tells the compiler the bounds below
  const int whole = labels / W;       // vectors holding labels only
  float top = t[0].v[0];
  if (whole > 0) {
    F m = t[0].v;
    PNPOVSS_UNROLL
    for (int b = 1; b < (NB > 0 ? NB : nb); ++b)
      if (b < whole) m = m > t[b].v ? m : t[b].v;
    for (int j = 0; j < W; ++j) top = std::max(top, m[j]);
  }
  for (int l = whole * W; l < labels; ++l) top = std::max(top, t[l / W].v[l % W]);

  // Exponentials, then the tail and padding lanes fixed up in memory.
  PNPOVSS_UNROLL
  for (int b = 0; b < nb; ++b) store<W>(ex + W * b, packet_exp<W>(t[b].v - top));
  const int packets = labels / 4;
  for (int l = 4 * packets; l < labels; ++l) ex[l] = std::exp(t[l / W].v[l % W] - top);
  for (int l = labels; l < nb * W; ++l) ex[l] = 0.0f;

  float sum;
  if (packets == 0) {
    sum = ex[0];
    for (int l = 1; l < labels; ++l) sum += ex[l];
  } else {
    auto packet = [&](int k) {
      F4 v;
      std::memcpy(&v, ex + 4 * k, sizeof v);
      return v;
    };
    F4 r0 = packet(0);
    if (packets > 1) {
      F4 r1 = packet(1);
      const int paired = packets / 2 * 2;
      for (int k = 2; k < paired; k += 2) {
        r0 = r0 + packet(k);
        r1 = r1 + packet(k + 1);
      }
      r0 = r0 + r1;
      if (packets > paired) r0 = r0 + packet(paired);
    }
    sum = (r0[0] + r0[2]) + (r0[1] + r0[3]);
    for (int l = 4 * packets; l < labels; ++l) sum += ex[l];
  }
  PNPOVSS_UNROLL
  for (int b = 0; b < nb; ++b) q[b].v = load<W>(ex + W * b) / sum;
}

// Kernels with at least one lattice vertex per this many pixels are prefetched pixel by pixel.
// With fewer vertices each row serves many nearby pixels and stays in cache, and prefetching
// costs about 13% on one thread (the synthetic benchmark scene: one bilateral vertex per 6.4
// pixels). Photos have one per 0.7-1.4 pixels; there it saves 9-25%.
constexpr int64_t kPrefetchPixelsPerVertex = 4;

struct PairwiseKernel {
  float weight = 0.0f;
  PermutohedralLattice lattice;
  std::vector<float> norm;  // 1/sqrt(K*1): NORMALIZE_SYMMETRIC
  // Vertex values: `source` holds the blurred Q of the previous pass (read by the slice),
  // `target` receives the splat of the new Q, `spare` is the blur's second buffer.
  std::vector<float> buffers[3];
  int source = 0, target = 1, spare = 2;
  bool prefetch = false;  // whether the passes prefetch this kernel's rows (see prefetch_rows)
};

void init_kernel(PairwiseKernel& kernel, const std::vector<float>& features, int dim, int64_t pixels, int stride,
                 int threads) {
  LatticeOptions options;
  options.threads = threads;
  kernel.lattice.build(features.data(), pixels, dim, options);
  kernel.norm.assign(pixels, 1.0f);
  kernel.lattice.compute(kernel.norm.data(), kernel.norm.data(), 1, threads);
  // As the reference: float row sum, then 1/sqrt(n + 1e-20) in double, stored as float.
  for (float& n : kernel.norm) n = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n) + 1e-20));
  for (auto& b : kernel.buffers) b.assign(static_cast<size_t>(kernel.lattice.vertices() + 1) * stride, 0.0f);
  kernel.prefetch = kernel.lattice.vertices() * kPrefetchPixelsPerVertex >= pixels;
}

// Blurs each kernel's freshly splatted target; the result becomes the next source and the
// old source, cleared, the next target.
void blur_targets(std::vector<PairwiseKernel>& kernels, int stride, int threads) {
  for (PairwiseKernel& k : kernels) {
    float* result = k.lattice.blur(k.buffers[k.target].data(), k.buffers[k.spare].data(), stride, threads);
    const int done = result == k.buffers[k.target].data() ? k.target : k.spare;
    const int other = done == k.target ? k.spare : k.target;
    const int old_source = k.source;
    k.source = done;
    k.target = old_source;
    k.spare = other;
    std::vector<float>& t = k.buffers[k.target];
    parallel_ranges(static_cast<int64_t>(t.size()), threads, [&](int64_t begin, int64_t end) {
      std::fill(t.begin() + begin, t.begin() + end, 0.0f);
    }, 1 << 16);
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
  float* q_out = nullptr;         // the last pass: Q in the API layout (labels x pixels)
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
// reference's splat does point by point.
template <int NB, int W>
PNPOVSS_INLINE void splat_pixel(const Pass& p, int64_t i, const Block<W>* q, Block<W>* x) {
  const int nb = NB > 0 ? NB : p.nb;
  const int64_t stride = W * nb;
  for (int k = 0; k < p.kernel_count; ++k) {
    PairwiseKernel& kernel = p.kernels[k];
    const int32_t* vertex = kernel.lattice.corner_vertices(i);
    const float* weight = kernel.lattice.corner_weights(i);
    float* rows = kernel.buffers[kernel.target].data();
    const float norm = kernel.norm[i];
    PNPOVSS_UNROLL
    for (int b = 0; b < nb; ++b) x[b].v = q[b].v * norm;
    for (int r = 0; r <= kernel.lattice.dim(); ++r) {
      float* row = rows + (vertex[r] + 1) * stride;
      const float w = weight[r];
      PNPOVSS_UNROLL
      for (int b = 0; b < nb; ++b) store<W>(row + W * b, load<W>(row + W * b) + w * x[b].v);
    }
  }
}

// A pixel's working vectors: locals (registers, once inlined) for a compile-time count,
// heap memory otherwise.
template <int NB, int W>
struct PixelVectors {
  explicit PixelVectors(int) {}
  Block<W> t[NB], acc[NB], q[NB], x[NB];
  alignas(4 * W) float e[NB * W];
};
template <int W>
struct PixelVectors<0, W> {
  explicit PixelVectors(int nb) : t(nb), acc(nb), q(nb), x(nb), e(static_cast<size_t>(nb) * W) {}
  std::vector<Block<W>> t, acc, q, x;
  std::vector<float> e;
};

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
// Eigen M x N column-major matrices), padded with zeros to whole vectors. Converted tile by
// tile so that both sides stay in cache; the buffer is not cleared first, since every value is
// written once. Throws on the first non-finite unary.
std::unique_ptr<float[]> negated_pixel_major(const float* unary, int labels, int height, int width, int stride,
                                             int threads) {
  const int64_t pixels = static_cast<int64_t>(height) * width;
  std::unique_ptr<float[]> out(new float[static_cast<size_t>(pixels) * stride]);
  float* rows = out.get();
  parallel_ranges((pixels + kTransposeTile - 1) / kTransposeTile, threads, [&](int64_t first, int64_t last) {
    for (int64_t tile = first; tile < last; ++tile) {
      const int64_t begin = tile * kTransposeTile, end = std::min(pixels, begin + kTransposeTile);
      bool finite = true;
      for (int l = 0; l < labels; ++l) {
        const float* u = unary + l * pixels;
        for (int64_t i = begin; i < end; ++i) {
          finite &= std::fabs(u[i]) <= std::numeric_limits<float>::max();
          rows[i * stride + l] = -u[i];
        }
      }
      for (int64_t i = begin; i < end; ++i)
        for (int l = labels; l < stride; ++l) rows[i * stride + l] = 0.0f;
      if (finite) continue;
      for (int l = 0; l < labels; ++l)
        for (int64_t i = begin; i < end; ++i)
          if (!std::isfinite(unary[l * pixels + i]))
            throw Error("dense CRF: unary of label " + std::to_string(l) + " at pixel (" + std::to_string(i / width) +
                        ", " + std::to_string(i % width) + ") is not finite");
    }
  }, 1);
  return out;
}

// The last pass: Q of pixels [begin, end) from -U and all messages, written tile by tile into
// the labels x pixels output, with the argmax (first maximum, as numpy and Eigen).
template <int NB, int W>
PNPOVSS_INLINE void final_pass_impl(const Pass& p, int64_t begin, int64_t end) {
  const int nb = NB > 0 ? NB : p.nb;
  const int64_t stride = W * nb;
  PixelVectors<NB, W> v(nb);
  std::vector<float> tile(static_cast<size_t>(kTransposeTile) * stride);
  for (int64_t first = begin; first < end; first += kTransposeTile) {
    const int64_t last = std::min(end, first + kTransposeTile);
    for (int64_t i = first; i < last; ++i) {
      if (p.slice && i + kPrefetchDistance < end)
        prefetch_rows<NB, W>(p, i + kPrefetchDistance, 0, p.kernel_count, true, false);
      load_row<NB, W>(p.neg_unary + i * stride, std::data(v.t), nb);
      if (p.slice) add_messages<NB, W>(p, i, 0, p.kernel_count, std::data(v.t), std::data(v.acc));
      softmax<NB, W>(std::data(v.t), std::data(v.q), p.labels, nb, std::data(v.e));
      store_row<NB, W>(&tile[(i - first) * stride], std::data(v.q), nb);
    }
    for (int l = 0; l < p.labels; ++l) {
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

template <int NB, int W>
PNPOVSS_INLINE void fused_pass_impl(const Pass& p) {
  const int nb = NB > 0 ? NB : p.nb;
  PixelVectors<NB, W> v(nb);
  for (int64_t i = 0; i < p.pixels; ++i) {
    if (i + kPrefetchDistance < p.pixels)
      prefetch_rows<NB, W>(p, i + kPrefetchDistance, 0, p.kernel_count, p.slice, p.splat);
    load_row<NB, W>(p.neg_unary + i * W * nb, std::data(v.t), nb);
    if (p.slice) add_messages<NB, W>(p, i, 0, p.kernel_count, std::data(v.t), std::data(v.acc));
    softmax<NB, W>(std::data(v.t), std::data(v.q), p.labels, nb, std::data(v.e));
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
    for (int64_t c = 0; c < chunks; ++c) {
      if (s.ahead) wait_for(s.sliced, c + 1);
      wait_for(s.splatted, c + 1 - kQueueChunks);  // the Q slot is free again
      for (int64_t i = begin_of(c); i < end_of(c); ++i) {
        if (p.slice && i + kPrefetchDistance < p.pixels)
          prefetch_rows<NB, W>(p, i + kPrefetchDistance, s.ahead, p.kernel_count, true, false);
        load_row<NB, W>(s.ahead ? ring_row(s.logits_ring, 2, i) : p.neg_unary + i * stride, t, nb);
        if (p.slice) add_messages<NB, W>(p, i, s.ahead, p.kernel_count, t, acc);
        softmax<NB, W>(t, q, p.labels, nb, std::data(v.e));
        store_row<NB, W>(ring_row(s.q_ring, kQueueChunks, i), q, nb);
      }
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
    parallel_ranges(p.pixels, threads, [&](int64_t begin, int64_t end) { K::final_pass(p, begin, end); }, 4096);
  } else if (threads < 2 || p.pixels < 2 * kPipelineChunk) {
    K::fused(p);
  } else {
    PipelineState s;
    s.ahead = p.slice && p.kernel_count > 1 ? 1 : 0;
    if (s.ahead) s.logits_ring.assign(2 * kPipelineChunk * W * p.nb, 0.0f);
    s.q_ring.assign(kQueueChunks * kPipelineChunk * W * p.nb, 0.0f);
    parallel_ranges(2, 2, [&](int64_t role, int64_t) { K::pipeline_role(p, s, static_cast<int>(role)); }, 1);
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

// Vector width: `requested` (4 or 8) when given. Otherwise 8 when the CPU has AVX2, unless rows
// of 4-float vectors need less padding (labels % 8 in 1..4): the passes are bound by memory
// traffic to the lattice rows, so fewer padded lanes beat wider instructions there.
int vector_width(int requested, int labels) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (requested == 8 && !avx2) throw Error("dense CRF: vector_width 8 needs a CPU with AVX2");
  if (requested != 0) return requested;
  const bool less_padding = (labels + 3) / 4 * 4 < (labels + 7) / 8 * 8;
  return avx2 && !less_padding ? 8 : 4;
}

// Features divided by the stds up front (x = column, y = row), so the lattice filters with a
// unit Gaussian; int / float division as in DenseCRF2D.
std::vector<float> positional_features(int height, int width, float sxy) {
  std::vector<float> f(static_cast<size_t>(height) * width * 2);
  float* out = f.data();
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      *out++ = static_cast<float>(x) / sxy;
      *out++ = static_cast<float>(y) / sxy;
    }
  return f;
}

std::vector<float> bilateral_features(const uint8_t* rgb, int height, int width, float sxy, float srgb) {
  std::vector<float> f(static_cast<size_t>(height) * width * 5);
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

std::vector<float> unary_from_probabilities(const float* scores, int labels, int64_t pixels) {
  if (scores == nullptr) throw Error("unary_from_probabilities: scores are null");
  if (labels < 1) throw Error("unary_from_probabilities: need at least one label");
  if (pixels < 1) throw Error("unary_from_probabilities: no pixels");
  const int64_t total = static_cast<int64_t>(labels) * pixels;
  for (int64_t k = 0; k < total; ++k)
    if (!std::isfinite(scores[k]))
      throw Error("unary_from_probabilities: score of label " + std::to_string(k / pixels) + " at pixel " +
                  std::to_string(k % pixels) + " is not finite");
  // Softmax in double (the reference uses float32 or float64 depending on the caller; double
  // is within float rounding of both), then -log(clip(p, 1e-5, 1)) stored as float32. Blocks of
  // pixels go to all hardware threads; each exponential is computed once and kept for the
  // division.
  constexpr int64_t kBlock = 1024;
  std::vector<float> unary(total);
  parallel_ranges((pixels + kBlock - 1) / kBlock, resolve_threads(0), [&](int64_t first, int64_t last) {
    std::vector<double> top(kBlock), sum(kBlock), ex(static_cast<size_t>(kBlock) * labels);
    for (int64_t block = first; block < last; ++block) {
      const int64_t begin = block * kBlock, n = std::min(kBlock, pixels - begin);
      for (int64_t i = 0; i < n; ++i) top[i] = scores[begin + i];
      for (int l = 1; l < labels; ++l)
        for (int64_t i = 0; i < n; ++i) top[i] = std::max(top[i], static_cast<double>(scores[l * pixels + begin + i]));
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int l = 0; l < labels; ++l)
        for (int64_t i = 0; i < n; ++i) {
          const double e = std::exp(static_cast<double>(scores[l * pixels + begin + i]) - top[i]);
          ex[l * kBlock + i] = e;
          sum[i] += e;
        }
      for (int l = 0; l < labels; ++l)
        for (int64_t i = 0; i < n; ++i) {
          const double p = ex[l * kBlock + i] / sum[i];
          unary[l * pixels + begin + i] = static_cast<float>(-std::log(std::clamp(p, 1e-5, 1.0)));
        }
    }
  }, 1);
  return unary;
}

DenseCrfResult dense_crf(const uint8_t* rgb, int height, int width, const float* unary, int labels,
                         const DenseCrfParams& params) {
  check_sizes(height, width, labels);
  check_params(params);
  if (rgb == nullptr) throw Error("dense CRF: image is null");
  if (unary == nullptr) throw Error("dense CRF: unary is null");
  const int threads = resolve_threads(params.threads);
  const int64_t pixels = static_cast<int64_t>(height) * width;
  const int width_lanes = vector_width(params.vector_width, labels);
  const int stride = (labels + width_lanes - 1) / width_lanes * width_lanes;

  const std::unique_ptr<float[]> neg_unary = negated_pixel_major(unary, labels, height, width, stride, threads);
  DenseCrfResult result;
  result.num_labels = labels;
  result.height = height;
  result.width = width;
  result.q.resize(static_cast<size_t>(pixels) * labels);
  result.labels.resize(pixels);

  // Kernels in the reference's order of addition: Gaussian, then bilateral. A zero weight
  // adds exactly 0 to every logit, so that kernel is left out.
  std::vector<PairwiseKernel> kernels;
  kernels.reserve(2);
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
  // Without kernels every update gives softmax(-U) again.
  const int passes = kernels.empty() ? 1 : params.iterations + 1;

  Pass pass;
  pass.labels = labels;
  pass.nb = stride / width_lanes;
  pass.pixels = pixels;
  pass.alpha_last = labels <= 2;
  pass.neg_unary = neg_unary.get();
  pass.q_out = result.q.data();
  pass.labels_out = result.labels.data();
  pass.kernels = kernels.data();
  pass.kernel_count = static_cast<int>(kernels.size());
  auto run_passes = [&](auto width, auto nb) {
    for (int n = 0; n < passes; ++n) {
      if (n > 0) blur_targets(kernels, stride, threads);
      pass.slice = n > 0;
      pass.splat = n + 1 < passes;
      run_pass<decltype(nb)::value, decltype(width)::value>(pass, threads);
    }
  };
  if (width_lanes == 8)
    with_block_count<8>(pass.nb, [&](auto nb) { run_passes(std::integral_constant<int, 8>{}, nb); });
  else
    with_block_count<4>(pass.nb, [&](auto nb) { run_passes(std::integral_constant<int, 4>{}, nb); });
  return result;
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

}  // namespace pnpovss::segment
