// Loading small JSON files (config.json, tokenizer_config.json, reference.json) with errors
// that name the file and the offending field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace pnpovss::io {

// Parses `path` as JSON; throws pnpovss::Error naming the file on I/O or syntax errors.
nlohmann::json read_json_file(const std::string& path);

// Typed field access with a default for absent (or null) fields; a present field of the wrong
// type throws pnpovss::Error naming `where` and the key.
int64_t json_int(const nlohmann::json& obj, const char* key, int64_t fallback, const std::string& where);
double json_number(const nlohmann::json& obj, const char* key, double fallback, const std::string& where);
std::string json_string(const nlohmann::json& obj, const char* key, const std::string& fallback,
                        const std::string& where);
bool json_bool(const nlohmann::json& obj, const char* key, bool fallback, const std::string& where);

// The largest size a model config may give: far above any real model (vocabularies reach
// ~250k), it keeps products of sizes (weight shapes, grid^2) far from overflow.
constexpr int64_t kMaxConfigSize = int64_t{1} << 24;
// Throws pnpovss::Error naming `where` and `name` unless 1 <= value <= kMaxConfigSize.
void require_config_size(int64_t value, const std::string& name, const std::string& where);

}  // namespace pnpovss::io
