// The fused CPU attention kernel against a direct double-precision evaluation of
// softmax(q k^T * scale) v, for both vector widths the CPU offers, shapes whose token count is
// not a multiple of the row block or the vector width, several items and heads, operands
// inside a fused qkv row, and any thread count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "pnpovss/cpu/cpu_attention.h"
#include "pnpovss/error.h"

namespace {

using namespace pnpovss;
using namespace pnpovss::cpu;

// A fused [items, tokens, 3 * heads * dim] projection filled with normal values; q, k and v are
// its three row blocks, as in the vision towers.
struct FusedQkv {
  FusedQkv(const AttentionShape& s, float spread, unsigned seed) : shape(s), width(3 * s.heads * s.head_dim) {
    data.resize(static_cast<size_t>(s.items * s.tokens * width));
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, spread);
    for (float& x : data) x = normal(rng);
  }
  AttentionOperand operand(int which) const {
    return {data.data() + which * shape.heads * shape.head_dim, shape.tokens * width, width, shape.head_dim};
  }
  float at(int which, int64_t b, int64_t t, int64_t h, int64_t c) const {
    return data[static_cast<size_t>(b * shape.tokens * width + t * width + which * shape.heads * shape.head_dim +
                                    h * shape.head_dim + c)];
  }
  AttentionShape shape;
  int64_t width;
  std::vector<float> data;
};

// out[b, t, h * dim + c] in double precision.
std::vector<double> reference_attention(const FusedQkv& x, double scale) {
  const AttentionShape& s = x.shape;
  std::vector<double> out(static_cast<size_t>(s.items * s.tokens * s.heads * s.head_dim));
  std::vector<double> p(static_cast<size_t>(s.tokens));
  for (int64_t b = 0; b < s.items; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.tokens; ++i) {
        double top = -1e300;
        for (int64_t j = 0; j < s.tokens; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < s.head_dim; ++c) dot += double(x.at(0, b, i, h, c)) * x.at(1, b, j, h, c);
          p[j] = dot * scale;
          top = std::max(top, p[j]);
        }
        double sum = 0;
        for (double& e : p) sum += (e = std::exp(e - top));
        for (int64_t c = 0; c < s.head_dim; ++c) {
          double o = 0;
          for (int64_t j = 0; j < s.tokens; ++j) o += p[j] / sum * x.at(2, b, j, h, c);
          out[static_cast<size_t>(((b * s.tokens) + i) * s.heads * s.head_dim + h * s.head_dim + c)] = o;
        }
      }
  return out;
}

std::vector<float> run(const FusedQkv& x, float scale, int threads, int width) {
  const AttentionShape& s = x.shape;
  std::vector<float> out(static_cast<size_t>(s.items * s.tokens * s.heads * s.head_dim), std::nanf(""));
  fused_attention(s, x.operand(0), x.operand(1), x.operand(2), out.data(), s.tokens * s.heads * s.head_dim,
                  s.heads * s.head_dim, scale, threads, width);
  return out;
}

// The widths this CPU runs (16 needs AVX-512, 8 needs AVX2 and FMA).
std::vector<int> available_widths() {
  std::vector<int> widths;
  if (attention_vector_width(16) == 16) widths.push_back(16);
  if (attention_vector_width(8) == 8) widths.push_back(8);
  return widths;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, const char* what,
                  double tolerance = 2e-5) {
  ASSERT_EQ(got.size(), want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << what << ": element " << i << " not written";
    worst = std::max(worst, std::abs(got[i] - want[i]));
  }
  EXPECT_LT(worst, tolerance) << what;
}

TEST(CpuAttention, MatchesDirectEvaluationForEveryWidthAndOddShapes) {
  const std::vector<int> widths = available_widths();
  if (widths.empty()) GTEST_SKIP() << "this CPU has neither AVX-512 nor AVX2";
  // Token counts around the 6-row block and the vector widths; head sizes 16, 32 and 64.
  const AttentionShape shapes[] = {{1, 4, 1, 16}, {2, 3, 7, 32}, {1, 2, 17, 64}, {3, 2, 50, 16}, {1, 16, 101, 64}};
  for (const AttentionShape& s : shapes)
    for (int width : widths) {
      if (s.head_dim % width) continue;
      const FusedQkv x(s, 1.0f, static_cast<unsigned>(s.tokens * 31 + s.heads));
      const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
      const auto want = reference_attention(x, scale);
      // float32 dots over up to 64 terms and a softmax over up to 101 keys: a few 1e-7 here.
      for (int threads : {1, 2, 5}) {
        SCOPED_TRACE("tokens " + std::to_string(s.tokens) + " heads " + std::to_string(s.heads) + " dim " +
                     std::to_string(s.head_dim) + " width " + std::to_string(width) + " threads " +
                     std::to_string(threads));
        expect_close(run(x, scale, threads, width), want, "fused attention");
      }
    }
}

TEST(CpuAttention, PeakedScoresStayFinite) {
  // Large logits (a nearly one-hot softmax) must neither overflow nor lose the peak.
  const std::vector<int> widths = available_widths();
  if (widths.empty()) GTEST_SKIP() << "this CPU has neither AVX-512 nor AVX2";
  const AttentionShape s{1, 2, 33, 16};
  const FusedQkv x(s, 6.0f, 7);
  const auto want = reference_attention(x, 1.0);
  // Logits reach about 150, which float32 holds to about 1e-5: any float32 evaluation moves
  // the weights by that much relative, and the values (spread 6) by about 1e-4.
  for (int width : widths) expect_close(run(x, 1.0f, 2, width), want, "peaked scores", 5e-4);
}

TEST(CpuAttention, ThreadCountDoesNotChangeTheResult) {
  const std::vector<int> widths = available_widths();
  if (widths.empty()) GTEST_SKIP() << "this CPU has neither AVX-512 nor AVX2";
  const AttentionShape s{2, 5, 29, 32};
  const FusedQkv x(s, 1.0f, 3);
  for (int width : widths) {
    const auto one = run(x, 0.2f, 1, width);
    EXPECT_EQ(one, run(x, 0.2f, 3, width));  // each head is computed whole by one thread
  }
}

TEST(CpuAttention, HeadMajorOperandsGiveTheSameResult) {
  // q, k, v as [items, heads, tokens, dim] tensors instead of rows of a fused projection.
  const std::vector<int> widths = available_widths();
  if (widths.empty()) GTEST_SKIP() << "this CPU has neither AVX-512 nor AVX2";
  const AttentionShape s{2, 3, 13, 16};
  const FusedQkv x(s, 1.0f, 11);
  const int64_t block = s.heads * s.tokens * s.head_dim;
  std::vector<float> head_major(static_cast<size_t>(3 * s.items * block));
  for (int which = 0; which < 3; ++which)
    for (int64_t b = 0; b < s.items; ++b)
      for (int64_t h = 0; h < s.heads; ++h)
        for (int64_t t = 0; t < s.tokens; ++t)
          for (int64_t c = 0; c < s.head_dim; ++c)
            head_major[static_cast<size_t>(which * s.items * block + b * block + (h * s.tokens + t) * s.head_dim + c)] =
                x.at(which, b, t, h, c);
  auto operand = [&](int which) {
    return AttentionOperand{head_major.data() + which * s.items * block, block, s.head_dim, s.tokens * s.head_dim};
  };
  for (int width : widths) {
    std::vector<float> out(static_cast<size_t>(s.items * block));
    fused_attention(s, operand(0), operand(1), operand(2), out.data(), block, s.heads * s.head_dim, 0.25f, 2, width);
    EXPECT_EQ(out, run(x, 0.25f, 2, width));  // the same arithmetic, other addresses
  }
}

TEST(CpuAttention, RefusesWhatItCannotRun) {
  const AttentionShape s{1, 1, 4, 16};
  const FusedQkv x(s, 1.0f, 1);
  std::vector<float> out(64);
  auto call = [&](const AttentionShape& shape, int width) {
    fused_attention(shape, x.operand(0), x.operand(1), x.operand(2), out.data(), 64, 16, 1.0f, 1, width);
  };
  EXPECT_THROW(call({1, 1, 0, 16}, 0), Error);   // no tokens
  EXPECT_THROW(call({1, 1, 4, 12}, 8), Error);   // head size not a multiple of the width
  EXPECT_THROW(call({1, 1, 4, 16}, 4), Error);   // no such width
  EXPECT_EQ(attention_vector_width(12), 0);      // no width divides 12
  EXPECT_EQ(attention_vector_width(0), 0);
}

}  // namespace
