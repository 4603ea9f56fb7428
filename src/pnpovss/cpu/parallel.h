// Thread helpers shared by the Dense CRF, its lattice, the post-processing filters and the CPU
// attention kernel: plain std::threads over contiguous ranges, independent of libtorch's pool.
#pragma once

#include <cstdint>
#include <functional>

namespace pnpovss::cpu {

// 0 means all the threads this thread may use: std::thread::hardware_concurrency(), or the
// innermost ThreadBudget of the calling thread. Negative values are an error.
int resolve_threads(int threads);

// Within its lifetime, resolve_threads(0) on the constructing thread gives `threads` (at least
// 1): how several images segmented side by side share the cores without each kernel starting
// one thread per core. Scopes nest; each restores the previous budget.
class ThreadBudget {
 public:
  explicit ThreadBudget(int threads);
  ~ThreadBudget();
  ThreadBudget(const ThreadBudget&) = delete;
  ThreadBudget& operator=(const ThreadBudget&) = delete;

 private:
  int previous_;
};

// Calls fn(begin, end) on up to `threads` disjoint contiguous ranges covering [0, n), each on
// its own thread (the first on the calling thread); ranges hold at least `min_per_thread`
// items. Exceptions thrown by fn are rethrown here.
void parallel_ranges(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn,
                     int64_t min_per_thread = 1024);

}  // namespace pnpovss::cpu
