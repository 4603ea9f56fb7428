// What tuning reads: images with their image-level class names (docs/method.md §8 needs
// only which classes are present, never pixel labels).
//
// List file format, one image per line:
//   image_path<TAB>class 1,class 2,...
// Relative image paths are relative to the list file's folder. Blank lines and lines starting
// with '#' are skipped. Class names are trimmed; duplicates within a line are an error.
#pragma once

#include <string>
#include <vector>

namespace pnpovss::tune {

struct TuneImage {
  std::string path;
  std::vector<std::string> classes;  // K(I), in the order given
};

// Throws pnpovss::Error naming the file and line for a malformed line or an empty list.
std::vector<TuneImage> read_tune_list(const std::string& path);
// The same from text; `base_dir` resolves relative paths ("" keeps them as they are) and
// `origin` names the source in messages.
std::vector<TuneImage> parse_tune_list(const std::string& text, const std::string& base_dir,
                                       const std::string& origin);

}  // namespace pnpovss::tune
