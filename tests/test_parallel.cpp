// Thread helpers: how many threads "0" means, with and without a ThreadBudget, and that
// parallel_ranges covers its range exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/parallel.h"

using namespace pnpovss;

namespace {

int hardware_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

}  // namespace

TEST(ResolveThreads, ZeroMeansEveryHardwareThreadAndNegativeIsAnError) {
  EXPECT_EQ(resolve_threads(0), hardware_threads());
  EXPECT_EQ(resolve_threads(3), 3);
  EXPECT_THROW(resolve_threads(-1), Error);
}

TEST(ThreadBudget, LimitsZeroOnItsThreadAndNestsAndRestores) {
  {
    ThreadBudget outer(5);
    EXPECT_EQ(resolve_threads(0), 5);
    EXPECT_EQ(resolve_threads(2), 2);  // an explicit count is kept
    {
      ThreadBudget inner(0);  // at least one thread
      EXPECT_EQ(resolve_threads(0), 1);
    }
    EXPECT_EQ(resolve_threads(0), 5);
    int other = -1;
    std::thread([&] { other = resolve_threads(0); }).join();
    EXPECT_EQ(other, hardware_threads());  // other threads keep their own budget
  }
  EXPECT_EQ(resolve_threads(0), hardware_threads());
}

TEST(ParallelRanges, CoversTheRangeOnceWithEveryThreadCount) {
  for (int threads : {1, 2, 3, 7})
    for (int64_t n : {1, 5, 1000, 4097}) {
      std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
      parallel_ranges(
          n, threads,
          [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) ++seen[static_cast<size_t>(i)];
          },
          1);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[static_cast<size_t>(i)].load(), 1) << threads << " " << n;
    }
}

TEST(ParallelRanges, RethrowsAWorkersError) {
  EXPECT_THROW(parallel_ranges(
                   10, 2,
                   [](int64_t begin, int64_t) {
                     if (begin > 0) throw Error("worker failed");
                   },
                   1),
               Error);
}
