// Throughput of the method on a random-weight model with a real checkpoint's shapes: images
// per second and per-stage time against batch size, device and dtype, with peak memory (RSS
// and, on CUDA, the allocator's peak). Optionally compares each run's label maps and class
// maps with unbatched fp32 on the same images (batched or reduced-precision agreement).
//
//   bench_throughput [--device cpu|cuda[:N]] [--dtypes fp32,bf16] [--sizes 336,768]
//                    [--batch-sizes 1,8,32] [--workers 1,2] [--images 16] [--iterations 4]
//                    [--postprocess none|blur|blur+crf] [--overlap auto,off] [--compare N]
//                    [--threads N] [--manifest M] [--cache DIR]
//
// With several workers, a batch per worker runs side by side (segment::run_in_batches), and
// the wall time per image is that of each group of batch x workers images over its size.
// --overlap auto post-processes each batch while the model runs the next where
// segment_in_batches does (a GPU with one worker; groups of four batches); off never does.
//
// The images are crops of the bundled photo of different sizes, each with one of several class
// lists of different lengths, so batches mix prompt lengths and output sizes.
#include <torch/torch.h>

#if __has_include(<c10/cuda/CUDACachingAllocator.h>) && __has_include(<cuda_runtime_api.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define PNPOVSS_CUDA_STATS 1
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/crop.h"
#include "pnpovss/runtime/placement.h"
#include "pnpovss/segment/batching.h"
#include "pnpovss/segment/blip_backbone.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/settings.h"
#include "pnpovss/text/wordpiece.h"

using namespace pnpovss;

namespace {

struct Args {
  std::string manifest = bench::default_manifest();
  std::string cache = bench::default_cache();
  std::string device = "cpu";
  std::vector<std::string> dtypes = {"fp32"};
  std::vector<int64_t> sizes = {336};
  std::vector<int64_t> batch_sizes = {1};
  std::vector<int64_t> workers = {1};
  int images = 8;
  int iterations = 4;
  std::string postprocess = "none";
  std::vector<std::string> overlap = {"auto"};
  int compare = 0;  // images compared with unbatched fp32 (0: none)
  int threads = 0;
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

Args parse(int argc, char** argv) {
  Args a;
  bench::parse_options(argc, argv, [&](const std::string& k, const std::string& v) {
    if (k == "--manifest") a.manifest = v;
    else if (k == "--cache") a.cache = v;
    else if (k == "--device") a.device = v;
    else if (k == "--dtypes") a.dtypes = split(v);
    else if (k == "--sizes") a.sizes = bench::parse_int_list(v);
    else if (k == "--batch-sizes") a.batch_sizes = bench::parse_int_list(v);
    else if (k == "--workers") a.workers = bench::parse_int_list(v);
    else if (k == "--images") a.images = std::stoi(v);
    else if (k == "--iterations") a.iterations = std::stoi(v);
    else if (k == "--postprocess") a.postprocess = v;
    else if (k == "--overlap") a.overlap = split(v);
    else if (k == "--compare") a.compare = std::stoi(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else return false;
    return true;
  });
  for (const auto& mode : a.overlap)
    if (mode != "auto" && mode != "off") {
      std::fprintf(stderr, "--overlap: auto or off (or both: auto,off), got '%s'\n", mode.c_str());
      std::exit(2);
    }
  return a;
}

struct Workload {
  std::vector<Image> images;
  std::vector<std::vector<std::string>> classes;
  std::vector<segment::ImageTask> tasks;
};

Workload make_workload(const Image& photo, int count) {
  const std::vector<std::vector<std::string>> lists = {
      {"cat", "couch", "remote control", "blanket", "person"},
      {"cat", "dog"},
      {"sofa", "television", "lamp", "window", "potted plant", "bookshelf", "rug"},
      {"remote control", "cat"}};
  Workload w;
  for (int i = 0; i < count; ++i) {
    w.images.push_back(image::center_crop(photo, photo.width - 8 * (i % 10), photo.height - 6 * (i % 7)));
    w.classes.push_back(lists[static_cast<size_t>(i) % lists.size()]);
  }
  for (int i = 0; i < count; ++i) w.tasks.push_back({&w.images[static_cast<size_t>(i)], &w.classes[static_cast<size_t>(i)]});
  return w;
}

double gpu_peak_gib(const torch::Device& device) {
#ifdef PNPOVSS_CUDA_STATS
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0 * 1024.0);
  }
#endif
  (void)device;
  return 0.0;
}

void reset_gpu_peak(const torch::Device& device) {
#ifdef PNPOVSS_CUDA_STATS
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
  (void)device;
}

struct RunResult {
  std::vector<segment::SegmentationResult> results;
  double seconds = 0, dropout_s = 0, post_s = 0;
  std::vector<double> per_image_s;  // each group's wall time over its image count
};

// "min A s, median B s over N groups" of the per-image wall times (one per group).
std::string min_median(const std::vector<double>& v) {
  if (v.empty()) return "no images";
  const bench::Timing t = bench::summarize(v);
  char text[96];
  std::snprintf(text, sizeof text, "min %.3f s, median %.3f s over %zu groups", t.min, t.median, v.size());
  return text;
}

RunResult run_all(const segment::Backbone& backbone, const segment::PromptTokenizer& tok, const Workload& w,
                  int64_t batch, int64_t workers, const MethodSettings& settings, bool overlap = false) {
  RunResult out;
  const auto start = std::chrono::steady_clock::now();
  const size_t group = segment::images_per_group({static_cast<int>(batch), false}, static_cast<int>(workers), overlap);
  auto run_batch = [&](const std::vector<segment::ImageTask>& tasks) {
    return segment::segment_images(backbone, tok, tasks, settings);
  };
  const segment::BatchStages stages = segment::segment_stages(backbone, tok, settings);
  for (size_t i = 0; i < w.tasks.size(); i += group) {
    const size_t end = std::min(w.tasks.size(), i + group);
    std::vector<segment::ImageTask> chunk(w.tasks.begin() + static_cast<std::ptrdiff_t>(i),
                                          w.tasks.begin() + static_cast<std::ptrdiff_t>(end));
    const auto group_start = std::chrono::steady_clock::now();
    segment::BatchSize size{static_cast<int>(batch), false};
    auto results = overlap ? segment::run_overlapped(stages, chunk, size, settings.input_size)
                           : segment::run_in_batches(run_batch, chunk, size, settings.input_size,
                                                     static_cast<int>(workers));
    out.per_image_s.push_back(bench::seconds_since(group_start) / static_cast<double>(chunk.size()));
    for (auto& r : results) {
      for (const auto& t : r.timings) {
        if (t.stage == "dropout") out.dropout_s += t.seconds;
        if (t.stage == "postprocess" || t.stage == "crf") out.post_s += t.seconds;
      }
      out.results.push_back(std::move(r));
    }
  }
  out.seconds = bench::seconds_since(start);
  return out;
}

// Percent of pixels with the same label, and the largest difference of the normalised class
// maps, over the first `count` images.
void compare(const RunResult& run, const RunResult& reference, int count) {
  int64_t same = 0, total = 0;
  double max_map = 0;
  for (int i = 0; i < count && i < static_cast<int>(reference.results.size()); ++i) {
    const auto& a = run.results[static_cast<size_t>(i)];
    const auto& b = reference.results[static_cast<size_t>(i)];
    for (size_t p = 0; p < a.labels.size(); ++p) same += a.labels[p] == b.labels[p];
    total += static_cast<int64_t>(a.labels.size());
    max_map = std::max(max_map, (a.maps.normalized - b.maps.normalized).abs().max().item<double>());
  }
  std::printf("    vs unbatched fp32 on %d images: labels agree on %.4f%% of pixels, max normalised map difference %.3g\n",
              count, 100.0 * static_cast<double>(same) / static_cast<double>(std::max<int64_t>(total, 1)), max_map);
}

}  // namespace

int bench_main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  auto bench_model = bench::prepare_model(args.manifest, args.cache, args.threads);
  const auto tok = segment::prompt_tokenizer(
      text::WordPieceTokenizer::from_dir(std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/blip_itm"));
  const auto photo = image::decode_image_file(std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/images/coco_000000039769.png");
  const Workload work = make_workload(photo, args.images);
  const torch::Device device = runtime::parse_device(args.device);
  std::printf("model: random weights with the shapes of %s; %d CPU threads; %d images (crops of %dx%d, 2-7 classes); "
              "%d dropout iterations; postprocess %s\n\n",
              bench_model.checkpoint.c_str(), at::get_num_threads(), args.images, photo.width, photo.height,
              args.iterations, args.postprocess.c_str());
  std::printf("%-10s %-5s %-5s %-6s %-8s %-9s %-11s %-11s %-9s %s\n", "device", "dtype", "size", "batch", "workers",
              "images/s", "model s/img", "post s/img", "RSS GiB", "GPU peak GiB");
  std::map<int64_t, RunResult> reference;  // per size: unbatched fp32
  for (const auto& dtype_text : args.dtypes) {
    const runtime::Placement placement{device, runtime::parse_dtype(dtype_text)};
    // A copy for another placement comes from its own mapping of the checkpoint, which it gives
    // back as it converts, as the command line's model does; one that shared the float32
    // model's weights would keep their pages and inflate the peak RSS.
    models::BlipItm model = placement.is_default() ? bench_model.model : models::BlipItm::load(args.cache);
    if (!placement.is_default()) model.to(placement);
    const segment::BlipBackbone backbone(model, models::ImagePreprocessConfig{});
    for (int64_t size : args.sizes) {
      auto settings = preset("paper", "blip");
      settings.input_size = static_cast<int>(size);
      settings.dropout_iterations = args.iterations;
      settings.post_mode = parse_postprocess(args.postprocess);
      if (args.compare > 0 && !reference.count(size)) {
        models::BlipItm fp32 = bench_model.model;
        fp32.to({device, torch::kFloat32});
        const segment::BlipBackbone exact(fp32, models::ImagePreprocessConfig{});
        Workload first = make_workload(photo, std::min(args.compare, args.images));
        reference[size] = run_all(exact, *tok, first, 1, 1, settings);
      }
      for (int64_t batch : args.batch_sizes) {
        for (int64_t workers : args.workers) {
          for (const std::string& mode : args.overlap) {
            const bool overlap =
                mode == "auto" && segment::overlaps_postprocessing(placement, static_cast<int>(workers));
            const auto warm_up = static_cast<int>(std::min<int64_t>(batch * workers, args.images));
            run_all(backbone, *tok, make_workload(photo, warm_up), batch, workers, settings);
            reset_gpu_peak(device);
            const RunResult r = run_all(backbone, *tok, work, batch, workers, settings, overlap);
            const double n = static_cast<double>(work.tasks.size());
            // model s/img sums each image's own time, which side by side overlaps the others'.
            std::printf("%-10s %-5s %-5lld %-6lld %-8lld %-9.2f %-11.4f %-11.4f %-9.2f %.2f\n", device.str().c_str(),
                        dtype_text.c_str(), static_cast<long long>(size), static_cast<long long>(batch),
                        static_cast<long long>(workers), n / r.seconds, r.dropout_s / n, r.post_s / n,
                        bench::peak_rss_gib(), gpu_peak_gib(device));
            std::printf("    wall time per image: %s%s\n", min_median(r.per_image_s).c_str(),
                        overlap ? " (post-processing overlapped with the next batch)" : "");
            if (args.compare > 0) compare(r, reference[size], std::min(args.compare, args.images));
            std::fflush(stdout);
          }
        }
      }
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  return bench::guarded_main([&] { return bench_main(argc, argv); });
}
