#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "pnpovss/check/fixture_check.h"
#include "pnpovss/cli/commands.h"
#include "pnpovss/cli/compute_options.h"
#include "pnpovss/error.h"

namespace pnpovss::cli {

Command add_check_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "check",
      "Recompute every tensor of reference fixture directories and compare with the recorded tolerances.\n"
      "Prints one line per tensor and a final 'N passed, M failed'; exits 0 only if all pass.");
  auto dirs = std::make_shared<std::vector<std::string>>();
  auto compute = std::make_shared<ComputeOptions>();
  cmd->add_option("DIR", *dirs, "fixture directories (reference.json + reference.safetensors)")->required();
  add_compute_options(cmd, *compute, ComputeOptionSet::DeviceOnly);
  return [dirs, compute]() {
    const runtime::Placement placement = resolve_placement(*compute);
    int passed = 0, failed = 0;
    for (const auto& dir : *dirs) {
      try {
        auto report = check::run_fixture_check(dir, placement);
        std::cout << "# " << dir << " (" << report.kind << ")\n";
        for (const auto& c : report.checks) std::cout << check::format_check(c) << "\n";
        auto s = check::summarize(report.checks);
        if (report.checks.empty()) s.failed += 1;  // a fixture that checks nothing is no pass
        passed += s.passed;
        failed += s.failed;
      } catch (const Error& e) {
        std::cout << "# " << dir << ": " << e.what() << "\n";
        ++failed;
      }
    }
    std::cout << passed << " passed, " << failed << " failed\n";
    return failed == 0 ? 0 : 1;
  };
}

}  // namespace pnpovss::cli
