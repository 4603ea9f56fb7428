#include "pnpovss/runtime/parallel_rows.h"

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "pnpovss/cpu/parallel.h"

namespace pnpovss::runtime {
namespace {

// [rows, D] view of a contiguous [..., D] tensor.
torch::Tensor as_rows(const torch::Tensor& x) { return x.view({-1, x.size(-1)}); }

// `out` [rows, D'] filled by fill(part, begin, count) over row ranges of at least 16 rows, one
// range per thread; `part` is out's rows [begin, begin + count).
torch::Tensor by_rows(torch::Tensor out, const std::function<void(torch::Tensor&, int64_t, int64_t)>& fill) {
  cpu::parallel_ranges(
      out.size(0), cpu::resolve_threads(0),
      [&](int64_t begin, int64_t end) {
        torch::Tensor part = out.narrow(0, begin, end - begin);
        fill(part, begin, end - begin);
      },
      /*min_per_thread=*/16);
  return out;
}

}  // namespace

bool use_parallel_rows(const torch::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.is_contiguous() &&
         !torch::GradMode::is_enabled() && cpu::resolve_threads(0) > 1;
}

torch::Tensor rows_layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              double eps) {
  if (!use_parallel_rows(x)) return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps);
  const torch::Tensor in = as_rows(x);
  return by_rows(torch::empty_like(in), [&](torch::Tensor& part, int64_t begin, int64_t count) {
           part.copy_(torch::layer_norm(in.narrow(0, begin, count), {in.size(1)}, weight, bias, eps));
         })
      .view(x.sizes());
}

torch::Tensor rows_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!use_parallel_rows(x)) return torch::linear(x, weight, bias);
  const torch::Tensor in = as_rows(x);
  torch::Tensor out = by_rows(torch::empty({in.size(0), weight.size(0)}, in.options()),
                              [&](torch::Tensor& part, int64_t, int64_t count) {
                                part.copy_(bias.expand({count, bias.size(0)}));
                              });
  at::addmm_out(out, out, in, weight.t());
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  return out.view(sizes);
}

torch::Tensor rows_gelu(const torch::Tensor& x) {
  if (!use_parallel_rows(x)) return torch::gelu(x);
  const torch::Tensor in = as_rows(x);
  return by_rows(torch::empty_like(in), [&](torch::Tensor& part, int64_t begin, int64_t count) {
           at::gelu_out(part, in.narrow(0, begin, count));
         })
      .view(x.sizes());
}

torch::Tensor rows_add(const torch::Tensor& a, const torch::Tensor& b) {
  if (!use_parallel_rows(a) || !b.is_contiguous() || b.sizes() != a.sizes()) return a + b;
  const torch::Tensor left = as_rows(a), right = as_rows(b);
  return by_rows(torch::empty_like(left), [&](torch::Tensor& part, int64_t begin, int64_t count) {
           at::add_out(part, left.narrow(0, begin, count), right.narrow(0, begin, count));
         })
      .view(a.sizes());
}

}  // namespace pnpovss::runtime
