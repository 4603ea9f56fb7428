#include "pnpovss/models/parallel_rows.h"

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "pnpovss/parallel.h"

namespace pnpovss::models {
namespace {

// [rows, D] view of a contiguous [..., D] tensor.
torch::Tensor as_rows(const torch::Tensor& x) { return x.view({-1, x.size(-1)}); }

// fn(begin, end) over row ranges of at least 16 rows, one per thread.
void over_rows(int64_t rows, const std::function<void(int64_t, int64_t)>& fn) {
  parallel_ranges(rows, resolve_threads(0), fn, /*min_per_thread=*/16);
}

}  // namespace

bool use_parallel_rows(const torch::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.is_contiguous() &&
         !torch::GradMode::is_enabled() && resolve_threads(0) > 1;
}

torch::Tensor rows_layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              double eps) {
  const torch::Tensor in = as_rows(x);
  torch::Tensor out = torch::empty_like(in);
  over_rows(in.size(0), [&](int64_t begin, int64_t end) {
    out.narrow(0, begin, end - begin)
        .copy_(torch::layer_norm(in.narrow(0, begin, end - begin), {in.size(1)}, weight, bias, eps));
  });
  return out.view(x.sizes());
}

torch::Tensor rows_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const torch::Tensor in = as_rows(x);
  torch::Tensor out = torch::empty({in.size(0), weight.size(0)}, in.options());
  over_rows(out.size(0), [&](int64_t begin, int64_t end) {
    out.narrow(0, begin, end - begin).copy_(bias.expand({end - begin, bias.size(0)}));
  });
  at::addmm_out(out, out, in, weight.t());
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  return out.view(sizes);
}

torch::Tensor rows_gelu(const torch::Tensor& x) {
  const torch::Tensor in = as_rows(x);
  torch::Tensor out = torch::empty_like(in);
  over_rows(in.size(0), [&](int64_t begin, int64_t end) {
    torch::Tensor part = out.narrow(0, begin, end - begin);
    at::gelu_out(part, in.narrow(0, begin, end - begin));
  });
  return out.view(x.sizes());
}

torch::Tensor rows_add(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor left = as_rows(a), right = as_rows(b);
  torch::Tensor out = torch::empty_like(left);
  over_rows(left.size(0), [&](int64_t begin, int64_t end) {
    torch::Tensor part = out.narrow(0, begin, end - begin);
    at::add_out(part, left.narrow(0, begin, end - begin), right.narrow(0, begin, end - begin));
  });
  return out.view(a.sizes());
}

}  // namespace pnpovss::models
