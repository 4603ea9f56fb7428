// Where one vision-transformer layer spends its time, step by step, on random inputs with a
// real tower's shapes (BLIP ITM large: width 1024, 16 heads, MLP 4096, 24 layers).
//
//   bench_vision_layer [--sizes 336,768] [--runs 5] [--width 1024] [--heads 16] [--mlp 4096]
//                      [--layers 24] [--patch 16]
//
// For each input size: the time of each step of one layer as the model runs it (the same
// runtime functions), its share, and its rate where it is a matrix product; then the layer's
// arithmetic limit at the machine's measured product rate for the tower's own shapes, and the
// ratio of the whole layer to that limit. Also prints the BLAS in use and its rate on 2048^3.
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench_util.h"
#include "pnpovss/cpu/cpu_info.h"
#include "pnpovss/cpu/blas_threads.h"
#include "pnpovss/runtime/cpu_allocator.h"
#include "pnpovss/runtime/parallel_rows.h"
#include "pnpovss/runtime/vision_attention.h"

using bench::Timing;
using bench::time_runs;

namespace {

struct Args {
  std::vector<int64_t> sizes = {336, 768};
  int runs = 5;
  int64_t width = 1024, heads = 16, mlp = 4096, layers = 24, patch = 16;
};

Args parse(int argc, char** argv) {
  Args a;
  bench::parse_options(argc, argv, [&](const std::string& k, const std::string& v) {
    if (k == "--sizes") a.sizes = bench::parse_int_list(v);
    else if (k == "--runs") a.runs = std::stoi(v);
    else if (k == "--width") a.width = std::stoll(v);
    else if (k == "--heads") a.heads = std::stoll(v);
    else if (k == "--mlp") a.mlp = std::stoll(v);
    else if (k == "--layers") a.layers = std::stoll(v);
    else if (k == "--patch") a.patch = std::stoll(v);
    else return false;
    return true;
  });
  return a;
}

struct Step {
  std::string name;
  double flops;  // 0 for the steps between products
  std::function<void()> run;
};

void profile(const Args& args, int64_t size) {
  namespace rt = pnpovss::runtime;
  const int64_t N = (size / args.patch) * (size / args.patch) + 1, D = args.width, H = args.heads, M = args.mlp;
  torch::manual_seed(0);
  auto weight = [](int64_t out, int64_t in) { return torch::randn({out, in}) * (1.0 / std::sqrt(in)); };
  const torch::Tensor w_qkv = weight(3 * D, D), b_qkv = torch::randn({3 * D}) * 0.02;
  const torch::Tensor w_proj = weight(D, D), b_proj = torch::randn({D}) * 0.02;
  const torch::Tensor w_fc1 = weight(M, D), b_fc1 = torch::randn({M}) * 0.02;
  const torch::Tensor w_fc2 = weight(D, M), b_fc2 = torch::randn({D}) * 0.02;
  const torch::Tensor gamma = torch::ones({D}), beta = torch::zeros({D});
  const torch::Tensor x = torch::randn({1, N, D});

  // Every step's inputs exist before timing, so each step is timed alone.
  torch::Tensor normed = rt::rows_layer_norm(x, gamma, beta, 1e-5);
  torch::Tensor qkv = rt::rows_linear(normed, w_qkv, b_qkv);
  torch::Tensor heads = qkv.view({1, N, 3, H, D / H}).permute({2, 0, 3, 1, 4});
  const torch::Tensor q = heads[0], k = heads[1], v = heads[2];
  const double scale = 1.0 / std::sqrt(static_cast<double>(D / H));
  torch::Tensor context = rt::fused_cpu_attention(q, k, v, scale);
  const bool fused = context.defined();
  if (!fused) context = rt::merge_heads(torch::matmul(torch::softmax(torch::matmul(q, k.transpose(-1, -2)) * scale, -1), v));
  torch::Tensor projected = rt::rows_linear(context, w_proj, b_proj);
  torch::Tensor h = rt::rows_add(x, projected);
  torch::Tensor hidden = rt::rows_linear(rt::rows_layer_norm(h, gamma, beta, 1e-5), w_fc1, b_fc1);
  torch::Tensor activated = rt::rows_gelu(hidden);
  torch::Tensor mlp_out = rt::rows_linear(activated, w_fc2, b_fc2);

  const double n = static_cast<double>(N), d = static_cast<double>(D), m = static_cast<double>(M);
  std::vector<Step> steps = {
      {"layer norm 1", 0, [&] { rt::rows_layer_norm(x, gamma, beta, 1e-5); }},
      {"qkv product", 2 * n * d * 3 * d, [&] { rt::rows_linear(normed, w_qkv, b_qkv); }},
      {"attention", 4 * n * n * d,
       [&] {
         if (fused) rt::fused_cpu_attention(q, k, v, scale);
         else torch::matmul(torch::softmax(torch::matmul(q, k.transpose(-1, -2)) * scale, -1), v);
       }},
      {"projection", 2 * n * d * d, [&] { rt::rows_linear(context, w_proj, b_proj); }},
      {"residual 1", 0, [&] { rt::rows_add(x, projected); }},
      {"layer norm 2", 0, [&] { rt::rows_layer_norm(h, gamma, beta, 1e-5); }},
      {"fc1 product", 2 * n * d * m, [&] { rt::rows_linear(normed, w_fc1, b_fc1); }},
      {"gelu", 0, [&] { rt::rows_gelu(hidden); }},
      {"fc2 product", 2 * n * m * d, [&] { rt::rows_linear(activated, w_fc2, b_fc2); }},
      {"residual 2", 0, [&] { rt::rows_add(h, mlp_out); }},
  };

  // The product rate for this size's own shapes: the limit each product step could reach.
  const double rate_qkv = bench::gemm_rate(N, D, 3 * D, args.runs), rate_proj = bench::gemm_rate(N, D, D, args.runs);
  const double rate_fc1 = bench::gemm_rate(N, D, M, args.runs), rate_fc2 = bench::gemm_rate(N, M, D, args.runs);
  const double linear_flops = 2 * n * d * (3 * d + d + 2 * m);
  const double linear_limit =
      2 * n * d * 3 * d / rate_qkv + 2 * n * d * d / rate_proj + 2 * n * d * m / rate_fc1 + 2 * n * m * d / rate_fc2;
  const double shape_rate = linear_flops / linear_limit;  // the products' mean rate
  const double limit = linear_limit + 4 * n * n * d / shape_rate;

  std::printf("\n%lld px: %lld tokens, width %lld, %lld heads, MLP %lld (attention: %s)\n",
              static_cast<long long>(size), static_cast<long long>(N), static_cast<long long>(D),
              static_cast<long long>(H), static_cast<long long>(M), fused ? "fused CPU kernel" : "libtorch");
  std::printf("%-14s %10s %7s %12s\n", "step", "ms", "share", "GFLOP/s");
  std::vector<double> ms;
  double total = 0, between = 0;
  for (const Step& s : steps) {
    const Timing t = time_runs(args.runs, s.run);
    ms.push_back(t.median * 1e3);
    total += t.median;
    if (s.flops == 0) between += t.median;
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    char rate[32] = "";
    if (steps[i].flops > 0) std::snprintf(rate, sizeof rate, "%.0f", steps[i].flops / (ms[i] / 1e3) / 1e9);
    std::printf("%-14s %10.2f %6.1f%% %12s\n", steps[i].name.c_str(), ms[i], 100 * ms[i] / (total * 1e3), rate);
  }
  std::printf("%-14s %10.2f %6.1f%%\n", "layer", total * 1e3, 100.0);
  std::printf("between products: %.2f ms (%.1f%%)\n", between * 1e3, 100 * between / total);
  std::printf("product rate on this size's shapes: qkv %.0f, projection %.0f, fc1 %.0f, fc2 %.0f GFLOP/s\n",
              rate_qkv / 1e9, rate_proj / 1e9, rate_fc1 / 1e9, rate_fc2 / 1e9);
  std::printf("arithmetic limit: %.2f ms per layer (attention at the products' mean rate); layer / limit = %.2fx\n",
              limit * 1e3, total / limit);
  std::printf("tower of %lld layers: %.2f s (limit %.2f s)\n", static_cast<long long>(args.layers),
              total * static_cast<double>(args.layers), limit * static_cast<double>(args.layers));
}

}  // namespace

int bench_main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  pnpovss::cpu::sleep_idle_blas_threads();  // as the command line does
  bench::set_threads(0);
  pnpovss::runtime::install_cpu_allocator();  // as the models do (PNPOVSS_CPU_ALLOCATOR=libtorch: not)
  torch::NoGradGuard no_grad;
  std::printf("BLAS: %s, %d threads\n", pnpovss::cpu::cpu_info().blas.c_str(), pnpovss::cpu::blas_threads());
  std::printf("CPU tensors: %s\n", pnpovss::runtime::cpu_allocator_installed()
                                       ? "large ones on reused huge pages"
                                       : "libtorch's allocator (PNPOVSS_CPU_ALLOCATOR=libtorch)");
  std::printf("fp32 GEMM 2048^3: %.0f GFLOP/s\n", bench::gemm_rate_2048() / 1e9);
  for (int64_t size : args.sizes) profile(args, size);
  return 0;
}

int main(int argc, char** argv) {
  return bench::guarded_main([&] { return bench_main(argc, argv); });
}
