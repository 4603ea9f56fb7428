// Per-image cost of the whole method on a random-weight model with a real checkpoint's
// shapes: time per stage and peak resident memory, for each input size, and the same
// pipeline with the reference implementation's full backward (every weight requiring a
// gradient, backward through the image encoder) to show what pruning the backward saves.
//
//   bench_segment [--sizes 336,768] [--iterations 4] [--full-backward-sizes 336]
//                 [--postprocess none|blur|blur+crf] [--threads N] [--manifest M] [--cache DIR]
//                 [--dataset voc20|context59|coco_object|coco_stuff171|ade150]
#include <torch/torch.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "bench_util.h"
#include "pnpovss/eval/class_names.h"
#include "pnpovss/image/codec.h"
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
};

// The prompt classes of a benchmark as eval uses them (COCO-Object: its 80 things).
std::vector<std::string> dataset_classes(const std::string& name) {
  if (name == "voc20") return eval::voc20_classes();
  if (name == "context59") return eval::context59_classes();
  if (name == "coco_object") return eval::coco_thing_classes();
  if (name == "coco_stuff171") return eval::coco_stuff171_classes();
  if (name == "ade150") return eval::ade150_classes();
  std::fprintf(stderr, "unknown dataset %s (voc20, context59, coco_object, coco_stuff171, ade150)\n", name.c_str());
  std::exit(2);
}

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
  mutable double vision_s = 0, text_s = 0;

 private:
  const models::BlipItm& model_;
  models::ImagePreprocessConfig pre_;
};

void run(const models::BlipItm& model, const text::WordPieceTokenizer& tok, const Image& photo, int64_t size,
         const Args& args, const char* label) {
  auto settings = preset("paper", "blip");
  settings.input_size = size;
  settings.dropout_iterations = args.iterations;
  settings.post_mode = parse_postprocess(args.postprocess);
  models::ImagePreprocessConfig pre;
  TimedBackbone backbone(model, pre);
  const std::vector<std::string> classes = args.dataset.empty()
                                               ? std::vector<std::string>{"cat", "couch", "remote control", "blanket", "person"}
                                               : dataset_classes(args.dataset);
  segment::segment_image(backbone, tok, photo, classes, settings);  // warm-up
  backbone.vision_s = backbone.text_s = 0;
  const auto start = std::chrono::steady_clock::now();
  auto result = segment::segment_image(backbone, tok, photo, classes, settings);
  const double total = bench::seconds_since(start);
  std::map<std::string, double> stages;
  for (const auto& t : result.timings) stages[t.stage] += t.seconds;
  std::printf("%-14s %-5lld %-9.2f %-9.2f %-13.2f %-9.2f %-9.3f %-8.2f %.2f\n", label, static_cast<long long>(size),
              backbone.vision_s, backbone.text_s, stages["dropout"] - backbone.vision_s - backbone.text_s,
              stages["dropout"], stages["postprocess"] + stages["crf"], total, bench::peak_rss_gib());
}

}  // namespace

int bench_main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  auto bench_model = bench::prepare_model(args.manifest, args.cache, args.threads);
  auto& model = bench_model.model;
  const auto tok = text::WordPieceTokenizer::from_dir(std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/blip_itm");
  const auto photo = image::decode_image_file(std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/images/coco_000000039769.png");
  std::printf("model: random weights with the shapes of %s; %d threads; %d dropout iterations; postprocess %s; "
              "image %dx%d, %s\n\n",
              bench_model.checkpoint.c_str(), at::get_num_threads(), args.iterations, args.postprocess.c_str(),
              photo.width, photo.height,
              args.dataset.empty() ? "5 classes" : (args.dataset + "'s classes").c_str());
  std::printf("%-14s %-5s %-9s %-9s %-13s %-9s %-9s %-8s %s\n", "backward", "size", "vision s", "text+bwd s",
              "dropout rest s", "dropout s", "post s", "total s", "peak RSS GiB (so far)");
  for (int64_t size : args.sizes) run(model, tok, photo, size, args, "pruned");
  model.set_full_backward(true);
  for (int64_t size : args.full_backward_sizes) run(model, tok, photo, size, args, "full (ref.)");
  return 0;
}

int main(int argc, char** argv) {
  return bench::guarded_main([&] { return bench_main(argc, argv); });
}
