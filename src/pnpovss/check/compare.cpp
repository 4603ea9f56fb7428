#include "pnpovss/check/compare.h"

#include <cmath>
#include <cstdio>

#include "pnpovss/io/safetensors.h"

namespace pnpovss::check {

TensorCheck compare_floats(const std::string& name, const float* got, const float* ref, int64_t n,
                           Tolerance tol) {
  TensorCheck c;
  c.name = name;
  c.tolerance = tol;
  c.compared = n;
  c.worst_excess = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    const double a = got[i], b = ref[i];
    const double err = std::fabs(a - b);
    const double excess = std::isnan(err) ? INFINITY : err - (tol.atol + tol.rtol * std::fabs(b));
    if (!(err <= c.max_abs_error)) c.max_abs_error = std::isnan(err) ? INFINITY : err;
    if (excess > c.worst_excess) c.worst_excess = excess;
    if (excess > 0) ++c.mismatches;
  }
  if (n == 0) c.worst_excess = 0;
  c.passed = c.mismatches == 0;
  return c;
}

TensorCheck compare_ints_masked(const std::string& name, const int64_t* got, const int64_t* ref,
                                const uint8_t* skip, int64_t n) {
  TensorCheck c;
  c.name = name;
  c.note = "exact";
  int64_t skipped = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (skip != nullptr && skip[i] != 0) {
      ++skipped;
      continue;
    }
    ++c.compared;
    const double err = std::fabs(static_cast<double>(got[i]) - static_cast<double>(ref[i]));
    if (err > c.max_abs_error) c.max_abs_error = err;
    if (got[i] != ref[i]) ++c.mismatches;
  }
  if (skipped > 0) c.note += ", " + std::to_string(skipped) + " ambiguous skipped";
  c.worst_excess = c.max_abs_error;
  c.passed = c.mismatches == 0;
  return c;
}

TensorCheck compare_ints(const std::string& name, const int64_t* got, const int64_t* ref, int64_t n) {
  return compare_ints_masked(name, got, ref, nullptr, n);
}

TensorCheck shape_mismatch(const std::string& name, const std::vector<int64_t>& got,
                           const std::vector<int64_t>& ref) {
  TensorCheck c;
  c.name = name;
  c.max_abs_error = INFINITY;
  c.note = "shape " + io::shape_string(got) + " vs reference " + io::shape_string(ref);
  return c;
}

std::string format_check(const TensorCheck& c) {
  char line[512];
  const char* verdict = c.skipped ? "SKIP" : (c.passed ? "PASS" : "FAIL");
  std::snprintf(line, sizeof line, "%-40s max_abs_err=%-11.4g atol=%-9.3g rtol=%-7.3g %s", c.name.c_str(),
                c.max_abs_error, c.tolerance.atol, c.tolerance.rtol, verdict);
  std::string out = line;
  if (c.mismatches > 0) out += " (" + std::to_string(c.mismatches) + "/" + std::to_string(c.compared) + " outside)";
  if (!c.note.empty()) out += " [" + c.note + "]";
  return out;
}

CheckSummary summarize(const std::vector<TensorCheck>& checks) {
  CheckSummary s;
  for (const auto& c : checks) (c.passed && !c.skipped ? s.passed : s.failed)++;
  return s;
}

}  // namespace pnpovss::check
