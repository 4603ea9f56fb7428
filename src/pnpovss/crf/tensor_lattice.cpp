#include "pnpovss/crf/tensor_lattice.h"

#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "pnpovss/crf/permutohedral.h"
#include "pnpovss/error.h"

namespace pnpovss::crf {

namespace {

constexpr int kMaxDim = 16;
// Source floats one indexed add of the splat handles at once (bounds its temporary).
constexpr int64_t kSplatChunkFloats = int64_t{16} << 20;

// Where each point lands, as Locator in permutohedral.cpp computes it, for all points at once.
struct Simplices {
  torch::Tensor rem0;         // [m, d+1] int64: the remainder-0 vertex
  torch::Tensor rank;         // [m, d+1] int64
  torch::Tensor barycentric;  // [m, d+1] float
};

Simplices locate_points(const torch::Tensor& f) {
  const int d = static_cast<int>(f.size(1)), d1 = d + 1;
  const std::vector<float> scales = elevation_scales(d);
  const float inv_d1 = 1.0f / static_cast<float>(d1), fd1 = static_cast<float>(d1);

  // Elevation, coordinate d down to 0, with a running float sum.
  std::vector<torch::Tensor> elevated(d1);
  torch::Tensor sm = torch::zeros({f.size(0)}, f.options());
  for (int j = d; j > 0; --j) {
    const torch::Tensor cf = f.select(1, j - 1) * scales[j - 1];
    elevated[j] = sm - cf * static_cast<float>(j);
    sm = sm + cf;
  }
  elevated[0] = sm;
  const torch::Tensor elev = torch::stack(elevated, 1);

  // Nearest remainder-0 point, rounding half to even (as the reference's SSE conversion).
  const torch::Tensor v = torch::round(elev * inv_d1);
  torch::Tensor rem0 = v * fd1;
  const torch::Tensor outside = (rem0.abs() <= lattice_coordinate_limit(d)).logical_not().any(1);
  if (outside.any().item<bool>()) {
    const int64_t point = outside.nonzero()[0][0].item<int64_t>();
    throw Error("permutohedral lattice: features of point " + std::to_string(point) +
                " are not finite or too large for 16-bit lattice coordinates (use larger standard deviations)");
  }
  // Whole numbers of at most 17 x 2^15: exact in float in any order.
  const torch::Tensor shift = v.sum(1).to(torch::kInt64).unsqueeze(1);

  // rank_i = #{j > i: r_i < r_j} + #{j < i: not r_j < r_i}, r the rounding residuals.
  const torch::Tensor residual = elev - rem0;
  const torch::Tensor below = residual.unsqueeze(2) < residual.unsqueeze(1);  // [m, i, j]: r_i < r_j
  const auto bool_options = torch::TensorOptions().dtype(torch::kBool).device(f.device());
  const torch::Tensor after = torch::ones({d1, d1}, bool_options).triu(1);    // j > i
  const torch::Tensor before = torch::ones({d1, d1}, bool_options).tril(-1);  // j < i
  torch::Tensor rank = (below & after).sum(2) + (below.transpose(1, 2).logical_not() & before).sum(2);

  // Off-plane points come back by a cyclic shift of the ranks.
  rank = rank + shift;
  const torch::Tensor under = rank < 0, over = rank > d;
  rank = torch::where(under, rank + d1, torch::where(over, rank - d1, rank));
  rem0 = torch::where(under, rem0 + fd1, torch::where(over, rem0 - fd1, rem0));

  // Barycentric weights: slot k gets +v of the coordinate ranked d - k and -v of the one ranked
  // d - k + 1 (in either order that is the same float: a - b); slot 0 then adds 1 - v(rank 0).
  const torch::Tensor value = (elev - rem0) * inv_d1;
  const torch::Tensor by_rank =
      torch::empty_like(value).scatter_(1, rank, value);  // by_rank[k] = value of the coordinate ranked k
  const torch::Tensor flipped = by_rank.flip(1);          // flipped[k] = by_rank[d - k]
  const torch::Tensor first = flipped.select(1, 0) + (1.0f - by_rank.select(1, 0));
  const torch::Tensor rest = flipped.slice(1, 1) - flipped.slice(1, 0, d);
  return {rem0.to(torch::kInt64), rank, torch::cat({first.unsqueeze(1), rest}, 1)};
}

// Vertex keys packed into int64 fields wide enough for every key and its blur neighbours, so
// that a neighbour's packed key is the vertex's plus a constant. A corner's coordinate lies
// within d of the point's remainder-0 coordinate and a neighbour's within d of that.
struct Packing {
  std::vector<int64_t> low, unit;  // per coordinate: the field's offset and 1 << shift
};

Packing fit_packing(const torch::Tensor& rem0, int d) {
  const torch::Tensor coords = rem0.slice(1, 0, d);
  const torch::Tensor lo = std::get<0>(coords.min(0)).cpu(), hi = std::get<0>(coords.max(0)).cpu();
  Packing p;
  int bits = 0;
  for (int i = 0; i < d; ++i) {
    const int64_t low = lo[i].item<int64_t>() - 2 * d, span = hi[i].item<int64_t>() + 2 * d - low;
    int width = 1;
    while ((int64_t{1} << width) <= span) ++width;
    p.low.push_back(low);
    p.unit.push_back(int64_t{1} << bits);
    bits += width;
    if (bits > 62)
      throw Error("permutohedral lattice: the lattice keys span more than 62 bits, which the tensor lattice "
                  "cannot index (filter on the CPU instead)");
  }
  return p;
}

// Packed keys [m, d+1] of every point's simplex corners: corner r is rem0 + r, minus d + 1 on
// the coordinates ranked above d - r (one corner at a time: a photo has tens of millions).
torch::Tensor corner_keys(const Simplices& s, int d, const Packing& p) {
  std::vector<torch::Tensor> corners;
  for (int r = 0; r <= d; ++r) {
    torch::Tensor packed = torch::zeros({s.rem0.size(0)}, s.rem0.options());
    for (int i = 0; i < d; ++i) {
      const torch::Tensor key = s.rem0.select(1, i) + torch::where(s.rank.select(1, i) <= d - r, r, r - (d + 1));
      packed = packed + (key - p.low[i]) * p.unit[i];
    }
    corners.push_back(packed);
  }
  return torch::stack(corners, 1);
}

// Rows (position + 1) of `targets` in the sorted `keys`, 0 where absent.
torch::Tensor rows_of(const torch::Tensor& keys, const torch::Tensor& targets) {
  const torch::Tensor at = torch::searchsorted(keys, targets).clamp_max(keys.size(0) - 1);
  return torch::where(keys.index_select(0, at) == targets, at + 1, torch::zeros_like(at));
}

void check_values(const TensorLattice& lattice, const torch::Tensor& x, int64_t rows, const char* what) {
  if (x.dim() != 2 || x.size(0) != rows || x.scalar_type() != torch::kFloat32)
    throw Error(std::string("tensor lattice: ") + what + " must be float32 [" + std::to_string(rows) + ", C]");
  if (x.device() != lattice.weights.device()) throw Error(std::string("tensor lattice: ") + what + " is on another device");
}

}  // namespace

TensorLattice build_tensor_lattice(const torch::Tensor& features, bool sse_padding_vertices) {
  if (!features.defined() || features.dim() != 2 || features.scalar_type() != torch::kFloat32)
    throw Error("tensor lattice: features must be a float32 [points, d] tensor");
  const int64_t points = features.size(0);
  const int d = static_cast<int>(features.size(1)), d1 = d + 1;
  if (d < 1 || d > kMaxDim)
    throw Error("tensor lattice: feature dimension must be 1.." + std::to_string(kMaxDim) + ", got " +
                std::to_string(d));
  if (points < 1) throw Error("tensor lattice: no points to filter");

  // The reference's SSE build pads the last block of four with origin points: they only add
  // vertices (their corners are keyed below, never splatted or sliced).
  torch::Tensor f = features.contiguous();
  const bool padded = sse_padding_vertices && points % 4 != 0;
  if (padded) f = torch::cat({f, torch::zeros({1, d}, f.options())});
  const Simplices s = locate_points(f);

  const Packing packing = fit_packing(s.rem0, d);
  const torch::Tensor packed = corner_keys(s, d, packing);  // [m, d+1]
  const auto unique = torch::_unique2(packed.reshape(-1), /*sorted=*/true, /*return_inverse=*/true);
  const torch::Tensor& sorted_keys = std::get<0>(unique);

  TensorLattice lattice;
  lattice.dim = d;
  lattice.points = points;
  lattice.vertices = sorted_keys.size(0);
  lattice.alpha = slice_alpha(d);
  lattice.corner_rows = (std::get<1>(unique).view({-1, d1}).slice(0, 0, points) + 1).contiguous();
  lattice.weights = s.barycentric.slice(0, 0, points).contiguous();

  std::vector<torch::Tensor> axes;
  const torch::Tensor zero_row = torch::zeros({1}, sorted_keys.options());
  for (int axis = 0; axis <= d; ++axis) {
    int delta[kMaxDim];
    blur_neighbour_offsets(d, axis, delta);
    int64_t offset = 0;
    for (int i = 0; i < d; ++i) offset += delta[i] * packing.unit[i];
    axes.push_back(torch::stack({torch::cat({zero_row, rows_of(sorted_keys, sorted_keys + offset)}),
                                 torch::cat({zero_row, rows_of(sorted_keys, sorted_keys - offset)})}));
  }
  lattice.neighbours = torch::stack(axes);
  return lattice;
}

torch::Tensor tensor_splat(const TensorLattice& lattice, const torch::Tensor& x) {
  check_values(lattice, x, lattice.points, "splat input");
  const int64_t channels = x.size(1), d1 = lattice.dim + 1;
  torch::Tensor rows = torch::zeros({lattice.vertices + 1, channels}, x.options());
  const int64_t chunk = std::max<int64_t>(1, kSplatChunkFloats / std::max<int64_t>(1, d1 * channels));
  // Chunks in point order, each added in (point, corner) order.
  for (int64_t begin = 0; begin < lattice.points; begin += chunk) {
    const int64_t end = std::min(lattice.points, begin + chunk);
    const torch::Tensor source =
        (lattice.weights.slice(0, begin, end).unsqueeze(2) * x.slice(0, begin, end).unsqueeze(1)).reshape({-1, channels});
    rows.index_add_(0, lattice.corner_rows.slice(0, begin, end).reshape(-1), source);
  }
  return rows;
}

torch::Tensor tensor_blur(const TensorLattice& lattice, const torch::Tensor& rows) {
  check_values(lattice, rows, lattice.vertices + 1, "blur input");
  torch::Tensor v = rows;
  for (int axis = 0; axis <= lattice.dim; ++axis) {
    const torch::Tensor n = lattice.neighbours[axis];
    // v + 0.5 (n1 + n2) in one pass: the halving is exact, so a fused multiply-add rounds once
    // as the separate product and sum do.
    v = v.add(v.index_select(0, n[0]) + v.index_select(0, n[1]), 0.5f);
  }
  return v;
}

torch::Tensor tensor_slice(const TensorLattice& lattice, const torch::Tensor& rows, bool alpha_last) {
  check_values(lattice, rows, lattice.vertices + 1, "slice input");
  torch::Tensor acc;
  for (int r = 0; r <= lattice.dim; ++r) {
    const torch::Tensor w = lattice.weights.select(1, r).unsqueeze(1);
    const torch::Tensor row = rows.index_select(0, lattice.corner_rows.select(1, r));
    const torch::Tensor term = alpha_last ? (w * row) * lattice.alpha : (w * lattice.alpha) * row;
    acc = r == 0 ? term : acc + term;
  }
  return acc;
}

torch::Tensor tensor_filter(const TensorLattice& lattice, const torch::Tensor& x) {
  return tensor_slice(lattice, tensor_blur(lattice, tensor_splat(lattice, x)), x.size(1) <= 2);
}

}  // namespace pnpovss::crf
