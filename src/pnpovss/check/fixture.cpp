#include "pnpovss/check/fixture.h"

#include <torch/torch.h>

#include "pnpovss/error.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/runtime/tensor_bridge.h"

namespace pnpovss::check {

Fixture::Fixture(std::string dir) : dir_(std::move(dir)) {
  const std::string json_path = dir_ + "/reference.json";
  if (!io::file_exists(json_path))
    throw Error("'" + dir_ + "' is not a fixture directory: reference.json is missing");
  reference_ = nlohmann::ordered_json::parse(io::read_text_file(json_path), nullptr, false);
  if (reference_.is_discarded() || !reference_.is_object()) throw Error(json_path + " is not a JSON object");
  tensors_ = io::SafetensorsFile::open(dir_ + "/reference.safetensors");
}

std::vector<std::string> Fixture::tensor_names() const {
  std::vector<std::string> names;
  if (reference_.contains("tensors") && reference_["tensors"].is_object())
    for (const auto& item : reference_["tensors"].items()) names.push_back(item.key());
  return names;
}

bool Fixture::has(const std::string& name) const { return tensors_.find(name) != nullptr; }

torch::Tensor Fixture::tensor(const std::string& name) const {
  const io::TensorView* view = tensors_.find(name);
  if (view == nullptr) throw Error(dir_ + "/reference.safetensors has no tensor '" + name + "'");
  return runtime::to_tensor(*view, tensors_.file());
}

double Fixture::tolerance_field(const std::string& name, const char* key, double fallback) const {
  auto tensors = reference_.find("tensors");
  if (tensors == reference_.end() || !tensors->is_object()) return fallback;
  auto entry = tensors->find(name);
  if (entry == tensors->end() || !entry->is_object()) return fallback;
  auto tol = entry->find("tolerance");
  if (tol == entry->end() || !tol->is_object()) return fallback;
  auto value = tol->find(key);
  return value != tol->end() && value->is_number() ? value->get<double>() : fallback;
}

Tolerance Fixture::tolerance(const std::string& name) const {
  return {tolerance_field(name, "atol", 0.0), tolerance_field(name, "rtol", 0.0)};
}

Tolerance Fixture::preprocessing_tolerance(const std::string& name) const {
  return {tolerance_field(name, "preprocessing_atol", 0.0), 0.0};
}

TensorCheck Fixture::compare(const std::string& name, const torch::Tensor& got) const {
  return compare(name, got, tolerance(name));
}

TensorCheck Fixture::compare(const std::string& name, const torch::Tensor& got, Tolerance tol) const {
  return compare_tensors(name, got, tensor(name), tol);
}

TensorCheck compare_tensors(const std::string& name, const torch::Tensor& got_in, const torch::Tensor& ref_in,
                            Tolerance tol) {
  torch::Tensor got = got_in.detach().cpu();
  torch::Tensor ref = ref_in.detach().cpu();
  if (got.sizes() != ref.sizes()) return shape_mismatch(name, got.sizes().vec(), ref.sizes().vec());
  if (ref.is_floating_point()) {
    got = got.to(torch::kFloat32).contiguous();
    ref = ref.to(torch::kFloat32).contiguous();
    return compare_floats(name, got.data_ptr<float>(), ref.data_ptr<float>(), got.numel(), tol);
  }
  got = got.to(torch::kInt64).contiguous();
  ref = ref.to(torch::kInt64).contiguous();
  return compare_ints(name, got.data_ptr<int64_t>(), ref.data_ptr<int64_t>(), got.numel());
}

}  // namespace pnpovss::check
