#include "pnpovss/cli/failure.h"

#include <c10/util/Exception.h>

#include <exception>

#include "pnpovss/error.h"

namespace pnpovss::cli {

Failure current_failure() {
  try {
    throw;
  } catch (const Error& e) {
    return {e.what(), false};
  } catch (const c10::Error& e) {
    // Without the backtrace libtorch appends, which is many lines of no use to a user.
    return {Error(e.what_without_backtrace()).what(), true};
  } catch (const std::exception& e) {
    return {Error(e.what()).what(), true};
  }
}

}  // namespace pnpovss::cli
