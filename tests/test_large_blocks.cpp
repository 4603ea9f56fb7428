// cpu/large_blocks.h: blocks on 2 MiB boundaries, reused by size, and told apart from other
// pointers; cpu/zeroed_array.h: arrays that start as zeros without being written.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "pnpovss/cpu/large_blocks.h"
#include "pnpovss/cpu/zeroed_array.h"

using namespace pnpovss::cpu;

namespace {

constexpr size_t kMiB = size_t{1} << 20;

bool on_2mib_boundary(const void* p) { return reinterpret_cast<uintptr_t>(p) % (2 * kMiB) == 0; }

}  // namespace

TEST(LargeBlocks, SizesAreWhole2MiBUnits) {
  EXPECT_EQ(large_block_size(1), 2 * kMiB);
  EXPECT_EQ(large_block_size(2 * kMiB), 2 * kMiB);
  EXPECT_EQ(large_block_size(2 * kMiB + 1), 4 * kMiB);
  EXPECT_EQ(large_block_size(37'765'120), 38 * kMiB);
}

TEST(LargeBlocks, AlignedWritableAndReusedBySize) {
  release_kept_blocks();
  const size_t bytes = 9 * kMiB + 123;
  void* a = take_large_block(bytes);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(on_2mib_boundary(a));
  std::memset(a, 0x5a, bytes);  // the whole request is usable (ASan would see an overrun)
  const LargeBlockStats before = large_block_stats();
  ASSERT_TRUE(give_back_large_block(a));
  EXPECT_EQ(large_block_stats().kept_bytes, before.kept_bytes + large_block_size(bytes));

  // The same size gets the kept block back; another size gets a new one.
  void* again = take_large_block(bytes);
  EXPECT_EQ(again, a);
  EXPECT_EQ(large_block_stats().reused, before.reused + 1);
  void* other = take_large_block(5 * kMiB);
  EXPECT_NE(other, a);
  EXPECT_EQ(large_block_stats().mapped, before.mapped + 1);
  EXPECT_TRUE(give_back_large_block(again));
  EXPECT_TRUE(give_back_large_block(other));
  release_kept_blocks();
}

TEST(LargeBlocks, AMissUnmapsStaleKeptBlocksLeastRecentFirst) {
  release_kept_blocks();
  void* older = take_large_block(6 * kMiB);
  void* newer = take_large_block(2 * kMiB);
  ASSERT_TRUE(give_back_large_block(older));
  ASSERT_TRUE(give_back_large_block(newer));
  EXPECT_EQ(large_block_stats().kept_bytes, 8 * kMiB);
  // A miss while both are fresh leaves them kept.
  void* fresh = take_large_block(4 * kMiB);
  EXPECT_EQ(large_block_stats().kept_bytes, 8 * kMiB);
  ASSERT_TRUE(give_back_large_block(fresh));
  // After 65 requests of a size in steady use, the three are stale: a miss of 7 MiB unmaps the
  // least recently given back until 7 MiB are free (6 + 2), and keeps the 4 MiB one and the
  // block in use.
  for (int i = 0; i < 65; ++i) ASSERT_TRUE(give_back_large_block(take_large_block(10 * kMiB)));
  EXPECT_EQ(large_block_stats().kept_bytes, 22 * kMiB);
  void* miss = take_large_block(7 * kMiB);
  EXPECT_EQ(large_block_stats().kept_bytes, 14 * kMiB);
  EXPECT_EQ(take_large_block(4 * kMiB), fresh);
  EXPECT_TRUE(give_back_large_block(miss));
  EXPECT_TRUE(give_back_large_block(fresh));
  release_kept_blocks();
}

TEST(LargeBlocks, RefusesPointersItDidNotHandOut) {
  std::vector<char> heap(64);
  EXPECT_FALSE(give_back_large_block(nullptr));
  EXPECT_FALSE(give_back_large_block(heap.data()));
  void* aligned = std::aligned_alloc(2 * kMiB, 2 * kMiB);
  ASSERT_NE(aligned, nullptr);
  EXPECT_FALSE(give_back_large_block(aligned));  // on a boundary, but not one of ours
  std::free(aligned);

  void* block = take_large_block(kLargeBlockThreshold);
  EXPECT_TRUE(give_back_large_block(block));
  EXPECT_FALSE(give_back_large_block(block));  // given back twice: the second is refused
  release_kept_blocks();
}

TEST(LargeBlocks, KeptBlocksStayWithinTheBudget) {
  release_kept_blocks();
  const size_t budget = kept_blocks_budget();
  ASSERT_GT(budget, 0u) << "PNPOVSS_BUFFER_CACHE_MIB=0 in the environment";
  // More blocks than the budget holds, all given back: what is kept stays within it.
  const size_t bytes = 64 * kMiB;
  std::vector<void*> blocks;
  for (size_t held = 0; held <= budget + bytes; held += bytes) blocks.push_back(take_large_block(bytes));
  for (void* b : blocks) EXPECT_TRUE(give_back_large_block(b));
  EXPECT_LE(large_block_stats().kept_bytes, budget);
  EXPECT_GT(large_block_stats().kept_bytes, 0u);
  release_kept_blocks();
}

// Small arrays come from the heap, large ones are mappings of their own: both start as zeros,
// large ones on a 2 MiB boundary and never from (or into) the kept blocks.
TEST(ZeroedArray, StartsAsZerosAtEverySize) {
  const pnpovss::cpu::LargeBlockStats before = pnpovss::cpu::large_block_stats();
  for (size_t count : {size_t{1}, size_t{1000}, pnpovss::cpu::kLargeBlockThreshold / sizeof(float) + 3}) {
    pnpovss::cpu::ZeroedArray<float> a(count);
    ASSERT_EQ(a.size(), count);
    size_t nonzero = 0;
    for (size_t i = 0; i < count; ++i) nonzero += a[i] != 0.0f;
    EXPECT_EQ(nonzero, 0u) << count << " floats";
    a[count - 1] = 1.0f;  // writable to the end
    if (count * sizeof(float) >= pnpovss::cpu::kLargeBlockThreshold) {
      EXPECT_TRUE(on_2mib_boundary(a.data()));
    }
  }
  const pnpovss::cpu::LargeBlockStats after = pnpovss::cpu::large_block_stats();
  EXPECT_EQ(after.mapped, before.mapped);
  EXPECT_EQ(after.kept_bytes, before.kept_bytes);
}

TEST(ZeroedArray, MovesOwnership) {
  pnpovss::cpu::ZeroedArray<int32_t> a(pnpovss::cpu::kLargeBlockThreshold);  // 16 MiB: mapped
  a[5] = 42;
  const int32_t* data = a.data();
  pnpovss::cpu::ZeroedArray<int32_t> b(std::move(a));
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.data(), data);
  EXPECT_EQ(b[5], 42);
  pnpovss::cpu::ZeroedArray<int32_t> c(3);
  c = std::move(b);  // c's heap block is freed, b's mapping moves
  EXPECT_EQ(c.data(), data);
  EXPECT_EQ(c.size(), pnpovss::cpu::kLargeBlockThreshold);
  EXPECT_TRUE(pnpovss::cpu::ZeroedArray<float>().size() == 0 && pnpovss::cpu::ZeroedArray<float>().data() == nullptr);
}
