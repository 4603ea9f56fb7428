// Thread helpers: how many threads "0" means, with and without a ThreadBudget, that
// parallel_ranges covers its range exactly once, and how run_side_by_side shares out work.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "pnpovss/cpu/parallel.h"
#include "pnpovss/cpu/side_by_side.h"
#include "pnpovss/error.h"

using namespace pnpovss;

namespace {

int hardware_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

}  // namespace

TEST(ResolveThreads, ZeroMeansEveryHardwareThreadAndNegativeIsAnError) {
  EXPECT_EQ(cpu::resolve_threads(0), hardware_threads());
  EXPECT_EQ(cpu::resolve_threads(3), 3);
  EXPECT_THROW(cpu::resolve_threads(-1), Error);
}

TEST(ThreadBudget, LimitsZeroOnItsThreadAndNestsAndRestores) {
  {
    cpu::ThreadBudget outer(5);
    EXPECT_EQ(cpu::resolve_threads(0), 5);
    EXPECT_EQ(cpu::resolve_threads(2), 2);  // an explicit count is kept
    {
      cpu::ThreadBudget inner(0);  // at least one thread
      EXPECT_EQ(cpu::resolve_threads(0), 1);
    }
    EXPECT_EQ(cpu::resolve_threads(0), 5);
    int other = -1;
    std::thread([&] { other = cpu::resolve_threads(0); }).join();
    EXPECT_EQ(other, hardware_threads());  // other threads keep their own budget
  }
  EXPECT_EQ(cpu::resolve_threads(0), hardware_threads());
}

TEST(ParallelRanges, CoversTheRangeOnceWithEveryThreadCount) {
  for (int threads : {1, 2, 3, 7})
    for (int64_t n : {1, 5, 1000, 4097}) {
      std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
      cpu::parallel_ranges(
          n, threads,
          [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) ++seen[static_cast<size_t>(i)];
          },
          1);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[static_cast<size_t>(i)].load(), 1) << threads << " " << n;
    }
}

TEST(ParallelRanges, RethrowsAWorkersError) {
  EXPECT_THROW(cpu::parallel_ranges(
                   10, 2,
                   [](int64_t begin, int64_t) {
                     if (begin > 0) throw Error("worker failed");
                   },
                   1),
               Error);
}

TEST(RunSideBySide, ContiguousRunsOnTheirOwnThreadsThenTheRestWithEveryCore) {
  struct Run {
    size_t begin, end;
    std::thread::id thread;
    int budget;
  };
  for (int workers : {1, 2, 3, 8}) {
    std::mutex lock;
    std::vector<Run> runs;
    cpu::run_side_by_side(7, workers, [&](size_t begin, size_t end) {
      const std::lock_guard<std::mutex> hold(lock);
      runs.push_back({begin, end, std::this_thread::get_id(), cpu::resolve_threads(0)});
    });
    const size_t lanes = std::min<size_t>(7, static_cast<size_t>(workers));
    const size_t each = 7 / lanes;
    std::map<size_t, Run> by_begin;
    for (const Run& r : runs) by_begin[r.begin] = r;
    ASSERT_EQ(runs.size(), lanes + (lanes * each < 7 ? 1 : 0)) << workers;
    size_t next = 0;
    for (const auto& [begin, r] : by_begin) {  // the runs cover [0, 7) once, in order
      EXPECT_EQ(begin, next) << workers;
      next = r.end;
    }
    EXPECT_EQ(next, 7u);
    std::map<std::thread::id, int> threads;
    for (const Run& r : runs) ++threads[r.thread];
    EXPECT_EQ(threads.size(), lanes) << workers;  // the leftover reuses the calling thread
    if (lanes == 1) continue;
    for (const Run& r : runs) {
      const bool leftover = r.begin == lanes * each;
      EXPECT_EQ(r.budget, leftover ? hardware_threads() : std::max(1, hardware_threads() / static_cast<int>(lanes)));
      if (leftover) {
        EXPECT_EQ(r.thread, std::this_thread::get_id());
      }
    }
  }
}

TEST(RunSideBySide, RethrowsAfterEveryRunStoppedAndRefusesNoWorkers) {
  std::atomic<int> finished{0};
  EXPECT_THROW(cpu::run_side_by_side(4, 2,
                                [&](size_t begin, size_t) {
                                  if (begin == 0) throw Error("first run failed");
                                  std::this_thread::sleep_for(std::chrono::milliseconds(20));
                                  ++finished;
                                }),
               Error);
  EXPECT_EQ(finished.load(), 1);  // the other run went to its end
  EXPECT_THROW(cpu::run_side_by_side(4, 0, [](size_t, size_t) {}), Error);
  // What the command line reports: fewer images than workers leave some idle.
  EXPECT_EQ(cpu::side_by_side_lanes(7, 3), 3u);
  EXPECT_EQ(cpu::side_by_side_lanes(2, 4), 2u);
  EXPECT_EQ(cpu::side_by_side_lanes(5, 1), 1u);
  EXPECT_EQ(cpu::side_by_side_lanes(0, 2), 0u);
  int calls = 0;
  cpu::run_side_by_side(0, 2, [&](size_t, size_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}
