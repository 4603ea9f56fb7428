#include "pnpovss/util/interrupt.h"

#include <atomic>
#include <memory>
#include <utility>

namespace pnpovss::util {
namespace {

// Held by shared_ptr so that a check being replaced is not destroyed under a caller.
std::shared_ptr<const std::function<bool()>> installed;

}  // namespace

void set_interrupt_check(std::function<bool()> check) {
  std::shared_ptr<const std::function<bool()>> next;
  if (check) next = std::make_shared<const std::function<bool()>>(std::move(check));
  std::atomic_store(&installed, next);
}

void interruption_point() {
  const auto check = std::atomic_load(&installed);
  if (check && (*check)()) throw Interrupted();
}

}  // namespace pnpovss::util
