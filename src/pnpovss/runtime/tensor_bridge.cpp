#include "pnpovss/runtime/tensor_bridge.h"

#include <torch/torch.h>

#include "pnpovss/error.h"
#include "pnpovss/io/mapped_file.h"

namespace pnpovss::runtime {
namespace {

torch::ScalarType scalar_type(io::DType dtype) {
  switch (dtype) {
    case io::DType::F64: return torch::kFloat64;
    case io::DType::F32: return torch::kFloat32;
    case io::DType::F16: return torch::kFloat16;
    case io::DType::BF16: return torch::kBFloat16;
    case io::DType::I64: return torch::kInt64;
    case io::DType::I32: return torch::kInt32;
    case io::DType::I16: return torch::kInt16;
    case io::DType::I8: return torch::kInt8;
    case io::DType::U8: return torch::kUInt8;
    case io::DType::BOOL: return torch::kBool;
  }
  throw Error("unsupported dtype");
}

}  // namespace

torch::Tensor to_tensor(const io::TensorView& view, std::shared_ptr<const io::MappedFile> owner) {
  const auto type = scalar_type(view.dtype);
  const size_t elem = io::dtype_size(view.dtype);
  const bool aligned = reinterpret_cast<uintptr_t>(view.data) % elem == 0;
  if (view.nbytes == 0) return torch::empty(view.shape, torch::TensorOptions().dtype(type));
  if (!aligned) {
    // Misaligned data (a header whose length is not a multiple of 8): copy into aligned memory.
    auto out = torch::empty(view.shape, torch::TensorOptions().dtype(type));
    std::memcpy(out.data_ptr(), view.data, view.nbytes);
    return out;
  }
  auto keep = std::move(owner);
  const void* data = view.data;
  const size_t bytes = view.nbytes;
  return torch::from_blob(const_cast<uint8_t*>(view.data), view.shape,
                          [keep, data, bytes](void*) {
                            if (keep) keep->release(data, bytes);
                          },
                          torch::TensorOptions().dtype(type));
}

torch::Tensor to_float_tensor(const io::TensorView& view, std::shared_ptr<const io::MappedFile> owner) {
  torch::Tensor t = to_tensor(view, std::move(owner));
  return t.scalar_type() == torch::kFloat32 ? t : t.to(torch::kFloat32);
}

TensorMap load_float_tensors(const io::Checkpoint& checkpoint) {
  TensorMap out;
  for (const auto& file : checkpoint.files())
    for (const auto& view : file.tensors()) {
      const bool is_float = view.dtype == io::DType::F32 || view.dtype == io::DType::F16 ||
                            view.dtype == io::DType::BF16 || view.dtype == io::DType::F64;
      out[view.name] = is_float ? to_float_tensor(view, file.file()) : to_tensor(view, file.file());
    }
  return out;
}

TensorMap load_tensors(const io::SafetensorsFile& file) {
  TensorMap out;
  for (const auto& view : file.tensors()) out[view.name] = to_tensor(view, file.file());
  return out;
}

io::TensorView view_of(const std::string& name, const torch::Tensor& t) {
  if (!t.is_contiguous() || !t.device().is_cpu()) throw Error("tensor '" + name + "' must be contiguous on the CPU");
  io::TensorView v;
  v.name = name;
  switch (t.scalar_type()) {
    case torch::kFloat32: v.dtype = io::DType::F32; break;
    case torch::kFloat64: v.dtype = io::DType::F64; break;
    case torch::kFloat16: v.dtype = io::DType::F16; break;
    case torch::kBFloat16: v.dtype = io::DType::BF16; break;
    case torch::kInt64: v.dtype = io::DType::I64; break;
    case torch::kInt32: v.dtype = io::DType::I32; break;
    case torch::kUInt8: v.dtype = io::DType::U8; break;
    case torch::kBool: v.dtype = io::DType::BOOL; break;
    default: throw Error("tensor '" + name + "': dtype not supported in safetensors output");
  }
  v.shape = t.sizes().vec();
  v.data = static_cast<const uint8_t*>(t.data_ptr());
  v.nbytes = t.numel() * t.element_size();
  return v;
}

}  // namespace pnpovss::runtime
