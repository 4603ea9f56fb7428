// The row-parallel element-wise steps of the CPU vision layers give libtorch's own results bit
// for bit, with any number of threads and row counts that do not divide evenly.
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <torch/torch.h>

#include <vector>

#include "pnpovss/cpu/parallel.h"
#include "pnpovss/runtime/parallel_rows.h"

using namespace pnpovss;
using namespace pnpovss::runtime;

namespace {

void expect_same_bits(const torch::Tensor& got, const torch::Tensor& want, const char* what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  EXPECT_TRUE(torch::equal(got, want)) << what << ": max difference " << (got - want).abs().max().item<double>();
}

}  // namespace

TEST(ParallelRows, SameBitsAsLibtorchWithAnyThreadCount) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  for (int threads : {2, 3, 5})
    for (int64_t tokens : {1, 17, 442}) {
      const cpu::ThreadBudget budget(threads);
      const torch::Tensor x = torch::randn({2, tokens, 64});
      const torch::Tensor y = torch::randn({2, tokens, 64});
      ASSERT_TRUE(use_parallel_rows(x));
      const torch::Tensor w = torch::randn({96, 64}) * 0.1, b = torch::randn({96});
      const torch::Tensor g = torch::randn({64}), beta = torch::randn({64});
      expect_same_bits(rows_linear(x, w, b), torch::linear(x, w, b), "linear");
      expect_same_bits(rows_layer_norm(x, g, beta, 1e-5), torch::layer_norm(x, {64}, g, beta, 1e-5), "layer norm");
      expect_same_bits(rows_gelu(x * 3), torch::gelu(x * 3), "gelu");
      expect_same_bits(rows_add(x, y), x + y, "add");
    }
}

TEST(ParallelRows, OnlyForInferenceOnContiguousFp32WithThreadsToSpare) {
  const torch::Tensor x = torch::randn({4, 8});
  {
    const cpu::ThreadBudget budget(2);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(use_parallel_rows(x));
    EXPECT_FALSE(use_parallel_rows(x.t()));
    EXPECT_FALSE(use_parallel_rows(x.to(torch::kBFloat16)));
  }
  {
    const cpu::ThreadBudget budget(2);
    torch::AutoGradMode grad(true);
    EXPECT_FALSE(use_parallel_rows(x));  // autograd cannot follow writes into buffers
    // ... so the functions are libtorch's own there, and gradients flow through them.
    const torch::Tensor leaf = x.clone().requires_grad_(true);
    const torch::Tensor w = torch::randn({3, 8}), b = torch::randn({3});
    const torch::Tensor normed = rows_layer_norm(leaf, {}, {}, 1e-5);
    const torch::Tensor y = rows_add(rows_gelu(rows_linear(normed, w, b)), torch::ones({4, 3}));
    ASSERT_TRUE(y.requires_grad());
    y.sum().backward();
    EXPECT_TRUE(leaf.grad().defined());
  }
  {
    const cpu::ThreadBudget budget(1);
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(use_parallel_rows(x));  // one worker of several: nothing to spread
  }
}

// The threads parallel_ranges starts do their share alone: an OpenMP region inside one (as
// libtorch's kernels open) gets one thread, not a team of every core.
TEST(ParallelRows, WorkerThreadsOpenOneThreadOpenMPRegions) {
  using MaxThreads = int (*)();
  const auto omp_max_threads = reinterpret_cast<MaxThreads>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  if (omp_max_threads == nullptr) GTEST_SKIP() << "libtorch was built without OpenMP";
  std::vector<int> seen(2, 0);
  cpu::parallel_ranges(
      2, 2, [&](int64_t begin, int64_t) { seen[static_cast<size_t>(begin)] = omp_max_threads(); }, 1);
  EXPECT_EQ(seen[1], 1) << "the started thread";
}
