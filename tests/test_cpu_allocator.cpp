// runtime/cpu_allocator.h: once installed, large CPU tensors live in reused huge-page blocks,
// small ones with libtorch's allocator, and libtorch's raw allocation interface (which its
// element-wise kernels use for scratch space) works for both.
#include <gtest/gtest.h>

#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include <cstdint>

#include "pnpovss/cpu/large_blocks.h"
#include "pnpovss/runtime/cpu_allocator.h"

using namespace pnpovss;

namespace {

bool on_2mib_boundary(const torch::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % (2 << 20) == 0; }

}  // namespace

TEST(CpuAllocator, LargeTensorsReuseTheBlockOfAFreedOne) {
  runtime::install_cpu_allocator();
  runtime::install_cpu_allocator();  // a second call changes nothing
  ASSERT_TRUE(runtime::cpu_allocator_installed()) << "PNPOVSS_CPU_ALLOCATOR=libtorch in the environment?";
  cpu::release_kept_blocks();
  const cpu::LargeBlockStats before = cpu::large_block_stats();
  void* first = nullptr;
  {
    const torch::Tensor big = torch::full({2305, 4096}, 2.0f);
    EXPECT_TRUE(on_2mib_boundary(big));
    first = big.data_ptr();
  }
  const torch::Tensor again = torch::empty({2305, 4096});
  EXPECT_EQ(again.data_ptr(), first);
  EXPECT_EQ(cpu::large_block_stats().mapped, before.mapped + 1);
  EXPECT_EQ(cpu::large_block_stats().reused, before.reused + 1);

  const torch::Tensor small = torch::ones({64, 64});  // 16 KiB: libtorch's own allocator
  EXPECT_FALSE(cpu::give_back_large_block(small.data_ptr()));
  EXPECT_EQ(small.sum().item<float>(), 4096.0f);
}

TEST(CpuAllocator, ResultsAndRawScratchSpaceAreUnchanged) {
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({2305, 1024});  // allocated before: libtorch's allocator
  const torch::Tensor w = torch::randn({4096, 1024}) * 0.03;
  const torch::Tensor want_gelu = torch::gelu(torch::mm(x, w.t()));
  runtime::install_cpu_allocator();
  ASSERT_TRUE(runtime::cpu_allocator_installed());
  // GELU over a large tensor takes scratch space through the raw interface (raw_allocate and
  // raw_deallocate with the allocator's raw deleter), which must accept both kinds of block.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(torch::gelu(torch::mm(x, w.t())), want_gelu));
  c10::Allocator* allocator = c10::GetCPUAllocator();
  for (size_t bytes : {size_t{256}, size_t{64} << 20}) {
    void* p = allocator->raw_allocate(bytes);
    ASSERT_NE(p, nullptr);
    static_cast<char*>(p)[bytes - 1] = 1;
    allocator->raw_deallocate(p);
  }
}
