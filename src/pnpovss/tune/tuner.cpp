#include "pnpovss/tune/tuner.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/side_by_side.h"

namespace pnpovss::tune {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void notify_start(const TuneObserver& o, const std::string& stage, size_t done, size_t total, const std::string& what) {
  if (o.on_start) o.on_start(stage, done, total, what);
}

// The observer's image notices from images evaluated side by side: one at a time, numbered in
// the order they start.
class ImageNotices {
 public:
  ImageNotices(const TuneObserver& observer, std::string stage, size_t total)
      : observer_(observer), stage_(std::move(stage)), total_(total) {}
  void started(const std::string& path) {
    const std::lock_guard<std::mutex> hold(lock_);
    notify_start(observer_, stage_, started_++, total_, path);
  }

 private:
  const TuneObserver& observer_;
  const std::string stage_;
  const size_t total_;
  std::mutex lock_;
  size_t started_ = 0;
};

// Stage 1 by trying every candidate on each image from one model pass per image.
std::vector<TrialRecord> exhaustive_stage(TrialEvaluator& evaluator, const SearchSpace& space, const TuneOptions& opt,
                                          Journal& journal, const TuneObserver& observer, TuneResult& result) {
  const std::vector<Candidate> candidates = space.stage1_candidates();
  std::vector<TrialRecord> trials(candidates.size());
  for (size_t c = 0; c < candidates.size(); ++c) {
    trials[c].stage = kStageLayerHead;
    trials[c].masks = MaskSource::GradCam;
    trials[c].setting = candidates[c];
    trials[c].setting.blur = opt.base_blur;
  }
  // The images not in the journal yet, side by side; each goes to the journal as it finishes.
  const size_t n = evaluator.num_images();
  std::vector<std::vector<std::vector<bool>>> fresh(n);
  std::vector<double> seconds(n);
  std::vector<size_t> todo;
  for (size_t i = 0; i < n; ++i) {
    const std::vector<std::vector<bool>>* done = journal.grid_image(i);
    if (done == nullptr || done->size() != candidates.size()) todo.push_back(i);
  }
  ImageNotices notices(observer, kStageLayerHead, n);
  for (size_t i = 0; i < n; ++i)
    if (!std::binary_search(todo.begin(), todo.end(), i)) notices.started(evaluator.image(i).path);
  std::mutex journal_lock;
  run_side_by_side(todo.size(), opt.workers, [&](size_t begin, size_t end) {
    for (size_t t = begin; t < end; ++t) {
      const size_t i = todo[t];
      notices.started(evaluator.image(i).path);
      const auto start = Clock::now();
      fresh[i] = evaluator.grid_wins(i, space);
      seconds[i] = seconds_since(start);
      const std::lock_guard<std::mutex> hold(journal_lock);
      journal.append_grid_image(i, evaluator.image(i).path, fresh[i], seconds[i]);
    }
  });
  for (size_t i = 0; i < n; ++i) {
    const TuneImage& image = evaluator.image(i);
    const bool computed = std::binary_search(todo.begin(), todo.end(), i);
    const std::vector<std::vector<bool>>& wins = computed ? fresh[i] : *journal.grid_image(i);
    result.grid_seconds += computed ? seconds[i] : journal.grid_image_seconds(i);
    for (size_t c = 0; c < candidates.size(); ++c) {
      if (wins[c].size() != image.classes.size())
        throw Error("journal '" + journal.path() + "': image " + std::to_string(i) +
                    " has win flags for another class count: run with --restart");
      trials[c].tally.add(image.classes, wins[c]);
    }
  }
  result.grid_images = evaluator.num_images();
  for (auto& t : trials) t.seconds = result.grid_seconds / static_cast<double>(std::max<size_t>(trials.size(), 1));
  return trials;
}

// A trial from the journal, or computed and journaled.
TrialRecord run_or_resume(TrialEvaluator& evaluator, Journal& journal, const std::string& stage, MaskSource masks,
                          const Candidate& c, const TuneObserver& observer, int workers) {
  if (const TrialRecord* done = journal.find(stage, masks, c)) return *done;
  TrialRecord t = evaluate_trial(evaluator, stage, masks, c, observer, workers);
  journal.append(t);
  return t;
}

}  // namespace

int best_index(const std::vector<TrialRecord>& trials, const std::string& stage) {
  int best = -1;
  for (size_t i = 0; i < trials.size(); ++i)
    if (trials[i].stage == stage && (best < 0 || trials[i].tally.reward > trials[static_cast<size_t>(best)].tally.reward))
      best = static_cast<int>(i);
  return best;
}

TrialRecord evaluate_trial(TrialEvaluator& evaluator, const std::string& stage, MaskSource masks,
                           const Candidate& setting, const TuneObserver& observer, int workers) {
  const auto start = Clock::now();
  TrialRecord t;
  t.stage = stage;
  t.masks = masks;
  t.setting = setting;
  const size_t n = evaluator.num_images();
  std::vector<std::vector<bool>> wins(n);
  ImageNotices notices(observer, stage + ":image", n);
  run_side_by_side(n, workers, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      notices.started(evaluator.image(i).path);
      wins[i] = evaluator.wins(i, setting, masks);
    }
  });
  for (size_t i = 0; i < n; ++i) t.tally.add(evaluator.image(i).classes, wins[i]);
  t.seconds = seconds_since(start);
  return t;
}

TuneResult run_tuning(TrialEvaluator& evaluator, const SearchSpace& space, const TuneOptions& opt, Journal& journal,
                      const TuneObserver& observer) {
  if (evaluator.num_images() == 0) throw Error("no images to tune on");
  if (opt.exhaustive && opt.masks != MaskSource::GradCam)
    throw Error("the exhaustive layer x head search scores GradCAM masks only (the later Salience DropOut "
                "passes depend on the layer and head): drop --exhaustive or use --masks gradcam");
  TuneResult result;
  auto report = [&](const std::string& stage) {
    const int best = best_index(result.trials, stage);
    if (observer.on_trial) observer.on_trial(result.trials.back(), result.trials[static_cast<size_t>(best)]);
  };
  if (opt.exhaustive) {
    result.trials = exhaustive_stage(evaluator, space, opt, journal, observer, result);
  } else {
    if (opt.trials == 0) throw Error("--trials must be 1 or more");
    const std::vector<Candidate> order = stage1_order(space, opt.seed, opt.trials);
    for (size_t n = 0; n < order.size(); ++n) {
      Candidate c = order[n];
      c.blur = opt.base_blur;
      notify_start(observer, kStageLayerHead, n, order.size(), "");
      result.trials.push_back(run_or_resume(evaluator, journal, kStageLayerHead, opt.masks, c, observer, opt.workers));
      report(kStageLayerHead);
    }
  }
  result.best_stage1 = best_index(result.trials, kStageLayerHead);
  result.best = result.trials[static_cast<size_t>(result.best_stage1)].setting;
  if (!opt.blur_stage || opt.blur_trials == 0) return result;

  const std::vector<double> blurs = blur_order(space, opt.seed, opt.blur_trials);
  for (size_t n = 0; n < blurs.size(); ++n) {
    Candidate c = result.best;
    c.blur = blurs[n];
    notify_start(observer, kStageBlur, n, blurs.size(), "");
    result.trials.push_back(run_or_resume(evaluator, journal, kStageBlur, MaskSource::Final, c, observer, opt.workers));
    report(kStageBlur);
  }
  result.best_blur = best_index(result.trials, kStageBlur);
  result.best.blur = result.trials[static_cast<size_t>(result.best_blur)].setting.blur;
  return result;
}

}  // namespace pnpovss::tune
