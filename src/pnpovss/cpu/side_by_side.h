// Independent pieces of work (images) side by side on the CPU, one per core. On a CPU with a
// few cores this beats spreading every matrix product over all cores: nothing waits for the
// slowest thread between two products, and the element-wise work between products, which runs
// on one thread inside a piece, runs on every core at once. Each piece takes longer, so this
// serves many pieces, not one.
#pragma once

#include <cstddef>
#include <functional>

namespace pnpovss::cpu {

// Calls fn(begin, end) on contiguous runs covering [0, n). With `workers` > 1, lanes =
// min(workers, n) runs of n / lanes items go side by side, one per thread (the calling thread
// takes the first), each with its share of the cores for the project's kernels (ThreadBudget)
// while the BLAS runs single-threaded; the n % lanes items left over then run on the calling
// thread with every core and the BLAS's threads restored. With one worker, fn(0, n) is the
// only call. The first exception of any run is rethrown after every run has stopped; `fn`
// must be safe to call from several threads at once.
void run_side_by_side(size_t n, int workers, const std::function<void(size_t begin, size_t end)>& fn);

// The runs that go side by side for n items: min(workers, n) (at most 1 means none do).
size_t side_by_side_lanes(size_t n, int workers);

}  // namespace pnpovss::cpu
