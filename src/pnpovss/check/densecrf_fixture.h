// Parity check of the Dense CRF against a fixture produced by the original C++ core
// (tests/data/densecrf: reference.json describes the cases, reference.safetensors holds the
// image, scores, unary, Q and labels of each). Everything (sizes, labels, parameters,
// iterations, tolerances) is read from reference.json, so other fixtures of the same format work.
#pragma once

#include <nlohmann/json.hpp>
#include <functional>
#include <string>
#include <vector>

#include "pnpovss/check/compare.h"
#include "pnpovss/crf/densecrf.h"

namespace pnpovss::check {

// True when `reference` (a parsed reference.json) describes Dense CRF cases.
bool is_densecrf_fixture(const nlohmann::json& reference);

// Runs every case of the fixture in `dir` and returns, per case:
//   <case>.unary_from_scores  unary_from_probabilities(score_scale * scores) vs the stored unary
//   <case>.Q                  max |dQ| against the case's atol; the mean |dQ| must also stay
//                             within Q_mean_abs_atol (reported in the note)
//   <case>.labels             exact, except pixels whose reference margin (top1 - top2 of Q)
//                             is below the documented threshold (counted in the note)
// A case that cannot be run (missing tensor, unsupported option) yields a failed check.
// Throws pnpovss::Error when the fixture files cannot be read. `solve` runs the CRF: the exact
// CPU one unless another (the tensor CRF, in its tests) is given.
using DenseCrfSolver = std::function<crf::DenseCrfResult(const uint8_t* rgb, int height, int width, const float* unary,
                                                         int labels, const DenseCrfParams& params)>;
std::vector<TensorCheck> check_densecrf_fixture(
    const std::string& dir,
    const DenseCrfSolver& solve = static_cast<crf::DenseCrfResult (*)(const uint8_t*, int, int, const float*, int,
                                                                      const DenseCrfParams&)>(crf::dense_crf));

}  // namespace pnpovss::check
