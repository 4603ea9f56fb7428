// `pnp-ovss eval`: the method (or a folder of label maps) scored on a benchmark dataset, read
// in place from its MMSegmentation layout. Per-image results go into the run folder as they
// finish, so a killed run restarted with the same command goes on where it stopped; shards
// (--shard k/N, then --merge) and MPI ranks split the images and sum the counts.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "pnpovss/cli/commands.h"
#include "pnpovss/cli/compute_options.h"
#include "pnpovss/cli/failure.h"
#include "pnpovss/cli/method_options.h"
#include "pnpovss/error.h"
#include "pnpovss/eval/dataset.h"
#include "pnpovss/eval/distributed.h"
#include "pnpovss/eval/evaluation.h"
#include "pnpovss/eval/run_dir.h"
#include "pnpovss/io/image.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/model_location.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/segment/segmenter.h"
#include "pnpovss/segment/settings.h"

#ifndef PNPOVSS_VERSION
#define PNPOVSS_VERSION "unknown"
#endif

namespace pnpovss::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using ojson = nlohmann::ordered_json;

struct EvalOptions {
  std::string dataset, data_root, model = kDefaultModel, protocol = "mmseg";
  MethodOptions method;
  ComputeOptions compute;
  std::string class_tags;
  std::string out = "eval_out", predictions, shard;
  long limit = 0;
  int examples = 4;
  std::vector<std::string> merge;
  CLI::Option *model_opt = nullptr, *class_tags_opt = nullptr;
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string absolute(const std::string& path) {
  std::error_code ec;
  const fs::path p = fs::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

// "k/N" with 0 <= k < N.
std::pair<int, int> parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  int k = -1, n = 0;
  try {
    size_t used = 0;
    if (slash == std::string::npos) throw std::invalid_argument("");
    k = std::stoi(text.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument("");
    n = std::stoi(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1) throw std::invalid_argument("");
  } catch (const std::exception&) {
    throw Error("--shard '" + text + "' must be k/N, e.g. 0/4 for the first of 4 shards");
  }
  if (n < 1 || k < 0 || k >= n) throw Error("--shard " + text + ": k must be in 0..N-1 and N at least 1");
  return {k, n};
}

// The method's settings with the dataset's rules (background channel, official quirks) applied.
segment::MethodSettings resolve_settings(const EvalOptions& o, const std::string& backbone, const eval::Dataset& dataset) {
  segment::MethodSettings s = resolve_method_settings(o.method, backbone);
  segment::apply_dataset_rule(s, dataset.rule);
  s.validate();
  return s;
}

// --class-tags: {"stem": [names or evaluation-class indices]} -> prompt classes per image.
std::map<std::string, std::vector<int>> read_class_tags(const std::string& path, const eval::Dataset& d) {
  std::map<std::string, std::vector<int>> tags;
  if (path.empty()) return tags;
  const nlohmann::json doc = io::read_json_file(path);
  const std::string where = "class tags '" + path + "'";
  if (!doc.is_object()) throw Error(where + " must be a JSON object mapping image stems to lists of classes");
  const std::vector<int> allowed = d.prompt_classes();
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (const auto& [stem, list] : doc.items()) {
    const std::string entry = where + ", image '" + stem + "'";
    if (!list.is_array() || list.empty()) throw Error(entry + ": expected a non-empty list of class names or indices");
    std::vector<int> picked;
    for (const auto& item : list) {
      int k = -1;
      if (item.is_string()) {
        for (int c : allowed)
          if (lower(d.classes[static_cast<size_t>(c)]) == lower(item.get<std::string>())) k = c;
      } else if (item.is_number_integer()) {
        const int64_t v = item.get<int64_t>();
        if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) k = static_cast<int>(v);
      }
      if (k < 0) throw Error(entry + ": " + item.dump() + " is not a prompted class of " + d.name);
      if (std::find(picked.begin(), picked.end(), k) != picked.end())
        throw Error(entry + ": " + item.dump() + " is listed twice");
      picked.push_back(k);
    }
    tags[stem] = picked;
  }
  return tags;
}

// The names and native ids of the prompt classes `classes` (evaluation indices).
struct PromptClasses {
  std::vector<std::string> names;
  std::vector<int32_t> native;
};

PromptClasses prompt_classes(const eval::Dataset& d, const std::vector<int>& classes) {
  PromptClasses p;
  for (int k : classes) {
    p.names.push_back(d.classes[static_cast<size_t>(k)]);
    p.native.push_back(d.native_ids[static_cast<size_t>(k)]);
  }
  return p;
}

// A segmentation as evaluation classes, via the released code's labels so that the `official`
// in-place remap sees the same values as there.
eval::Prediction to_prediction(const segment::SegmentationResult& r, const segment::MethodSettings& settings,
                               const eval::Dataset& d, const PromptClasses& classes, const std::string& origin) {
  const std::vector<int32_t> labels =
      segment::dataset_label_map(r, classes.native, 0, settings.labels_official_inplace_remap);
  std::map<int32_t, int32_t> to_eval;
  eval::Prediction p;
  p.width = r.width;
  p.height = r.height;
  p.origin = origin;
  p.classes.resize(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    auto it = to_eval.find(labels[i]);
    if (it == to_eval.end()) it = to_eval.emplace(labels[i], d.eval_class_of_native(labels[i])).first;
    p.classes[i] = it->second;
  }
  return p;
}

void check_same_size(const eval::Sample& sample, int width, int height, const eval::LabelMap& gt) {
  if (width != gt.width || height != gt.height)
    throw Error("the image '" + sample.image + "' is " + std::to_string(width) + "x" + std::to_string(height) +
                " but its label PNG '" + sample.label + "' is " + std::to_string(gt.width) + "x" +
                std::to_string(gt.height));
}

// Runs the method on one sample.
eval::Prediction predict_with_model(const segment::Segmenter& model, const segment::MethodSettings& settings,
                                    const eval::Dataset& d, const std::vector<int>& classes,
                                    const eval::Sample& sample, const eval::LabelMap& gt) {
  const io::Image image = io::decode_image_file(sample.image);
  check_same_size(sample, image.width, image.height, gt);
  const PromptClasses prompt = prompt_classes(d, classes);
  return to_prediction(model.segment(image, prompt.names, settings), settings, d, prompt, sample.image);
}

// Predictions computed a group ahead (--batch-size or --workers above 1, or a GPU): a group of
// samples goes through the model at once (segment::images_per_group); predict() hands out
// its results and falls back to one image at a time for any sample the group could not compute
// (unreadable image, a failure of the whole batch), which then fails alone with its own message.
class BatchedPredictions {
 public:
  BatchedPredictions(const segment::Segmenter& model, const segment::MethodSettings& settings, const eval::Dataset& d,
                     std::function<const std::vector<int>&(const std::string&)> classes_of, segment::BatchSize batch,
                     int workers)
      : model_(model),
        settings_(settings),
        dataset_(d),
        classes_of_(std::move(classes_of)),
        batch_(batch),
        workers_(workers) {}

  int group_size() const {
    return static_cast<int>(segment::images_per_group(batch_, workers_, model_.placement()));
  }

  void prefetch(const std::vector<const eval::Sample*>& group) {
    ready_.clear();
    std::vector<const eval::Sample*> samples;
    std::vector<io::Image> images;
    std::vector<PromptClasses> prompts;
    for (const eval::Sample* s : group) {
      try {
        images.push_back(io::decode_image_file(s->image));
      } catch (const std::exception&) {
        continue;  // predict() reports it
      }
      samples.push_back(s);
      prompts.push_back(prompt_classes(dataset_, classes_of_(s->stem)));
    }
    std::vector<segment::ImageTask> tasks;
    for (size_t i = 0; i < samples.size(); ++i) tasks.push_back({&images[i], &prompts[i].names});
    try {
      auto results = segment::segment_in_batches(model_, tasks, settings_, batch_, workers_);
      for (size_t i = 0; i < samples.size(); ++i)
        ready_.emplace(samples[i]->stem, to_prediction(results[i], settings_, dataset_, prompts[i], samples[i]->image));
    } catch (const std::exception&) {
      ready_.clear();  // each image again on its own, to find the one that fails
    }
  }

  eval::Prediction predict(const eval::Sample& s, const eval::LabelMap& gt) {
    const auto it = ready_.find(s.stem);
    if (it == ready_.end()) return predict_with_model(model_, settings_, dataset_, classes_of_(s.stem), s, gt);
    eval::Prediction p = std::move(it->second);
    ready_.erase(it);
    check_same_size(s, p.width, p.height, gt);
    return p;
  }

 private:
  const segment::Segmenter& model_;
  const segment::MethodSettings& settings_;
  const eval::Dataset& dataset_;
  std::function<const std::vector<int>&(const std::string&)> classes_of_;
  segment::BatchSize batch_;
  int workers_;
  std::map<std::string, eval::Prediction> ready_;
};

void check_model(const EvalOptions& o, const segment::Segmenter& model, const segment::MethodSettings& s,
                 const eval::Dataset& d) {
  check_settings_fit(o.method, model, s);
  std::vector<std::string> names;
  for (int k : d.prompt_classes()) names.push_back(d.classes[static_cast<size_t>(k)]);
  model.check_classes(names, s);
}

int run_merge(const EvalOptions& o) {
  const eval::Merged m = eval::merge_runs(o.merge);
  eval::Scoring scoring;
  scoring.names = m.identity.at("scored_classes").get<std::vector<std::string>>();
  scoring.protocol = eval::parse_protocol(m.identity.at("protocol").get<std::string>());
  scoring.mean_over_present_labels = scoring.protocol == eval::Protocol::PnpOvss;
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec || !fs::is_directory(o.out)) throw Error("cannot create the output folder '" + o.out + "': choose another with --out");
  ojson extra = ojson::parse(m.identity.dump());
  extra.erase("scored_classes");
  extra["images"] = {{"scored", m.images}, {"shards", o.merge.size()}};
  extra["version"] = std::string("pnp-ovss ") + PNPOVSS_VERSION;
  const eval::Summary s = eval::write_metrics(o.out, scoring, m.totals, {}, extra);
  std::printf("merged %zu shards, %ld images: mIoU %.2f, mAcc %.2f, aAcc %.2f -> %s/metrics.json\n", o.merge.size(),
              m.images, eval::percent2(s.miou), eval::percent2(s.macc), eval::percent2(s.aacc), o.out.c_str());
  return 0;
}

// The counts, images computed and images resumed of every rank, summed on rank 0.
eval::Counts sum_over_ranks(const eval::World& world, const eval::LoopResult& loop, int64_t& computed,
                            int64_t& resumed) {
  std::vector<int64_t> sums = loop.totals.intersect;
  sums.insert(sums.end(), loop.totals.pred.begin(), loop.totals.pred.end());
  sums.insert(sums.end(), loop.totals.label.begin(), loop.totals.label.end());
  sums.push_back(loop.computed);
  sums.push_back(loop.resumed);
  world.sum_to_root(sums);
  world.barrier();
  const size_t n = loop.totals.label.size();
  eval::Counts totals(static_cast<int>(n));
  std::copy_n(sums.begin(), n, totals.intersect.begin());
  std::copy_n(sums.begin() + static_cast<long>(n), n, totals.pred.begin());
  std::copy_n(sums.begin() + static_cast<long>(2 * n), n, totals.label.begin());
  computed = sums[3 * n];
  resumed = sums[3 * n + 1];
  return totals;
}

// After the loop: the counts of every rank summed on rank 0, which writes metrics.json, the
// tables and the pictures. Returns the exit status (1 when an image failed).
int finish_run(const EvalOptions& o, const eval::World& world, const eval::Dataset& dataset,
               const eval::Scoring& scoring, const std::vector<eval::Sample>& selected, const eval::RunDir& run,
               const eval::LoopResult& loop, const ojson& identity, double seconds) {
  const eval::Protocol protocol = scoring.protocol;
  int64_t computed = 0, resumed = 0;
  const eval::Counts totals = sum_over_ranks(world, loop, computed, resumed);
  if (world.rank() != 0) return loop.failures.empty() ? 0 : 1;
  // Failures of every rank: the selected images without a record.
  std::vector<eval::Failure> failures = loop.failures;
  if (world.distributed()) {
    failures.clear();
    for (const auto& s : selected)
      if (!run.read_record(s.stem, scoring.num_classes())) {
        std::string message = "failed (see the log of its rank)";
        for (const auto& f : loop.failures)
          if (f.stem == s.stem) message = f.message;
        failures.push_back({s.stem, message});
      }
  }
  ojson extra;
  extra["dataset"] = dataset.name;
  extra["protocol"] = eval::to_string(protocol);
  extra["num_classes"] = scoring.num_classes();
  extra["images"] = {{"selected", selected.size()},
                     {"scored", static_cast<int64_t>(selected.size()) - static_cast<int64_t>(failures.size())},
                     {"computed_now", computed},
                     {"resumed", resumed},
                     {"failed", failures.size()}};
  if (identity.contains("model")) {
    extra["model"] = identity.at("model");
    extra["settings"] = identity.at("settings");
  } else {
    extra["predictions"] = identity.at("predictions");
  }
  extra["data_root"] = identity.at("data_root");
  if (!o.shard.empty()) extra["shard"] = identity.at("shard");
  extra["ranks"] = world.size();
  extra["timing"] = {{"seconds", seconds},
                     {"images_per_second", loop.seconds > 0 ? static_cast<double>(computed) / loop.seconds : 0.0}};
  extra["version"] = std::string("pnp-ovss ") + PNPOVSS_VERSION;
  const eval::Summary summary = eval::write_metrics(o.out, scoring, totals, failures, extra);
  eval::write_examples(o.out, dataset, selected, o.examples, [&](const std::string& stem) {
    return o.predictions.empty() ? run.pred_path(stem) : o.predictions + "/" + stem + ".png";
  });
  for (const auto& f : failures) std::fprintf(stderr, "failed: %s: %s\n", f.stem.c_str(), f.message.c_str());
  std::printf("mIoU %.2f, mAcc %.2f, aAcc %.2f over %zu images (%zu failed), %.1f s -> %s/metrics.json\n",
              eval::percent2(summary.miou), eval::percent2(summary.macc), eval::percent2(summary.aacc),
              selected.size() - failures.size(), failures.size(), seconds, o.out.c_str());
  return failures.empty() ? 0 : 1;
}

int run_eval(const EvalOptions& o) {
  const auto start = Clock::now();
  if (!o.merge.empty()) return run_merge(o);
  if (o.dataset.empty()) throw Error("--dataset is required (voc20, context59, coco_object, coco_stuff171, ade150, folder)");
  if (o.data_root.empty()) throw Error("--data-root is required: the folder that holds the dataset");
  if (o.limit < 0) throw Error("--limit must be 0 (all images) or more");
  const bool use_model = o.predictions.empty();
  if (!use_model && (o.model_opt->count() || o.method.preset_opt->count() || o.method.settings_opt->count() ||
                     o.class_tags_opt->count()))
    throw Error("--predictions scores existing label maps: --model, --preset, --settings and --class-tags do not apply");
  const eval::World world = eval::World::join();
  const eval::Dataset dataset = eval::open_dataset(o.dataset, o.data_root);
  const eval::Protocol protocol = eval::parse_protocol(o.protocol);
  const eval::Scoring scoring = dataset.scoring(protocol);

  int shard_index = 0, shard_count = 1;
  if (!o.shard.empty()) {
    if (world.distributed()) throw Error("--shard and mpirun both split the images: use one of them");
    std::tie(shard_index, shard_count) = parse_shard(o.shard);
  }
  const std::vector<eval::Sample> selected = eval::select_samples(dataset.samples, o.limit, shard_index, shard_count);
  const std::vector<eval::Sample> mine = eval::select_samples(selected, 0, world.rank(), world.size());

  ojson identity;
  identity["dataset"] = dataset.name;
  identity["data_root"] = absolute(dataset.root);
  identity["protocol"] = eval::to_string(protocol);
  identity["classes"] = dataset.classes;
  identity["scored_classes"] = scoring.names;
  identity["num_scored_classes"] = scoring.num_classes();
  identity["limit"] = o.limit;
  segment::MethodSettings settings;
  models::Placement placement;
  std::unique_ptr<segment::Segmenter> model;
  std::map<std::string, std::vector<int>> tags;
  if (use_model) {
    const std::string dir = io::resolve_model_dir(o.model);
    settings = resolve_settings(o, backbone_of(dir), dataset);
    tags = read_class_tags(o.class_tags, dataset);
    placement = resolve_placement(o.compute);
    model = std::make_unique<segment::Segmenter>(
        segment::Segmenter::load(dir, settings.input_position_resize, placement));
    check_model(o, *model, settings, dataset);
    identity["model"] = absolute(dir);
    identity["settings"] = ojson::parse(segment::to_json(settings).dump());
    // Reduced precision changes the maps, so a run cannot mix it with fp32 (the device alone
    // does not: a run may resume on another one).
    if (placement.dtype != torch::kFloat32) identity["dtype"] = models::dtype_name(placement.dtype);
    identity["class_tags"] = o.class_tags.empty() ? "" : absolute(o.class_tags);
  } else {
    identity["predictions"] = absolute(o.predictions);
  }
  if (!o.shard.empty()) identity["shard"] = {{"index", shard_index}, {"count", shard_count}};
  std::vector<std::string> stems;
  for (const auto& s : selected) stems.push_back(s.stem);
  identity["stems"] = stems;

  // Rank 0 creates (or checks) the run folder before the others open it.
  const nlohmann::json id = nlohmann::json::parse(identity.dump());
  std::unique_ptr<eval::RunDir> run;
  if (world.rank() == 0) run = std::make_unique<eval::RunDir>(eval::RunDir::open(o.out, id));
  world.barrier();
  if (world.rank() != 0) run = std::make_unique<eval::RunDir>(eval::RunDir::open(o.out, id));

  if (world.rank() == 0) {
    if (use_model) std::printf("settings: %s\n", settings.describe().c_str());
    std::printf("%s (%s protocol, %d classes): %zu images%s -> %s/\n", dataset.name.c_str(),
                eval::to_string(protocol).c_str(), scoring.num_classes(), selected.size(),
                world.distributed() ? (" on " + std::to_string(world.size()) + " ranks").c_str() : "", o.out.c_str());
    if (use_model) note_cpu_speed(placement);
    std::fflush(stdout);
  }

  const std::vector<int> all_classes = dataset.prompt_classes();
  eval::Predictor predict;
  eval::Prefetch prefetch;
  std::unique_ptr<BatchedPredictions> batched;
  if (use_model) {
    auto classes_of = [&](const std::string& stem) -> const std::vector<int>& {
      const auto it = tags.find(stem);
      return it == tags.end() ? all_classes : it->second;
    };
    batched = std::make_unique<BatchedPredictions>(*model, settings, dataset, classes_of,
                                                   resolve_batch_size(o.compute, placement, settings.input_size),
                                                   resolve_workers(o.compute, placement,
                                                                   {settings.input_size, all_classes.size()}));
    predict = [&](const eval::Sample& s, const eval::LabelMap& gt) { return batched->predict(s, gt); };
    if (batched->group_size() > 1)
      prefetch = [&](const std::vector<const eval::Sample*>& group) { batched->prefetch(group); };
  } else {
    predict = [&](const eval::Sample& s, const eval::LabelMap&) {
      return eval::read_prediction_png(o.predictions + "/" + s.stem + ".png", dataset.num_classes());
    };
  }
  const eval::LoopResult loop = eval::run_samples(*run, dataset, scoring, mine, predict, use_model,
                                                 batched ? batched->group_size() : 1, prefetch);

  return finish_run(o, world, dataset, scoring, selected, *run, loop, identity, seconds_since(start));
}

}  // namespace

Command add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval",
      "Score the method (or existing label maps) on a segmentation benchmark, read in place from its "
      "MMSegmentation layout; resumable, shardable, MPI-aware.\n"
      "Example: pnp-ovss eval --dataset voc20 --data-root data --out runs/voc20\n"
      "Layouts under --data-root: voc20 VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation/val.txt}; "
      "context59 VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext,ImageSets/SegmentationContext/val.txt}; "
      "coco_object / coco_stuff171 coco_stuff164k/{images/val2017,annotations/val2017/*_instanceTrainIds.png | "
      "*_labelTrainIds.png}; ade150 ADEChallengeData2016/{images/validation,annotations/validation}; "
      "folder images/, labels/<stem>.png, classes.txt");
  auto o = std::make_shared<EvalOptions>();
  cmd->add_option("--dataset", o->dataset, "voc20 | context59 | coco_object | coco_stuff171 | ade150 | folder");
  cmd->add_option("--data-root", o->data_root, "folder holding the dataset's tree");
  cmd->add_option("--protocol", o->protocol, "mmseg (MMSegmentation's IoU metric) or pnp-ovss (the released code's)")
      ->capture_default_str();
  o->model_opt = cmd->add_option("-m,--model", o->model, "model directory or hub id")->capture_default_str();
  add_method_options(cmd, o->method, MethodOptionSet::All);
  add_compute_options(cmd, o->compute, ComputeOptionSet::WithBatchAndWorkers);
  o->class_tags_opt = cmd->add_option("--class-tags", o->class_tags,
                                      "JSON: image stem -> the classes (names or evaluation indices) to prompt");
  cmd->add_option("-o,--out", o->out, "run folder (created; rerun the same command to resume)")->capture_default_str();
  cmd->add_option("--limit", o->limit, "only the first N images of the split (0: all)")->capture_default_str();
  cmd->add_option("--shard", o->shard, "k/N: this process takes every N-th image from the k-th (0-based)");
  cmd->add_option("--predictions", o->predictions,
                  "score <stem>.png label maps from this folder (values 0..C-1 = the classes; others = no class) "
                  "instead of running a model");
  cmd->add_option("--examples", o->examples, "pictures (image | ground truth | prediction) of the first N images")
      ->capture_default_str();
  cmd->add_option("--merge", o->merge, "combine the run folders of shards into one metrics.json in --out")
      ->expected(1, -1);
  return [o]() {
    try {
      return run_eval(*o);
    } catch (const std::exception&) {
      // A rank that stops alone would leave the others waiting in a collective.
      if (eval::launched_as_mpi_rank()) {
        const std::string message = current_failure().message;
        try {
          const eval::World world = eval::World::join();
          if (world.distributed()) {
            std::fprintf(stderr, "error: %s\n", message.c_str());
            world.abort(1);
          }
        } catch (const std::exception&) {
          // No MPI in this build: nobody waits for this process.
        }
      }
      throw;
    }
  };
}

}  // namespace pnpovss::cli
