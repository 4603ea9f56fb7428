// The permutohedral lattice of permutohedral.h written with tensor operations, so that it runs
// on whatever device its features are on (a GPU included). Points are placed with the same
// float operations (elevation, half-even rounding, rank, barycentric weights), vertices are
// the same set (padding vertices included) numbered in key order, and splat, blur and slice
// perform the same additions and products:
//   - splat: one indexed add of w * x over (point, corner) pairs in point order. On the CPU
//     libtorch adds them one after another, so each vertex sums in the reference's order; on a
//     GPU the adds are atomic and their order varies (float rounding differs);
//   - blur:  v' = v + (n1 + n2) * 0.5 along axes 0..d, neighbours gathered by row (row 0 is the
//     zero row that stands for a missing neighbour);
//   - slice: alpha * sum_r w_r * row_r, as a sum of gathers in corner order.
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace pnpovss::crf {

struct TensorLattice {
  int dim = 0;
  int64_t points = 0;
  int64_t vertices = 0;
  float alpha = 1.0f;          // slice factor 1/(1 + 2^-d)
  torch::Tensor corner_rows;   // [points, d+1] int64: row (vertex + 1) of each simplex corner
  torch::Tensor weights;       // [points, d+1] float: barycentric weight of that corner
  torch::Tensor neighbours;    // [d+1, 2, vertices + 1] int64: rows of the two blur neighbours
                               // of each row along each axis, 0 when missing (row 0: 0, 0)
};

// Builds the lattice of `features` ([points, d] float32, divided by the kernel's standard
// deviations; any device). `sse_padding_vertices` as LatticeOptions. Throws pnpovss::Error on
// bad shapes, and on features that are not finite or too large for the reference's 16-bit
// keys (as PermutohedralLattice::build).
TensorLattice build_tensor_lattice(const torch::Tensor& features, bool sse_padding_vertices = true);

// Vertex rows [vertices + 1, C] of sum over points of w * x_i (x: [points, C] float32).
torch::Tensor tensor_splat(const TensorLattice& lattice, const torch::Tensor& x);
// The blur along every axis in order (a new tensor).
torch::Tensor tensor_blur(const TensorLattice& lattice, const torch::Tensor& rows);
// [points, C]: alpha * sum_r w_r * rows[corner_r]. `alpha_last` is the reference's scalar order
// for up to 2 values per point ((w * row) * alpha); otherwise (w * alpha) * row.
torch::Tensor tensor_slice(const TensorLattice& lattice, const torch::Tensor& rows, bool alpha_last);
// Splat, blur and slice: K * x with the reference's rounding order for C values per point.
torch::Tensor tensor_filter(const TensorLattice& lattice, const torch::Tensor& x);

}  // namespace pnpovss::crf
