// Comparison of computed values with reference values, the way every parity check in the
// project reports it: per tensor, the largest absolute error, the tolerance, pass or fail.
// No libtorch here, so that checks of model-free stages (Dense CRF, tokenizer) stay light.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pnpovss::check {

struct Tolerance {
  double atol = 0.0;
  double rtol = 0.0;
};

struct TensorCheck {
  std::string name;
  double max_abs_error = 0.0;   // max |a - b|
  double worst_excess = 0.0;    // max (|a-b| - (atol + rtol*|b|)); > 0 means failure
  Tolerance tolerance;
  int64_t mismatches = 0;       // elements outside the tolerance (or unequal, for exact checks)
  int64_t compared = 0;         // elements compared (skipped ones not counted)
  bool passed = false;
  bool skipped = false;         // could not be computed: counts as a failure of `check`
  std::string note;             // e.g. "exact", "shape [2,3] vs [2,4]", "12 ambiguous pixels skipped"
};

// |a - b| <= atol + rtol*|b| elementwise. NaN in `got` never matches.
TensorCheck compare_floats(const std::string& name, const float* got, const float* ref, int64_t n,
                           Tolerance tol);
// Exact equality of integer data.
TensorCheck compare_ints(const std::string& name, const int64_t* got, const int64_t* ref, int64_t n);
// Exact equality with a per-element skip mask (skip[i] != 0: not compared).
TensorCheck compare_ints_masked(const std::string& name, const int64_t* got, const int64_t* ref,
                                const uint8_t* skip, int64_t n);
// A failed check for a tensor whose shape differs from the reference.
TensorCheck shape_mismatch(const std::string& name, const std::vector<int64_t>& got,
                           const std::vector<int64_t>& ref);

// One line per check: "name  max_abs_err=...  atol=... rtol=...  PASS|FAIL [note]".
std::string format_check(const TensorCheck& check);

struct CheckSummary {
  int passed = 0;
  int failed = 0;  // skipped checks count as failed
};
CheckSummary summarize(const std::vector<TensorCheck>& checks);

}  // namespace pnpovss::check
