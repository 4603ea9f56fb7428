// The search bookkeeping of label-free tuning with a stub evaluator whose rewards are a known
// function of the setting: the space and its clipping, the seeded orders, the staged search,
// best-trial selection, the exhaustive mode, and resuming from the journal.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "pnpovss/error.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/tune/journal.h"
#include "pnpovss/tune/results.h"
#include "pnpovss/tune/search.h"
#include "pnpovss/tune/tuner.h"

using namespace pnpovss;
using namespace pnpovss::tune;

namespace {

// Class k of image i wins a stage-1 setting when (layer * head + k + i) % 3 == 0 and the
// threshold is below 0.3; on final masks (the blur stage) exactly when blur is 0.07.
class StubEvaluator : public TrialEvaluator {
 public:
  std::vector<TuneImage> images = {{"a.png", {"cat", "dog"}}, {"b.png", {"dog", "sky", "sea"}}};
  std::atomic<int> wins_calls{0}, grid_calls{0};
  std::mutex lock;
  std::set<std::thread::id> threads;  // that called wins() or grid_wins()

  void record_thread() {
    const std::lock_guard<std::mutex> hold(lock);
    threads.insert(std::this_thread::get_id());
  }

  static bool stage1_win(const Candidate& c, size_t k, size_t i) {
    return (c.layer * c.head + static_cast<int>(k + i)) % 3 == 0 && c.threshold < 0.3;
  }
  // The reward of a stage-1 setting over both images, by the rule above.
  int64_t expected_reward(const Candidate& c) const {
    int64_t r = 0;
    for (size_t i = 0; i < images.size(); ++i)
      for (size_t k = 0; k < images[i].classes.size(); ++k) r += stage1_win(c, k, i);
    return r;
  }

  size_t num_images() const override { return images.size(); }
  const TuneImage& image(size_t i) const override { return images.at(i); }
  std::vector<bool> wins(size_t i, const Candidate& c, MaskSource masks) override {
    ++wins_calls;
    record_thread();
    std::vector<bool> out;
    for (size_t k = 0; k < images[i].classes.size(); ++k)
      out.push_back(masks == MaskSource::Final ? std::fabs(c.blur - 0.07) < 1e-9 : stage1_win(c, k, i));
    return out;
  }
  std::vector<std::vector<bool>> grid_wins(size_t i, const SearchSpace& space) override {
    ++grid_calls;
    record_thread();
    std::vector<std::vector<bool>> out;
    for (const Candidate& c : space.stage1_candidates()) {
      out.emplace_back();
      for (size_t k = 0; k < images[i].classes.size(); ++k) out.back().push_back(stage1_win(c, k, i));
    }
    return out;
  }
};

class TuneSearch : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pnpovss_tune_search_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string journal_path() const { return (dir_ / "trials.jsonl").string(); }

  std::filesystem::path dir_;
  const nlohmann::json run_ = {{"model", "stub"}, {"images", 2}};
};

}  // namespace

TEST(TuneSpace, PaperRangesClippedToTheModel) {
  const SearchSpace blip = paper_space("blip", 3, 4);
  EXPECT_EQ(blip.layers, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(blip.heads, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(blip.thresholds, (std::vector<double>{0.05, 0.15, 0.25, 0.35, 0.45}));
  EXPECT_EQ(blip.blurs, (std::vector<double>{0.01, 0.03, 0.05, 0.07, 0.09, 0.11}));
  EXPECT_EQ(blip.notes.size(), 2u);
  EXPECT_EQ(blip.stage1_size(), 3u * 4u * 5u);
  const SearchSpace full = paper_space("blip", 12, 12);
  EXPECT_EQ(full.layers.size(), 12u);
  EXPECT_TRUE(full.notes.empty());
  const SearchSpace bt = paper_space("bridgetower", 6, 16);
  EXPECT_EQ(bt.layers.size(), 6u);
  EXPECT_EQ(bt.heads.size(), 16u);
  EXPECT_TRUE(bt.notes.empty());
  EXPECT_EQ(paper_space("blip", 24, 16).layers.size(), 12u);  // the paper's range kept
  EXPECT_THROW(paper_space("vit", 12, 12), Error);
  EXPECT_THROW(paper_space("blip", 0, 12), Error);
}

TEST(TuneSpace, CandidatesAreLayerMajor) {
  const auto c = paper_space("blip", 2, 2).stage1_candidates();
  ASSERT_EQ(c.size(), 20u);
  EXPECT_EQ(c[0].layer, 1);
  EXPECT_EQ(c[0].head, 1);
  EXPECT_DOUBLE_EQ(c[0].threshold, 0.05);
  EXPECT_EQ(c[5].head, 2);
  EXPECT_EQ(c[10].layer, 2);
  EXPECT_DOUBLE_EQ(c[19].threshold, 0.45);
}

TEST(TuneRng, SplitMix64ReferenceValuesAndPermutations) {
  // The first outputs of SplitMix64 from state 0 (Vigna's reference implementation).
  Rng rng(0);
  EXPECT_EQ(rng.next(), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(rng.next(), 0x6E789E6AA1B965F4ull);
  Rng small(7);
  for (int i = 0; i < 100; ++i) EXPECT_LT(small.below(3), 3u);
  const auto order = seeded_order(50, 11);
  EXPECT_EQ(std::set<size_t>(order.begin(), order.end()).size(), 50u);
  EXPECT_EQ(order, seeded_order(50, 11));
  EXPECT_NE(order, seeded_order(50, 12));
}

TEST(TuneRng, LargerBudgetsExtendSmallerOnes) {
  const SearchSpace s = paper_space("blip", 12, 12);
  const auto few = stage1_order(s, 5, 7), many = stage1_order(s, 5, 300);
  ASSERT_EQ(few.size(), 7u);
  ASSERT_EQ(many.size(), 300u);
  for (size_t i = 0; i < few.size(); ++i) {
    EXPECT_EQ(few[i].layer, many[i].layer);
    EXPECT_EQ(few[i].head, many[i].head);
    EXPECT_EQ(few[i].threshold, many[i].threshold);
  }
  EXPECT_EQ(stage1_order(s, 5, 100000).size(), s.stage1_size());  // capped at the space
  std::set<std::string> seen;
  for (const auto& c : stage1_order(s, 5, 100000))
    seen.insert(trial_key(kStageLayerHead, MaskSource::GradCam, c));
  EXPECT_EQ(seen.size(), s.stage1_size());  // without repeats
  EXPECT_EQ(blur_order(s, 5, 100).size(), 6u);
  EXPECT_EQ(blur_order(s, 5, 2).size(), 2u);
}

TEST_F(TuneSearch, RandomSearchCountsRewardsAndPicksTheBest) {
  StubEvaluator ev;
  const SearchSpace space = paper_space("blip", 3, 4);
  TuneOptions opt;
  opt.seed = 3;
  opt.trials = 10;
  Journal journal(journal_path(), run_, false);
  const TuneResult r = run_tuning(ev, space, opt, journal);
  ASSERT_EQ(r.trials.size(), 10u + 6u);
  EXPECT_EQ(ev.wins_calls.load(), 16 * 2);
  const auto order = stage1_order(space, 3, 10);
  int64_t best = -1;
  int best_at = -1;
  for (size_t n = 0; n < 10; ++n) {
    const TrialRecord& t = r.trials[n];
    EXPECT_EQ(t.stage, kStageLayerHead);
    EXPECT_EQ(t.setting.layer, order[n].layer);
    EXPECT_EQ(t.setting.head, order[n].head);
    EXPECT_DOUBLE_EQ(t.setting.blur, 0.05);  // the base blur
    EXPECT_EQ(t.tally.reward, ev.expected_reward(order[n]));
    EXPECT_EQ(t.tally.max_reward, 5);
    EXPECT_FALSE(t.resumed);
    if (t.tally.reward > best) {
      best = t.tally.reward;
      best_at = static_cast<int>(n);
    }
  }
  EXPECT_EQ(r.best_stage1, best_at);
  // Stage 2 keeps the best layer, head and threshold and finds the one winning blur.
  for (size_t n = 10; n < r.trials.size(); ++n) {
    EXPECT_EQ(r.trials[n].stage, kStageBlur);
    EXPECT_EQ(r.trials[n].masks, MaskSource::Final);
    EXPECT_EQ(r.trials[n].setting.layer, r.trials[static_cast<size_t>(best_at)].setting.layer);
    EXPECT_EQ(r.trials[n].tally.reward, std::fabs(r.trials[n].setting.blur - 0.07) < 1e-9 ? 5 : 0);
  }
  EXPECT_DOUBLE_EQ(r.best.blur, 0.07);
  EXPECT_EQ(r.trials[static_cast<size_t>(r.best_blur)].tally.reward, 5);
  // Per class: "dog" is in both images.
  const auto& per_class = r.trials[static_cast<size_t>(r.best_blur)].tally.per_class;
  ASSERT_EQ(per_class.size(), 4u);
  EXPECT_EQ(per_class[1].name, "dog");
  EXPECT_EQ(per_class[1].images, 2);
  EXPECT_EQ(per_class[1].wins, 2);
}

TEST_F(TuneSearch, BestIndexPrefersTheEarliestOfEqualRewards) {
  std::vector<TrialRecord> t(4);
  for (auto& x : t) x.stage = kStageLayerHead;
  t[0].tally.reward = 2;
  t[1].tally.reward = 5;
  t[2].tally.reward = 5;
  t[3].stage = kStageBlur;
  t[3].tally.reward = 9;
  EXPECT_EQ(best_index(t, kStageLayerHead), 1);
  EXPECT_EQ(best_index(t, kStageBlur), 3);
  EXPECT_EQ(best_index({}, kStageBlur), -1);
}

TEST_F(TuneSearch, ExhaustiveModeMatchesEveryCandidateWithOnePassPerImage) {
  StubEvaluator ev;
  const SearchSpace space = paper_space("blip", 3, 4);
  TuneOptions opt;
  opt.exhaustive = true;
  opt.blur_stage = false;
  Journal journal(journal_path(), run_, false);
  const TuneResult r = run_tuning(ev, space, opt, journal);
  EXPECT_EQ(ev.grid_calls.load(), 2);
  EXPECT_EQ(ev.wins_calls.load(), 0);
  ASSERT_EQ(r.trials.size(), space.stage1_size());
  const auto candidates = space.stage1_candidates();
  int64_t best = -1;
  for (size_t c = 0; c < candidates.size(); ++c) {
    EXPECT_EQ(r.trials[c].tally.reward, ev.expected_reward(candidates[c]));
    best = std::max(best, r.trials[c].tally.reward);
  }
  EXPECT_EQ(r.trials[static_cast<size_t>(r.best_stage1)].tally.reward, best);
  EXPECT_EQ(r.best_blur, -1);
  EXPECT_EQ(r.grid_images, 2u);
  // The plot's cells: the best reward over thresholds per layer x head.
  const auto cells = layer_head_rewards(space, r);
  ASSERT_EQ(cells.size(), 3u);
  for (int l = 1; l <= 3; ++l)
    for (int h = 1; h <= 4; ++h) {
      int64_t want = 0;
      for (double t : space.thresholds) want = std::max(want, ev.expected_reward({l, h, t, 0.0}));
      EXPECT_EQ(cells[static_cast<size_t>(l - 1)][static_cast<size_t>(h - 1)], want) << l << "," << h;
    }
  const Image plot = reward_plot(space, r);
  EXPECT_GT(plot.width, 0);
  EXPECT_EQ(plot.rgb.size(), static_cast<size_t>(plot.width) * plot.height * 3);
  // The exhaustive mode only scores GradCAM masks.
  opt.masks = MaskSource::Dropout;
  EXPECT_THROW(run_tuning(ev, space, opt, journal), Error);
}

TEST_F(TuneSearch, ResumesFromTheJournalAndExtendsTheBudget) {
  const SearchSpace space = paper_space("blip", 3, 4);
  TuneOptions opt;
  opt.seed = 9;
  opt.trials = 4;
  opt.blur_trials = 2;
  TuneResult first;
  {
    StubEvaluator ev;
    Journal journal(journal_path(), run_, false);
    first = run_tuning(ev, space, opt, journal);
    EXPECT_EQ(ev.wins_calls.load(), 6 * 2);
  }
  // The same run again: nothing recomputed, the same answers.
  {
    StubEvaluator ev;
    Journal journal(journal_path(), run_, false);
    const TuneResult again = run_tuning(ev, space, opt, journal);
    EXPECT_EQ(ev.wins_calls.load(), 0);
    ASSERT_EQ(again.trials.size(), first.trials.size());
    for (size_t n = 0; n < again.trials.size(); ++n) {
      EXPECT_TRUE(again.trials[n].resumed);
      EXPECT_EQ(again.trials[n].tally.reward, first.trials[n].tally.reward);
      EXPECT_EQ(again.trials[n].tally.per_class.size(), first.trials[n].tally.per_class.size());
    }
    EXPECT_EQ(again.best_stage1, first.best_stage1);
  }
  // A larger budget: only the new stage-1 trials run (the best may change, and with it the blur
  // stage's setting, whose trials then run anew).
  {
    StubEvaluator ev;
    Journal journal(journal_path(), run_, false);
    opt.trials = 7;
    const TuneResult more = run_tuning(ev, space, opt, journal);
    int computed_stage1 = 0;
    for (size_t n = 0; n < 7; ++n) computed_stage1 += more.trials[n].resumed ? 0 : 1;
    EXPECT_EQ(computed_stage1, 3);
  }
  // A journal of another run is refused, unless restarted.
  EXPECT_THROW(Journal(journal_path(), {{"model", "other"}}, false), Error);
  Journal fresh(journal_path(), {{"model", "other"}}, true);
  EXPECT_EQ(fresh.find(kStageLayerHead, MaskSource::GradCam, first.trials[0].setting), nullptr);
}

TEST_F(TuneSearch, TornLastLineIsDroppedAndOtherDamageIsAnError) {
  {
    Journal journal(journal_path(), run_, false);
    TrialRecord t;
    t.stage = kStageLayerHead;
    t.setting = {2, 3, 0.15, 0.05};
    t.tally.add({"cat"}, {true});
    journal.append(t);
  }
  { std::ofstream(journal_path(), std::ios::app) << "{\"kind\": \"trial\", \"sta"; }
  {
    Journal journal(journal_path(), run_, false);
    const TrialRecord* t = journal.find(kStageLayerHead, MaskSource::GradCam, {2, 3, 0.15, 0.05});
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->tally.reward, 1);
    EXPECT_EQ(t->tally.per_class.at(0).name, "cat");
  }
  const std::string text = io::read_text_file(journal_path());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find("\"sta\n"), std::string::npos);
  { std::ofstream(journal_path(), std::ios::app) << "not json\n{\"kind\": \"trial\"}\n"; }
  EXPECT_THROW(Journal(journal_path(), run_, false), Error);
}

// A kill can cut any append: a whole last line without its newline is kept (and given one), and
// a journal cut inside its run line starts afresh instead of being refused.
TEST_F(TuneSearch, JournalCutAnywhereResumesWithoutLoss) {
  TrialRecord t;
  t.stage = kStageLayerHead;
  t.setting = {2, 3, 0.15, 0.05};
  t.tally.add({"cat"}, {true});
  { Journal(journal_path(), run_, false).append(t); }
  std::string text = io::read_text_file(journal_path());
  text.pop_back();  // the newline of the trial line
  { std::ofstream(journal_path(), std::ios::trunc) << text; }
  {
    Journal journal(journal_path(), run_, false);
    ASSERT_NE(journal.find(kStageLayerHead, MaskSource::GradCam, t.setting), nullptr);
    t.setting.layer = 1;
    journal.append(t);
  }
  EXPECT_EQ(io::read_text_file(journal_path()), text + "\n" + to_json(t).dump() + "\n");
  { std::ofstream(journal_path(), std::ios::trunc) << text.substr(0, 10); }
  {
    Journal journal(journal_path(), run_, false);
    EXPECT_EQ(journal.find(kStageLayerHead, MaskSource::GradCam, t.setting), nullptr);
  }
  const std::string fresh = io::read_text_file(journal_path());
  EXPECT_EQ(fresh.substr(0, 14), "{\"kind\":\"run\",");
  EXPECT_EQ(std::count(fresh.begin(), fresh.end(), '\n'), 1);
}

TEST_F(TuneSearch, ImagesSideBySideGiveTheSameTrialsAndJournal) {
  const SearchSpace space = paper_space("blip", 3, 4);
  auto run = [&](bool exhaustive, int workers, StubEvaluator& ev) {
    TuneOptions opt;
    opt.seed = 5;
    opt.trials = 6;
    opt.exhaustive = exhaustive;
    opt.workers = workers;
    std::filesystem::remove(journal_path());
    Journal journal(journal_path(), run_, false);
    return run_tuning(ev, space, opt, journal);
  };
  for (bool exhaustive : {false, true}) {
    StubEvaluator one, three;
    for (StubEvaluator* ev : {&one, &three})
      ev->images = {{"a.png", {"cat", "dog"}}, {"b.png", {"dog", "sky", "sea"}}, {"c.png", {"sea"}},
                    {"d.png", {"cat", "sky"}}, {"e.png", {"dog"}}, {"f.png", {"sky", "cat", "sea"}},
                    {"g.png", {"dog", "cat"}}};
    const TuneResult a = run(exhaustive, 1, one);
    const TuneResult b = run(exhaustive, 3, three);
    ASSERT_EQ(a.trials.size(), b.trials.size());
    for (size_t n = 0; n < a.trials.size(); ++n) {
      EXPECT_EQ(b.trials[n].tally.reward, a.trials[n].tally.reward) << n;
      ASSERT_EQ(b.trials[n].tally.per_class.size(), a.trials[n].tally.per_class.size());
      for (size_t k = 0; k < a.trials[n].tally.per_class.size(); ++k) {
        EXPECT_EQ(b.trials[n].tally.per_class[k].name, a.trials[n].tally.per_class[k].name);
        EXPECT_EQ(b.trials[n].tally.per_class[k].wins, a.trials[n].tally.per_class[k].wins);
      }
    }
    EXPECT_EQ(b.best_stage1, a.best_stage1);
    EXPECT_EQ(b.best_blur, a.best_blur);
    EXPECT_EQ(one.threads.size(), 1u);
    EXPECT_EQ(three.threads.size(), 3u) << (exhaustive ? "exhaustive" : "random");
    if (exhaustive) {
      // Every image reached the journal: a rerun computes nothing.
      StubEvaluator again;
      again.images = three.images;
      Journal journal(journal_path(), run_, false);
      TuneOptions opt;
      opt.exhaustive = true;
      opt.workers = 3;
      const TuneResult c = run_tuning(again, space, opt, journal);
      EXPECT_EQ(again.grid_calls.load(), 0);
      EXPECT_EQ(c.trials[static_cast<size_t>(c.best_stage1)].tally.reward,
                a.trials[static_cast<size_t>(a.best_stage1)].tally.reward);
    }
  }
}
