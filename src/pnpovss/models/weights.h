// Strict weight loading: every parameter a model expects must be present with the expected
// shape, and every tensor of the checkpoint must be used. Errors name the key and both shapes.
#pragma once

#include <torch/types.h>

#include <set>
#include <string>
#include <vector>

#include "pnpovss/runtime/tensor_bridge.h"

namespace pnpovss::models {

struct ParameterSpec {
  std::string name;
  std::vector<int64_t> shape;
};

class WeightLoader {
 public:
  // `origin` names the checkpoint in error messages.
  WeightLoader(runtime::TensorMap tensors, std::string origin);

  // The float32 tensor `name` of exactly `shape`; throws pnpovss::Error otherwise.
  torch::Tensor take(const std::string& name, const std::vector<int64_t>& shape);
  // Throws pnpovss::Error listing checkpoint tensors that were never taken (buffers that the
  // reference implementation also ignores, such as `*.position_ids`, are allowed).
  void finish() const;

 private:
  runtime::TensorMap tensors_;
  std::string origin_;
  std::set<std::string> taken_;
};

}  // namespace pnpovss::models
