// Thread helpers shared by the Dense CRF, its lattice, the post-processing filters and the CPU
// attention kernel: plain std::threads over contiguous ranges, independent of libtorch's pool.
#pragma once

#include <cstdint>
#include <functional>

namespace pnpovss {

// 0 means std::thread::hardware_concurrency(); negative values are an error.
int resolve_threads(int threads);

// Calls fn(begin, end) on up to `threads` disjoint contiguous ranges covering [0, n), each on
// its own thread (the first on the calling thread); ranges hold at least `min_per_thread`
// items. Exceptions thrown by fn are rethrown here.
void parallel_ranges(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn,
                     int64_t min_per_thread = 1024);

}  // namespace pnpovss
