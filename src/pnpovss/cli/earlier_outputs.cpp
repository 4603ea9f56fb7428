#include "pnpovss/cli/earlier_outputs.h"

#include <exception>
#include <filesystem>
#include <system_error>

#include "pnpovss/io/json_file.h"
#include "pnpovss/util/hash.h"

namespace pnpovss::cli {

bool written_earlier(const std::string& record_path, const std::vector<std::string>& outputs,
                     const nlohmann::ordered_json& identity) {
  std::error_code ec;
  for (const auto& file : outputs)
    if (!std::filesystem::exists(file, ec)) return false;
  nlohmann::json record;
  try {
    record = io::read_json_file(record_path);
  } catch (const std::exception&) {
    return false;
  }
  if (!record.is_object()) return false;
  // The plain json type compares objects whatever their key order.
  const nlohmann::json wanted = nlohmann::json::parse(identity.dump());
  for (const auto& [key, value] : wanted.items()) {
    if (key == "image_sha256") continue;
    const auto it = record.find(key);
    if (it == record.end() || *it != value) return false;
  }
  const auto hash = record.find("image_sha256");
  if (hash == record.end() || !hash->is_string()) return false;
  try {
    return *hash == util::file_sha256(wanted.at("image").get<std::string>());
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace pnpovss::cli
