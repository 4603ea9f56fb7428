// The parity protocol of a pipeline fixture (tests/data/pipeline, tests/data/pipeline_paper):
// the whole method on the fixture's image for each case of reference.json, compared tensor by
// tensor. Every parameter (preset, grid, layer, head, iterations, drop count, threshold, blur,
// classes, dataset rule, labels, image, model) is read from reference.json, so fixtures of the
// same format for other model sizes, grids, heads and class lists are checked the same way.
//
//   pixel_values, original_image     preprocessing and decoding of the fixture's image
//   <case>.<name>                     the intermediates of SegmentationResult::named_tensors()
//                                     (aliases: class_maps_agg / final_maps, class_maps_minmax /
//                                     final_minmax, thresholded / mask_binary / masks)
//   <case>.argmax, label_direct, label_official_remap
//                                     exact except where <case>.argmax_ambiguous is 1
//   <case>.argmax_ambiguous           recomputed from the blurred stack; pixels whose top-2 gap
//                                     lies within twice the blurred tolerance of the cut are skipped
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pnpovss/check/compare.h"
#include "pnpovss/runtime/placement.h"

namespace pnpovss::check {

// True when `reference` (a parsed reference.json) describes pipeline cases.
bool is_pipeline_fixture(const nlohmann::json& reference);

// Runs every case and compares every tensor listed in reference.json; a tensor no rule computes
// yields a skipped (failed) check. Throws pnpovss::Error when the fixture or its model cannot be
// read or its parameters are missing.
// `placement`: where the model runs.
std::vector<TensorCheck> check_pipeline_fixture(const std::string& dir, const runtime::Placement& placement = {});

}  // namespace pnpovss::check
