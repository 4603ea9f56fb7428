#include "pnpovss/tune/tuner.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "pnpovss/cpu/side_by_side.h"
#include "pnpovss/error.h"
#include "pnpovss/util/interrupt.h"

namespace pnpovss::tune {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void notify_start(const TuneObserver& o, const std::string& stage, size_t done, size_t total, const std::string& what) {
  if (o.on_start) o.on_start(stage, done, total, what);
}

// fn(i) for the image indices `images`, side by side (run_side_by_side). The observer hears of
// each image as it starts, one notice at a time, numbered in starting order from `first` of
// all the evaluator's images.
void each_image(const TrialEvaluator& evaluator, const std::vector<size_t>& images, int workers,
                const TuneObserver& observer, const std::string& stage, size_t first,
                const std::function<void(size_t)>& fn) {
  std::mutex notice_lock;
  size_t started = first;
  cpu::run_side_by_side(images.size(), workers, [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      util::interruption_point();  // Ctrl-C in Python: the journal keeps what finished
      const size_t i = images[k];
      {
        const std::lock_guard<std::mutex> hold(notice_lock);
        notify_start(observer, stage, started++, evaluator.num_images(), evaluator.image(i).path);
      }
      fn(i);
    }
  });
}

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
  // The images in the journal are read back; the others run side by side, each journaled as it
  // finishes.
  const size_t n = evaluator.num_images();
  std::vector<std::vector<std::vector<bool>>> fresh(n);
  std::vector<double> seconds(n);
  std::vector<size_t> todo;
  for (size_t i = 0; i < n; ++i) {
    const std::vector<std::vector<bool>>* done = journal.grid_image(i);
    if (done == nullptr || done->size() != candidates.size())
      todo.push_back(i);
    else
      notify_start(observer, kStageLayerHead, i - todo.size(), n, evaluator.image(i).path);
  }
  std::mutex journal_lock;
  each_image(evaluator, todo, opt.workers, observer, kStageLayerHead, n - todo.size(), [&](size_t i) {
    const auto start = Clock::now();
    fresh[i] = evaluator.grid_wins(i, space);
    seconds[i] = seconds_since(start);
    const std::lock_guard<std::mutex> hold(journal_lock);
    journal.append_grid_image(i, evaluator.image(i).path, fresh[i], seconds[i]);
  });
  std::vector<bool> computed(n, false);
  for (size_t i : todo) computed[i] = true;
  for (size_t i = 0; i < n; ++i) {
    const TuneImage& image = evaluator.image(i);
    const std::vector<std::vector<bool>>& wins = computed[i] ? fresh[i] : *journal.grid_image(i);
    result.grid_seconds += computed[i] ? seconds[i] : journal.grid_image_seconds(i);
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
  std::vector<size_t> all(n);
  std::iota(all.begin(), all.end(), size_t{0});
  std::vector<std::vector<bool>> wins(n);
  each_image(evaluator, all, workers, observer, stage + ":image", 0,
             [&](size_t i) { wins[i] = evaluator.wins(i, setting, masks); });
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
      result.trials.push_back(
          run_or_resume(evaluator, journal, kStageLayerHead, opt.masks, c, observer, opt.workers));
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
