// `pnp-ovss eval`: the method (or a folder of label maps) scored on a benchmark dataset, read
// in place from its MMSegmentation layout. Per-image results go into the run folder as they
// finish, so a killed run restarted with the same command goes on where it stopped; shards
// (--shard k/N, then --merge) and MPI ranks split the images and sum the counts.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "pnpovss/cli/commands.h"
#include "pnpovss/cli/compute_options.h"
#include "pnpovss/cli/method_options.h"
#include "pnpovss/cli/output_dir.h"
#include "pnpovss/console/progress.h"
#include "pnpovss/error.h"
#include "pnpovss/eval/dataset.h"
#include "pnpovss/eval/distributed.h"
#include "pnpovss/eval/evaluation.h"
#include "pnpovss/eval/run_dir.h"
#include "pnpovss/io/file_write.h"
#include "pnpovss/run/eval_predictions.h"
#include "pnpovss/run/model.h"
#include "pnpovss/settings/settings_json.h"
#include "pnpovss/util/failure.h"
#include "pnpovss/util/interrupt.h"
#include "pnpovss/version.h"

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
  bool restart = false;
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
    throw InvalidArgument("--shard '" + text + "' must be k/N, e.g. 0/4 for the first of 4 shards");
  }
  if (n < 1 || k < 0 || k >= n) throw InvalidArgument("--shard " + text + ": k must be in 0..N-1 and N at least 1");
  return {k, n};
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
  io::remove_stale_temporaries(o.out);  // what a killed merge left half-written
  ojson extra = ojson::parse(m.identity.dump());
  extra.erase("scored_classes");
  extra["images"] = {{"scored", m.images}, {"shards", o.merge.size()}};
  extra["version"] = program_version();
  const eval::Summary s = eval::write_metrics(o.out, scoring, m.totals, {}, extra);
  std::printf("merged %zu shards, %ld images: mIoU %.2f, mAcc %.2f, aAcc %.2f -> %s/metrics.json\n", o.merge.size(),
              m.images, eval::percent2(s.miou), eval::percent2(s.macc), eval::percent2(s.aacc), o.out.c_str());
  return 0;
}

// The model side of a run: the model with its settings, class tags and the runner.
struct ModelRun {
  run::ModelChoice choice;
  runtime::Placement placement;
  std::unique_ptr<segment::Segmenter> model;
  run::ClassTags tags;
  std::unique_ptr<run::Runner> runner;
  std::unique_ptr<run::ModelPredictions> predictions;
};

std::unique_ptr<ModelRun> open_model(const EvalOptions& o, const eval::Dataset& d) {
  auto m = std::make_unique<ModelRun>();
  const SettingChoices choices = setting_choices(o.method);
  m->choice = run::choose_model(o.model, choices, d.rule);
  const MethodSettings& settings = m->choice.settings;
  const std::vector<int> prompted = d.prompt_classes();
  if (!o.class_tags.empty())
    m->tags = run::read_class_tags(o.class_tags, d.classes, prompted,
                                   "the " + std::to_string(prompted.size()) + " prompted classes of " + d.name);
  m->placement = resolve_placement(o.compute);
  m->choice.settings.post_crf.device = resolve_postprocess_device(o.compute, m->placement);
  m->model = std::make_unique<segment::Segmenter>(run::load_model(m->choice, m->placement, choices));
  m->model->check_classes(run::chosen_classes(d.classes, prompted).names, settings);
  const run::RunOptions options{resolve_batch_size(o.compute, m->placement, settings.input_size),
                                resolve_workers(o.compute, m->placement, {settings.input_size, prompted.size()})};
  m->runner = std::make_unique<run::Runner>(*m->model, settings, options);
  m->predictions = std::make_unique<run::ModelPredictions>(*m->runner, d, m->tags);
  return m;
}

// What the run folder records and a resumed run must match.
ojson run_identity(const EvalOptions& o, const eval::Dataset& d, const eval::Scoring& scoring,
                   const std::vector<eval::Sample>& selected, const ModelRun* m, std::pair<int, int> shard) {
  ojson id;
  id["dataset"] = d.name;
  id["data_root"] = absolute(d.root);
  id["protocol"] = eval::to_string(scoring.protocol);
  id["classes"] = d.classes;
  id["scored_classes"] = scoring.names;
  id["num_scored_classes"] = scoring.num_classes();
  id["limit"] = o.limit;
  if (m) {
    id["model"] = absolute(m->choice.dir);
    id["settings"] = ojson::parse(to_json(m->choice.settings).dump());
    // Reduced precision changes the maps, so a run cannot mix it with fp32 (the device alone
    // does not: a run may resume on another one).
    if (m->placement.dtype != torch::kFloat32) id["dtype"] = runtime::dtype_name(m->placement.dtype);
    id["class_tags"] = o.class_tags.empty() ? "" : absolute(o.class_tags);
  } else {
    id["predictions"] = absolute(o.predictions);
  }
  if (!o.shard.empty()) id["shard"] = {{"index", shard.first}, {"count", shard.second}};
  std::vector<std::string> stems;
  for (const auto& s : selected) stems.push_back(s.stem);
  id["stems"] = stems;
  return id;
}

// Progress and failures on the console. Rank 0 speaks for every rank: its bar counts the
// records of the whole run folder. Failed images are reported by the rank that had them.
eval::LoopObserver console_observer(const eval::World& world, const eval::RunDir& run, size_t selected,
                                    std::unique_ptr<console::Progress>& progress) {
  eval::LoopObserver observer;
  const bool speaks = world.rank() == 0;
  observer.on_start = [&progress, &world, &run, selected, speaks](const std::vector<const eval::Sample*>& todo,
                                                                   long resumed) {
    if (!speaks) return;
    if (resumed > 0 && !world.distributed())
      std::printf("resumed %ld images that an earlier run finished in %s/ (%zu to compute)\n", resumed,
                  run.dir().c_str(), todo.size());
    std::fflush(stdout);
    const long done_before = world.distributed() ? 0 : resumed;
    progress = std::make_unique<console::Progress>(static_cast<long>(selected) - done_before, done_before);
  };
  observer.on_image = [&progress, &world, &run, speaks](const eval::Sample& s, const std::string& problem) {
    if (!problem.empty()) {
      if (progress && progress->interactive()) std::fputc('\n', stderr);
      std::fprintf(stderr, "error: image '%s': %s\n", s.stem.c_str(), problem.c_str());
    }
    if (!speaks || !progress) return;
    if (world.distributed())
      progress->show_finished(run.count_records(), !problem.empty());
    else
      progress->step(!problem.empty());
  };
  observer.on_note = [](const std::string& note) { std::printf("note: %s\n", note.c_str()); };
  return observer;
}

// After the loop: the counts of every rank summed on rank 0, which writes metrics.json, the
// tables and the pictures. Returns the exit status (1 when an image failed).
int finish_run(const EvalOptions& o, const eval::World& world, const eval::Dataset& dataset,
               const eval::Scoring& scoring, const std::vector<eval::Sample>& selected, const eval::RunDir& run,
               const eval::LoopResult& loop, const ojson& identity, double seconds) {
  const eval::LoopResult all = eval::sum_over_ranks(world, loop);
  if (world.rank() != 0) return loop.failures.empty() ? 0 : 1;
  const std::vector<eval::Failure> failures =
      eval::failures_of_all_ranks(world, run, selected, scoring.num_classes(), loop.failures);
  ojson extra;
  for (const char* key : {"dataset", "protocol"}) extra[key] = identity.at(key);
  extra["num_classes"] = scoring.num_classes();
  extra["images"] = {{"selected", selected.size()},
                     {"scored", static_cast<int64_t>(selected.size()) - static_cast<int64_t>(failures.size())},
                     {"computed_now", all.computed},
                     {"resumed", all.resumed},
                     {"failed", failures.size()}};
  for (const char* key : {"model", "settings", "predictions", "data_root", "shard"})
    if (identity.contains(key)) extra[key] = identity.at(key);
  extra["ranks"] = world.size();
  extra["timing"] = {{"seconds", seconds},
                     {"images_per_second", loop.seconds > 0 ? static_cast<double>(all.computed) / loop.seconds : 0.0}};
  extra["version"] = program_version();
  const eval::Summary summary = eval::write_metrics(o.out, scoring, all.totals, failures, extra);
  eval::write_examples(o.out, dataset, selected, o.examples, [&](const std::string& stem) {
    return o.predictions.empty() ? run.pred_path(stem) : o.predictions + "/" + stem + ".png";
  });
  for (const auto& f : failures) std::fprintf(stderr, "failed: %s: %s\n", f.stem.c_str(), f.message.c_str());
  std::printf("mIoU %.2f, mAcc %.2f, aAcc %.2f over %zu images (%zu failed), %.1f s -> %s/metrics.json\n",
              eval::percent2(summary.miou), eval::percent2(summary.macc), eval::percent2(summary.aacc),
              selected.size() - failures.size(), failures.size(), seconds, o.out.c_str());
  return failures.empty() ? 0 : 1;
}

int run_eval(const EvalOptions& o, const eval::World& world) {
  const auto start = Clock::now();
  if (!o.merge.empty()) return run_merge(o);
  if (o.dataset.empty())
    throw InvalidArgument("--dataset is required (voc20, context59, coco_object, coco_stuff171, ade150, folder)");
  if (o.data_root.empty()) throw InvalidArgument("--data-root is required: the folder that holds the dataset");
  if (o.limit < 0) throw InvalidArgument("--limit must be 0 (all images) or more");
  const bool use_model = o.predictions.empty();
  if (!use_model && (o.model_opt->count() || o.method.given("preset") || o.method.given("settings") ||
                     o.class_tags_opt->count()))
    throw InvalidArgument(
        "--predictions scores existing label maps: --model, --preset, --settings and --class-tags do not apply");
  const eval::Dataset dataset = eval::open_dataset(o.dataset, o.data_root);
  const eval::Scoring scoring = dataset.scoring(eval::parse_protocol(o.protocol));

  std::pair<int, int> shard{0, 1};
  if (!o.shard.empty()) {
    if (world.distributed()) throw InvalidArgument("--shard and mpirun both split the images: use one of them");
    shard = parse_shard(o.shard);
  }
  const std::vector<eval::Sample> selected = eval::select_samples(dataset.samples, o.limit, shard.first, shard.second);
  const std::vector<eval::Sample> mine = eval::select_samples(selected, 0, world.rank(), world.size());
  const std::unique_ptr<ModelRun> m = use_model ? open_model(o, dataset) : nullptr;
  const ojson identity = run_identity(o, dataset, scoring, selected, m.get(), shard);

  // Rank 0 creates (or checks) the run folder before the others open it.
  const nlohmann::json id = nlohmann::json::parse(identity.dump());
  std::unique_ptr<eval::RunDir> run;
  if (world.rank() == 0) {
    if (o.restart) eval::RunDir::discard(o.out);
    // What a killed run left half-written goes, before any rank writes here again.
    eval::RunDir::remove_stale_temporaries(o.out);
    run = std::make_unique<eval::RunDir>(eval::RunDir::open(o.out, id));
  }
  world.barrier();
  if (world.rank() != 0) run = std::make_unique<eval::RunDir>(eval::RunDir::open(o.out, id));

  if (world.rank() == 0) {
    if (m) {
      std::printf("settings: %s\n", m->choice.settings.describe().c_str());
      for (const auto& note : m->choice.notes) std::printf("note: %s\n", note.c_str());
    }
    std::printf("%s (%s protocol, %d classes): %zu images%s -> %s/\n", dataset.name.c_str(),
                eval::to_string(scoring.protocol).c_str(), scoring.num_classes(), selected.size(),
                world.distributed() ? (" on " + std::to_string(world.size()) + " ranks").c_str() : "", o.out.c_str());
    if (m) note_cpu_speed(m->placement);
    std::fflush(stdout);
  }

  std::unique_ptr<console::Progress> progress;
  eval::LoopObserver observer = console_observer(world, *run, selected.size(), progress);
  eval::Predictor predict;
  if (m) {
    predict = [&m](const eval::Sample& s, const eval::LabelMap& gt) { return m->predictions->predict(s, gt); };
    observer.on_start = [&m, shown = observer.on_start](const std::vector<const eval::Sample*>& todo, long resumed) {
      shown(todo, resumed);
      m->predictions->start(todo);
    };
  } else {
    predict = [&](const eval::Sample& s, const eval::LabelMap&) {
      return eval::read_prediction_png(o.predictions + "/" + s.stem + ".png", dataset.num_classes());
    };
  }
  try {
    const eval::LoopResult loop = eval::run_samples(*run, dataset, scoring, mine, predict, use_model, observer);
    if (progress) progress->finish();
    return finish_run(o, world, dataset, scoring, selected, *run, loop, identity, seconds_since(start));
  } catch (const io::WriteError& e) {
    if (progress && progress->interactive()) std::fputc('\n', stderr);  // the error below the bar
    throw run_stopped_by(e);
  }
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
  cmd->add_flag("--restart", o->restart,
                "discard the results an earlier run left in --out (run.json, images/, pred/, metrics) and start "
                "again; without it a rerun resumes");
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
    const eval::World world = eval::World::join();
    try {
      return run_eval(*o, world);
    } catch (const util::Interrupted&) {
      throw;
    } catch (const std::exception&) {
      if (!world.distributed()) throw;
      // A rank that stops alone would leave the others waiting in a collective: it ends the job.
      // Rank 0 says why; another rank waits a moment first, so that when rank 0 failed the same
      // way (a bad option fails everywhere) its abort ends this process and one line is printed.
      if (world.rank() != 0) ::sleep(2);
      std::fprintf(stderr, "error: %s%s\n", world.rank() == 0 ? "" : ("(rank " + std::to_string(world.rank()) + ") ").c_str(),
                   util::current_failure().message.c_str());
      world.abort(1);
    }
  };
}

}  // namespace pnpovss::cli
