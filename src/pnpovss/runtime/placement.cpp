#include "pnpovss/runtime/placement.h"

#include <torch/cuda.h>

#include <cctype>

#include "pnpovss/error.h"

namespace pnpovss::runtime {
namespace {

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::string Placement::describe() const { return device.str() + "/" + dtype_name(dtype); }

torch::Device parse_device(const std::string& text) {
  if (text == "cpu") return torch::kCPU;
  if (text == "cuda") return {torch::kCUDA, 0};
  const std::string prefix = "cuda:";
  if (text.compare(0, prefix.size(), prefix) == 0 && all_digits(text.substr(prefix.size())) &&
      text.size() - prefix.size() <= 3)
    return {torch::kCUDA, static_cast<c10::DeviceIndex>(std::stoi(text.substr(prefix.size())))};
  throw SettingError("device", "'" + text + "'", "is not a device: use cpu, cuda or cuda:N (N = 0, 1, ...)");
}

torch::ScalarType parse_dtype(const std::string& text) {
  if (text == "fp32" || text == "float32") return torch::kFloat32;
  if (text == "bf16" || text == "bfloat16") return torch::kBFloat16;
  if (text == "fp16" || text == "float16") return torch::kFloat16;
  throw SettingError("dtype", "'" + text + "'", "is not a floating-point type: use fp32, bf16 or fp16");
}

std::string dtype_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32: return "fp32";
    case torch::kBFloat16: return "bf16";
    case torch::kFloat16: return "fp16";
    default: return c10::toString(dtype);
  }
}

void check_placement(const Placement& p) {
  if (p.device.is_cuda()) {
    if (!torch::cuda::is_available())
      throw Error("device " + p.device.str() +
                  ": no CUDA device is usable (this build's libtorch has no CUDA support, or no GPU or driver "
                  "was found); use the cpu device");
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    const int64_t index = p.device.has_index() ? p.device.index() : 0;
    if (index >= count)
      throw Error("device " + p.device.str() + ": this machine has " + std::to_string(count) +
                  " CUDA device(s), numbered 0.." + std::to_string(count - 1));
    return;
  }
  if (!p.device.is_cpu()) throw Error("device " + p.device.str() + " is not supported: use cpu or cuda[:N]");
  if (p.dtype == torch::kFloat16)
    throw Error("dtype fp16 needs a CUDA device (libtorch has no half-precision CPU kernels for every layer); "
                "use fp32 or bf16 on the CPU");
}

Placement parse_placement(const std::string& device, const std::string& dtype) {
  Placement p{parse_device(device), parse_dtype(dtype)};
  check_placement(p);
  return p;
}

torch::Tensor cpu_float(const torch::Tensor& t) { return t.detach().to(torch::kCPU, torch::kFloat32).contiguous(); }

}  // namespace pnpovss::runtime
