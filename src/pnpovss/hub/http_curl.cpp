// HTTP through libcurl, for hub downloads.
#include <curl/curl.h>

#include <cctype>
#include <memory>
#include <mutex>

#include "pnpovss/error.h"
#include "pnpovss/hub/http.h"
#include "pnpovss/hub/response.h"
#include "pnpovss/version.h"

namespace pnpovss::hub {
namespace {

struct Transfer {
  CURL* curl = nullptr;
  BodySink* sink = nullptr;
  HttpResult* result = nullptr;
  bool begun = false;
};

// Keeps the headers of the last response only: a redirect's headers are replaced by those of
// the response it leads to.
size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  add_header_line(std::string(data, size * count), t->result->headers);
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 300 || !t->sink) return size * count;  // error pages are not kept
  if (!t->begun) {
    t->begun = true;
    if (!t->sink->begin(status)) {
      t->result->aborted_by_sink = true;
      return 0;
    }
  }
  if (!t->sink->write(data, size * count)) {
    t->result->aborted_by_sink = true;
    return 0;
  }
  return size * count;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

bool http_supported() { return true; }

HttpResult http_perform(const HttpRequest& request, BodySink* sink) {
  global_init();
  HttpResult result;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw Error("cannot start an HTTP transfer (libcurl failed to initialise)");
  Transfer t{curl.get(), sink, &result};
  curl_slist* headers = nullptr;
  // The hub's sizes are those of the stored bytes, so no transfer compression.
  headers = curl_slist_append(headers, "Accept-Encoding: identity");
  if (!request.token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + request.token).c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(headers, &curl_slist_free_all);
  const std::string range = std::to_string(request.range_from) + "-";

  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "pnp-ovss/" PNPOVSS_VERSION);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  // A transfer that stalls (under 1 byte/s for 30 s) fails and is resumed by the caller.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt(c, CURLOPT_NOBODY, request.head ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  if (request.range_from > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);

  const CURLcode code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &result.status);
  if (code != CURLE_OK && !result.aborted_by_sink) result.transfer_error = curl_easy_strerror(code);
  // A successful response with an empty body still starts the sink (an empty file).
  if (code == CURLE_OK && sink && !t.begun && result.status >= 200 && result.status < 300) {
    if (!sink->begin(result.status)) result.aborted_by_sink = true;
  }
  return result;
}

}  // namespace pnpovss::hub
