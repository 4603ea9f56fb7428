// Safetensors views as libtorch tensors. F32 data is used in place (no copy): the tensor
// keeps the memory-mapped file alive. Other float types are converted to float32.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "pnpovss/io/checkpoint.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/io/safetensors.h"

namespace pnpovss::runtime {

using TensorMap = std::unordered_map<std::string, torch::Tensor>;

// The tensor of `view` with its own dtype (views share the mapped bytes when aligned). `owner`,
// the mapping of `view`'s file, stays alive for as long as the tensor does; once the tensor is
// dropped, its pages leave resident memory (release_pages).
torch::Tensor to_tensor(const io::TensorView& view, std::shared_ptr<const io::MappedFile> owner);
// Same, converted to float32 (a copy unless already F32).
torch::Tensor to_float_tensor(const io::TensorView& view, std::shared_ptr<const io::MappedFile> owner);

// Every tensor of a checkpoint, floating point ones as float32.
TensorMap load_float_tensors(const io::Checkpoint& checkpoint);

// Every tensor of one safetensors file with its own dtype (reference fixtures).
TensorMap load_tensors(const io::SafetensorsFile& file);

// The safetensors description of a contiguous CPU tensor (for writing outputs).
io::TensorView view_of(const std::string& name, const torch::Tensor& contiguous_cpu);

}  // namespace pnpovss::runtime
