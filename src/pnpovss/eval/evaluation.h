// The evaluation loop without the model: per image, read the ground truth, get a prediction
// from a Predictor (the model, or a folder of label maps), count, and record the result in the
// run folder; then the metrics and tables. The model itself stays in the CLI so this part
// builds and is tested without libtorch.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "pnpovss/eval/dataset.h"
#include "pnpovss/eval/label_png.h"
#include "pnpovss/eval/metrics.h"
#include "pnpovss/eval/run_dir.h"

namespace pnpovss::eval {

// A predicted map in evaluation classes (0..C-1; anything else is no class).
struct Prediction {
  int width = 0, height = 0;
  std::vector<int32_t> classes;
  std::string origin;  // what it was made from, for messages (the image or the prediction file)
};

// Returns the prediction of a sample whose ground truth is `gt`; throws pnpovss::Error to fail
// that image.
using Predictor = std::function<Prediction(const Sample& sample, const LabelMap& gt)>;

struct Failure {
  std::string stem, message;
};

struct LoopResult {
  Counts totals;
  long computed = 0, resumed = 0;
  std::vector<Failure> failures;
  double seconds = 0;
};

// Throws pnpovss::Error naming `origin`, the value and the pixel for the first ground-truth
// value the dataset does not define.
void check_ground_truth(const Scoring& scoring, const LabelMap& gt, const std::string& origin);

// What a run reports while it goes; every member may be left empty. The library prints
// nothing: a front end shows these (console/progress.h on a terminal).
struct LoopObserver {
  // Before the first image: the samples to compute, in the order predict will be asked for them
  // (a model computes them ahead in groups), and how many had a record already (resumed).
  std::function<void(const std::vector<const Sample*>& todo, long resumed)> on_start;
  // An image finished: `problem` is empty when it was counted, else why it failed.
  std::function<void(const Sample& sample, const std::string& problem)> on_image;
  // Something worth a line that is not a failure (a damaged record computed again).
  std::function<void(const std::string& note)> on_note;
};

// Runs `samples`, skipping those already done in `run` (a record, and with
// `write_predictions` the predicted PNG too: a deleted or damaged file is computed again), then
// writes the predicted PNG when `write_predictions` and the record. A failed image is reported
// to the observer and the loop goes on; util::Interrupted (Ctrl-C in Python) stops it between
// images, with every finished image recorded, and so does an io::WriteError that every further
// write would meet too (a full disk), which is rethrown.
LoopResult run_samples(const RunDir& run, const Dataset& dataset, const Scoring& scoring,
                       const std::vector<Sample>& samples, const Predictor& predict, bool write_predictions,
                       const LoopObserver& observer = {});

// The predicted label PNG: 8-bit palette (255 = no class) for up to 255 classes, else 16-bit
// grayscale (65535 = no class).
// Palette entry k shows class k in the colour of colour_labels[k] (Dataset::segment_labels), or
// of label k + 1 when it is empty.
std::vector<uint8_t> encode_prediction_png(const Prediction& p, int num_classes,
                                           const std::vector<int32_t>& colour_labels = {});
// A prediction file as evaluation classes: values >= num_classes become -1 (no class).
Prediction read_prediction_png(const std::string& path, int num_classes);

// The samples of shard `index` of `count` (every count-th sample from `index`), after `limit`
// (0: all).
std::vector<Sample> select_samples(const std::vector<Sample>& all, long limit, int index, int count);

// Writes metrics.json (the summary, `extra` fields added at the top level), per_class.md and
// per_class.csv into `dir`; returns the summary.
Summary write_metrics(const std::string& dir, const Scoring& scoring, const Counts& totals,
                      const std::vector<Failure>& failures, const nlohmann::ordered_json& extra);

// Writes examples/<stem>.png for the first `count` samples that have a prediction file
// (`prediction_path(stem)`); failures to draw one are skipped silently (they are reported
// for the image already), except a full disk (io::WriteError), which is thrown.
void write_examples(const std::string& dir, const Dataset& dataset, const std::vector<Sample>& samples, int count,
                    const std::function<std::string(const std::string&)>& prediction_path);

// --merge: the run folders of the shards of one run -> their summed counts. Throws
// pnpovss::Error when the folders are not shards of the same run, a shard is missing or twice,
// or a shard has images without a record.
struct Merged {
  nlohmann::json identity;  // of the first folder, without the shard
  Counts totals;
  long images = 0;
};
Merged merge_runs(const std::vector<std::string>& dirs);

}  // namespace pnpovss::eval
