// ASCII-only text helpers for file formats and options (class lists, split files, headers):
// locale-independent, and Unicode text passes through unchanged.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

namespace pnpovss::util {

// `s` without leading and trailing spaces, tabs and line ends.
inline std::string trim_ascii(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

// `s` with A-Z lower-cased; other bytes unchanged.
inline std::string lower_ascii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The lines of `text`, each trimmed, blank ones left out (class lists, split files).
inline std::vector<std::string> nonblank_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find('\n', start), text.size());
    std::string line = trim_ascii(text.substr(start, end - start));
    if (!line.empty()) out.push_back(std::move(line));
    start = end + 1;
  }
  return out;
}

}  // namespace pnpovss::util
