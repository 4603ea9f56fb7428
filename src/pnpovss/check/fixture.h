// Access to a reference fixture directory: reference.json (tensor descriptions, tolerances)
// and reference.safetensors (the tensors), plus comparison of torch tensors with them.
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pnpovss/check/compare.h"
#include "pnpovss/io/safetensors.h"

namespace pnpovss::check {

class Fixture {
 public:
  // Opens `dir`/reference.json and `dir`/reference.safetensors; throws pnpovss::Error.
  explicit Fixture(std::string dir);

  const std::string& dir() const { return dir_; }
  // reference.json, with its key order preserved.
  const nlohmann::ordered_json& reference() const { return reference_; }
  // Names listed under "tensors" in reference.json, in file order.
  std::vector<std::string> tensor_names() const;
  bool has(const std::string& name) const;
  // The reference tensor (its stored dtype); throws when absent.
  torch::Tensor tensor(const std::string& name) const;
  Tolerance tolerance(const std::string& name) const;
  // The looser bound recorded for model inputs that a reimplementation recomputes
  // (tolerance.preprocessing_atol, e.g. the PIL resize of pixel_values); 0 when absent.
  Tolerance preprocessing_tolerance(const std::string& name) const;
  // Compares a computed tensor with the reference of the same name: floats with the recorded
  // tolerance, integers exactly. Shape differences fail.
  TensorCheck compare(const std::string& name, const torch::Tensor& got) const;
  TensorCheck compare(const std::string& name, const torch::Tensor& got, Tolerance tol) const;

 private:
  // tensors.<name>.tolerance.<key>, or `fallback` when any level is absent.
  double tolerance_field(const std::string& name, const char* key, double fallback) const;

  std::string dir_;
  nlohmann::ordered_json reference_;
  io::SafetensorsFile tensors_;
};

// Compares two torch tensors (float with tolerance, integer exactly).
TensorCheck compare_tensors(const std::string& name, const torch::Tensor& got, const torch::Tensor& ref,
                            Tolerance tol);

}  // namespace pnpovss::check
