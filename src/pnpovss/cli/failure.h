// How the CLI reports an exception: one line, whatever threw it.
#pragma once

#include <string>

namespace pnpovss::cli {

struct Failure {
  std::string message;  // one line, control characters escaped
  bool internal = false;  // not a pnpovss::Error: a libtorch or standard-library failure
};

// The exception being handled; call only inside a catch block. Unknown exception types
// are rethrown.
Failure current_failure();

}  // namespace pnpovss::cli
