// Dense CRF timing and memory on synthetic PnP-OVSS-like inputs (a photo-like image and soft
// score maps in [0, 1]), plus the lattice's deviation from exact dense Gaussian filtering.
//   bench_densecrf [runs] [--no-large] [--image FILE [--long-side N]] [--labels N,N,...]
//                  [--width 4|8] [--from-scores]
// FILE: a photo to time the CRF on its colours, with 4 and 21 labels unless --labels says
// otherwise (150 and 171 are ADE20K's and COCO-Stuff's class counts); --long-side upscales it
// first (PIL's bicubic), e.g. 6000 for a 24-megapixel photo from a 4:3 one. --width forces the
// vector width of the timed runs (the CRF's own choice is dense_crf_vector_width).
// --from-scores times the pipeline's call (dense_crf_labels_from_scores: the unary computed from
// the score maps, labels only) instead of dense_crf on a ready unary with its marginals.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "pnpovss/cpu/simd.h"
#include "pnpovss/crf/densecrf.h"
#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/resize.h"

namespace {

using pnpovss::DenseCrfParams;

struct Lcg {
  uint64_t state;
  float next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(state >> 40) / static_cast<float>(1ull << 24);
  }
};

struct Input {
  int height = 0, width = 0, labels = 0;
  std::vector<uint8_t> rgb;
  std::vector<float> scores;  // labels x pixels, each map scaled to [0, 1]
  std::vector<float> unary;
};

// Regions of smoothly varying colour with sensor-like noise, and per label a few Gaussian blobs
// scaled to [0, 1] (the softmax of such maps gives the soft unaries PnP-OVSS produces).
Input make_input(int height, int width, int labels, uint64_t seed) {
  Input in;
  in.height = height;
  in.width = width;
  in.labels = labels;
  Lcg rng{seed};
  const int64_t n = static_cast<int64_t>(height) * width;
  const int regions = 12;
  std::vector<float> cx(regions), cy(regions), col(regions * 3);
  for (int r = 0; r < regions; ++r) {
    cx[r] = rng.next() * width;
    cy[r] = rng.next() * height;
    for (int c = 0; c < 3; ++c) col[r * 3 + c] = 30.0f + 200.0f * rng.next();
  }
  in.rgb.resize(n * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      int best = 0;
      float best_d = 1e30f;
      for (int r = 0; r < regions; ++r) {
        const float d = (x - cx[r]) * (x - cx[r]) + (y - cy[r]) * (y - cy[r]);
        if (d < best_d) best_d = d, best = r;
      }
      const float shade = 20.0f * std::sin(0.01f * x + 0.013f * y);
      for (int c = 0; c < 3; ++c) {
        const float v = col[best * 3 + c] + shade + 16.0f * (rng.next() - 0.5f);
        in.rgb[(static_cast<int64_t>(y) * width + x) * 3 + c] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
      }
    }
  std::vector<float> scores(n * labels, 0.0f);
  for (int l = 0; l < labels; ++l) {
    float* s = &scores[l * n];
    for (int b = 0; b < 3; ++b) {
      const float bx = rng.next() * width, by = rng.next() * height;
      const float sigma = (0.05f + 0.15f * rng.next()) * std::max(width, height);
      for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
          s[static_cast<int64_t>(y) * width + x] +=
              std::exp(-((x - bx) * (x - bx) + (y - by) * (y - by)) / (2 * sigma * sigma));
    }
    const float top = *std::max_element(s, s + n);
    for (int64_t i = 0; i < n; ++i) s[i] /= top;
  }
  in.unary = pnpovss::crf::unary_from_probabilities(scores.data(), labels, n);
  in.scores = std::move(scores);
  return in;
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // KiB on Linux
}

// `width`: floats per vector (--width); 0 lets the CRF choose. `from_scores`: the pipeline's
// call (see --from-scores).
void time_case(const Input& in, int threads, int runs, int width, bool from_scores = false) {
  DenseCrfParams p;
  p.vector_width = width;
  p.threads = threads;
  std::vector<std::pair<double, pnpovss::crf::DenseCrfTimings>> seconds;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto result =
        from_scores ? pnpovss::crf::dense_crf_labels_from_scores(in.rgb.data(), in.height, in.width, in.scores.data(),
                                                                 in.labels, p)
                    : pnpovss::crf::dense_crf(in.rgb, in.height, in.width, in.unary, in.labels, p);
    const auto t1 = std::chrono::steady_clock::now();
    seconds.emplace_back(std::chrono::duration<double>(t1 - t0).count(), result.timings);
    if (result.labels.empty()) std::abort();
  }
  std::sort(seconds.begin(), seconds.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  const auto& median = seconds[seconds.size() / 2];
  std::printf("%4dx%-4d %2d labels %2d iterations, %d thread(s): min %.3f s  median %.3f s  (%d runs)  peak RSS %.0f MiB"
              "  [median run: unary %.3f s, lattices %.3f s, passes %.3f s, blurs %.3f s]\n",
              in.width, in.height, in.labels, p.iterations, threads, seconds.front().first, median.first, runs,
              peak_rss_mib(), median.second.unary, median.second.lattices, median.second.passes, median.second.blurs);
}

// Mean-field with exact O(N^2) Gaussian kernels in double (self term included, symmetric
// normalisation), i.e. what the lattice approximates.
std::vector<double> exact_crf(const Input& in, const DenseCrfParams& p) {
  const int64_t n = static_cast<int64_t>(in.height) * in.width;
  const int m = in.labels;
  std::vector<double> f(n * 5);
  for (int64_t i = 0; i < n; ++i) {
    f[i * 5 + 0] = static_cast<double>(i % in.width);
    f[i * 5 + 1] = static_cast<double>(i / in.width);
    for (int c = 0; c < 3; ++c) f[i * 5 + 2 + c] = in.rgb[i * 3 + c] / static_cast<double>(p.bilateral_srgb);
  }
  std::vector<double> kernel[2] = {std::vector<double>(n * n), std::vector<double>(n * n)};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double dx = f[i * 5] - f[j * 5], dy = f[i * 5 + 1] - f[j * 5 + 1];
      double dc = 0;
      for (int c = 2; c < 5; ++c) dc += (f[i * 5 + c] - f[j * 5 + c]) * (f[i * 5 + c] - f[j * 5 + c]);
      const double d2 = dx * dx + dy * dy;
      kernel[0][i * n + j] = std::exp(-0.5 * d2 / (p.gaussian_sxy * p.gaussian_sxy));
      kernel[1][i * n + j] = std::exp(-0.5 * (d2 / (p.bilateral_sxy * p.bilateral_sxy) + dc));
    }
  const double weight[2] = {p.gaussian_weight, p.bilateral_weight};
  std::vector<double> norm[2] = {std::vector<double>(n), std::vector<double>(n)};
  for (int k = 0; k < 2; ++k)
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s += kernel[k][i * n + j];
      norm[k][i] = 1.0 / std::sqrt(s);
    }
  std::vector<double> q(n * m), logits(n * m), scaled(n * m);
  auto softmax = [&] {
    for (int64_t i = 0; i < n; ++i) {
      double top = -INFINITY, s = 0;
      for (int l = 0; l < m; ++l) top = std::max(top, logits[l * n + i]);
      for (int l = 0; l < m; ++l) s += std::exp(logits[l * n + i] - top);
      for (int l = 0; l < m; ++l) q[l * n + i] = std::exp(logits[l * n + i] - top) / s;
    }
  };
  for (int64_t k = 0; k < n * m; ++k) logits[k] = -static_cast<double>(in.unary[k]);
  softmax();
  for (int it = 0; it < p.iterations; ++it) {
    for (int64_t k = 0; k < n * m; ++k) logits[k] = -static_cast<double>(in.unary[k]);
    for (int k = 0; k < 2; ++k) {
      for (int l = 0; l < m; ++l)
        for (int64_t j = 0; j < n; ++j) scaled[l * n + j] = norm[k][j] * q[l * n + j];
      for (int64_t i = 0; i < n; ++i) {
        const double* row = &kernel[k][i * n];
        for (int l = 0; l < m; ++l) {
          const double* s = &scaled[l * n];
          double acc = 0;
          for (int64_t j = 0; j < n; ++j) acc += row[j] * s[j];
          logits[l * n + i] += weight[k] * norm[k][i] * acc;
        }
      }
    }
    softmax();
  }
  return q;
}

void compare_with_exact(int height, int width, int labels, int iterations) {
  const Input in = make_input(height, width, labels, 99);
  DenseCrfParams p;
  p.iterations = iterations;
  const auto lattice = pnpovss::crf::dense_crf(in.rgb, height, width, in.unary, labels, p);
  const std::vector<double> exact = exact_crf(in, p);
  double max_err = 0, mean_err = 0;
  for (size_t k = 0; k < exact.size(); ++k) {
    const double e = std::fabs(lattice.q[k] - exact[k]);
    max_err = std::max(max_err, e);
    mean_err += e;
  }
  mean_err /= static_cast<double>(exact.size());
  const int64_t n = static_cast<int64_t>(height) * width;
  const std::vector<float> exact_f(exact.begin(), exact.end());
  const auto exact_labels = pnpovss::crf::argmax_labels(exact_f.data(), labels, n);
  int64_t differ = 0;
  for (int64_t i = 0; i < n; ++i) differ += exact_labels[i] != lattice.labels[i];
  std::printf("lattice vs exact dense filtering, %dx%d, %d labels, %2d iterations: max |dQ| %.3g  mean |dQ| %.3g  "
              "labels differ %lld/%lld\n",
              width, height, labels, iterations, max_err, mean_err, static_cast<long long>(differ),
              static_cast<long long>(n));
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  bool large = true;
  std::string photo;
  std::vector<int> photo_labels = {4, 21};
  int width = 0;
  int long_side = 0;
  bool from_scores = false;
  const char* usage =
      "usage: bench_densecrf [runs] [--no-large] [--image FILE [--long-side N]] [--labels N,N,...] [--width 4|8]\n"
      "                      [--from-scores]\n";
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-large") {
      large = false;
    } else if (a == "--from-scores") {
      from_scores = true;
    } else if (a == "--image" && i + 1 < argc) {
      photo = argv[++i];
    } else if (a == "--long-side" && i + 1 < argc) {
      long_side = std::atoi(argv[++i]);
      if (long_side < 16 || long_side > 20000) {
        std::fprintf(stderr, "--long-side: a side in pixels, 16..20000\n");
        return 2;
      }
    } else if (a == "--labels" && i + 1 < argc) {
      photo_labels.clear();
      for (const char* p = argv[++i]; *p != '\0';) {
        char* end = nullptr;
        const long n = std::strtol(p, &end, 10);
        if (end == p || n < 2 || n > 1000) {
          photo_labels.clear();
          break;
        }
        photo_labels.push_back(static_cast<int>(n));
        p = *end == ',' ? end + 1 : end;
      }
      if (photo_labels.empty()) {
        std::fprintf(stderr, "--labels: a comma-separated list of label counts in 2..1000\n");
        return 2;
      }
    } else if (a == "--width" && i + 1 < argc) {
      width = std::atoi(argv[++i]);
      if (width != 4 && width != 8) {
        std::fprintf(stderr, "--width: 4 or 8\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "%s", usage);
      return 2;
    }
  }
  if (long_side > 0 && photo.empty()) {
    std::fprintf(stderr, "--long-side needs --image\n%s", usage);
    return 2;
  }
  try {
    if (!photo.empty()) {
      // A photo's colours make a far larger bilateral lattice than the synthetic scene (about
      // one vertex per pixel against one per six), so its timing is the one users see.
      pnpovss::Image image = pnpovss::image::decode_image_file(photo);
      if (long_side > 0) {
        const bool landscape = image.width >= image.height;
        const int w = landscape ? long_side : long_side * image.width / image.height;
        const int h = landscape ? long_side * image.height / image.width : long_side;
        image = pnpovss::image::resize_bicubic_pil(image, w, h);
      }
      for (int labels : photo_labels) {
        Input in = make_input(image.height, image.width, labels, 3);
        in.rgb = image.rgb;
        std::printf("photo %s, %d floats per vector%s: ", photo.c_str(),
                    width != 0 ? width : pnpovss::crf::dense_crf_vector_width(labels),
                    from_scores ? ", from scores" : "");
        time_case(in, 2, runs, width, from_scores);
      }
    }
    std::printf("vectors: %s\n", pnpovss::cpu::simd::cpu_has_avx2()
                                    ? "AVX2 (8 floats; 4 where that pads the labels over 10% further)"
                                    : "SSE2 (4 floats)");
    const Input voc = make_input(375, 500, 21, 1);
    time_case(voc, 1, runs, width);
    time_case(voc, 2, runs, width);
    if (large) {
      const Input big = make_input(1024, 2048, 59, 2);
      time_case(big, 2, std::max(1, std::min(runs, 3)), width);
    }
    compare_with_exact(48, 64, 3, 1);
    compare_with_exact(48, 64, 3, 10);
  } catch (const pnpovss::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
