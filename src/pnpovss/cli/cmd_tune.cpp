// `pnp-ovss tune`: label-free tuning of layer, head, threshold and blur with the CLIP reward
// (docs/method.md §8), on images with image-level class names. Writes into --out:
//   trials.jsonl              the journal, one line per trial as it finishes (resumable)
//   tune.json                 every trial, the best per stage, the best settings, timings
//   best_settings.json        the best settings, for segment --settings and eval --settings
//   reward_layer_head.png     the stage-1 reward per layer x head (best over thresholds)
// A rerun with the same --out resumes: trials already in the journal are not recomputed.
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pnpovss/cli/commands.h"
#include "pnpovss/cli/compute_options.h"
#include "pnpovss/cli/method_options.h"
#include "pnpovss/cli/output_dir.h"
#include "pnpovss/cpu/side_by_side.h"
#include "pnpovss/error.h"
#include "pnpovss/eval/dataset.h"
#include "pnpovss/hub/model_location.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/io/file_write.h"
#include "pnpovss/run/model.h"
#include "pnpovss/segment/segmenter.h"
#include "pnpovss/settings.h"
#include "pnpovss/settings/settings_json.h"
#include "pnpovss/tune/clip_scorer.h"
#include "pnpovss/tune/dataset_input.h"
#include "pnpovss/tune/evaluator.h"
#include "pnpovss/tune/journal.h"
#include "pnpovss/tune/results.h"
#include "pnpovss/tune/search.h"
#include "pnpovss/tune/tune_input.h"
#include "pnpovss/tune/tuner.h"

namespace pnpovss::cli {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr const char* kDefaultScorer = "openai/clip-vit-large-patch14-336";

struct TuneCliOptions {
  std::string list;
  std::string dataset, data_root;  // --dataset NAME --data-root DIR instead of LIST
  std::string model = kDefaultModel;
  std::string scorer = kDefaultScorer;
  std::string out = "tune_out";
  MethodOptions method;  // layer, head, threshold and blur are what the search chooses
  ComputeOptions compute;  // the segmenting model's device and type (the CLIP scorer runs on the CPU)
  std::string masks = "gradcam", empty = "black";
  std::string thresholds;
  size_t trials = 30, blur_trials = 0, limit = 0;
  uint64_t seed = 0;
  double logit_scale = 0.0;
  bool exhaustive = false, no_blur_stage = false, restart = false;
  CLI::Option* blur_trials_opt = nullptr;
};

// Everything the rewards depend on: a journal written under another run is refused.
nlohmann::json run_description(const TuneCliOptions& o, const std::string& model_dir, const std::string& scorer_dir,
                               double scale, const MethodSettings& base,
                               const std::vector<tune::TuneImage>& images, const tune::SearchSpace& space) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& im : images) list.push_back({{"path", im.path}, {"classes", im.classes}});
  nlohmann::json run = {{"model", model_dir},
          {"scorer", scorer_dir},
          {"logit_scale", scale},
          {"empty_image", o.empty},
          {"masks", o.masks},
          {"exhaustive", o.exhaustive},
          {"settings", to_json(base)},
          {"images", list}};
  // The exhaustive journal stores win flags per grid position: the grid must stay the same.
  // Reduced precision changes the rewards: a journal never mixes it with fp32.
  const torch::ScalarType dtype = runtime::parse_dtype(o.compute.dtype);
  if (dtype != torch::kFloat32) run["dtype"] = runtime::dtype_name(dtype);
  if (o.exhaustive)
    run["grid"] = {{"layers", space.layers}, {"heads", space.heads}, {"thresholds", space.thresholds}};
  return run;
}

// Progress on stderr: a redrawn bar on a terminal, one line per trial otherwise.
class ProgressDisplay {
 public:
  ProgressDisplay() : tty_(::isatty(2) != 0) {}

  void start(const std::string& stage, size_t done, size_t total, const std::string& what) {
    if (stage.size() > 6 && stage.compare(stage.size() - 6, 6, ":image") == 0) {
      image_ = done;
      images_ = total;
    } else {
      stage_ = stage;
      done_ = done;
      total_ = total;
      image_ = 0;
      if (stage == tune::kStageLayerHead && !what.empty() && !tty_)  // exhaustive: per image
        std::fprintf(stderr, "[grid %zu/%zu] %s\n", done + 1, total, what.c_str());
    }
    draw();
  }

  void trial(const tune::TrialRecord& t, const tune::TrialRecord& best) {
    if (tty_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "[%s %zu/%zu] layer %d head %d threshold %.2f blur %.2f (%s masks): reward %lld/%lld (best %lld)%s %.1f s\n",
                 stage_.c_str(), done_ + 1, total_, t.setting.layer, t.setting.head, t.setting.threshold,
                 t.setting.blur, tune::to_string(t.masks).c_str(), static_cast<long long>(t.tally.reward),
                 static_cast<long long>(t.tally.max_reward), static_cast<long long>(best.tally.reward),
                 t.resumed ? " (journal)" : "", t.seconds);
  }

  void finish() {
    if (tty_) std::fprintf(stderr, "\r\033[K");
  }

 private:
  void draw() const {
    if (!tty_ || total_ == 0) return;
    constexpr int kWidth = 30;
    const double unit = images_ > 0 ? static_cast<double>(image_) / images_ : 0.0;
    const auto filled = static_cast<int>(kWidth * (done_ + unit) / total_);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '-');
    std::fprintf(stderr, "\r\033[K%s |%s| %zu/%zu", stage_.c_str(), bar.c_str(), done_, total_);
    if (images_ > 0) std::fprintf(stderr, " (image %zu/%zu)", image_ + 1, images_);
    std::fflush(stderr);
  }

  bool tty_;
  std::string stage_;
  size_t done_ = 0, total_ = 0, image_ = 0, images_ = 0;
};

// --thresholds "0.15, 0.25": values in [0, 1], each once.
std::vector<double> parse_thresholds(const std::string& text) {
  std::vector<double> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    size_t used = 0;
    double v = -1;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || item.find_first_not_of(" \t", used) != std::string::npos || !(v >= 0.0 && v <= 1.0))
      throw Error("--thresholds: '" + item + "' is not a number in [0, 1] (example: --thresholds 0.15,0.25)");
    for (double seen : out)
      if (seen == v) throw Error("--thresholds: " + item + " is listed twice");
    out.push_back(v);
    start = comma + 1;
  }
  return out;
}

int run_tune(const TuneCliOptions& o) {
  const auto start = Clock::now();
  const tune::MaskSource masks = tune::parse_mask_source(o.masks);
  const tune::EmptyImage empty = tune::parse_empty_image(o.empty);
  if (o.logit_scale < 0) throw Error("--logit-scale must be positive (0: the checkpoint's own)");
  if (o.list.empty() == o.dataset.empty())
    throw InvalidArgument("give the images as a tuning LIST or with --dataset NAME --data-root DIR (one of them)");
  std::vector<tune::TuneImage> images;
  std::optional<DatasetRule> rule;
  if (!o.dataset.empty()) {
    if (o.data_root.empty()) throw InvalidArgument("--dataset needs --data-root DIR");
    const eval::Dataset d = eval::open_dataset(o.dataset, o.data_root);
    rule = d.rule;
    images = tune::dataset_tune_images(d, o.limit);
  } else {
    images = tune::read_tune_list(o.list);
  }
  run::ModelChoice choice = run::choose_model(o.model, setting_choices(o.method), rule);
  const runtime::Placement placement = resolve_placement(o.compute);
  choice.settings.post_crf.device = resolve_postprocess_device(o.compute, placement);
  const std::string& model_dir = choice.dir;
  const MethodSettings& base = choice.settings;
  if (o.limit > 0 && images.size() > o.limit) images.resize(o.limit);
  size_t most_classes = 1;
  for (const auto& image : images) most_classes = std::max(most_classes, image.classes.size());
  const int workers = resolve_workers(o.compute, placement, {base.input_size, most_classes});
  prepare_output_dir(o.out);

  const std::string scorer_dir = hub::resolve_model_dir(o.scorer);
  // Layer and head are searched, so only the input size must fit the model before the search.
  const auto model = segment::Segmenter::load(model_dir, base.input_position_resize, placement);
  model.backbone().grid(base.input_size);
  const auto scorer = tune::ClipScorer::load(scorer_dir, o.logit_scale);
  tune::SearchSpace space =
      tune::paper_space(base.backbone, model.backbone().num_text_layers(), model.backbone().num_heads());
  if (!o.thresholds.empty()) space.thresholds = parse_thresholds(o.thresholds);
  for (const auto& note : space.notes) std::printf("note: %s\n", note.c_str());
  note_cpu_speed(placement);
  const size_t lanes = cpu::side_by_side_lanes(images.size(), workers);
  const std::string side_by_side = lanes > 1 ? " (" + std::to_string(lanes) + " side by side)" : "";
  std::printf("tuning %s on %zu images%s with %s (logit scale %.4g, %s empty image): %s search, %s masks first\n",
              model_dir.c_str(), images.size(), side_by_side.c_str(), scorer_dir.c_str(), scorer.logit_scale(),
              o.empty.c_str(), o.exhaustive ? "exhaustive" : "random", o.masks.c_str());
  std::fflush(stdout);

  const nlohmann::json run = run_description(o, model_dir, scorer_dir, scorer.logit_scale(), base, images, space);
  tune::PipelineEvaluator evaluator(model, scorer, base, images, empty);  // decodes every image first
  tune::Journal journal(o.out + "/trials.jsonl", run, o.restart);

  tune::TuneOptions options;
  options.seed = o.seed;
  options.trials = o.trials;
  if (o.blur_trials_opt->count()) options.blur_trials = o.blur_trials;
  options.masks = masks;
  options.exhaustive = o.exhaustive;
  options.blur_stage = !o.no_blur_stage && uses_blur(base);
  if (!o.no_blur_stage && !options.blur_stage)
    std::printf("note: no blur stage: the post-processing '%s' with blur %g does not blur\n",
                to_string(base.post_mode).c_str(), base.post_blur);
  options.base_blur = base.post_blur;
  options.workers = workers;

  ProgressDisplay progress;
  tune::TuneObserver observer;
  observer.on_start = [&](const std::string& stage, size_t done, size_t total, const std::string& what) {
    progress.start(stage, done, total, what);
  };
  observer.on_trial = [&](const tune::TrialRecord& t, const tune::TrialRecord& best) { progress.trial(t, best); };
  const tune::TuneResult result = tune::run_tuning(evaluator, space, options, journal, observer);
  progress.finish();

  const MethodSettings best = tune::best_settings(base, result);
  ojson run_echo = ojson::parse(run.dump());
  run_echo["seed"] = o.seed;
  run_echo["trials"] = o.trials;
  ojson doc = tune::results_json(run_echo, space, result, best);
  doc["scoring"] = {{"masks_requested", evaluator.requested_masks()}, {"masks_scored", evaluator.scored_masks()}};
  io::write_file_atomic(o.out + "/tune.json", doc.dump(2) + "\n");
  io::write_file_atomic(o.out + "/best_settings.json", tuned_settings_json(best, model_dir).dump(2) + "\n");
  image::write_png_rgb(o.out + "/reward_layer_head.png", tune::reward_plot(space, result));

  const auto& b1 = result.trials[static_cast<size_t>(result.best_stage1)];
  std::printf("best layer %d head %d threshold %.2f: reward %lld/%lld on %s masks\n", b1.setting.layer,
              b1.setting.head, b1.setting.threshold, static_cast<long long>(b1.tally.reward),
              static_cast<long long>(b1.tally.max_reward), tune::to_string(b1.masks).c_str());
  if (result.best_blur >= 0) {
    const auto& b2 = result.trials[static_cast<size_t>(result.best_blur)];
    std::printf("best blur %.2f: reward %lld/%lld on final masks\n", b2.setting.blur,
                static_cast<long long>(b2.tally.reward), static_cast<long long>(b2.tally.max_reward));
  }
  if (result.grid_images > 0) std::printf("exhaustive grid: %.2f s\n", result.grid_seconds);
  std::printf("scorer passes: %zu masked images scored of %zu asked about (the rest repeated a mask)\n",
              evaluator.scored_masks(), evaluator.requested_masks());
  std::printf("settings: %s\nwrote %s/{tune.json,best_settings.json,reward_layer_head.png,trials.jsonl} in %.1f s\n",
              best.describe().c_str(), o.out.c_str(),
              std::chrono::duration<double>(Clock::now() - start).count());
  return 0;
}

}  // namespace

Command add_tune_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "tune",
      "Tune layer, head, threshold and blur without labels (CLIP reward, PnP-OVSS section 3.3): writes "
      "tune.json, best_settings.json (for segment/eval --settings), a reward plot and a resumable journal.\n"
      "Example: pnp-ovss tune images.tsv --exhaustive --out tune_out   # images.tsv: path<TAB>cat,sofa");
  auto o = std::make_shared<TuneCliOptions>();
  cmd->add_option("LIST", o->list, "tuning list: one 'image_path<TAB>class 1,class 2' per line");
  cmd->add_option("--dataset", o->dataset,
                  "instead of LIST: an eval dataset (voc20, context59, coco_object, coco_stuff171, ade150, folder); "
                  "each image's classes are those in its ground truth");
  cmd->add_option("--data-root", o->data_root, "the dataset's data root (with --dataset)");
  cmd->add_option("-m,--model", o->model, "segmentation model directory or hub id")->capture_default_str();
  cmd->add_option("--scorer", o->scorer, "CLIP model directory or hub id (the reward's judge)")->capture_default_str();
  cmd->add_option("-o,--out", o->out, "output folder (created; a rerun resumes from its journal)")
      ->capture_default_str();
  add_method_options(cmd, o->method, MethodOptionSet::WithoutSearched);
  add_compute_options(cmd, o->compute, ComputeOptionSet::WithWorkers);
  cmd->add_option("--masks", o->masks, "masks of the layer/head/threshold stage: gradcam | dropout | final")
      ->capture_default_str();
  cmd->add_option("--thresholds", o->thresholds,
                  "mask thresholds to search, comma-separated (default: the paper's 0.05,0.15,...,0.45)");
  cmd->add_flag("--exhaustive", o->exhaustive,
                "try every layer x head x threshold from one model pass per image (GradCAM masks)");
  cmd->add_option("--trials", o->trials, "random-search trials of the layer/head/threshold stage")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  o->blur_trials_opt = cmd->add_option("--blur-trials", o->blur_trials, "blur values to try (default: all 6)");
  cmd->add_flag("--no-blur-stage", o->no_blur_stage, "skip the blur stage");
  cmd->add_option("--seed", o->seed, "random-search seed")->capture_default_str();
  cmd->add_option("--empty", o->empty, "empty image a masked image must beat: black (paper) | mean (released code)")
      ->capture_default_str();
  cmd->add_option("--logit-scale", o->logit_scale, "CLIP logit scale; 0 = the checkpoint's own (paper), 100 = code")
      ->capture_default_str();
  cmd->add_option("--limit", o->limit, "use only the first N images of the list");
  cmd->add_flag("--restart", o->restart, "discard the journal in --out instead of resuming it");
  return [o]() { return run_tune(*o); };
}

}  // namespace pnpovss::cli
