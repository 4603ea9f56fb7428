#include "pnpovss/tune/search.h"

#include <algorithm>
#include <cmath>

#include "pnpovss/error.h"

namespace pnpovss::tune {
namespace {

struct PaperRange {
  const char* backbone;
  int layers, heads;
};

constexpr PaperRange kPaperRanges[] = {{"blip", 12, 12}, {"bridgetower", 6, 16}};

// start, start + step, ... up to `last` (inclusive), rounded to 2 decimals so that the values
// print and compare as written (0.15, not 0.15000000000000002).
std::vector<double> steps(double start, double last, double step) {
  std::vector<double> out;
  for (int i = 0;; ++i) {
    const double v = std::round((start + i * step) * 100.0) / 100.0;
    if (v > last + 1e-9) break;
    out.push_back(v);
  }
  return out;
}

std::vector<int> one_to(int n) {
  std::vector<int> out;
  for (int i = 1; i <= n; ++i) out.push_back(i);
  return out;
}

// A different stream for each stage, so the blur order does not repeat stage 1's.
constexpr uint64_t kBlurStream = 0x9E3779B97F4A7C15ull;

}  // namespace

std::vector<Candidate> SearchSpace::stage1_candidates() const {
  std::vector<Candidate> out;
  for (int l : layers)
    for (int h : heads)
      for (double t : thresholds) out.push_back({l, h, t, 0.0});
  return out;
}

SearchSpace paper_space(const std::string& backbone, int64_t model_layers, int64_t model_heads) {
  const PaperRange* range = nullptr;
  for (const auto& r : kPaperRanges)
    if (backbone == r.backbone) range = &r;
  if (range == nullptr) throw Error("no tuning space for backbone '" + backbone + "' (valid: blip, bridgetower)");
  if (model_layers < 1 || model_heads < 1) throw Error("the model has no text layers or heads to tune");
  SearchSpace s;
  const int layers = static_cast<int>(std::min<int64_t>(range->layers, model_layers));
  const int heads = static_cast<int>(std::min<int64_t>(range->heads, model_heads));
  if (layers < range->layers)
    s.notes.push_back("layers 1.." + std::to_string(layers) + " instead of the paper's 1.." +
                      std::to_string(range->layers) + ": the model has " + std::to_string(model_layers) +
                      " text layers");
  if (heads < range->heads)
    s.notes.push_back("heads 1.." + std::to_string(heads) + " instead of the paper's 1.." +
                      std::to_string(range->heads) + ": the model has " + std::to_string(model_heads) + " heads");
  if (model_layers > range->layers || model_heads > range->heads)
    s.notes.push_back("the model has more layers or heads than the paper searched; the paper's range is kept");
  s.layers = one_to(layers);
  s.heads = one_to(heads);
  s.thresholds = steps(0.05, 0.45, 0.1);
  s.blurs = steps(0.01, 0.11, 0.02);
  return s;
}

uint64_t Rng::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t Rng::below(uint64_t n) {
  if (n == 0) throw Error("Rng::below needs n >= 1");
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // multiples of n fit below it
  uint64_t x;
  do x = next();
  while (x >= limit);
  return x % n;
}

std::vector<size_t> seeded_order(size_t n, uint64_t seed) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  Rng rng(seed);
  // Forward Fisher-Yates: position i is final once chosen, so prefixes are stable.
  for (size_t i = 0; i + 1 < n; ++i) std::swap(order[i], order[i + rng.below(n - i)]);
  return order;
}

std::vector<Candidate> stage1_order(const SearchSpace& space, uint64_t seed, size_t count) {
  const std::vector<Candidate> all = space.stage1_candidates();
  const std::vector<size_t> order = seeded_order(all.size(), seed);
  std::vector<Candidate> out;
  for (size_t i = 0; i < std::min(count, all.size()); ++i) out.push_back(all[order[i]]);
  return out;
}

std::vector<double> blur_order(const SearchSpace& space, uint64_t seed, size_t count) {
  const std::vector<size_t> order = seeded_order(space.blurs.size(), seed ^ kBlurStream);
  std::vector<double> out;
  for (size_t i = 0; i < std::min(count, space.blurs.size()); ++i) out.push_back(space.blurs[order[i]]);
  return out;
}

}  // namespace pnpovss::tune
