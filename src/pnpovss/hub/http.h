// The HTTP requests hub downloads need, behind one small interface: libcurl when the build has
// it (hub_http_curl.cpp), otherwise a stand-in that explains how to get the files
// (hub_http_none.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace pnpovss::hub {

struct HttpRequest {
  std::string url;
  bool head = false;              // HEAD: headers only
  bool follow_redirects = false;  // GET of a file follows the hub's redirect to its storage
  std::string token;              // sent as "Authorization: Bearer <token>" when not empty
  int64_t range_from = 0;         // > 0: ask for the bytes from this offset on (resume)
};

// Receives the body of a successful (2xx) response.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // Called once with the final status before the first byte; false aborts the transfer.
  virtual bool begin(long status) = 0;
  // false aborts the transfer (e.g. the disk is full).
  virtual bool write(const char* data, size_t size) = 0;
};

struct HttpResult {
  long status = 0;                             // of the last response; 0 when none came
  std::map<std::string, std::string> headers;  // of the last response, names lower-case
  std::string transfer_error;                  // empty on success; why the connection failed
  bool aborted_by_sink = false;
};

// Whether this build can download (was built with libcurl).
bool http_supported();

// Performs `request`. Never throws for network trouble: that is reported in transfer_error.
// `sink` may be null (HEAD).
HttpResult http_perform(const HttpRequest& request, BodySink* sink);

}  // namespace pnpovss::hub
