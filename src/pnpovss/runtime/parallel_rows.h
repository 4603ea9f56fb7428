// The element-wise steps of a transformer layer (layer norm, bias, GELU, residual sums) over
// ranges of rows on several threads. libtorch's own pool stays at one thread on the CPU (its
// OpenMP threads would poll between products, competing with the BLAS's), so without this the
// steps between two matrix products ran on one core while the other idled: 0.35 s of a
// 336-px image. Each range runs the same libtorch operation as the whole tensor would, so
// the results are the same bits.
//
// Tensors are [..., D]. Each function runs over row ranges when use_parallel_rows() holds for
// its input (inference on the CPU in fp32, more than one thread), and is libtorch's own
// operation otherwise (autograd, other devices and types, one worker of several), so callers
// need no second path. Threads: resolve_threads(0), so side-by-side workers keep to their share.
#pragma once

#include <torch/types.h>

namespace pnpovss::runtime {

// True when `x` is a contiguous fp32 CPU tensor, autograd is off and more than one thread may
// run.
bool use_parallel_rows(const torch::Tensor& x);

torch::Tensor rows_layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              double eps);
// x W^T + b, as torch::linear computes it (the bias copied into the output, then one product
// with beta 1), with the copy over threads and the product on the BLAS's threads.
torch::Tensor rows_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);
torch::Tensor rows_gelu(const torch::Tensor& x);
torch::Tensor rows_add(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace pnpovss::runtime
