#include "pnpovss/crf/permutohedral.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "pnpovss/error.h"

namespace pnpovss::crf {

namespace {

// Four-float vectors (GCC/Clang vector extensions): lane-wise IEEE arithmetic, so a vector
// expression rounds exactly like the same scalar expression on each lane.
namespace simd {
#if defined(__GNUC__) || defined(__clang__)
typedef float F32x4 __attribute__((vector_size(16)));
#else
#error "pnpovss::crf needs GCC or Clang vector extensions"
#endif
inline F32x4 load4(const float* p) {
  F32x4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, F32x4 v) { std::memcpy(p, &v, sizeof v); }
inline F32x4 broadcast4(float x) { return F32x4{x, x, x, x}; }
}  // namespace simd

using namespace simd;

constexpr int kMaxDim = 16;
// Keys are 16-bit as in the reference. A key lies up to 2d+1 from the point's rounded
// coordinate (rank wrap, corner offset) and its blur neighbours d further, so the rounded
// coordinate must stay 3(d+1) inside the 16-bit range.
constexpr int kKeyLimit = std::numeric_limits<int16_t>::max();

// Open-addressing table from d 16-bit lattice coordinates to vertex ids, which are handed
// out in insertion order (as the reference's table does). Keys live in one flat array. Both
// arrays start as fresh zero pages (a slot holds its vertex id + 1, so 0 is empty): for a
// 24-megapixel photo they reach tens of megabytes.
class KeyTable {
 public:
  // Starts small and doubles: a compact table stays in cache, and real images have far fewer
  // vertices than the (d+1) per point bound.
  explicit KeyTable(int dim) : dim_(dim) { resize_slots(12); }

  // Well-mixed 64-bit hash of a key; the table indexes slots by its top bits.
  static uint64_t hash(const int16_t* key, int dim) {
    uint64_t h = 0;
    for (int i = 0; i < dim; ++i) h = (h + static_cast<uint16_t>(key[i])) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return h * 0xBF58476D1CE4E5B9ull;
  }

  int32_t find_or_insert(const int16_t* key, uint64_t hash) {
    if (2 * (size_ + 1) > static_cast<int64_t>(slots_.size())) grow();
    for (uint64_t s = hash >> shift_;; s = (s + 1) & mask_) {
      const int32_t id = slots_[s] - 1;
      if (id < 0) {
        append_key(key);
        slots_[s] = static_cast<int32_t>(size_ + 1);
        return static_cast<int32_t>(size_++);
      }
      if (same_key(id, key)) return id;
    }
  }

  int32_t find(const int16_t* key, uint64_t hash) const {
    for (uint64_t s = hash >> shift_;; s = (s + 1) & mask_) {
      const int32_t id = slots_[s] - 1;
      if (id < 0) return -1;
      if (same_key(id, key)) return id;
    }
  }

  // Asks the caches for the slot a probe for this hash starts at: the d+1 corners of a point
  // are looked up after all of their slots are requested, so that their cache misses overlap
  // (on a 27-megapixel photo the table holds millions of keys: 13-16% less time).
  void prefetch(uint64_t hash) const { __builtin_prefetch(&slots_[hash >> shift_], 1); }

  int64_t size() const { return size_; }
  const int16_t* key(int64_t id) const { return &keys_[static_cast<size_t>(id) * dim_]; }

 private:
  bool same_key(int32_t id, const int16_t* key) const {
    const int16_t* stored = &keys_[static_cast<size_t>(id) * dim_];
    for (int i = 0; i < dim_; ++i)
      if (stored[i] != key[i]) return false;
    return true;
  }
  void append_key(const int16_t* key) {
    const size_t used = static_cast<size_t>(size_) * dim_;
    if (used + dim_ > keys_.size()) {
      cpu::ZeroedArray<int16_t> larger(std::max<size_t>(1024, 2 * keys_.size()));
      if (used > 0) std::memcpy(larger.data(), keys_.data(), sizeof(int16_t) * used);
      keys_ = std::move(larger);
    }
    std::memcpy(&keys_[used], key, sizeof(int16_t) * dim_);
  }
  void resize_slots(int bits) {
    slots_ = cpu::ZeroedArray<int32_t>(size_t{1} << bits);
    mask_ = (uint64_t{1} << bits) - 1;
    shift_ = 64 - bits;
  }
  void grow() {
    resize_slots(64 - shift_ + 1);
    for (int64_t id = 0; id < size_; ++id) {
      uint64_t s = hash(key(id), dim_) >> shift_;
      while (slots_[s] != 0) s = (s + 1) & mask_;
      slots_[s] = static_cast<int32_t>(id + 1);
    }
  }

  int dim_;
  int64_t size_ = 0;
  uint64_t mask_ = 0;
  int shift_ = 0;
  cpu::ZeroedArray<int32_t> slots_;
  cpu::ZeroedArray<int16_t> keys_;
};

// Vertex ids only decide where a vertex's values are stored, never the order of any
// floating-point operation, so the lattice may be numbered differently for different thread
// counts without changing any result.
constexpr int64_t kMinPointsPerTable = 16384;

// Where one feature vector lands: the remainder-0 vertex, the rank of each coordinate and the
// barycentric weights, computed with the float operations of the reference's SSE init.
struct Simplex {
  float rem0[kMaxDim + 1];  // whole numbers
  int rank[kMaxDim + 1];
  float barycentric[kMaxDim + 2];
};

class Locator {
 public:
  explicit Locator(int dim) : d_(dim) {
    const std::vector<float> scales = elevation_scales(dim);
    std::copy(scales.begin(), scales.end(), scale_);
    inv_d1_ = 1.0f / static_cast<float>(dim + 1);
    d1_ = static_cast<float>(dim + 1);
    limit_ = lattice_coordinate_limit(dim);
  }

  // Returns false when the point's coordinates do not fit the 16-bit keys (or are not finite).
  bool locate(const float* f, Simplex& s) const {
    const int d = d_;
    float elevated[kMaxDim + 1];
    float sm = 0.0f;
    for (int j = d; j > 0; --j) {
      const float cf = f[j - 1] * scale_[j - 1];
      elevated[j] = sm - static_cast<float>(j) * cf;
      sm += cf;
    }
    elevated[0] = sm;

    // Nearest remainder-0 point. The SSE reference rounds with cvtps_epi32 under the default
    // MXCSR mode, i.e. half to even, which std::rint does too.
    float sum = 0.0f;
    for (int i = 0; i <= d; ++i) {
      const float v = std::rint(inv_d1_ * elevated[i]);
      s.rem0[i] = v * d1_;
      if (!(std::fabs(s.rem0[i]) <= limit_)) return false;
      sum += v;
    }

    // Rank of each coordinate's rounding residual. Branch-free: the comparisons follow the
    // image noise, so a branch would be mispredicted about half the time.
    float residual[kMaxDim + 1];
    for (int i = 0; i <= d; ++i) {
      residual[i] = elevated[i] - s.rem0[i];
      s.rank[i] = 0;
    }
    for (int i = 0; i < d; ++i) {
      for (int j = i + 1; j <= d; ++j) {
        const int below = residual[i] < residual[j];
        s.rank[i] += below;
        s.rank[j] += 1 - below;
      }
    }

    // Off-plane points (sum != 0) are brought back by shifting ranks cyclically.
    const int shift = static_cast<int>(sum);
    for (int i = 0; i <= d; ++i) {
      const int rank = s.rank[i] + shift;
      const bool under = rank < 0, over = rank > d;
      s.rank[i] = under ? rank + d + 1 : over ? rank - (d + 1) : rank;
      s.rem0[i] = under ? s.rem0[i] + d1_ : over ? s.rem0[i] - d1_ : s.rem0[i];
    }

    for (int i = 0; i <= d + 1; ++i) s.barycentric[i] = 0.0f;
    for (int i = 0; i <= d; ++i) {
      const float v = (elevated[i] - s.rem0[i]) * inv_d1_;
      s.barycentric[d - s.rank[i]] += v;
      s.barycentric[d - s.rank[i] + 1] -= v;
    }
    s.barycentric[0] += 1.0f + s.barycentric[d + 1];
    return true;
  }

 private:
  int d_;
  float scale_[kMaxDim];
  float inv_d1_ = 0.0f;
  float d1_ = 0.0f;
  float limit_ = 0.0f;
};

int64_t round_up4(int64_t n) { return (n + 3) / 4 * 4; }

// Key of the simplex corner with the given remainder (d coordinates; the last is implied).
void corner_key(const int16_t* rem0, const int8_t* rank, int dim, int remainder, int16_t* key) {
  for (int i = 0; i < dim; ++i) {
    const int offset = rank[i] <= dim - remainder ? remainder : remainder - (dim + 1);
    key[i] = static_cast<int16_t>(rem0[i] + offset);
  }
}

bool same_simplex(const int16_t* rem0_a, const int8_t* rank_a, const int16_t* rem0_b, const int8_t* rank_b, int d1) {
  for (int i = 0; i < d1; ++i)
    if (rem0_a[i] != rem0_b[i] || rank_a[i] != rank_b[i]) return false;
  return true;
}

// Vertex keys packed into one unsigned 64-bit number, each coordinate offset into a field
// wide enough for every key and its blur neighbours (which lie up to d further), so that a
// neighbour's key is the vertex's key plus a constant. Fails when the fields need more than
// 64 bits.
struct KeyPacking {
  int shift[kMaxDim] = {};
  int32_t low[kMaxDim] = {};

  bool fit(const KeyTable& table, int dim, int64_t vertices) {
    int32_t lo[kMaxDim], hi[kMaxDim];
    for (int i = 0; i < dim; ++i) lo[i] = hi[i] = table.key(0)[i];
    for (int64_t v = 1; v < vertices; ++v) {
      const int16_t* k = table.key(v);
      for (int i = 0; i < dim; ++i) {
        lo[i] = std::min<int32_t>(lo[i], k[i]);
        hi[i] = std::max<int32_t>(hi[i], k[i]);
      }
    }
    int bits = 0;
    for (int i = 0; i < dim; ++i) {
      low[i] = lo[i] - dim;
      const uint32_t span = static_cast<uint32_t>(hi[i] + dim - low[i]);
      int width = 1;
      while ((uint64_t{1} << width) <= span) ++width;
      shift[i] = bits;
      bits += width;
    }
    return bits <= 64;
  }
  uint64_t pack(const int16_t* key, int dim) const {
    uint64_t packed = 0;
    for (int i = 0; i < dim; ++i) packed += static_cast<uint64_t>(key[i] - low[i]) << shift[i];
    return packed;
  }
  // The change of the packed key when coordinate i moves by delta[i].
  uint64_t offset(const int* delta, int dim) const {
    uint64_t sum = 0;
    for (int i = 0; i < dim; ++i) sum += static_cast<uint64_t>(static_cast<int64_t>(delta[i])) << shift[i];
    return sum;  // modulo 2^64, which the addition of a key undoes exactly
  }
};

// With packed keys sorted, the keys plus a constant come in the same order (the fields leave
// room for every neighbour, so no sum wraps), and one merge-like sweep per axis and direction
// finds all neighbours: sequential memory instead of a hash probe per neighbour.
struct PackedKey {
  uint64_t key;
  int32_t vertex;
};

cpu::ZeroedArray<int32_t> link_neighbours_sorted(const KeyTable& table, int dim, int64_t vertices,
                                                 int32_t* neighbours, int threads) {
  KeyPacking packing;
  if (vertices < 1 || !packing.fit(table, dim, vertices)) return {};
  cpu::ZeroedArray<PackedKey> sorted(static_cast<size_t>(vertices));
  for (int64_t v = 0; v < vertices; ++v) sorted[v] = {packing.pack(table.key(v), dim), static_cast<int32_t>(v)};
  std::sort(sorted.data(), sorted.data() + sorted.size(),
            [](const PackedKey& a, const PackedKey& b) { return a.key < b.key; });
  // Vertices are renumbered in key order: blur neighbours then lie a few key slabs apart in
  // memory rather than anywhere.
  cpu::ZeroedArray<int32_t> renumbered(static_cast<size_t>(vertices));
  for (size_t r = 0; r < sorted.size(); ++r) renumbered[sorted[r].vertex] = static_cast<int32_t>(r);
  const int d1 = dim + 1;
  cpu::parallel_ranges(2 * d1, threads, [&](int64_t first, int64_t last) {
    for (int64_t job = first; job < last; ++job) {
      const int axis = static_cast<int>(job / 2), side = static_cast<int>(job % 2);
      int delta[kMaxDim];
      blur_neighbour_offsets(dim, axis, delta);
      if (side == 1)
        for (int i = 0; i < dim; ++i) delta[i] = -delta[i];
      const uint64_t offset = packing.offset(delta, dim);
      int32_t* out = neighbours + static_cast<size_t>(axis) * vertices * 2 + side;
      size_t b = 0;
      for (size_t a = 0; a < sorted.size(); ++a) {
        const uint64_t target = sorted[a].key + offset;
        while (b < sorted.size() && sorted[b].key < target) ++b;
        out[a * 2] = b < sorted.size() && sorted[b].key == target ? static_cast<int32_t>(b) + 1 : 0;
      }
    }
  }, 1);
  return renumbered;
}

void link_neighbours_hashed(const KeyTable& table, int dim, int64_t vertices, int32_t* neighbours, int threads) {
  cpu::parallel_ranges(vertices, threads, [&](int64_t begin, int64_t end) {
    int16_t n1[kMaxDim], n2[kMaxDim];
    int delta[kMaxDim];
    for (int64_t v = begin; v < end; ++v) {
      const int16_t* k = table.key(v);
      for (int axis = 0; axis <= dim; ++axis) {
        blur_neighbour_offsets(dim, axis, delta);
        for (int i = 0; i < dim; ++i) {
          n1[i] = static_cast<int16_t>(k[i] + delta[i]);
          n2[i] = static_cast<int16_t>(k[i] - delta[i]);
        }
        int32_t* out = &neighbours[(static_cast<size_t>(axis) * vertices + v) * 2];
        out[0] = table.find(n1, KeyTable::hash(n1, dim)) + 1;
        out[1] = table.find(n2, KeyTable::hash(n2, dim)) + 1;
      }
    }
  });
}

}  // namespace

std::vector<float> elevation_scales(int dim) {
  const float inv_std_dev = static_cast<float>(std::sqrt(2.0 / 3.0) * (dim + 1));
  std::vector<float> scales(static_cast<size_t>(std::max(dim, 0)));
  for (int i = 0; i < dim; ++i)
    scales[i] = static_cast<float>(1.0 / std::sqrt(static_cast<double>((i + 2) * (i + 1))) * inv_std_dev);
  return scales;
}

float lattice_coordinate_limit(int dim) { return static_cast<float>(kKeyLimit - 3 * (dim + 1)); }

void blur_neighbour_offsets(int dim, int axis, int* first) {
  for (int i = 0; i < dim; ++i) first[i] = -1;
  if (axis < dim) first[axis] = dim;
}

float slice_alpha(int dim) { return 1.0f / (1.0f + std::ldexp(1.0f, -dim)); }

void PermutohedralLattice::build(const float* features, int64_t points, int dim, const LatticeOptions& options) {
  if (dim < 1 || dim > kMaxDim)
    throw Error("permutohedral lattice: feature dimension must be 1.." + std::to_string(kMaxDim) + ", got " +
                std::to_string(dim));
  if (points < 1) throw Error("permutohedral lattice: no points to filter");
  if (features == nullptr) throw Error("permutohedral lattice: features are null");
  // Vertex ids are 32-bit; there are at most (d+1) per point plus the padding ones.
  if (points > (std::numeric_limits<int32_t>::max() - 64) / (dim + 1))
    throw Error("permutohedral lattice: too many points (" + std::to_string(points) + ")");

  dim_ = dim;
  points_ = points;
  const int d1 = dim + 1;
  alpha_ = slice_alpha(dim);
  offsets_ = cpu::ZeroedArray<int32_t>(static_cast<size_t>(points) * d1);
  weights_ = cpu::ZeroedArray<float>(static_cast<size_t>(points) * d1);

  index_vertices(features, options);
  find_first_touches();
  find_reach();
}

void PermutohedralLattice::find_reach() {
  reach_.assign(static_cast<size_t>(dim_ + 1), 0);
  for (int axis = 0; axis <= dim_; ++axis) {
    const int32_t* nb = &neighbours_[static_cast<size_t>(axis) * vertices_ * 2];
    int64_t reach = 0;
    for (int64_t v = 0; v < vertices_; ++v)
      for (int side = 0; side < 2; ++side)
        if (nb[2 * v + side] != 0) reach = std::max<int64_t>(reach, std::abs(nb[2 * v + side] - 1 - v));
    reach_[axis] = reach;
  }
}

void PermutohedralLattice::find_first_touches() {
  static_assert(kMaxDim + 1 <= 32, "one bit per simplex corner in 32 bits");
  const int d1 = dim_ + 1;
  std::vector<bool> touched(static_cast<size_t>(vertices_), false);
  first_touches_ = cpu::ZeroedArray<uint32_t>(static_cast<size_t>(points_));
  for (int64_t i = 0; i < points_; ++i) {
    const int32_t* vertex = &offsets_[static_cast<size_t>(i) * d1];
    uint32_t bits = 0;
    for (int r = 0; r < d1; ++r)
      if (!touched[vertex[r]]) {
        touched[vertex[r]] = true;
        bits |= 1u << r;
      }
    first_touches_[i] = bits;
  }
  untouched_.clear();
  for (int64_t v = 0; v < vertices_; ++v)
    if (!touched[v]) untouched_.push_back(static_cast<int32_t>(v));
}

void PermutohedralLattice::index_vertices(const float* features, const LatticeOptions& options) {
  const int threads = options.threads;
  const int dim = dim_, d1 = dim_ + 1;
  // Each thread numbers the corners of its own range of points in a table of its own, in
  // point order; the tables are then merged into the first one.
  const int count = static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(threads, points_ / kMinPointsPerTable)));
  std::vector<KeyTable> tables;
  tables.reserve(count);
  for (int t = 0; t < count; ++t) tables.emplace_back(dim);
  auto range_begin = [&](int t) { return points_ * t / count; };
  const Locator locator(dim);
  cpu::parallel_ranges(count, count, [&](int64_t first, int64_t last) {
    for (int64_t t = first; t < last; ++t) {
      KeyTable& table = tables[t];
      // Each point is located (simplex and weights) and its corners numbered in one sweep, so
      // that no points-sized array of simplices is written and read back.
      Simplex s;
      int16_t r0[2][kMaxDim + 1];
      int8_t rk[2][kMaxDim + 1];
      int16_t keys[kMaxDim + 1][kMaxDim];
      const int64_t begin = range_begin(static_cast<int>(t)), end = range_begin(static_cast<int>(t) + 1);
      for (int64_t i = begin; i < end; ++i) {
        if (!locator.locate(features + i * dim, s))
          throw Error("permutohedral lattice: features of point " + std::to_string(i) +
                      " are not finite or too large for 16-bit lattice coordinates (use larger standard "
                      "deviations)");
        const int cur = static_cast<int>(i & 1);
        for (int r = 0; r < d1; ++r) {
          r0[cur][r] = static_cast<int16_t>(s.rem0[r]);
          rk[cur][r] = static_cast<int8_t>(s.rank[r]);
          weights_[i * d1 + r] = s.barycentric[r];
        }
        int32_t* out = &offsets_[i * d1];
        // Neighbouring pixels often share a simplex; its vertices then exist already.
        if (i > begin && same_simplex(r0[cur], rk[cur], r0[cur ^ 1], rk[cur ^ 1], d1)) {
          std::memcpy(out, out - d1, sizeof(int32_t) * d1);
          continue;
        }
        uint64_t hashes[kMaxDim + 1];
        for (int r = 0; r < d1; ++r) {
          corner_key(r0[cur], rk[cur], dim, r, keys[r]);
          hashes[r] = KeyTable::hash(keys[r], dim);
          table.prefetch(hashes[r]);
        }
        for (int r = 0; r < d1; ++r) out[r] = table.find_or_insert(keys[r], hashes[r]);
      }
    }
  }, 1);

  KeyTable& merged = tables[0];
  std::vector<std::vector<int32_t>> renumber(count);
  for (int t = 1; t < count; ++t) {
    renumber[t].resize(tables[t].size());
    for (int64_t v = 0; v < tables[t].size(); ++v) {
      const int16_t* key = tables[t].key(v);
      renumber[t][v] = merged.find_or_insert(key, KeyTable::hash(key, dim));
    }
  }
  if (count > 1) {
    cpu::parallel_ranges(count - 1, count - 1, [&](int64_t first, int64_t last) {
      for (int64_t t = first + 1; t < last + 1; ++t)
        for (int64_t e = range_begin(static_cast<int>(t)) * d1; e < range_begin(static_cast<int>(t) + 1) * d1; ++e)
          offsets_[e] = renumber[t][offsets_[e]];
    }, 1);
  }
  tables.erase(tables.begin() + 1, tables.end());

  if (options.sse_padding_vertices && points_ % 4 != 0) {
    // The padded points sit at the feature origin; they only add vertices (no splat).
    const float origin[kMaxDim] = {};
    Simplex s;
    Locator(dim).locate(origin, s);
    int16_t r0[kMaxDim + 1], key[kMaxDim];
    int8_t rk[kMaxDim + 1];
    for (int r = 0; r < d1; ++r) {
      r0[r] = static_cast<int16_t>(s.rem0[r]);
      rk[r] = static_cast<int8_t>(s.rank[r]);
    }
    for (int r = 0; r < d1; ++r) {
      corner_key(r0, rk, dim, r, key);
      merged.find_or_insert(key, KeyTable::hash(key, dim));
    }
  }
  vertices_ = merged.size();

  neighbours_ = cpu::ZeroedArray<int32_t>(static_cast<size_t>(d1) * vertices_ * 2);
  const cpu::ZeroedArray<int32_t> renumbered =
      options.sorted_neighbours ? link_neighbours_sorted(merged, dim, vertices_, neighbours_.data(), threads)
                                : cpu::ZeroedArray<int32_t>();
  if (renumbered.size() == 0) {
    link_neighbours_hashed(merged, dim, vertices_, neighbours_.data(), threads);
    return;
  }
  cpu::parallel_ranges(static_cast<int64_t>(offsets_.size()), threads, [&](int64_t begin, int64_t end) {
    for (int64_t e = begin; e < end; ++e) offsets_[e] = renumbered[offsets_[e]];
  }, 1 << 16);
}

// A fused pair of axes keeps at most this much ring buffer per thread (with 171 labels on a
// 640x480 photo: 5.9 MB, rows 704 bytes, neighbours up to 4,157 vertices apart), so that the
// ring stays in the last-level cache.
constexpr int64_t kMaxRingBytes = int64_t{8} << 20;

bool PermutohedralLattice::fuses(int second, int stride) const {
  return second <= dim_ && ring_rows(second) * stride * static_cast<int64_t>(sizeof(float)) <= kMaxRingBytes;
}

int PermutohedralLattice::fused_parts(int threads) const {
  int64_t reach = 0;
  for (const int64_t r : reach_) reach = std::max(reach, r);
  // Each part computes its first axis `reach` vertices beyond its ends as well: keep that small.
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, vertices_ / (8 * reach + 1))));
}

size_t PermutohedralLattice::blur_ring_floats(int stride, int threads) const {
  int64_t rows = 0;
  for (int second = 1; second <= dim_; second += 2)
    if (fuses(second, stride)) rows = std::max(rows, ring_rows(second));
  return static_cast<size_t>(rows * stride * fused_parts(threads));
}

namespace {

// out = self + (a + b) / 2 for one row, as the reference computes it.
inline void blur_row(const float* self, const float* a, const float* b, float* out, int stride) {
  for (int c = 0; c < stride; c += 4) store4(out + c, load4(self + c) + 0.5f * (load4(a + c) + load4(b + c)));
}

}  // namespace

void PermutohedralLattice::blur_axis(int axis, const float* src, float* dst, int stride, int threads) const {
  const int32_t* nb = &neighbours_[static_cast<size_t>(axis) * vertices_ * 2];
  cpu::parallel_ranges(vertices_, threads, [&](int64_t begin, int64_t end) {
    for (int64_t v = begin; v < end; ++v)
      blur_row(src + (v + 1) * stride, src + static_cast<int64_t>(nb[2 * v]) * stride,
               src + static_cast<int64_t>(nb[2 * v + 1]) * stride, dst + (v + 1) * stride, stride);
  }, 4096);
}

// Axes `first` and first + 1 in one sweep per part of the vertices. Vertex v's row along the
// first axis goes to ring slot v mod R; the second axis's row of w = v - reach is computed once
// all of w's neighbours (within `reach` of w) are in the ring, and R = 2 reach + 1 keeps them
// there. Each part starts `reach` vertices early and ends `reach` late along the first axis.
void PermutohedralLattice::blur_axis_pair(int first, const float* src, float* dst, int stride, int parts,
                                          float* rings, int64_t ring_capacity) const {
  const int32_t* nb1 = &neighbours_[static_cast<size_t>(first) * vertices_ * 2];
  const int32_t* nb2 = &neighbours_[static_cast<size_t>(first + 1) * vertices_ * 2];
  const int64_t reach = reach_[first + 1], slots = ring_rows(first + 1);
  const float* zero = src;  // row 0: the missing neighbour
  cpu::parallel_ranges(parts, parts, [&](int64_t p0, int64_t p1) {
    for (int64_t part = p0; part < p1; ++part) {
      float* ring = rings + part * ring_capacity;
      auto slot = [&](int64_t v) { return ring + (v % slots) * stride; };
      const int64_t begin = vertices_ * part / parts, end = vertices_ * (part + 1) / parts;
      const int64_t stop = std::min(vertices_, end + reach);
      for (int64_t v = std::max<int64_t>(0, begin - reach); v < end + reach; ++v) {
        if (v < stop)
          blur_row(src + (v + 1) * stride, src + static_cast<int64_t>(nb1[2 * v]) * stride,
                   src + static_cast<int64_t>(nb1[2 * v + 1]) * stride, slot(v), stride);
        const int64_t w = v - reach;
        if (w < begin || w >= end) continue;
        const int32_t a = nb2[2 * w], b = nb2[2 * w + 1];
        blur_row(slot(w), a == 0 ? zero : slot(a - 1), b == 0 ? zero : slot(b - 1), dst + (w + 1) * stride, stride);
      }
    }
  }, 1);
}

float* PermutohedralLattice::blur(float* rows, float* scratch, int stride, int threads, float* rings) const {
  float* src = rows;
  float* dst = scratch;
  const int parts = fused_parts(threads);
  const int64_t ring_capacity =
      rings == nullptr ? 0 : static_cast<int64_t>(blur_ring_floats(stride, threads)) / std::max(1, parts);
  for (int axis = 0; axis <= dim_;) {
    if (rings != nullptr && fuses(axis + 1, stride)) {
      blur_axis_pair(axis, src, dst, stride, parts, rings, ring_capacity);
      axis += 2;
    } else {
      blur_axis(axis, src, dst, stride, threads);
      axis += 1;
    }
    std::swap(src, dst);
  }
  return src;
}

namespace {

// The reference filters up to 2 values per point with its scalar code, which applies the slice
// factor alpha after the weight; its SSE code (3 or more values) applies it before.
bool scalar_order(int channels) { return channels <= 2; }

}  // namespace

void PermutohedralLattice::compute(const float* in, float* out, int channels, int threads) const {
  if (channels < 1) throw Error("permutohedral lattice: nothing to filter (0 channels)");
  const int stride = static_cast<int>(round_up4(channels));
  const int d1 = dim_ + 1;
  const size_t floats = static_cast<size_t>(vertices_ + 1) * stride;
  cpu::ZeroedArray<float> rows(floats), scratch(floats);

  // Splat: vertex v gets sum over points i touching it, in point order, of w_iv * in_i (the
  // reference's order of additions, hence sequential); the rows start as zeros.
  std::vector<float> x(stride, 0.0f);
  for (int64_t i = 0; i < points_; ++i) {
    std::memcpy(x.data(), in + i * channels, sizeof(float) * channels);
    const int32_t* vertex = corner_vertices(i);
    const float* weight = corner_weights(i);
    for (int r = 0; r < d1; ++r) {
      float* row = rows.data() + static_cast<int64_t>(vertex[r] + 1) * stride;
      const float w = weight[r];
      for (int c = 0; c < stride; c += 4) store4(row + c, load4(row + c) + w * load4(&x[c]));
    }
  }
  const float* blurred = blur(rows.data(), scratch.data(), stride, threads);

  // Slice: alpha * sum_r w_ir * blurred[vertex_ir] for each point.
  const bool alpha_last = scalar_order(channels);
  cpu::parallel_ranges(points_, threads, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(stride);
    for (int64_t i = begin; i < end; ++i) {
      const int32_t* vertex = corner_vertices(i);
      const float* weight = corner_weights(i);
      for (int c = 0; c < stride; c += 4) store4(&acc[c], broadcast4(0.0f));
      for (int r = 0; r < d1; ++r) {
        const float* row = blurred + static_cast<int64_t>(vertex[r] + 1) * stride;
        const float w = alpha_last ? weight[r] : weight[r] * alpha_;
        for (int c = 0; c < stride; c += 4) {
          const F32x4 term = alpha_last ? w * load4(row + c) * alpha_ : w * load4(row + c);
          store4(&acc[c], load4(&acc[c]) + term);
        }
      }
      std::memcpy(out + i * channels, acc.data(), sizeof(float) * channels);
    }
  }, 4096);
}

}  // namespace pnpovss::crf
