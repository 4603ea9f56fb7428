#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "pnpovss/check/densecrf_fixture.h"
#include "pnpovss/cpu/simd.h"
#include "pnpovss/crf/densecrf.h"
#include "pnpovss/crf/permutohedral.h"
#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "crf_scene.h"

using pnpovss::Error;
using pnpovss::DenseCrfParams;
using pnpovss::crf::DenseCrfResult;
using pnpovss::crf::PermutohedralLattice;
using pnpovss::test::Lcg;
using pnpovss::test::make_scene;
using pnpovss::test::Scene;

namespace {

const std::string kFixtureDir = std::string(PNPOVSS_TEST_DATA) + "/densecrf";

DenseCrfResult run(const Scene& s, DenseCrfParams p = {}) {
  return pnpovss::crf::dense_crf(s.rgb, s.height, s.width, s.unary, s.labels, p);
}

// Mean-field with exact dense Gaussian kernels (O(N^2), double), self term included and the
// same symmetric normalisation: what the lattice approximates.
std::vector<double> exact_crf(const Scene& s, const DenseCrfParams& p) {
  const int64_t n = static_cast<int64_t>(s.height) * s.width;
  const int m = s.labels;
  auto kernel_matrix = [&](bool bilateral) {
    std::vector<double> f(n * 5);
    int dim = bilateral ? 5 : 2;
    for (int64_t i = 0; i < n; ++i) {
      const double sxy = bilateral ? p.bilateral_sxy : p.gaussian_sxy;
      f[i * 5 + 0] = static_cast<double>(i % s.width) / sxy;
      f[i * 5 + 1] = static_cast<double>(i / s.width) / sxy;
      for (int c = 0; c < 3; ++c) f[i * 5 + 2 + c] = s.rgb[i * 3 + c] / static_cast<double>(p.bilateral_srgb);
    }
    std::vector<double> k(n * n);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double d2 = 0;
        for (int a = 0; a < dim; ++a) d2 += (f[i * 5 + a] - f[j * 5 + a]) * (f[i * 5 + a] - f[j * 5 + a]);
        k[i * n + j] = std::exp(-0.5 * d2);
      }
    return k;
  };
  const std::vector<double> kernels[2] = {kernel_matrix(false), kernel_matrix(true)};
  const double weights[2] = {p.gaussian_weight, p.bilateral_weight};
  std::vector<double> norms[2];
  for (int k = 0; k < 2; ++k) {
    norms[k].resize(n);
    for (int64_t i = 0; i < n; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += kernels[k][i * n + j];
      norms[k][i] = 1.0 / std::sqrt(sum);
    }
  }
  auto softmax = [&](const std::vector<double>& logits) {
    std::vector<double> q(n * m);
    for (int64_t i = 0; i < n; ++i) {
      double top = -INFINITY, sum = 0;
      for (int l = 0; l < m; ++l) top = std::max(top, logits[l * n + i]);
      for (int l = 0; l < m; ++l) sum += std::exp(logits[l * n + i] - top);
      for (int l = 0; l < m; ++l) q[l * n + i] = std::exp(logits[l * n + i] - top) / sum;
    }
    return q;
  };
  std::vector<double> neg_unary(n * m);
  for (int64_t k = 0; k < n * m; ++k) neg_unary[k] = -static_cast<double>(s.unary[k]);
  std::vector<double> q = softmax(neg_unary);
  for (int it = 0; it < p.iterations; ++it) {
    std::vector<double> logits = neg_unary;
    for (int k = 0; k < 2; ++k)
      for (int l = 0; l < m; ++l)
        for (int64_t i = 0; i < n; ++i) {
          double acc = 0;
          for (int64_t j = 0; j < n; ++j) acc += kernels[k][i * n + j] * norms[k][j] * q[l * n + j];
          logits[l * n + i] += weights[k] * norms[k][i] * acc;
        }
    q = softmax(logits);
  }
  return q;
}

}  // namespace

TEST(DenseCrf, FixtureCasesMatchReference) {
  const auto reference = pnpovss::io::read_json_file(kFixtureDir + "/reference.json");
  ASSERT_TRUE(pnpovss::check::is_densecrf_fixture(reference));
  const auto checks = pnpovss::check::check_densecrf_fixture(kFixtureDir);
  // unary_from_scores, Q and labels for every case
  EXPECT_EQ(checks.size(), 3 * reference["cases"].size());
  for (const auto& c : checks) {
    std::printf("%s\n", pnpovss::check::format_check(c).c_str());
    EXPECT_TRUE(c.passed && !c.skipped) << pnpovss::check::format_check(c);
  }
}

TEST(DenseCrf, RecognisesFixtureFormat) {
  EXPECT_FALSE(pnpovss::check::is_densecrf_fixture(nlohmann::json::object()));
  EXPECT_FALSE(pnpovss::check::is_densecrf_fixture(nlohmann::json{{"cases", nlohmann::json::array()}}));
  EXPECT_FALSE(pnpovss::check::is_densecrf_fixture(nlohmann::json{{"cases", {{{"name", "x"}}}}}));
  EXPECT_THROW(pnpovss::check::check_densecrf_fixture(std::string(PNPOVSS_TEST_DATA) + "/no_such_dir"), Error);
}

TEST(DenseCrf, RejectsBadInput) {
  const Scene s = make_scene(6, 5, 3, 1);
  const uint8_t* rgb = s.rgb.data();
  const float* u = s.unary.data();
  using pnpovss::crf::dense_crf;
  EXPECT_THROW(dense_crf(rgb, 6, 5, u, 0, {}), Error);
  EXPECT_THROW(dense_crf(rgb, 0, 5, u, 3, {}), Error);
  EXPECT_THROW(dense_crf(rgb, 6, 0, u, 3, {}), Error);
  EXPECT_THROW(dense_crf(rgb, -6, 5, u, 3, {}), Error);
  EXPECT_THROW(dense_crf(nullptr, 6, 5, u, 3, {}), Error);
  EXPECT_THROW(dense_crf(rgb, 6, 5, nullptr, 3, {}), Error);
  EXPECT_THROW(dense_crf(s.rgb, 6, 5, s.unary, 2, {}), Error);  // unary size mismatch
  EXPECT_THROW(dense_crf(s.rgb, 5, 5, s.unary, 3, {}), Error);  // image size mismatch
  EXPECT_THROW(dense_crf(std::vector<uint8_t>(), 6, 5, s.unary, 3, {}), Error);

  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    std::vector<float> unary = s.unary;
    unary[17] = bad;
    EXPECT_THROW(dense_crf(s.rgb, 6, 5, unary, 3, {}), Error);
    std::vector<float> scores(30 * 3, 0.5f);
    scores[40] = bad;
    EXPECT_THROW(pnpovss::crf::unary_from_probabilities(scores.data(), 3, 30), Error);
  }
  EXPECT_THROW(pnpovss::crf::unary_from_probabilities(nullptr, 3, 30), Error);
  EXPECT_THROW(pnpovss::crf::unary_from_probabilities(u, 0, 30), Error);
  EXPECT_THROW(pnpovss::crf::unary_from_probabilities(u, 3, 0), Error);

  auto with = [](auto change) {
    DenseCrfParams p;
    change(p);
    return p;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<DenseCrfParams> bad_params = {
      with([](DenseCrfParams& p) { p.iterations = -1; }),
      with([](DenseCrfParams& p) { p.gaussian_sxy = 0; }),
      with([](DenseCrfParams& p) { p.bilateral_sxy = -3; }),
      with([&](DenseCrfParams& p) { p.bilateral_srgb = nan; }),
      with([](DenseCrfParams& p) { p.bilateral_srgb = std::numeric_limits<float>::infinity(); }),
      with([&](DenseCrfParams& p) { p.gaussian_weight = nan; }),
      with([](DenseCrfParams& p) { p.threads = -2; }),
      with([](DenseCrfParams& p) { p.vector_width = 5; }),
      // Colour coordinates beyond the lattice's 16-bit keys.
      with([](DenseCrfParams& p) { p.bilateral_srgb = 1e-3f; }),
  };
  for (size_t k = 0; k < bad_params.size(); ++k) EXPECT_THROW(run(s, bad_params[k]), Error) << "case " << k;
}

TEST(DenseCrf, MarginalsAreDistributionsAndLabelsTheirArgmax) {
  const Scene s = make_scene(37, 29, 5, 7);
  const DenseCrfResult r = run(s);
  const int64_t n = 37 * 29;
  ASSERT_EQ(r.q.size(), static_cast<size_t>(n * 5));
  ASSERT_EQ(r.labels.size(), static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0;
    int best = 0;
    for (int l = 0; l < 5; ++l) {
      const float v = r.q[l * n + i];
      ASSERT_TRUE(v >= 0.0f && v <= 1.0f);
      sum += v;
      if (v > r.q[best * n + i]) best = l;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_EQ(r.labels[i], best);
  }
}

TEST(DenseCrf, ZeroIterationsGiveSoftmaxOfNegativeUnary) {
  const Scene s = make_scene(9, 11, 4, 3);
  DenseCrfParams p;
  p.iterations = 0;
  const DenseCrfResult r = run(s, p);
  const int64_t n = 99;
  for (int64_t i = 0; i < n; ++i) {
    double top = -INFINITY, sum = 0;
    for (int l = 0; l < 4; ++l) top = std::max(top, -static_cast<double>(s.unary[l * n + i]));
    for (int l = 0; l < 4; ++l) sum += std::exp(-static_cast<double>(s.unary[l * n + i]) - top);
    for (int l = 0; l < 4; ++l)
      EXPECT_NEAR(r.q[l * n + i], std::exp(-static_cast<double>(s.unary[l * n + i]) - top) / sum, 1e-6);
  }
}

TEST(DenseCrf, SingleLabelAndSinglePixel) {
  const Scene one_label = make_scene(7, 6, 1, 5);
  const DenseCrfResult r = run(one_label);
  for (float v : r.q) EXPECT_EQ(v, 1.0f);
  for (int32_t l : r.labels) EXPECT_EQ(l, 0);
  const Scene one_pixel = make_scene(1, 1, 3, 5);
  const DenseCrfResult r1 = run(one_pixel);
  EXPECT_NEAR(r1.q[0] + r1.q[1] + r1.q[2], 1.0, 1e-6);
}

TEST(DenseCrf, ResultsDoNotDependOnThreadsOrVectorWidth) {
  // 2257 pixels: not a multiple of 4 (padding vertices) and enough for the two-thread pipeline;
  // label counts that fill vectors of 4 and 8 exactly, partly, and beyond the unrolled sizes.
  const bool avx2 = pnpovss::cpu::simd::cpu_has_avx2();
  for (int labels : {2, 6, 8, 21, 70, 171}) {
    const Scene s = make_scene(61, 37, labels, 11);
    DenseCrfParams p;
    p.threads = 1;
    p.vector_width = 4;
    const DenseCrfResult ref = run(s, p);
    for (int width : {4, 8}) {
      if (width == 8 && !avx2) continue;
      for (int threads : {1, 2, 3}) {
        p.threads = threads;
        p.vector_width = width;
        const DenseCrfResult r = run(s, p);
        EXPECT_EQ(r.q, ref.q) << labels << " labels, " << threads << " threads, width " << width;
        EXPECT_EQ(r.labels, ref.labels) << labels << " labels, " << threads << " threads, width " << width;
      }
    }
  }
}

// The pipeline's entry point computes the unary tile by tile into the passes' layout and skips
// the marginals; its labels must be those of the two-step call, for tile-sized and odd images,
// buffers small enough for the heap and large enough to be mapped, and both vector widths.
TEST(DenseCrf, LabelsFromScoresEqualLabelsFromTheUnary) {
  struct Case {
    int height, width, labels;
  };
  for (const Case c : {Case{16, 16, 3}, Case{37, 53, 21}, Case{200, 301, 21}, Case{61, 45, 59}}) {
    const Scene s = make_scene(c.height, c.width, c.labels, 11 + c.labels);
    for (int width : {4, 8}) {
      if (width == 8 && !pnpovss::cpu::simd::cpu_has_avx2()) continue;
      DenseCrfParams p;
      p.vector_width = width;
      const DenseCrfResult full = run(s, p);
      const DenseCrfResult labels_only = pnpovss::crf::dense_crf_labels_from_scores(
          s.rgb.data(), s.height, s.width, s.scores.data(), s.labels, p);
      EXPECT_TRUE(labels_only.q.empty());
      EXPECT_EQ(labels_only.labels, full.labels) << c.height << "x" << c.width << ", " << c.labels << " labels";
    }
  }
}

TEST(DenseCrf, LabelsFromScoresRejectBadScores) {
  Scene s = make_scene(8, 8, 3, 5);
  s.scores[70] = std::numeric_limits<float>::quiet_NaN();
  try {
    pnpovss::crf::dense_crf_labels_from_scores(s.rgb.data(), 8, 8, s.scores.data(), 3);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 1 at pixel 6 is not finite"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pnpovss::crf::dense_crf_labels_from_scores(s.rgb.data(), 8, 8, nullptr, 3), Error);
  EXPECT_THROW(pnpovss::crf::dense_crf_labels_from_scores(nullptr, 8, 8, s.scores.data(), 3), Error);
  EXPECT_THROW(pnpovss::crf::dense_crf_labels_from_scores(s.rgb.data(), 0, 8, s.scores.data(), 3), Error);
}

TEST(DenseCrf, VectorWidthIsEightUnlessItPadsTheRowMuchFurther) {
  const bool avx2 = pnpovss::cpu::simd::cpu_has_avx2();
  // labels -> width with AVX2 (rows of 4-float and 8-float vectors in the comments)
  const std::pair<int, int> expected[] = {
      {1, 4}, {4, 4},     // 4 vs 8
      {12, 4},            // 12 vs 16: 33% more
      {20, 4}, {28, 4},   // 20 vs 24, 28 vs 32: 20% and 14% more
      {21, 8}, {24, 8},   // equal rows
      {44, 8},            // 44 vs 48: 9% more
      {59, 8}, {81, 8},   // Pascal Context (60 vs 64), COCO-Object (84 vs 88)
      {150, 8}, {171, 8}  // ADE20K, COCO-Stuff (172 vs 176)
  };
  for (const auto& [labels, width] : expected)
    EXPECT_EQ(pnpovss::crf::dense_crf_vector_width(labels), avx2 ? width : 4) << labels << " labels";
}

TEST(DenseCrf, CloseToExactDenseGaussianFiltering) {
  // The lattice approximates the Gaussian kernels; the fixture README measures a mean |dQ| of
  // about 1e-3 against exact filtering, with isolated pixels far off. Bound it loosely.
  const Scene s = make_scene(40, 48, 3, 21);
  const int64_t n = 40 * 48;
  for (int iterations : {1, 10}) {
    DenseCrfParams p;
    p.iterations = iterations;
    const DenseCrfResult lattice = run(s, p);
    const std::vector<double> exact = exact_crf(s, p);
    double max_err = 0, mean_err = 0;
    for (size_t k = 0; k < exact.size(); ++k) {
      const double e = std::fabs(lattice.q[k] - exact[k]);
      max_err = std::max(max_err, e);
      mean_err += e;
    }
    mean_err /= static_cast<double>(exact.size());
    const std::vector<float> exact_f(exact.begin(), exact.end());
    const std::vector<int32_t> exact_labels = pnpovss::crf::argmax_labels(exact_f.data(), 3, n);
    int mismatches = 0;
    for (int64_t i = 0; i < n; ++i) mismatches += exact_labels[i] != lattice.labels[i];
    std::printf("lattice vs exact (48x40, 3 labels, %d iterations): max |dQ| %.3g, mean |dQ| %.3g, %d/%lld labels differ\n",
                iterations, max_err, mean_err, mismatches, static_cast<long long>(n));
    EXPECT_LT(mean_err, 0.02);
    EXPECT_LE(mismatches, n / 50);
  }
}

TEST(Permutohedral, PaddingVerticesOnlyForIncompleteBlocksOfFour) {
  // Points far from the origin, so the origin's simplex is not in the lattice already.
  std::vector<float> features;
  for (int i = 0; i < 5; ++i) {
    features.push_back(40.0f + 0.3f * i);
    features.push_back(-25.0f + 0.1f * i);
  }
  pnpovss::crf::LatticeOptions with, without;
  without.sse_padding_vertices = false;
  PermutohedralLattice a, b, c;
  a.build(features.data(), 5, 2, with);
  b.build(features.data(), 5, 2, without);
  c.build(features.data(), 4, 2, with);
  EXPECT_EQ(a.vertices(), b.vertices() + 3);
  PermutohedralLattice d;
  d.build(features.data(), 4, 2, without);
  EXPECT_EQ(c.vertices(), d.vertices());
}

// The splat stores instead of adding at each vertex's first corner, and clears only the rows of
// vertices no point touches: every vertex must be first-touched once, by its earliest point.
TEST(Permutohedral, FirstTouchesMarkEachVertexOnceAtItsEarliestPoint) {
  Lcg rng{7};
  for (int dim : {2, 5}) {
    const int64_t points = 999;  // not a multiple of 4: padding vertices too
    std::vector<float> features(points * dim);
    for (float& f : features) f = 20.0f + 6.0f * rng.next();  // away from the padding points at 0
    PermutohedralLattice lattice;
    lattice.build(features.data(), points, dim);
    std::vector<int64_t> earliest(lattice.vertices(), -1), firsts(lattice.vertices(), 0);
    for (int64_t i = 0; i < points; ++i)
      for (int r = 0; r <= dim; ++r) {
        const int32_t v = lattice.corner_vertices(i)[r];
        if (earliest[v] < 0) earliest[v] = i;
        if ((lattice.first_touches(i) >> r) & 1u) {
          ++firsts[v];
          EXPECT_EQ(earliest[v], i) << "vertex " << v;
        }
      }
    std::vector<int32_t> untouched;
    for (int64_t v = 0; v < lattice.vertices(); ++v) {
      if (earliest[v] < 0) {
        untouched.push_back(static_cast<int32_t>(v));
      } else {
        EXPECT_EQ(firsts[v], 1) << "vertex " << v;
      }
    }
    EXPECT_EQ(lattice.untouched_vertices(), untouched);
    EXPECT_FALSE(untouched.empty()) << "the padding points' vertices lie away from the features";
  }
}

// The blur with ring buffers runs pairs of axes in one sweep; it must give the bits of one axis
// at a time, for both kernels' dimensions, row widths and thread counts (one and two parts).
TEST(Permutohedral, FusedAxisPairsBlurToTheSameBits) {
  Lcg rng{3};
  for (int dim : {2, 5}) {
    const int64_t points = 6000;
    std::vector<float> features(points * dim);
    for (int64_t i = 0; i < points; ++i)
      for (int k = 0; k < dim; ++k) features[i * dim + k] = (k == 0 ? (i % 80) : k == 1 ? (i / 80) : 8.0f * rng.next()) / 2.0f;
    PermutohedralLattice lattice;
    lattice.build(features.data(), points, dim);
    for (int stride : {4, 24, 176}) {
      for (int threads : {1, 2}) {
        const size_t size = static_cast<size_t>(lattice.vertices() + 1) * stride;
        std::vector<float> a(size, 0.0f), scratch_a(size, 0.0f);
        for (size_t i = stride; i < size; ++i) a[i] = rng.next();
        std::vector<float> b = a, scratch_b = scratch_a;
        std::vector<float> rings(lattice.blur_ring_floats(stride, threads));
        ASSERT_FALSE(rings.empty()) << "no pair of axes fused: the test would compare the plain blur with itself";
        const float* plain = lattice.blur(a.data(), scratch_a.data(), stride, threads);
        const float* fused = lattice.blur(b.data(), scratch_b.data(), stride, threads, rings.data());
        ASSERT_EQ(std::memcmp(plain == a.data() ? a.data() : scratch_a.data(),
                              fused == b.data() ? b.data() : scratch_b.data(), size * sizeof(float)),
                  0)
            << "dim " << dim << ", stride " << stride << ", " << threads << " thread(s)";
      }
    }
  }
}

TEST(Permutohedral, FiltersLikeAGaussianAwayFromBorders) {
  // A 2-D grid with unit spacing scaled by 1/3: the symmetric normalised response to an
  // impulse approximates a Gaussian of std 3 (the lattice's effective std is ~3.04 px).
  const int w = 61, h = 61;
  std::vector<float> f;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      f.push_back(x / 3.0f);
      f.push_back(y / 3.0f);
    }
  PermutohedralLattice lattice;
  lattice.build(f.data(), w * h, 2);
  std::vector<float> impulse(w * h, 0.0f), ones(w * h, 1.0f), out(w * h), norm(w * h);
  impulse[30 * w + 30] = 1.0f;
  lattice.compute(impulse.data(), out.data(), 1, 1);
  lattice.compute(ones.data(), norm.data(), 1, 1);
  double sum = 0, var = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double v = out[y * w + x] / norm[30 * w + 30];
      sum += v;
      var += v * ((x - 30) * (x - 30) + (y - 30) * (y - 30)) / 2.0;
    }
  EXPECT_NEAR(sum, 1.0, 0.05);
  EXPECT_NEAR(std::sqrt(var / sum), 3.0, 0.25);
}

TEST(Permutohedral, BuildingWithThreadsGivesTheSameFilter) {
  // Vertex numbering may differ with the thread count; the filtered values may not.
  const Scene s = make_scene(181, 203, 3, 17);  // enough points for several build tables
  const int64_t n = 181 * 203;
  std::vector<float> f(n * 5), values(n * 3), ref(n * 3), out(n * 3);
  for (int64_t i = 0; i < n; ++i) {
    f[i * 5 + 0] = static_cast<float>(i % 203) / 50.0f;
    f[i * 5 + 1] = static_cast<float>(i / 203) / 50.0f;
    for (int c = 0; c < 3; ++c) f[i * 5 + 2 + c] = s.rgb[i * 3 + c] / 5.0f;
    for (int c = 0; c < 3; ++c) values[i * 3 + c] = s.unary[c * n + i];
  }
  PermutohedralLattice one;
  one.build(f.data(), n, 5);
  one.compute(values.data(), ref.data(), 3, 1);
  for (int threads : {2, 3}) {
    pnpovss::crf::LatticeOptions options;
    options.threads = threads;
    PermutohedralLattice lattice;
    lattice.build(f.data(), n, 5, options);
    EXPECT_EQ(lattice.vertices(), one.vertices());
    lattice.compute(values.data(), out.data(), 3, threads);
    EXPECT_EQ(out, ref) << threads << " threads";
  }
}

TEST(Permutohedral, SortedAndHashedNeighboursGiveTheSameFilter) {
  // Blur neighbours come from a sweep over sorted packed keys; hash lookups are the fallback
  // for keys too wide to pack. Both must link the same vertices. Features of 2 and 5 (packed)
  // and of 9 dimensions with a wide spread (more than 64 bits of key: the fallback either way).
  const Scene s = make_scene(67, 91, 3, 5);
  const int64_t n = 67 * 91;
  for (int dim : {2, 5, 9}) {
    std::vector<float> f(n * dim), values(n * 3), ref(n * 3), out(n * 3);
    for (int64_t i = 0; i < n; ++i) {
      for (int k = 0; k < dim; ++k)
        f[i * dim + k] = k < 2 ? static_cast<float>(k == 0 ? i % 91 : i / 91) / 7.0f
                               : static_cast<float>(s.rgb[i * 3 + k % 3]) * (dim == 9 ? 2.0f : 0.2f);
      for (int c = 0; c < 3; ++c) values[i * 3 + c] = s.unary[c * n + i];
    }
    pnpovss::crf::LatticeOptions hashed;
    hashed.sorted_neighbours = false;
    PermutohedralLattice a, b;
    a.build(f.data(), n, dim);
    b.build(f.data(), n, dim, hashed);
    a.compute(values.data(), ref.data(), 3, 1);
    b.compute(values.data(), out.data(), 3, 1);
    EXPECT_EQ(out, ref) << dim << " dimensions";
  }
}

TEST(Permutohedral, RejectsBadInput) {
  PermutohedralLattice lattice;
  std::vector<float> f(8, 0.0f);
  EXPECT_THROW(lattice.build(nullptr, 4, 2), Error);
  EXPECT_THROW(lattice.build(f.data(), 0, 2), Error);
  EXPECT_THROW(lattice.build(f.data(), 4, 0), Error);
  EXPECT_THROW(lattice.build(f.data(), 1, 17), Error);
  f[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(lattice.build(f.data(), 4, 2), Error);
  f[3] = 1e6f;  // beyond 16-bit lattice coordinates
  EXPECT_THROW(lattice.build(f.data(), 4, 2), Error);
}

// Points are located by the threads that number their corners, each over its own range: a bad
// point in a later range must fail the build with its own index, whatever the thread count.
TEST(Permutohedral, RejectsABadPointInAnyThreadsRange) {
  const int64_t n = 40000;  // two build tables with 2 threads
  std::vector<float> f(n * 2);
  for (int64_t i = 0; i < n; ++i) {
    f[i * 2] = static_cast<float>(i % 200) / 3.0f;
    f[i * 2 + 1] = static_cast<float>(i / 200) / 3.0f;
  }
  const int64_t bad = 31234;
  f[bad * 2 + 1] = std::numeric_limits<float>::infinity();
  for (int threads : {1, 2}) {
    pnpovss::crf::LatticeOptions options;
    options.threads = threads;
    PermutohedralLattice lattice;
    try {
      lattice.build(f.data(), n, 2, options);
      ADD_FAILURE() << "no error with " << threads << " threads";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("point " + std::to_string(bad) + " "), std::string::npos) << e.what();
    }
  }
}
