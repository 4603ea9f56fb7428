// Label-free tuning in the paper's staged order (docs/method.md §8): first layer, head and
// threshold on one kind of masks (GradCAM masks by default), by seeded random search or
// exhaustively over layer x head x threshold; then the blur on the final masks of the best
// setting. Every trial goes to the journal as it finishes; trials already there are not rerun.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "pnpovss/tune/evaluator.h"
#include "pnpovss/tune/journal.h"
#include "pnpovss/tune/search.h"

namespace pnpovss::tune {

struct TuneOptions {
  uint64_t seed = 0;
  size_t trials = 30;                                      // stage 1 budget (random search)
  size_t blur_trials = std::numeric_limits<size_t>::max();  // stage 2 budget (default: every value)
  MaskSource masks = MaskSource::GradCam;                  // stage 1 masks
  bool exhaustive = false;  // stage 1 over every layer x head x threshold, one pass per image
  bool blur_stage = true;
  double base_blur = 0.05;  // the blur of stage 1 trials (it only matters for final masks)
  int workers = 1;          // images evaluated side by side (run_side_by_side); same results
};

// What the CLI shows while tuning.
struct TuneObserver {
  // A unit of work started: stage, index and count of trials (or images in the exhaustive mode).
  std::function<void(const std::string& stage, size_t done, size_t total, const std::string& what)> on_start;
  // A trial finished (or was read back from the journal), with the best so far of its stage.
  std::function<void(const TrialRecord& trial, const TrialRecord& best)> on_trial;
};

struct TuneResult {
  std::vector<TrialRecord> trials;  // stage 1 in visiting order (exhaustive: candidate order), then stage 2
  int best_stage1 = -1;             // index into trials
  int best_blur = -1;               // index into trials; -1 without a blur stage
  Candidate best;                   // best layer, head, threshold and (stage 2) blur
  double grid_seconds = 0.0;        // exhaustive mode: model passes and scoring of stage 1
  size_t grid_images = 0;
};

// Best = the highest reward; among equal rewards the earliest trial (visiting order).
int best_index(const std::vector<TrialRecord>& trials, const std::string& stage);

// The reward of `setting` summed over every image of `evaluator`, with `workers` images side by
// side (the sum is taken in image order all the same).
TrialRecord evaluate_trial(TrialEvaluator& evaluator, const std::string& stage, MaskSource masks,
                           const Candidate& setting, const TuneObserver& observer, int workers = 1);

TuneResult run_tuning(TrialEvaluator& evaluator, const SearchSpace& space, const TuneOptions& options,
                      Journal& journal, const TuneObserver& observer = {});

}  // namespace pnpovss::tune
