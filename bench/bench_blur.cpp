// Gaussian blur of the channel stack (method step 5.5, scipy's gaussian_filter) at a photo's
// size: time per call for a few channel counts (a prompt's classes plus background) and each
// vector width this CPU runs, on all hardware threads.
//
//   bench_blur [--size 640x480] [--channels 4,21,60,172] [--blur 0.05] [--runs 5]
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"
#include "pnpovss/segment/postprocess.h"

using namespace pnpovss;

int bench_main(int argc, char** argv) {
  int64_t width = 640, height = 480;
  std::vector<int64_t> channels = {4, 21, 60, 172};
  double blur = 0.05;
  int runs = 5;
  bench::parse_options(argc, argv, [&](const std::string& k, const std::string& v) {
    if (k == "--size") {
      if (std::sscanf(v.c_str(), "%ldx%ld", &width, &height) != 2) return false;
    } else if (k == "--channels") {
      channels = bench::parse_int_list(v);
    } else if (k == "--blur") {
      blur = std::stod(v);
    } else if (k == "--runs") {
      runs = std::stoi(v);
    } else {
      return false;
    }
    return true;
  });
  const double sigma = blur * static_cast<double>(std::max(width, height));  // relative to the long side
  const std::vector<int> widths = segment::blur_lane_widths();
  std::printf("%ldx%ld, sigma %.1f px (%zu taps), %d runs, median\n", static_cast<long>(width),
              static_cast<long>(height), sigma, segment::gaussian_kernel(sigma).size(), runs);
  torch::manual_seed(0);
  for (int64_t c : channels) {
    const torch::Tensor stack = torch::rand({c, height, width});
    std::printf("%4ld channels:", static_cast<long>(c));
    for (int lanes : widths) {
      const bench::Timing t = bench::time_runs(runs, [&] { segment::gaussian_filter_channels(stack, sigma, lanes); });
      std::printf("  %d doubles/vector %.3f s", lanes, t.median);
    }
    std::printf("\n");
  }
  return 0;
}

int main(int argc, char** argv) {
  return bench::guarded_main([&] { return bench_main(argc, argv); });
}
