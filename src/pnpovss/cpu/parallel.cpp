#include "pnpovss/cpu/parallel.h"

#include <dlfcn.h>

#include <algorithm>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "pnpovss/error.h"

namespace pnpovss::cpu {

namespace {

thread_local int budget = 0;  // 0: no ThreadBudget on this thread

// Asked once: each std::thread::hardware_concurrency() reads a file under /sys (5 us), and the
// kernels ask per layer.
// A thread started here does its share of the work itself: the libtorch operations it runs
// must not start OpenMP teams of their own. OpenMP gives a new thread the default team size
// (every core), and libtorch's GELU, for one, then ran each range on a fresh team: 11.5 ms
// instead of 0.6 for half of a 336-px MLP activation. Looked up at run time, like the BLAS's
// entry points (openblas_symbol.h): it is whichever OpenMP runtime libtorch loaded, if any.
void one_openmp_thread_here() {
  using SetThreads = void (*)(int);
  static const auto set_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (set_threads != nullptr) set_threads(1);
}

int hardware_threads() {
  static const int count = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return count;
}

}  // namespace

ThreadBudget::ThreadBudget(int threads) : previous_(budget) { budget = std::max(1, threads); }

ThreadBudget::~ThreadBudget() { budget = previous_; }

int resolve_threads(int threads) {
  if (threads < 0) throw Error("thread count must be >= 0 (0 = all hardware threads), got " + std::to_string(threads));
  if (threads > 0) return threads;
  return budget > 0 ? budget : hardware_threads();
}

void parallel_ranges(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn,
                     int64_t min_per_thread) {
  if (n <= 0) return;
  const int64_t useful = (n + std::max<int64_t>(1, min_per_thread) - 1) / std::max<int64_t>(1, min_per_thread);
  const int count = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, useful)));
  if (count == 1) {
    fn(0, n);
    return;
  }
  auto begin_of = [&](int k) { return n * k / count; };
  std::vector<std::thread> workers;
  std::vector<std::exception_ptr> errors(count);
  workers.reserve(count - 1);
  int started = 1;
  for (; started < count; ++started) {
    auto task = [&, started] {
      try {
        one_openmp_thread_here();
        fn(begin_of(started), begin_of(started + 1));
      } catch (...) {
        errors[started] = std::current_exception();
      }
    };
    try {
      workers.emplace_back(task);
    } catch (...) {
      break;  // no more threads available: the calling thread does the rest
    }
  }
  try {
    fn(begin_of(0), begin_of(1));
    for (int k = started; k < count; ++k) fn(begin_of(k), begin_of(k + 1));
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& w : workers) w.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace pnpovss::cpu
