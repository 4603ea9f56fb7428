// Permutohedral lattice (Adams, Baek & Davis 2010) for Gaussian filtering with unit standard
// deviation in a d-dimensional feature space, arranged to reproduce the lattice of the original
// Dense CRF code (Kraehenbuehl & Koltun 2011, as vendored by pydensecrf) to float rounding:
// the same elevation, rounding (half-even, as its SSE build), rank, barycentric weights, splat
// order, blur order, slice scaling and the extra vertices its SSE build inserts for padded
// points. Each filtered value goes through the reference's sequence of float operations.
#pragma once

#include <cstdint>
#include <vector>

#include "pnpovss/cpu/parallel.h"
#include "pnpovss/cpu/zeroed_array.h"

namespace pnpovss::crf {

// Shared with the tensor lattice (tensor_lattice.h), so that both place points alike:
// the diagonal of the elevation matrix for a unit-std Gaussian, as the reference computes it in
// float (index i scales feature i);
std::vector<float> elevation_scales(int dim);
// the largest |remainder-0 coordinate| whose vertices and blur neighbours fit 16-bit keys;
float lattice_coordinate_limit(int dim);
// the key change (d coordinates) to the first blur neighbour along `axis` (0..d): every stored
// coordinate -1, and coordinate `axis` +d when axis < d; the second neighbour is the negation.
void blur_neighbour_offsets(int dim, int axis, int* first);
// the slice factor 1/(1 + 2^-d).
float slice_alpha(int dim);

struct LatticeOptions {
  // The reference's SSE build initialises points in blocks of 4 and pads the last block with
  // zero feature vectors whose simplex vertices stay in the lattice; the blur passes through
  // them. When the point count is not a multiple of 4 this moves filtered values (Q by up to
  // ~4e-3), so parity needs it; a textbook lattice leaves it off.
  bool sse_padding_vertices = true;
  int threads = 1;  // for building; the result does not depend on it
  // Blur neighbours are found by sorting packed keys when they fit in 64 bits (fast), else by
  // hash lookups; false forces the lookups (for tests: both give the same lattice).
  bool sorted_neighbours = true;
};

class PermutohedralLattice {
 public:
  PermutohedralLattice() = default;

  // Builds the lattice for `points` feature vectors of `dim` floats each (point-major).
  // Features must already be divided by the kernel's standard deviations. Throws
  // pnpovss::Error on bad sizes or features whose lattice keys overflow 16 bits.
  void build(const float* features, int64_t points, int dim, const LatticeOptions& options = {});

  int dim() const { return dim_; }
  int64_t points() const { return points_; }
  int64_t vertices() const { return vertices_; }

  // Blurs (vertices + 1) rows of `stride` floats (row 0 stays zero and stands for missing
  // neighbours, vertex v lives in row v + 1) along axes 0..d in order, each step
  // v' = v + (n1 + n2)/2 with missing neighbours 0. Blurs `rows`, using `scratch` as the second
  // buffer, and returns whichever of the two holds the result. With `rings` (at least
  // blur_ring_floats(stride, threads) floats), pairs of axes run in one sweep over the
  // vertices: the first axis's rows go to a ring buffer that the second reads while they are
  // still in cache, which halves the memory traffic; every value is computed as one axis at a
  // time computes it, so the result is the same bits.
  float* blur(float* rows, float* scratch, int stride, int threads, float* rings = nullptr) const;
  // The ring buffer space that blur needs for rows of `stride` floats on `threads` threads (0
  // when no pair of axes is fused: their neighbours lie too far apart in vertex order).
  size_t blur_ring_floats(int stride, int threads) const;

  // The d+1 simplex corners of a point: their vertex ids, barycentric weights, and the slice
  // factor alpha = 1/(1 + 2^-d). For fused loops that splat or slice one point at a time.
  const int32_t* corner_vertices(int64_t point) const { return &offsets_[static_cast<size_t>(point) * (dim_ + 1)]; }
  const float* corner_weights(int64_t point) const { return &weights_[static_cast<size_t>(point) * (dim_ + 1)]; }
  float alpha() const { return alpha_; }
  // Bit r set: corner r of `point` is the first corner of any point, in point order, on its
  // vertex. A splat in point order can store instead of add there, so the rows need not be
  // cleared first, except those of untouched_vertices().
  uint32_t first_touches(int64_t point) const { return first_touches_[static_cast<size_t>(point)]; }
  // The vertices no point has a corner on (those the padding points add).
  const std::vector<int32_t>& untouched_vertices() const { return untouched_; }

  // Whole filter: out (points x channels, point-major) = K * in, K the lattice's approximation
  // of exp(-|f_i - f_j|^2 / 2) including the self term. `out` may alias `in`.
  void compute(const float* in, float* out, int channels, int threads) const;

 private:
  // Locates every point (its simplex and weights) and numbers the simplex corners of all points
  // in point order, as the reference's hash table does (with several threads, per range of
  // points, merged afterwards), and links every vertex to its blur neighbours. When the keys
  // pack into 64 bits the vertices are then renumbered in key order, which keeps blur
  // neighbours close in memory.
  void index_vertices(const float* features, const LatticeOptions& options);
  // Fills first_touches_ and untouched_ from offsets_.
  void find_first_touches();
  // Fills reach_ from neighbours_.
  void find_reach();
  // Whether the fused blur runs axis `second` together with the axis before it (ring rows for
  // `stride` floats within kMaxRingBytes); the ring rows it needs per thread.
  int64_t ring_rows(int second) const { return 2 * reach_[second] + 1; }
  bool fuses(int second, int stride) const;
  // Parts the fused blur splits the vertices into (one per thread, each long against the ring).
  int fused_parts(int threads) const;
  void blur_axis(int axis, const float* src, float* dst, int stride, int threads) const;
  void blur_axis_pair(int first, const float* src, float* dst, int stride, int parts, float* rings,
                      int64_t ring_capacity) const;

  int dim_ = 0;
  int64_t points_ = 0;
  int64_t vertices_ = 0;
  float alpha_ = 1.0f;
  // Arrays of a size fixed per build start as fresh zero pages (zeroed_array.h): for a
  // 24-megapixel photo they hold gigabytes, whose page faults cost more than filling them.
  cpu::ZeroedArray<int32_t> offsets_;         // points x (d+1): vertex of each simplex corner
  cpu::ZeroedArray<float> weights_;           // points x (d+1): barycentric weight of that corner
  cpu::ZeroedArray<int32_t> neighbours_;      // (d+1) x vertices x 2: rows of the two blur neighbours
  cpu::ZeroedArray<uint32_t> first_touches_;  // points: see first_touches()
  std::vector<int32_t> untouched_;
  std::vector<int64_t> reach_;  // per axis: the largest |neighbour - vertex| in vertex order
};

}  // namespace pnpovss::crf
