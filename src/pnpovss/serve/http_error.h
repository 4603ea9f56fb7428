// An error with the HTTP status it answers with. The server maps the library's errors to
// statuses (http_status); request parsing throws HttpError where the status is its own choice.
#pragma once

#include <string>

#include "pnpovss/error.h"

namespace pnpovss::serve {

class HttpError : public Error {
 public:
  HttpError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// The status for the exception in flight (call inside a catch block): an HttpError's own,
// 422 for InvalidArgument (bad classes or settings), 500 for anything else.
int http_status_of_current();

}  // namespace pnpovss::serve
