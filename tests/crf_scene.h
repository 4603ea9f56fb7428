// A synthetic Dense CRF input shared by the CRF tests: a blocky colour image with noise and a
// soft, noisy score stack that roughly follows it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "pnpovss/crf/densecrf.h"

namespace pnpovss::test {

// Deterministic pseudo-random numbers in [0, 1).
struct Lcg {
  uint64_t state;
  float next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(state >> 40) / static_cast<float>(1ull << 24);
  }
};

// A blocky colour image with noise and a soft, noisy score stack that roughly follows it.
struct Scene {
  int height = 0, width = 0, labels = 0;
  std::vector<uint8_t> rgb;
  std::vector<float> scores;  // labels x pixels, what the unary is made from
  std::vector<float> unary;
};

inline Scene make_scene(int height, int width, int labels, uint64_t seed) {
  Scene s;
  s.height = height;
  s.width = width;
  s.labels = labels;
  Lcg rng{seed};
  const int64_t n = static_cast<int64_t>(height) * width;
  s.rgb.resize(n * 3);
  std::vector<float> scores(n * labels);
  const int block = std::max(4, std::min(height, width) / 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const int region = ((y / block) * 7 + (x / block) * 3) % labels;
      const int64_t i = static_cast<int64_t>(y) * width + x;
      for (int c = 0; c < 3; ++c) {
        const float base = 40.0f + 60.0f * static_cast<float>((region * (c + 2)) % 4);
        s.rgb[i * 3 + c] = static_cast<uint8_t>(std::clamp(base + 30.0f * rng.next(), 0.0f, 255.0f));
      }
      for (int l = 0; l < labels; ++l) scores[l * n + i] = 0.6f * rng.next() + (l == region ? 0.5f : 0.0f);
    }
  s.unary = pnpovss::crf::unary_from_probabilities(scores.data(), labels, n);
  s.scores = std::move(scores);
  return s;
}

}  // namespace pnpovss::test
