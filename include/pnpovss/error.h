// The errors of pnp-ovss. The library never prints or exits: it returns values or throws one of
// these, and a front end (the command line, the Python module, a server) words the message for
// its users. Every message is one line that says what was wrong and, where it can, what to do.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace pnpovss {

// Everything a user can cause: a missing or broken file, a bad option or input.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(one_line(message)) {}

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

// A bad value given by the caller, as opposed to a failure while working: an out-of-range or
// unknown setting, an empty or repeated class name. (Python raises ValueError for these.)
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A setting that cannot be used, named as the library knows it ("layer", "threshold"), with its
// value and what is wrong, so that each front end can name it its own way ("--layer 9",
// "layer=9"). what() is "<setting> <value> <problem>", with "(<origin>)" after the value when the
// value did not come from the caller (e.g. "the paper preset's", "from settings file 'x.json'").
class SettingError : public InvalidArgument {
 public:
  SettingError(std::string setting, std::string value, std::string problem, std::string origin = "")
      : InvalidArgument(compose(setting, value, problem, origin)),
        setting_(std::move(setting)),
        value_(std::move(value)),
        problem_(std::move(problem)),
        origin_(std::move(origin)) {}

  const std::string& setting() const { return setting_; }  // e.g. "layer", "threshold"
  const std::string& value() const { return value_; }      // as written, e.g. "9", "1.5"
  const std::string& problem() const { return problem_; }  // e.g. "is out of range: ..."
  const std::string& origin() const { return origin_; }    // empty: the caller gave the value

  // The same error with the value's origin stated.
  SettingError from(const std::string& origin) const { return SettingError(setting_, value_, problem_, origin); }

  // The message with the setting and value written as the caller wrote them (`as_given`, e.g.
  // "--layer 9" or "layer=9"), or what() when the value did not come from the caller.
  std::string message_naming(const std::string& as_given) const {
    return origin_.empty() ? one_line(as_given + " " + problem_) : what();
  }

 private:
  static std::string compose(const std::string& setting, const std::string& value, const std::string& problem,
                             const std::string& origin) {
    return setting + (value.empty() ? "" : " " + value) + (origin.empty() ? "" : " (" + origin + ")") + " " + problem;
  }
  std::string setting_, value_, problem_, origin_;
};

}  // namespace pnpovss
