// What tuning writes: the results document (every trial, the best setting per stage, the
// settings file segment and eval accept) and a picture of the reward per layer x head.
#pragma once

#include <nlohmann/json.hpp>

#include "pnpovss/image/codec.h"
#include "pnpovss/settings.h"
#include "pnpovss/tune/search.h"
#include "pnpovss/tune/tuner.h"

namespace pnpovss::tune {

// The base settings with the best layer, head, threshold and (when tuned) blur.
MethodSettings best_settings(const MethodSettings& base, const TuneResult& result);

// {"run", "space", "trials", "best": {...}, "best_settings", "timing"}. `run` is echoed.
nlohmann::ordered_json results_json(const nlohmann::ordered_json& run, const SearchSpace& space,
                                    const TuneResult& result, const MethodSettings& best);

// Per layer (rows) and head (columns), the highest stage-1 reward over the thresholds tried,
// -1 where no trial visited the cell: [layers][heads].
std::vector<std::vector<int64_t>> layer_head_rewards(const SearchSpace& space, const TuneResult& result);

// The layer x head rewards as a labelled heatmap: one coloured cell per (layer, head) with its
// reward, grey where untried, axis labels and a title with the maximum possible reward.
Image reward_plot(const SearchSpace& space, const TuneResult& result);

}  // namespace pnpovss::tune
