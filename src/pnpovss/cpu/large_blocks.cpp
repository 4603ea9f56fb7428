#include "pnpovss/cpu/large_blocks.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <list>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

namespace pnpovss::cpu {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// Maps `bytes` (a multiple of kHugePage) on a 2 MiB boundary: maps one unit more and unmaps the
// unaligned head and the tail.
void* map_aligned(size_t bytes) {
  const size_t span = bytes + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) munmap(raw, aligned - start);
  const size_t tail = start + span - (aligned + bytes);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + bytes), tail);
  void* block = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  madvise(block, bytes, MADV_HUGEPAGE);  // advice only: without huge pages the block still works
#endif
  return block;
}

size_t budget_from_environment() {
  if (const char* text = std::getenv("PNPOVSS_BUFFER_CACHE_MIB")) {
    char* end = nullptr;
    const unsigned long long mib = std::strtoull(text, &end, 10);
    if (end != text && *end == '\0') return static_cast<size_t>(mib) << 20;
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const size_t eighth = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) / 8 : 0;
  const size_t gib = size_t{1} << 30;
  return eighth > 0 && eighth < gib ? eighth : gib;
}

struct Kept {
  void* block;
  size_t bytes;
  uint64_t kept_at;  // the number of requests served before it was given back
};

// A kept block that this many requests have passed by unused is stale: a transformer asks for
// each of its sizes again within one layer (11 requests at 768 px).
constexpr uint64_t kStaleAfter = 64;

void unmap_all(const std::list<Kept>& blocks) {
  for (const Kept& k : blocks) munmap(k.block, k.bytes);
}

// The kept blocks, least recently given back first.
class Keeper {
 public:
  void* take(size_t bytes) {
    std::list<Kept> leaving;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++requests_;
      for (auto it = kept_.rbegin(); it != kept_.rend(); ++it)
        if (it->bytes == bytes) {
          void* block = it->block;
          kept_bytes_ -= bytes;
          kept_.erase(std::next(it).base());
          in_use_.emplace(block, bytes);
          ++reused_;
          return block;
        }
      // On a miss, stale blocks (kept for sizes no longer asked for: the vision tower is done,
      // say) make room for the new one, least recently given back first, so that what is
      // mapped does not grow by blocks nobody asks for again. Fresh ones stay: unmapping
      // them made a 768-px vision pass map 8 blocks a layer again.
      size_t freed = 0;
      while (freed < bytes && !kept_.empty() && requests_ - kept_.front().kept_at > kStaleAfter)
        freed += drop_least_recent(leaving);
    }
    unmap_all(leaving);
    void* block = map_aligned(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    in_use_.emplace(block, bytes);
    ++mapped_;
    return block;
  }

  bool give_back(void* block) {
    // Blocks start on 2 MiB boundaries: most other pointers are told apart without the lock.
    if (block == nullptr || reinterpret_cast<uintptr_t>(block) % kHugePage != 0) return false;
    const size_t budget = kept_blocks_budget();
    std::list<Kept> leaving;
    size_t bytes = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto used = in_use_.find(block);
      if (used == in_use_.end()) return false;
      bytes = used->second;
      in_use_.erase(used);
      if (bytes <= budget) {
        kept_.push_back({block, bytes, requests_});
        kept_bytes_ += bytes;
        block = nullptr;
      }
      while (kept_bytes_ > budget) drop_least_recent(leaving);
    }
    if (block != nullptr) munmap(block, bytes);
    unmap_all(leaving);
    return true;
  }

  void release() {
    std::list<Kept> leaving;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      leaving.swap(kept_);
      kept_bytes_ = 0;
    }
    unmap_all(leaving);
  }

  LargeBlockStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {mapped_, reused_, kept_bytes_};
  }

 private:
  // Moves the least recently kept block to `leaving` (unmapped once the lock is released);
  // returns its size. The caller holds the lock and kept_ is not empty.
  size_t drop_least_recent(std::list<Kept>& leaving) {
    const size_t bytes = kept_.front().bytes;
    kept_bytes_ -= bytes;
    leaving.splice(leaving.end(), kept_, kept_.begin());
    return bytes;
  }

  std::mutex mutex_;
  std::list<Kept> kept_;
  std::unordered_map<void*, size_t> in_use_;
  size_t kept_bytes_ = 0;
  uint64_t mapped_ = 0, reused_ = 0, requests_ = 0;
};

// Never destroyed: blocks may be given back from static destructors after main returns.
Keeper& keeper() {
  static Keeper* k = new Keeper();
  return *k;
}

}  // namespace

size_t large_block_size(size_t bytes) {
  return bytes == 0 ? kHugePage : (bytes + kHugePage - 1) / kHugePage * kHugePage;
}

size_t kept_blocks_budget() {
  static const size_t budget = budget_from_environment();
  return budget;
}

void* take_large_block(size_t bytes) { return keeper().take(large_block_size(bytes)); }

bool give_back_large_block(void* block) { return keeper().give_back(block); }

void release_kept_blocks() { keeper().release(); }

void* map_zeroed_block(size_t bytes) { return map_aligned(large_block_size(bytes)); }

void unmap_zeroed_block(void* block, size_t bytes) {
  if (block != nullptr) munmap(block, large_block_size(bytes));
}

LargeBlockStats large_block_stats() { return keeper().stats(); }

}  // namespace pnpovss::cpu
