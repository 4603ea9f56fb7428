#include "pnpovss/util/failure.h"

#include "pnpovss/error.h"
#include "pnpovss/util/interrupt.h"

namespace pnpovss::util {
namespace {

// libtorch (c10::Error, 1.13 and 2.x) appends its backtrace to what() on a line starting with
// this; the message proper comes before it.
constexpr const char* kTorchBacktrace = "\nException raised from ";

std::string without_backtrace(const char* what) {
  std::string text = what;
  const size_t cut = text.find(kTorchBacktrace);
  if (cut != std::string::npos) text.resize(cut);
  return text;
}

}  // namespace

Failure describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const Interrupted&) {
    throw;
  } catch (const Error& error) {
    return {error.what(), false};
  } catch (const std::exception& error) {
    return {Error::one_line(without_backtrace(error.what())), true};
  } catch (...) {
    return {"unknown failure (an exception that is not a std::exception)", true};
  }
}

Failure current_failure() { return describe(std::current_exception()); }

}  // namespace pnpovss::util
