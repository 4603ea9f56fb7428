// The Dense CRF in tensor operations (crf/tensor_crf.h) on a device against the exact CPU CRF,
// on the blurred class maps the pipeline makes for a photo with a benchmark's classes (the tiny
// bundled BLIP model at 64 px gives the maps; post-processing is what is timed):
//   bench_tensor_crf [--device cpu|cuda] [--image FILE] [--datasets voc20,context59,coco_stuff171]
//                    [--long-side PX] [--runs N] [--no-exact] [--shuffled]
// Per dataset: channels, the exact CRF's time (one run), the tensor CRF's first and median time,
// images/s at the median, and the share of pixels whose label agrees with the exact CRF's.
// --long-side upscales the photo first (bilinear), e.g. 1280 or 1920. --shuffled also runs the
// tensor CRF with the pixels in a random order: each vertex then sums its splat in another order,
// as a GPU's atomic adds do, which shows on a CPU what that does to the labels ("shuffled %").
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "pnpovss/crf/densecrf.h"
#include "pnpovss/crf/tensor_crf.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/resize.h"
#include "pnpovss/runtime/placement.h"
#include "pnpovss/segment/segmenter.h"

namespace {

using namespace pnpovss;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string device = "cpu";
  std::string image = std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/images/coco_000000039769.png";
  std::string datasets = "voc20,context59,coco_stuff171";
  int long_side = 0;
  int runs = 3;
  bool exact = true;
  bool shuffled = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--no-exact") {
      a.exact = false;
      continue;
    }
    if (k == "--shuffled") {
      a.shuffled = true;
      continue;
    }
    if (i + 1 >= argc) throw Error("missing value after " + k);
    const std::string v = argv[++i];
    if (k == "--device") a.device = v;
    else if (k == "--image") a.image = v;
    else if (k == "--datasets") a.datasets = v;
    else if (k == "--long-side") a.long_side = std::stoi(v);
    else if (k == "--runs") a.runs = std::max(1, std::stoi(v));
    else throw Error("unknown option " + k + " (see the comment at the top of bench_tensor_crf.cpp)");
  }
  return a;
}

// Labels [pixels] of the tensor CRF run on the pixels in a random (fixed) order, put back in order.
torch::Tensor shuffled_labels(const torch::Tensor& rgb, const torch::Tensor& stack, const DenseCrfParams& params) {
  const int64_t labels = stack.size(0), pixels = stack.size(1) * stack.size(2);
  const torch::Tensor neg = (-crf::tensor_unary_from_scores(stack.reshape({labels, pixels}))).t().contiguous();
  const crf::CrfFeatures f = crf::image_crf_features(rgb, params);
  torch::manual_seed(7);
  const torch::Tensor order = torch::randperm(pixels, torch::TensorOptions().dtype(torch::kInt64)).to(stack.device());
  const torch::Tensor q = crf::tensor_mean_field(
      neg.index_select(0, order), {f.gaussian.index_select(0, order), f.bilateral.index_select(0, order)}, params);
  torch::Tensor out = torch::empty({pixels}, order.options());
  out.index_put_({order}, q.argmax(1));
  return out.to(torch::kCPU, torch::kInt32).contiguous();
}

// Percentage of equal entries.
double agreement(const int32_t* a, const std::vector<int32_t>& b) {
  int64_t same = 0;
  for (size_t i = 0; i < b.size(); ++i) same += a[i] == b[i];
  return 100.0 * static_cast<double>(same) / static_cast<double>(b.size());
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

Image upscaled(const Image& in, int long_side) {
  if (long_side <= 0) return in;
  const double f = static_cast<double>(long_side) / std::max(in.width, in.height);
  return image::resize_bilinear_pil(in, static_cast<int>(in.width * f + 0.5), static_cast<int>(in.height * f + 0.5));
}

}  // namespace

int main(int argc, char** argv) {
  return bench::guarded_main([&] {
    const Args args = parse(argc, argv);
    const torch::Device device = runtime::parse_device(args.device);
    runtime::check_placement({device, torch::kFloat32});
    bench::set_threads(0);
    const Image photo = upscaled(image::decode_image_file(args.image), args.long_side);
    const auto model = segment::Segmenter::load(std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/blip_itm");
    MethodSettings settings;
    settings.input_size = 64;
    settings.attention_layer = 2;
    settings.attention_head = 3;
    settings.post_mode = Postprocess::Blur;  // the CRF's input; the CRF is what is timed here
    const DenseCrfParams params = settings.post_crf;
    const torch::Tensor rgb =
        torch::from_blob(const_cast<uint8_t*>(photo.rgb.data()), {photo.height, photo.width, 3}, torch::kUInt8)
            .to(device);

    std::printf("photo %dx%d, tensor CRF on %s, %d runs\n", photo.width, photo.height, device.str().c_str(), args.runs);
    std::printf("%-14s %8s %9s %9s %9s %9s %10s %10s\n", "dataset", "channels", "exact s", "first s", "median s",
                "images/s", "agree %", "shuffled %");
    std::stringstream list(args.datasets);
    for (std::string name; std::getline(list, name, ',');) {
      const segment::SegmentationResult r = model.segment(photo, bench::dataset_classes(name), settings);
      const torch::Tensor stack = r.blurred.contiguous();
      const int channels = static_cast<int>(stack.size(0));
      std::vector<int32_t> exact;
      double exact_seconds = 0;
      if (args.exact) {
        const auto start = Clock::now();
        exact = crf::dense_crf_labels_from_scores(photo.rgb.data(), photo.height, photo.width, stack.data_ptr<float>(),
                                                  channels, params)
                    .labels;
        exact_seconds = seconds_since(start);
      }
      const torch::Tensor scores = stack.to(device);
      std::vector<double> times;
      torch::Tensor labels;
      for (int run = 0; run < args.runs; ++run) {
        const auto start = Clock::now();
        labels = crf::tensor_crf_from_scores(rgb, scores, params).labels.to(torch::kCPU, torch::kInt32).contiguous();
        times.push_back(seconds_since(start));
      }
      const double first = times[0];
      std::sort(times.begin(), times.end());
      const double median = times[times.size() / 2];
      const auto percent = [&](const torch::Tensor& got) {
        return args.exact ? std::to_string(agreement(got.data_ptr<int32_t>(), exact)) : std::string("-");
      };
      const std::string shuffled = args.shuffled ? percent(shuffled_labels(rgb, scores, params)) : "-";
      std::printf("%-14s %8d %9.3f %9.3f %9.3f %9.2f %10s %10s\n", name.c_str(), channels, exact_seconds, first, median,
                  1.0 / median, percent(labels).c_str(), shuffled.c_str());
      std::fflush(stdout);
    }
    return 0;
  });
}
