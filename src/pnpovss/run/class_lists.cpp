#include "pnpovss/run/class_lists.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/util/ascii.h"

namespace pnpovss::run {
namespace {

// How a tagged name is compared with the class list.
std::string comparable(const std::string& name) { return util::lower_ascii(util::trim_ascii(name)); }

}  // namespace

PromptClasses all_classes(const std::vector<std::string>& names) {
  PromptClasses p;
  p.names = names;
  for (size_t k = 0; k < names.size(); ++k) p.labels.push_back(static_cast<int32_t>(k + 1));
  return p;
}

PromptClasses chosen_classes(const std::vector<std::string>& names, const std::vector<int>& indices) {
  PromptClasses p;
  for (int k : indices) {
    p.names.push_back(names.at(static_cast<size_t>(k)));
    p.labels.push_back(k + 1);
  }
  return p;
}

std::vector<std::string> split_class_list(const std::string& text) {
  std::vector<std::string> names;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string name =
        util::trim_ascii(text.substr(start, comma == std::string::npos ? comma : comma - start));
    if (name.empty())
      throw InvalidArgument("the class list has an empty class name (entry " + std::to_string(names.size() + 1) +
                            "): separate names with single commas, e.g. \"cat, sofa\"");
    names.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return names;
}

std::vector<std::string> read_class_file(const std::string& path) {
  const std::vector<std::string> names = util::nonblank_lines(io::read_text_file(path));
  if (names.empty()) throw InvalidArgument("no classes: '" + path + "' has no class names (one per line)");
  return names;
}

ClassTags read_class_tags(const std::string& path, const std::vector<std::string>& classes,
                          const std::vector<int>& promptable, const std::string& described) {
  const nlohmann::json doc = io::read_json_file(path);
  const std::string where = "class tags '" + path + "'";
  if (!doc.is_object())
    throw InvalidArgument(where +
                          " must be a JSON object mapping image file stems to lists of class names or 0-based indices");
  std::vector<int> allowed = promptable;
  if (allowed.empty())
    for (size_t k = 0; k < classes.size(); ++k) allowed.push_back(static_cast<int>(k));
  std::map<std::string, int> by_name;
  for (int k : allowed) by_name.emplace(comparable(classes.at(static_cast<size_t>(k))), k);

  ClassTags tags;
  for (const auto& [stem, list] : doc.items()) {
    const std::string entry = where + ", image '" + stem + "'";
    if (!list.is_array()) throw InvalidArgument(entry + ": expected a list of class names or 0-based indices");
    if (list.empty()) throw InvalidArgument(entry + ": the list is empty (remove the entry to use every class)");
    std::vector<int> indices;
    for (const auto& item : list) {
      int index = -1;
      if (item.is_string()) {
        const auto it = by_name.find(comparable(item.get<std::string>()));
        if (it == by_name.end())
          throw InvalidArgument(entry + ": '" + item.get<std::string>() + "' is not one of " + described);
        index = it->second;
      } else if (item.is_number_integer()) {
        const int64_t v = item.get<int64_t>();
        if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
          throw InvalidArgument(entry + ": class index " + std::to_string(v) + " is not one of " + described +
                                " (0-based indices)");
        index = static_cast<int>(v);
      } else {
        throw InvalidArgument(entry + ": " + item.dump() + " is neither a class name nor a 0-based class index");
      }
      if (std::find(indices.begin(), indices.end(), index) != indices.end())
        throw InvalidArgument(entry + ": class '" + classes[static_cast<size_t>(index)] + "' is listed twice");
      indices.push_back(index);
    }
    tags[stem] = indices;
  }
  return tags;
}

const std::vector<int>& classes_of(const ClassTags& tags, const std::string& stem, const std::vector<int>& all) {
  const auto it = tags.find(stem);
  return it == tags.end() ? all : it->second;
}

}  // namespace pnpovss::run
