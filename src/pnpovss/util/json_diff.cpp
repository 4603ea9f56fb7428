#include "pnpovss/util/json_diff.h"

namespace pnpovss::util {
namespace {

std::string short_dump(const nlohmann::json& j) {
  std::string s = j.is_null() ? "(absent)" : j.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

// The value at a dotted path, null where it is absent.
nlohmann::json at_path(nlohmann::json doc, const std::string& path) {
  size_t start = 0;
  while (start <= path.size()) {
    const size_t dot = std::min(path.find('.', start), path.size());
    const std::string key = path.substr(start, dot - start);
    doc = doc.is_object() && doc.contains(key) ? doc.at(key) : nlohmann::json();
    start = dot + 1;
  }
  return doc;
}

}  // namespace

std::string first_difference(const nlohmann::json& a, const nlohmann::json& b, const std::string& path) {
  if (a.is_object() && b.is_object()) {
    for (const auto& [key, value] : a.items()) {
      const std::string sub = path.empty() ? key : path + "." + key;
      if (!b.contains(key)) return sub;
      const std::string d = first_difference(value, b.at(key), sub);
      if (!d.empty()) return d;
    }
    for (const auto& [key, value] : b.items())
      if (!a.contains(key)) return path.empty() ? key : path + "." + key;
    return "";
  }
  return a == b ? "" : (path.empty() ? "(document)" : path);
}

std::string describe_difference(const nlohmann::json& there, const nlohmann::json& now) {
  const std::string diff = first_difference(there, now);
  if (diff.empty()) return "";
  if (diff == "(document)") return "the whole document differs";
  return diff + ": " + short_dump(at_path(there, diff)) + " there, " + short_dump(at_path(now, diff)) + " now";
}

}  // namespace pnpovss::util
