// The search space of label-free tuning (paper Table 2, docs/method.md §8) and the seeded,
// platform-independent orders in which a random search visits it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pnpovss::tune {

// One setting to try. Layer and head are 1-based, as the CLI numbers them.
struct Candidate {
  int layer = 0, head = 0;
  double threshold = 0.0;
  double blur = 0.0;
};

struct SearchSpace {
  std::vector<int> layers;         // 1-based
  std::vector<int> heads;          // 1-based
  std::vector<double> thresholds;  // 0.05, 0.15, ..., 0.45
  std::vector<double> blurs;       // 0.01, 0.03, ..., 0.11
  std::vector<std::string> notes;  // where the paper's ranges were clipped to the model

  size_t stage1_size() const { return layers.size() * heads.size() * thresholds.size(); }
  // Every (layer, head, threshold), layer-major, then head, then threshold (blur 0).
  std::vector<Candidate> stage1_candidates() const;
};

// The paper's space for `backbone` ("blip": layers 1..12, heads 1..12; "bridgetower": 1..6 and
// 1..16), with layers and heads clipped to the model's counts (a note says so). Throws
// pnpovss::Error for an unknown backbone or a model without layers or heads.
SearchSpace paper_space(const std::string& backbone, int64_t model_layers, int64_t model_heads);

// SplitMix64: the same numbers on every platform and standard library (std::mt19937 is, but
// the standard distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform in [0, n) for n >= 1 (rejection sampling, no modulo bias).
  uint64_t below(uint64_t n);

 private:
  uint64_t state_;
};

// A seeded Fisher-Yates permutation of 0..n-1. The first entries do not depend on how many are
// used, so a larger trial budget extends a smaller one with the same seed.
std::vector<size_t> seeded_order(size_t n, uint64_t seed);

// The first `count` (at most all) candidates of stage 1 in the seed's random order.
std::vector<Candidate> stage1_order(const SearchSpace& space, uint64_t seed, size_t count);
// The first `count` (at most all) blur values in the seed's random order.
std::vector<double> blur_order(const SearchSpace& space, uint64_t seed, size_t count);

}  // namespace pnpovss::tune
