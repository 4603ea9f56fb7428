// cpu/large_blocks.h: blocks on 2 MiB boundaries, reused by size, and told apart from other
// pointers.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "pnpovss/cpu/large_blocks.h"

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
  EXPECT_EQ(large_block_stats().kept_bytes, 0u);
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
