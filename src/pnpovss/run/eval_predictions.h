// The model's predictions for `eval`: the images still to compute go through the runner in
// groups, decoded ahead, each with its prompt classes (the dataset's, or its class tags), and
// come back as evaluation classes for eval::run_samples.
#pragma once

#include <memory>
#include <vector>

#include "pnpovss/eval/dataset.h"
#include "pnpovss/eval/evaluation.h"
#include "pnpovss/run/class_lists.h"
#include "pnpovss/run/runner.h"

namespace pnpovss::run {

class ModelPredictions {
 public:
  // `runner`, `dataset` and `tags` (evaluation-class indices per stem) must outlive this.
  ModelPredictions(Runner& runner, const eval::Dataset& dataset, const ClassTags& tags);

  // The samples eval will ask for, in order (eval::LoopObserver::on_start).
  void start(const std::vector<const eval::Sample*>& todo);
  // The prediction of the next sample (an eval::Predictor); throws pnpovss::Error when its
  // image failed or does not have the size of its label map `gt`.
  eval::Prediction predict(const eval::Sample& sample, const eval::LabelMap& gt);

 private:
  Runner& runner_;
  const eval::Dataset& dataset_;
  const ClassTags& tags_;
  std::vector<int> prompted_;  // evaluation classes of an untagged image
  std::vector<const eval::Sample*> todo_;
  std::unique_ptr<Stream> stream_;
};

}  // namespace pnpovss::run
