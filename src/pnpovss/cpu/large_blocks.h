// Large memory blocks that are cheap to touch the first time, and reused instead of returned.
//
// A fresh block from the system costs one page fault per 4 KiB page on first touch. On the
// virtual machines measured that is about 12 us a fault: a 38 MB tensor (the MLP activations of
// a 768-px vision layer) took 116 ms to allocate and fill, where filling it again took 1.2 ms,
// and libtorch allocates such tensors afresh in every layer (glibc maps blocks over 32 MB with
// mmap and unmaps them on free, whatever its settings). Two remedies, both here:
//   - blocks are mapped on 2 MiB boundaries and marked for transparent huge pages, so a fault
//     brings in 2 MiB instead of 4 KiB (the same 38 MB: 3.4 ms) where the kernel allows it
//     (`madvise` or `always` in /sys/kernel/mm/transparent_hugepage/enabled);
//   - a freed block is kept, up to a budget, for the next request of the same size: a
//     transformer asks for the same sizes layer after layer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pnpovss::cpu {

// The size a request of `bytes` is served with: whole 2 MiB units.
size_t large_block_size(size_t bytes);

// Requests from this size on are served by the functions below; smaller ones are better left
// to malloc, which keeps them in its heap.
constexpr size_t kLargeBlockThreshold = size_t{4} << 20;

// A block of large_block_size(bytes) bytes aligned to 2 MiB: a kept block of that size if there
// is one, else a new mapping, for which stale kept blocks (given back more than 64 requests ago)
// of at least that many bytes, least recently given back first, are unmapped first. Throws
// std::bad_alloc when the system has no memory left.
void* take_large_block(size_t bytes);

// Gives back a block from take_large_block: kept for reuse while the blocks kept stay within
// the budget (the least recently given back leave first), unmapped otherwise. Returns false,
// and does nothing, when `block` is not a block in use from take_large_block.
bool give_back_large_block(void* block);

// Unmaps every kept block (for a caller about to need memory for something else).
void release_kept_blocks();

// The budget for kept blocks, in bytes: PNPOVSS_BUFFER_CACHE_MIB when set (0 keeps none),
// else the lesser of 1 GiB and an eighth of the physical memory. Read once.
size_t kept_blocks_budget();

// A block of large_block_size(bytes) bytes of zeros, mapped for its caller alone (never one
// kept by the functions above), aligned to 2 MiB and marked for huge pages: for large buffers
// that are used once and must start at zero, such as the Dense CRF's, where clearing freshly
// faulted 4 KiB pages took a third of a 171-label CRF. Throws std::bad_alloc when the system
// has no memory left. Give it back with unmap_zeroed_block(block, bytes) (the same bytes).
void* map_zeroed_block(size_t bytes);
void unmap_zeroed_block(void* block, size_t bytes);

struct LargeBlockStats {
  uint64_t mapped = 0;  // blocks mapped from the system
  uint64_t reused = 0;  // requests served with a kept block
  size_t kept_bytes = 0;
};
LargeBlockStats large_block_stats();

}  // namespace pnpovss::cpu
