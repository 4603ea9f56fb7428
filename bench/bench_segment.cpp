// Per-image cost of the whole method on a random-weight model with a real checkpoint's
// shapes: time per stage and peak resident memory, for each input size, and the same
// pipeline with the reference implementation's full backward (every weight requiring a
// gradient, backward through the image encoder) to show what pruning the backward saves.
//
//   bench_segment [--sizes 336,768] [--iterations 4] [--full-backward-sizes 336]
//                 [--postprocess none|blur|blur+crf] [--threads N] [--manifest M] [--cache DIR]
//                 [--dataset voc20|context59|coco_object|coco_stuff171|ade150]
//                 [--arithmetic fast|exact] [--compare-arithmetic 1] [--long-side N]
// --arithmetic: the post-processing arithmetic of the timed runs (the preset's by default).
// --compare-arithmetic: for each size, one model pass, then post-processing with the fast and
// the exact arithmetic on the same maps: the time of each and how many labels agree.
// --long-side: the bundled photo upscaled (PIL bicubic) to this long side first.
// --maps synthetic (with --compare-arithmetic): no model; the class maps are made up: the
// photo's annotated cat, couch and remote control as they are, every other class a few soft
// blobs at random places (seeded), so that classes overlap as real ones do; a trace of noise.
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "bench_util.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/resize.h"
#include "pnpovss/models/blip_itm.h"
#include "pnpovss/segment/blip_backbone.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/settings.h"
#include "pnpovss/text/wordpiece.h"

using namespace pnpovss;

namespace {

struct Args {
  std::string manifest = bench::default_manifest();
  std::string cache = bench::default_cache();
  std::vector<int64_t> sizes = {336, 768};
  std::vector<int64_t> full_backward_sizes = {336};
  int iterations = 4;
  std::string postprocess = "none";
  int threads = 0;
  std::string dataset;  // prompt with a benchmark's class list instead of five classes
  std::string arithmetic;
  bool compare_arithmetic = false;
  int long_side = 0;
  std::string maps = "model";
};

Args parse(int argc, char** argv) {
  Args a;
  bench::parse_options(argc, argv, [&](const std::string& k, const std::string& v) {
    if (k == "--manifest") a.manifest = v;
    else if (k == "--cache") a.cache = v;
    else if (k == "--sizes") a.sizes = bench::parse_int_list(v);
    else if (k == "--full-backward-sizes") a.full_backward_sizes = bench::parse_int_list(v);
    else if (k == "--iterations") a.iterations = std::stoi(v);
    else if (k == "--postprocess") a.postprocess = v;
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--dataset") a.dataset = v;
    else if (k == "--arithmetic") a.arithmetic = v;
    else if (k == "--compare-arithmetic") a.compare_arithmetic = v != "0";
    else if (k == "--long-side") a.long_side = std::stoi(v);
    else if (k == "--maps") a.maps = v;
    else return false;
    return true;
  });
  return a;
}

// Splits the backbone's work into image encoding and the text pass with its backward.
class TimedBackbone : public segment::Backbone {
 public:
  TimedBackbone(const models::BlipItm& model, const models::ImagePreprocessConfig& pre) : model_(model), pre_(pre) {}
  int64_t patch_size() const override { return model_.config().vision.patch_size; }
  int64_t num_text_layers() const override { return model_.config().text.num_hidden_layers; }
  int64_t num_heads() const override { return model_.config().text.num_attention_heads; }
  int64_t enc_token_id() const override { return model_.config().enc_token_id; }
  const models::ImagePreprocessConfig& image_preprocess() const override { return pre_; }
  std::vector<segment::AttentionGradient> attention_and_gradients(const torch::Tensor& pixels, const torch::Tensor& ids,
                                                                  const torch::Tensor& mask,
                                                                  const std::vector<int64_t>& layers) const override {
    auto t0 = std::chrono::steady_clock::now();
    torch::Tensor image = model_.encode_image(pixels, PositionResize::SizeBased);
    vision_s += bench::seconds_since(t0);
    flops += static_cast<double>(pixels.size(0)) * bench::vision_flops(model_.config().vision, image.size(1)) +
             static_cast<double>(ids.size(0)) * bench::text_forward_flops(model_.config(), ids.size(1), image.size(1));
    t0 = std::chrono::steady_clock::now();
    auto capture = model_.itm_attention_gradients(ids, mask, image, layers);
    text_s += bench::seconds_since(t0);
    std::vector<segment::AttentionGradient> out(layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
      out[i].itm_logits = capture.itm_logits[0];
      out[i].probs = capture.probs[i][0];
      out[i].grads = capture.grads[i][0];
    }
    return out;
  }
  mutable double vision_s = 0, text_s = 0, flops = 0;

 private:
  const models::BlipItm& model_;
  models::ImagePreprocessConfig pre_;
};

MethodSettings bench_settings(int64_t size, const Args& args) {
  auto settings = preset("paper", "blip");
  settings.input_size = size;
  settings.dropout_iterations = args.iterations;
  settings.post_mode = parse_postprocess(args.postprocess);
  if (!args.arithmetic.empty()) settings.post_arithmetic = parse_post_arithmetic(args.arithmetic);
  return settings;
}

std::vector<std::string> bench_classes(const Args& args) {
  return args.dataset.empty() ? std::vector<std::string>{"cat", "couch", "remote control", "blanket", "person"}
                              : bench::dataset_classes(args.dataset);
}

// [K, P, P] class maps: the annotated classes of the bundled photo (cat, couch, remote control)
// as the share of each grid cell they cover, then for every further class 1-3 Gaussian blobs
// of random size and strength; a trace of noise everywhere (more would pass the threshold: masks are cut from maps scaled to [0, 1]).
torch::Tensor synthetic_maps(int64_t classes, int64_t grid) {
  const Image labels =
      image::decode_image_file(std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/images/coco_000000039769_labels.png");
  torch::Tensor maps = torch::zeros({classes, grid, grid});
  for (int y = 0; y < labels.height; ++y)
    for (int x = 0; x < labels.width; ++x) {
      const int label = labels.rgb[(static_cast<size_t>(y) * labels.width + x) * 3];
      if (label < 3 && label < classes)
        maps[label][y * grid / labels.height][x * grid / labels.width] += 1.0f;
    }
  maps = maps / maps.flatten(1).amax(1).clamp_min(1.0f).view({classes, 1, 1});
  torch::manual_seed(7);
  const torch::Tensor coords = torch::arange(grid, torch::kFloat32);
  for (int64_t k = 3; k < classes; ++k) {
    const int blobs = 1 + static_cast<int>(torch::randint(3, {1}).item<int64_t>());
    for (int b = 0; b < blobs; ++b) {
      const torch::Tensor p = torch::rand({4});
      const float cx = p[0].item<float>() * grid, cy = p[1].item<float>() * grid;
      const float sigma = 1.0f + p[2].item<float>() * grid / 4.0f, strength = 0.2f + 0.8f * p[3].item<float>();
      const torch::Tensor gx = torch::exp(-(coords - cx).pow(2) / (2 * sigma * sigma));
      const torch::Tensor gy = torch::exp(-(coords - cy).pow(2) / (2 * sigma * sigma));
      maps[k] += strength * gy.view({grid, 1}) * gx.view({1, grid});
    }
  }
  return maps + 0.002f * torch::rand({classes, grid, grid});
}

// One model pass, then post-processing of the same maps with each arithmetic: seconds of each
// (best of two) and the share of pixels whose labels agree.
void compare_arithmetic(const models::BlipItm& model, const text::WordPieceTokenizer& tok, const Image& photo,
                        int64_t size, const Args& args) {
  MethodSettings settings = bench_settings(size, args);
  models::ImagePreprocessConfig pre;
  TimedBackbone backbone(model, pre);
  const std::vector<std::string> classes = bench_classes(args);
  const auto prompt_tokenizer = segment::prompt_tokenizer(tok);
  const std::vector<segment::ImageTask> tasks = {{&photo, &classes}};
  std::vector<segment::SegmentationResult> maps;
  if (args.maps == "synthetic") {
    maps.resize(1);
    maps[0].height = photo.height;
    maps[0].width = photo.width;
    maps[0].dropout.final_maps = synthetic_maps(static_cast<int64_t>(classes.size()), size / 16);
  } else {
    maps = segment::model_stage(backbone, *prompt_tokenizer, tasks, settings);
  }
  double seconds[2] = {1e30, 1e30};
  std::vector<int32_t> labels[2];
  torch::Tensor blurred[2], argmax[2];
  const PostArithmetic kinds[2] = {PostArithmetic::Fast, PostArithmetic::Exact};
  for (int run = 0; run < 2; ++run) {
    for (int k = 0; k < 2; ++k) {
      settings.post_arithmetic = kinds[k];
      std::vector<segment::SegmentationResult> results = maps;
      const auto start = std::chrono::steady_clock::now();
      segment::postprocess_stage(tasks, results, settings);
      seconds[k] = std::min(seconds[k], bench::seconds_since(start));
      labels[k] = results[0].labels;
      blurred[k] = results[0].blurred;
      argmax[k] = results[0].argmax;
    }
  }
  // Where the blurred maps' argmax differs, and how many of those pixels are ties of the exact
  // arithmetic (its top two channels within 1e-7).
  std::string argmax_note = "no blur";
  if (blurred[0].defined()) {
    const torch::Tensor top2 = std::get<0>(blurred[1].topk(2, 0));
    const torch::Tensor differ = argmax[0] != argmax[1];
    argmax_note = std::to_string(differ.sum().item<int64_t>()) + " (" +
                  std::to_string((differ & (top2[0] - top2[1] < 1e-7f)).sum().item<int64_t>()) + " at ties)";
  }
  int64_t same = 0;
  for (size_t i = 0; i < labels[0].size(); ++i) same += labels[0][i] == labels[1][i];
  const double share = 100.0 * static_cast<double>(same) / static_cast<double>(labels[0].size());
  std::printf("%-5lld %-9zu %-14.3f %-14.3f %-10.4f %-10lld %s\n", static_cast<long long>(size), classes.size(),
              seconds[0], seconds[1], share, static_cast<long long>(labels[0].size() - same), argmax_note.c_str());
}

void run(const models::BlipItm& model, const text::WordPieceTokenizer& tok, const Image& photo, int64_t size,
         const Args& args, const char* label, double blas_rate) {
  const MethodSettings settings = bench_settings(size, args);
  models::ImagePreprocessConfig pre;
  TimedBackbone backbone(model, pre);
  const std::vector<std::string> classes = bench_classes(args);
  segment::segment_image(backbone, tok, photo, classes, settings);  // warm-up
  backbone.vision_s = backbone.text_s = backbone.flops = 0;
  const auto start = std::chrono::steady_clock::now();
  auto result = segment::segment_image(backbone, tok, photo, classes, settings);
  const double total = bench::seconds_since(start);
  std::map<std::string, double> stages;
  for (const auto& t : result.timings) stages[t.stage] += t.seconds;
  const double limit = backbone.flops / blas_rate;
  char limit_col[48];
  std::snprintf(limit_col, sizeof limit_col, "%.2f (%.2fx)", limit, stages["dropout"] / limit);
  std::printf("%-14s %-5lld %-9.2f %-9.2f %-13.2f %-9.2f %-16s %-9.3f %-8.2f %.2f\n", label,
              static_cast<long long>(size), backbone.vision_s, backbone.text_s,
              stages["dropout"] - backbone.vision_s - backbone.text_s, stages["dropout"], limit_col,
              stages["postprocess"] + stages["crf"], total, bench::peak_rss_gib());
}

}  // namespace

int bench_main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  auto bench_model = bench::prepare_model(args.manifest, args.cache, args.threads);
  auto& model = bench_model.model;
  const auto tok = text::WordPieceTokenizer::from_dir(std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/blip_itm");
  auto photo = image::decode_image_file(std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/images/coco_000000039769.png");
  if (args.long_side > 0) {
    const int width = photo.width >= photo.height ? args.long_side : args.long_side * photo.width / photo.height;
    const int height = photo.width >= photo.height ? args.long_side * photo.height / photo.width : args.long_side;
    photo = image::resize_bicubic_pil(photo, width, height);
  }
  std::printf("model: random weights with the shapes of %s; %d threads; %d dropout iterations; postprocess %s; "
              "image %dx%d, %s\n\n",
              bench_model.checkpoint.c_str(), at::get_num_threads(), args.iterations, args.postprocess.c_str(),
              photo.width, photo.height,
              args.dataset.empty() ? "5 classes" : (args.dataset + "'s classes").c_str());
  if (args.compare_arithmetic) {
    std::printf("%-5s %-9s %-14s %-14s %-10s %-10s %s\n", "size", "classes", "fast post s", "exact post s",
                "labels = %", "labels !=", "blurred argmax !=");
    for (int64_t size : args.sizes) compare_arithmetic(model, tok, photo, size, args);
    return 0;
  }
  const double blas_rate = bench::gemm_rate_2048();
  std::printf("BLAS: %.0f GFLOP/s on 2048^3; 'limit': the model's products at that rate (vision passes and text "
              "forward passes; the backward not counted), and dropout s / limit\n\n",
              blas_rate / 1e9);
  std::printf("%-14s %-5s %-9s %-9s %-13s %-9s %-16s %-9s %-8s %s\n", "backward", "size", "vision s", "text+bwd s",
              "dropout rest s", "dropout s", "limit s", "post s", "total s", "peak RSS GiB (so far)");
  for (int64_t size : args.sizes) run(model, tok, photo, size, args, "pruned", blas_rate);
  model.set_full_backward(true);
  for (int64_t size : args.full_backward_sizes) run(model, tok, photo, size, args, "full (ref.)", blas_rate);
  return 0;
}

int main(int argc, char** argv) {
  return bench::guarded_main([&] { return bench_main(argc, argv); });
}
