#include "pnpovss/serve/http_error.h"

namespace pnpovss::serve {

int http_status_of_current() {
  try {
    throw;
  } catch (const HttpError& e) {
    return e.status();
  } catch (const InvalidArgument&) {
    return 422;
  } catch (...) {
    return 500;
  }
}

}  // namespace pnpovss::serve
