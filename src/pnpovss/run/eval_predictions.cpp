#include "pnpovss/run/eval_predictions.h"

#include <map>

#include "pnpovss/error.h"

namespace pnpovss::run {
namespace {

// The prompt classes of evaluation classes `classes`, labelled with the dataset's native ids, as
// the released code labels them (the `official` in-place remap depends on those values).
PromptClasses dataset_classes(const eval::Dataset& d, const std::vector<int>& classes) {
  PromptClasses p;
  for (int k : classes) {
    p.names.push_back(d.classes[static_cast<size_t>(k)]);
    p.labels.push_back(d.native_ids[static_cast<size_t>(k)]);
  }
  return p;
}

void check_same_size(const eval::Sample& sample, int width, int height, const eval::LabelMap& gt) {
  if (width != gt.width || height != gt.height)
    throw Error("the image '" + sample.image + "' is " + std::to_string(width) + "x" + std::to_string(height) +
                " but its label PNG '" + sample.label + "' is " + std::to_string(gt.width) + "x" +
                std::to_string(gt.height));
}

}  // namespace

ModelPredictions::ModelPredictions(Runner& runner, const eval::Dataset& dataset, const ClassTags& tags)
    : runner_(runner), dataset_(dataset), tags_(tags), prompted_(dataset.prompt_classes()) {}

void ModelPredictions::start(const std::vector<const eval::Sample*>& todo) {
  todo_ = todo;
  std::vector<Item> items;
  for (const eval::Sample* s : todo) {
    Item item;
    item.path = s->image;
    item.classes = dataset_classes(dataset_, classes_of(tags_, s->stem, prompted_));
    items.push_back(std::move(item));
  }
  stream_ = std::make_unique<Stream>(runner_, std::move(items));
}

eval::Prediction ModelPredictions::predict(const eval::Sample& sample, const eval::LabelMap& gt) {
  if (!stream_) throw Error("predictions were asked for before the run started");
  // Samples whose ground truth failed to load were never asked for: their outcomes are skipped.
  Outcome o = stream_->next();
  while (todo_.at(o.index) != &sample) o = stream_->next();
  if (!o.ok()) throw Error(o.problem);
  check_same_size(sample, o.result.width, o.result.height, gt);
  eval::Prediction p;
  p.width = o.result.width;
  p.height = o.result.height;
  p.origin = sample.image;
  p.classes.resize(o.labels.size());
  std::map<int32_t, int32_t> to_eval;
  for (size_t i = 0; i < o.labels.size(); ++i) {
    auto it = to_eval.find(o.labels[i]);
    if (it == to_eval.end()) it = to_eval.emplace(o.labels[i], dataset_.eval_class_of_native(o.labels[i])).first;
    p.classes[i] = it->second;
  }
  return p;
}

}  // namespace pnpovss::run
