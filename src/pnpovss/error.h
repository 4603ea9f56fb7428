// Errors thrown by the library. The library never prints or exits; the CLI turns an
// Error into a one-line message and a non-zero exit status.
#pragma once

#include <stdexcept>
#include <string>

namespace pnpovss {

// One error type for everything a user can cause (bad files, bad options, bad input).
// The message says what was wrong and, where possible, what to do about it.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(one_line(message)) {}

 private:
  // Messages quote text taken from untrusted files (tensor names, tokens, paths). Control
  // characters there are escaped, so that a message is always one line and printing it cannot
  // send control sequences to a terminal.
  static std::string one_line(const std::string& text) {
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (u < 0x20 || u == 0x7F) {
        out += "\\x";
        out += kHex[u >> 4];
        out += kHex[u & 15];
      } else {
        out += c;
      }
    }
    return out;
  }
};

}  // namespace pnpovss
