// Any exception as the one line a user reads: the one place where the library turns what was
// thrown (its own errors, a standard-library failure, an error of libtorch) into a message.
// Front ends print it (the command line), raise it (Python) or return it (a server).
#pragma once

#include <exception>
#include <string>

namespace pnpovss::util {

struct Failure {
  std::string message;    // one line, control characters escaped
  bool internal = false;  // not a pnpovss::Error: a libtorch or standard-library failure (a bug
                          // or the machine, not the input)
};

// The exception `e`, or the one being handled (call only inside a catch block). libtorch's
// errors lose the C++ backtrace they append after their message (many lines that help no
// user). An Interrupted exception is rethrown, never described: interruption is not a failure of
// one image, so every "report and go on" loop lets it pass.
Failure describe(const std::exception_ptr& e);
Failure current_failure();

}  // namespace pnpovss::util
