#include "pnpovss/tune/tune_input.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "pnpovss/error.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/util/ascii.h"

namespace pnpovss::tune {
namespace {

TuneImage parse_line(const std::string& line, const std::string& base_dir, const std::string& where) {
  const size_t tab = line.find('\t');
  if (tab == std::string::npos)
    throw Error(where + ": expected 'image_path<TAB>class 1,class 2', found no tab");
  TuneImage image;
  image.path = util::trim_ascii(line.substr(0, tab));
  if (image.path.empty()) throw Error(where + ": the image path is empty");
  if (!base_dir.empty() && std::filesystem::path(image.path).is_relative())
    image.path = (std::filesystem::path(base_dir) / image.path).string();
  const std::string names = line.substr(tab + 1);
  size_t start = 0;
  while (true) {
    const size_t comma = names.find(',', start);
    const std::string name = util::trim_ascii(names.substr(start, comma == std::string::npos ? comma : comma - start));
    if (name.empty())
      throw Error(where + ": empty class name (entry " + std::to_string(image.classes.size() + 1) +
                  "): separate names with single commas");
    for (const auto& seen : image.classes)
      if (util::lower_ascii(seen) == util::lower_ascii(name)) throw Error(where + ": class '" + name + "' is listed twice");
    image.classes.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return image;
}

}  // namespace

std::vector<TuneImage> parse_tune_list(const std::string& text, const std::string& base_dir,
                                       const std::string& origin) {
  std::vector<TuneImage> images;
  size_t start = 0;
  for (int line_no = 1; start < text.size(); ++line_no) {
    const size_t end = std::min(text.find('\n', start), text.size());
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const std::string content = util::trim_ascii(line);
    if (content.empty() || content[0] == '#') continue;
    images.push_back(parse_line(line, base_dir, origin + " line " + std::to_string(line_no)));
  }
  if (images.empty()) throw Error(origin + " lists no images (one 'image_path<TAB>class 1,class 2' per line)");
  return images;
}

std::vector<TuneImage> read_tune_list(const std::string& path) {
  const std::string text = io::read_text_file(path);
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return parse_tune_list(text, dir, "tuning list '" + path + "'");
}

}  // namespace pnpovss::tune
