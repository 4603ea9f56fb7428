// Where a model's weights and arithmetic live: a device (cpu, cuda, cuda:N) and a floating-point
// type (fp32, bf16, fp16). Inputs are moved to the placement inside the models; what the method
// reads back (attention maps, gradients, logits) is converted to float32 on the CPU.
#pragma once

#include <torch/types.h>

#include <string>

namespace pnpovss::runtime {

struct Placement {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;

  bool is_default() const { return device.is_cpu() && dtype == torch::kFloat32; }
  // "cpu/fp32", "cuda:0/bf16"
  std::string describe() const;
};

// "cpu", "cuda", "cuda:N"; throws pnpovss::Error naming the accepted forms.
torch::Device parse_device(const std::string& text);
// "fp32", "bf16", "fp16" (also "float32", "bfloat16", "float16"); throws pnpovss::Error.
torch::ScalarType parse_dtype(const std::string& text);
std::string dtype_name(torch::ScalarType dtype);

// A model's result as the method reads it, whatever the placement: detached, float32,
// contiguous, on the CPU (the tensor itself when it is all that already).
torch::Tensor cpu_float(const torch::Tensor& t);

// Throws pnpovss::Error when this build or machine cannot run `p`: CUDA without a CUDA build
// of libtorch or without that GPU, and fp16 on the CPU (libtorch has no CPU half kernels for
// every layer).
void check_placement(const Placement& p);

// Parses and checks both; the message names the option (--device, --dtype).
Placement parse_placement(const std::string& device, const std::string& dtype);

}  // namespace pnpovss::runtime
