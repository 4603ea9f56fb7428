// `pnp-ovss check DIR`: recognises the kind of a fixture directory and runs its protocol.
#pragma once

#include <string>
#include <vector>

#include "pnpovss/check/compare.h"

namespace pnpovss::check {

struct FixtureReport {
  std::string kind;  // "blip_itm", "densecrf", ...
  std::vector<TensorCheck> checks;
};

// Throws pnpovss::Error when `dir` is not a fixture of a supported kind.
FixtureReport run_fixture_check(const std::string& dir);

}  // namespace pnpovss::check
