// The Dense CRF in tensor operations (crf/tensor_crf.h) against the exact CPU CRF: on the CPU it
// performs the same float operations in the same order, so lattice filters and unaries are
// compared bit for bit, and Q too when every label is in a group of four. The exponential of
// the labels past the last group differs: the C library's expf rounds the wrong way in about 1
// of 15,000 values, the tensor CRF rounds the double exponential; there Q may move by a float
// rounding. The fixture made by the reference passes with its tolerances.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "crf_scene.h"
#include "pnpovss/check/densecrf_fixture.h"
#include "pnpovss/crf/densecrf.h"
#include "pnpovss/crf/permutohedral.h"
#include "pnpovss/crf/tensor_crf.h"
#include "pnpovss/crf/tensor_lattice.h"
#include "pnpovss/error.h"

using pnpovss::DenseCrfParams;
using pnpovss::Error;
using pnpovss::crf::DenseCrfResult;

namespace {

torch::Tensor image_tensor(const pnpovss::test::Scene& s) {
  return torch::from_blob(const_cast<uint8_t*>(s.rgb.data()), {s.height, s.width, 3}, torch::kUInt8).clone();
}

torch::Tensor stack_tensor(const std::vector<float>& values, const pnpovss::test::Scene& s) {
  return torch::from_blob(const_cast<float*>(values.data()), {s.labels, s.height, s.width}, torch::kFloat32).clone();
}

// Largest |a - b|.
double max_difference(const float* a, const float* b, int64_t n) {
  double top = 0;
  for (int64_t i = 0; i < n; ++i) top = std::max(top, std::fabs(static_cast<double>(a[i]) - b[i]));
  return top;
}

// Bitwise equality of float data (so -0 and 0 differ, and any rounding shows).
int64_t differing_floats(const float* a, const float* b, int64_t n) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += std::memcmp(a + i, b + i, sizeof(float)) != 0;
  return count;
}

DenseCrfResult as_result(const pnpovss::crf::TensorCrfResult& t) {
  DenseCrfResult r;
  r.num_labels = static_cast<int>(t.q.size(0));
  r.height = static_cast<int>(t.q.size(1));
  r.width = static_cast<int>(t.q.size(2));
  const torch::Tensor q = t.q.contiguous();
  r.q.assign(q.data_ptr<float>(), q.data_ptr<float>() + q.numel());
  const torch::Tensor labels = t.labels.to(torch::kInt32).contiguous();
  r.labels.assign(labels.data_ptr<int32_t>(), labels.data_ptr<int32_t>() + labels.numel());
  return r;
}

}  // namespace

TEST(TensorLattice, FiltersToTheSameBitsAsTheLattice) {
  pnpovss::test::Lcg rng{11};
  for (const int dim : {2, 5}) {
    for (const int64_t points : {1, 7, 400, 1203}) {
      for (const int channels : {1, 3, 6}) {
        std::vector<float> features(points * dim), values(points * channels);
        for (float& f : features) f = 9.0f * rng.next();
        for (float& v : values) v = rng.next();
        pnpovss::crf::PermutohedralLattice lattice;
        lattice.build(features.data(), points, dim);
        std::vector<float> expected(values.size());
        lattice.compute(values.data(), expected.data(), channels, 1);

        const auto t = pnpovss::crf::build_tensor_lattice(torch::from_blob(features.data(), {points, dim}).clone());
        EXPECT_EQ(t.vertices, lattice.vertices()) << dim << "-d, " << points << " points";
        const torch::Tensor got =
            pnpovss::crf::tensor_filter(t, torch::from_blob(values.data(), {points, channels}).clone()).contiguous();
        EXPECT_EQ(differing_floats(got.data_ptr<float>(), expected.data(), points * channels), 0)
            << dim << "-d, " << points << " points, " << channels << " channels";
      }
    }
  }
}

TEST(TensorLattice, RejectsBadInput) {
  using pnpovss::crf::build_tensor_lattice;
  EXPECT_THROW(build_tensor_lattice(torch::zeros({4})), Error);
  EXPECT_THROW(build_tensor_lattice(torch::zeros({0, 2})), Error);
  EXPECT_THROW(build_tensor_lattice(torch::zeros({4, 2}, torch::kFloat64)), Error);
  EXPECT_THROW(build_tensor_lattice(torch::zeros({4, 17})), Error);
  EXPECT_THROW(build_tensor_lattice(torch::full({4, 2}, 1e9f)), Error);
  EXPECT_THROW(build_tensor_lattice(torch::full({4, 2}, NAN)), Error);
  const auto lattice = build_tensor_lattice(torch::rand({8, 2}));
  EXPECT_THROW(pnpovss::crf::tensor_splat(lattice, torch::ones({7, 1})), Error);
  EXPECT_THROW(pnpovss::crf::tensor_blur(lattice, torch::ones({3, 1})), Error);
}

TEST(TensorCrf, EqualsTheExactCrf) {
  struct Case {
    int height, width, labels, iterations;
  };
  // 1-3 labels: below one group of four (the sum left to right, the scalar slice order at 2);
  // 5 and 21: groups and a tail; 8 and 12: whole groups, even and odd.
  for (const Case c : {Case{9, 13, 2, 5}, Case{10, 11, 3, 3}, Case{17, 23, 5, 10}, Case{16, 16, 8, 4},
                       Case{21, 19, 12, 2}, Case{31, 29, 21, 10}, Case{12, 14, 1, 2}, Case{15, 15, 6, 0}}) {
    const pnpovss::test::Scene s = pnpovss::test::make_scene(c.height, c.width, c.labels, 100 + c.labels);
    DenseCrfParams params;
    params.iterations = c.iterations;
    const DenseCrfResult exact = pnpovss::crf::dense_crf(s.rgb, s.height, s.width, s.unary, s.labels, params);
    const DenseCrfResult got =
        as_result(pnpovss::crf::tensor_crf_from_scores(image_tensor(s), stack_tensor(s.scores, s), params, true));
    const std::string what = std::to_string(c.labels) + " labels, " + std::to_string(c.iterations) + " iterations";
    ASSERT_EQ(got.q.size(), exact.q.size()) << what;
    const auto n = static_cast<int64_t>(exact.q.size());
    if (c.labels % 4 == 0) {
      EXPECT_EQ(differing_floats(got.q.data(), exact.q.data(), n), 0) << what;
    } else {
      EXPECT_LE(max_difference(got.q.data(), exact.q.data(), n), 1e-6) << what;
      EXPECT_LE(differing_floats(got.q.data(), exact.q.data(), n), n / 1000 + 1) << what;
    }
    EXPECT_EQ(got.labels, exact.labels) << what;
  }
}

// With the pixels in another order each vertex adds its splat in another order (as a GPU's
// atomic adds do): Q moves by roundings only, and the labels stay.
TEST(TensorCrf, PixelOrderChangesQOnlyByRounding) {
  const pnpovss::test::Scene s = pnpovss::test::make_scene(48, 64, 21, 9);
  const int64_t pixels = static_cast<int64_t>(s.height) * s.width;
  const DenseCrfParams params;
  const torch::Tensor neg =
      (-pnpovss::crf::tensor_unary_from_scores(stack_tensor(s.scores, s).view({s.labels, pixels}))).t().contiguous();
  const auto f = pnpovss::crf::image_crf_features(image_tensor(s), params);
  const torch::Tensor in_order = pnpovss::crf::tensor_mean_field(neg, f, params);
  torch::manual_seed(3);
  const torch::Tensor order = torch::randperm(pixels, torch::kInt64);
  const torch::Tensor permuted = pnpovss::crf::tensor_mean_field(
      neg.index_select(0, order), {f.gaussian.index_select(0, order), f.bilateral.index_select(0, order)}, params);
  const torch::Tensor back = torch::empty_like(permuted).index_put_({order}, permuted);
  const double largest = (back - in_order).abs().max().item<double>();
  const int64_t moved = (back != in_order).sum().item<int64_t>();
  std::printf("%lld of %lld values of Q moved, by at most %.3g\n", static_cast<long long>(moved),
              static_cast<long long>(back.numel()), largest);
  EXPECT_LE(largest, 1e-4);
  EXPECT_TRUE(torch::equal(back.argmax(1), in_order.argmax(1)));
}

TEST(TensorCrf, UnaryFromScoresEqualsTheExactOne) {
  const pnpovss::test::Scene s = pnpovss::test::make_scene(37, 41, 23, 5);
  const int64_t pixels = static_cast<int64_t>(s.height) * s.width;
  const torch::Tensor got =
      pnpovss::crf::tensor_unary_from_scores(stack_tensor(s.scores, s).view({s.labels, pixels})).contiguous();
  EXPECT_EQ(differing_floats(got.data_ptr<float>(), s.unary.data(), pixels * s.labels), 0);
}

TEST(TensorCrf, PassesTheReferenceFixture) {
  const auto solve = [](const uint8_t* rgb, int height, int width, const float* unary, int labels,
                        const DenseCrfParams& params) {
    const torch::Tensor image = torch::from_blob(const_cast<uint8_t*>(rgb), {height, width, 3}, torch::kUInt8);
    const torch::Tensor u = torch::from_blob(const_cast<float*>(unary), {labels, height, width}, torch::kFloat32);
    return as_result(pnpovss::crf::tensor_crf(image, u, params, true));
  };
  const auto checks = pnpovss::check::check_densecrf_fixture(std::string(PNPOVSS_TEST_DATA) + "/densecrf", solve);
  ASSERT_FALSE(checks.empty());
  for (const auto& c : checks) EXPECT_TRUE(c.passed) << c.name << ": " << c.note;
}

TEST(TensorCrf, RejectsBadInput) {
  using pnpovss::crf::tensor_crf_from_scores;
  const pnpovss::test::Scene s = pnpovss::test::make_scene(8, 9, 3, 1);
  const torch::Tensor rgb = image_tensor(s), scores = stack_tensor(s.scores, s);
  EXPECT_THROW(tensor_crf_from_scores(rgb, scores.to(torch::kFloat64), {}), Error);
  EXPECT_THROW(tensor_crf_from_scores(rgb.to(torch::kFloat32), scores, {}), Error);
  EXPECT_THROW(tensor_crf_from_scores(rgb.slice(0, 1), scores, {}), Error);
  EXPECT_THROW(tensor_crf_from_scores(rgb, scores.view({-1}), {}), Error);
  torch::Tensor bad = scores.clone();
  bad[1][2][3] = NAN;
  try {
    tensor_crf_from_scores(rgb, bad, {});
    ADD_FAILURE() << "a NaN score was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 1 at pixel 21"), std::string::npos) << e.what();
  }
  DenseCrfParams params;
  params.bilateral_srgb = 0.0f;
  EXPECT_THROW(tensor_crf_from_scores(rgb, scores, params), Error);
}
