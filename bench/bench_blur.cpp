// Gaussian blur of the channel stack (method step 5.5, scipy's gaussian_filter) at a photo's
// size: time per call for a few channel counts (a prompt's classes plus background) and each
// vector width this CPU runs, on all hardware threads; then the factored filter that images
// above kScipyExactBlurMaxSide take, with its largest difference from the direct one.
// `--direct 0` leaves the direct filter out (a 24-megapixel photo takes minutes per channel).
//
//   bench_blur [--size 640x480] [--channels 4,21,60,172] [--blur 0.05] [--grid 24] [--runs 5] [--direct 1]
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
  int64_t grid = 24;  // the patch grid of the final maps: 24 for BLIP at 384 px
  bool direct = true;
  bench::parse_options(argc, argv, [&](const std::string& k, const std::string& v) {
    if (k == "--size") {
      if (std::sscanf(v.c_str(), "%ldx%ld", &width, &height) != 2) return false;
    } else if (k == "--channels") {
      channels = bench::parse_int_list(v);
    } else if (k == "--blur") {
      blur = std::stod(v);
    } else if (k == "--grid") {
      grid = std::stol(v);
    } else if (k == "--direct") {
      direct = v != "0";
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
  MethodSettings settings;
  settings.background_mode = BackgroundMode::Always;
  for (int64_t c : channels) {
    // Masks of random final maps (the default threshold), upsampled, background first.
    const segment::ChannelStack stack =
        segment::build_channel_stack(torch::rand({c - 1, grid, grid}).pow(3), height, width, settings);
    std::printf("%4ld channels:", static_cast<long>(c));
    torch::Tensor want;
    for (int lanes : direct ? widths : std::vector<int>{}) {
      const bench::Timing t =
          bench::time_runs(runs, [&] { want = segment::gaussian_filter_channels(stack.stack, sigma, lanes); });
      std::printf("  %d doubles/vector %.3f s", lanes, t.median);
    }
    torch::Tensor got;
    const bench::Timing t = bench::time_runs(runs, [&] { got = segment::factored_gaussian_filter(stack, sigma); });
    std::printf("  factored %.3f s", t.median);
    if (want.defined()) std::printf(" (largest difference %.2g)", (got - want).abs().max().item<double>());
    std::printf("\n");
  }
  return 0;
}

int main(int argc, char** argv) {
  return bench::guarded_main([&] { return bench_main(argc, argv); });
}
