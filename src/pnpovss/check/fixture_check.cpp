#include "pnpovss/check/fixture_check.h"

#include "pnpovss/check/blip_fixture.h"
#include "pnpovss/check/bridgetower_fixture.h"
#include "pnpovss/check/clip_fixture.h"
#include "pnpovss/check/densecrf_fixture.h"
#include "pnpovss/check/fixture.h"
#include "pnpovss/check/pipeline_fixture.h"
#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"

namespace pnpovss::check {

FixtureReport run_fixture_check(const std::string& dir, const runtime::Placement& placement) {
  FixtureReport report;
  const nlohmann::json reference = io::read_json_file(dir + "/reference.json");
  if (is_densecrf_fixture(reference)) {
    report.kind = "densecrf";
    report.checks = check_densecrf_fixture(dir);
    return report;
  }
  if (is_pipeline_fixture(reference)) {
    report.kind = "pipeline";
    report.checks = check_pipeline_fixture(dir, placement);
    return report;
  }
  Fixture fixture(dir);
  if (is_blip_itm_fixture(fixture)) {
    report.kind = "blip_itm";
    report.checks = check_blip_inputs(fixture);
    auto model_checks = check_blip_itm_fixture(fixture, placement);
    report.checks.insert(report.checks.end(), model_checks.begin(), model_checks.end());
    return report;
  }
  if (is_clip_fixture(fixture)) {
    report.kind = "clip";
    report.checks = check_clip_inputs(fixture);
    auto model_checks = check_clip_fixture(fixture);
    report.checks.insert(report.checks.end(), model_checks.begin(), model_checks.end());
    return report;
  }
  if (is_bridgetower_itm_fixture(fixture)) {
    report.kind = "bridgetower_itm";
    report.checks = check_bridgetower_inputs(fixture);
    auto model_checks = check_bridgetower_itm_fixture(fixture, placement);
    report.checks.insert(report.checks.end(), model_checks.begin(), model_checks.end());
    return report;
  }
  throw Error("'" + dir + "': fixture kind not supported by this version (reference.json model '" +
              reference.value("model", std::string("?")) + "')");
}

}  // namespace pnpovss::check
