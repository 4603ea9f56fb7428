// Builds without libcurl: the cache still works, downloads are refused (hub_download.cpp
// explains what to do when http_supported() is false).
#include "pnpovss/hub/http.h"

#include "pnpovss/error.h"

namespace pnpovss::hub {

bool http_supported() { return false; }

HttpResult http_perform(const HttpRequest& request, BodySink*) {
  throw Error("cannot fetch " + request.url + ": pnp-ovss was built without download support (libcurl)");
}

}  // namespace pnpovss::hub
