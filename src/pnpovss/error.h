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
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace pnpovss
