// `pnp-ovss check DIR`: recognises the kind of a fixture directory and runs its protocol.
#pragma once

#include <string>
#include <vector>

#include "pnpovss/check/compare.h"
#include "pnpovss/runtime/placement.h"

namespace pnpovss::check {

struct FixtureReport {
  std::string kind;  // "blip_itm", "densecrf", ...
  std::vector<TensorCheck> checks;
};

// Throws pnpovss::Error when `dir` is not a fixture of a supported kind. `placement` moves the
// model of blip_itm, bridgetower_itm and pipeline fixtures (CLIP and the Dense CRF run on the
// CPU in fp32).
FixtureReport run_fixture_check(const std::string& dir, const runtime::Placement& placement = {});

}  // namespace pnpovss::check
