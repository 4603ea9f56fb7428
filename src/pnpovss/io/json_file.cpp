#include "pnpovss/io/json_file.h"

#include <cstdint>

#include "pnpovss/error.h"
#include "pnpovss/io/mapped_file.h"

namespace pnpovss::io {

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) throw Error("'" + path + "' is not valid JSON");
  return value;
}

namespace {
const nlohmann::json* present(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}
[[noreturn]] void wrong_type(const char* key, const char* expected, const std::string& where) {
  throw Error(where + ": field '" + key + "' must be " + expected);
}
}  // namespace

int64_t json_int(const nlohmann::json& obj, const char* key, int64_t fallback, const std::string& where) {
  const nlohmann::json* v = present(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_number_integer()) wrong_type(key, "an integer", where);
  // An unsigned value above INT64_MAX would wrap to a negative number.
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    throw Error(where + ": field '" + key + "' is too large");
  return v->get<int64_t>();
}

double json_number(const nlohmann::json& obj, const char* key, double fallback, const std::string& where) {
  const nlohmann::json* v = present(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) wrong_type(key, "a number", where);
  return v->get<double>();
}

std::string json_string(const nlohmann::json& obj, const char* key, const std::string& fallback,
                        const std::string& where) {
  const nlohmann::json* v = present(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_string()) wrong_type(key, "a string", where);
  return v->get<std::string>();
}

bool json_bool(const nlohmann::json& obj, const char* key, bool fallback, const std::string& where) {
  const nlohmann::json* v = present(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) wrong_type(key, "true or false", where);
  return v->get<bool>();
}

void require_config_size(int64_t value, const std::string& name, const std::string& where) {
  if (value <= 0) throw Error(where + ": " + name + " must be positive, got " + std::to_string(value));
  if (value > kMaxConfigSize)
    throw Error(where + ": " + name + " " + std::to_string(value) + " is too large (corrupt config?)");
}

}  // namespace pnpovss::io
