#include "pnpovss/cpu/side_by_side.h"

#include <algorithm>
#include <string>

#include "pnpovss/cpu/blas_threads.h"
#include "pnpovss/cpu/parallel.h"
#include "pnpovss/error.h"

namespace pnpovss::cpu {

size_t side_by_side_lanes(size_t n, int workers) { return std::min(n, static_cast<size_t>(std::max(workers, 1))); }

void run_side_by_side(size_t n, int workers, const std::function<void(size_t begin, size_t end)>& fn) {
  if (workers < 1) throw Error("the number of workers must be at least 1, got " + std::to_string(workers));
  const size_t lanes = side_by_side_lanes(n, workers);
  if (lanes <= 1) {
    if (n > 0) fn(0, n);
    return;
  }
  const size_t each = n / lanes;
  {
    const cpu::BlasThreadsScope one_blas_thread(1);
    const int threads_each = std::max(1, resolve_threads(0) / static_cast<int>(lanes));
    parallel_ranges(
        static_cast<int64_t>(lanes), static_cast<int>(lanes),
        [&](int64_t first, int64_t last) {
          for (auto lane = static_cast<size_t>(first); lane < static_cast<size_t>(last); ++lane) {
            const ThreadBudget budget(threads_each);
            fn(lane * each, (lane + 1) * each);
          }
        },
        1);
  }
  if (lanes * each < n) fn(lanes * each, n);
}

}  // namespace pnpovss::cpu
