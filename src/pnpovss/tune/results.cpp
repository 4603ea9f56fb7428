#include "pnpovss/tune/results.h"

#include <algorithm>
#include <cmath>

#include "pnpovss/image/overlay.h"
#include "pnpovss/settings/settings_json.h"
#include "pnpovss/tune/journal.h"

namespace pnpovss::tune {
namespace {

using ojson = nlohmann::ordered_json;

// The best trial of a stage, and the trials of that stage that reached the same reward: the
// search keeps the first in visiting order, which the entry says rather than hiding the tie.
ojson best_entry(const TuneResult& result, int index) {
  if (index < 0) return nullptr;
  const TrialRecord& best = result.trials[static_cast<size_t>(index)];
  ojson j = to_json(best);
  j.erase("kind");
  j["trial"] = index;
  ojson tied = ojson::array();
  for (size_t i = 0; i < result.trials.size(); ++i) {
    const TrialRecord& t = result.trials[i];
    if (static_cast<int>(i) != index && t.stage == best.stage && t.tally.reward == best.tally.reward)
      tied.push_back(static_cast<int64_t>(i));
  }
  j["tied_trials"] = tied;
  if (!tied.empty()) j["tie_rule"] = "equal rewards: the first trial in visiting order is kept";
  return j;
}

int64_t max_reward(const TuneResult& result) {
  return result.trials.empty() ? 0 : result.trials.front().tally.max_reward;
}

}  // namespace

MethodSettings best_settings(const MethodSettings& base, const TuneResult& result) {
  MethodSettings s = base;
  s.attention_layer = result.best.layer - 1;
  s.attention_head = result.best.head - 1;
  s.mask_threshold = result.best.threshold;
  if (result.best_blur >= 0) s.post_blur = result.best.blur;
  return s;
}

ojson results_json(const ojson& run, const SearchSpace& space, const TuneResult& result,
                   const MethodSettings& best) {
  ojson trials = ojson::array();
  for (size_t i = 0; i < result.trials.size(); ++i) {
    ojson t = to_json(result.trials[i]);
    t.erase("kind");
    t["resumed"] = result.trials[i].resumed;
    trials.push_back(t);
  }
  ojson doc;
  doc["run"] = run;
  doc["space"] = {{"layers", space.layers},
                  {"heads", space.heads},
                  {"thresholds", space.thresholds},
                  {"blurs", space.blurs},
                  {"notes", space.notes}};
  doc["trials"] = trials;
  doc["best"] = {{kStageLayerHead, best_entry(result, result.best_stage1)},
                 {kStageBlur, best_entry(result, result.best_blur)}};
  doc["best_settings"] = ojson::parse(to_json(best).dump());
  ojson timing;
  size_t computed = 0;
  double computed_seconds = 0;
  for (const auto& t : result.trials)
    if (t.stage == kStageLayerHead && !t.resumed && result.grid_images == 0) {
      ++computed;
      computed_seconds += t.seconds;
    }
  if (computed > 0) timing["seconds_per_layer_head_trial"] = std::round(computed_seconds / computed * 1e4) / 1e4;
  if (result.grid_images > 0) timing["exhaustive_grid_seconds"] = std::round(result.grid_seconds * 1e4) / 1e4;
  doc["timing"] = timing;
  return doc;
}

std::vector<std::vector<int64_t>> layer_head_rewards(const SearchSpace& space, const TuneResult& result) {
  std::vector<std::vector<int64_t>> cells(space.layers.size(), std::vector<int64_t>(space.heads.size(), -1));
  for (const auto& t : result.trials) {
    if (t.stage != kStageLayerHead) continue;
    const auto l = std::find(space.layers.begin(), space.layers.end(), t.setting.layer);
    const auto h = std::find(space.heads.begin(), space.heads.end(), t.setting.head);
    if (l == space.layers.end() || h == space.heads.end()) continue;
    int64_t& cell = cells[static_cast<size_t>(l - space.layers.begin())][static_cast<size_t>(h - space.heads.begin())];
    cell = std::max(cell, t.tally.reward);
  }
  return cells;
}

Image reward_plot(const SearchSpace& space, const TuneResult& result) {
  const auto cells = layer_head_rewards(space, result);
  const int rows = static_cast<int>(space.layers.size()), cols = static_cast<int>(space.heads.size());
  const int scale = 2, line = image::text_line_height(scale);
  const int cell = std::max(40, image::text_width("0000", scale) + 8);
  const int left = image::text_width("layer 00", scale) + 12, top = 2 * line + 16;
  Image img;
  img.width = std::max(left + cols * cell + 12, image::text_width("reward per layer x head (max 00000)", scale) + 24);
  img.height = top + rows * cell + line + 16;
  img.rgb.assign(static_cast<size_t>(img.width) * img.height * 3, 255);
  const image::Rgb ink{0, 0, 0}, grey{200, 200, 200};
  const int64_t best_possible = max_reward(result);
  image::draw_text(img, 8, 6,
                "reward per layer x head (max " + std::to_string(best_possible) + ")", ink, scale);
  int64_t low = -1, high = -1;
  for (const auto& r : cells)
    for (int64_t v : r)
      if (v >= 0) {
        low = low < 0 ? v : std::min(low, v);
        high = std::max(high, v);
      }
  for (int c = 0; c < cols; ++c) {
    const std::string label = std::to_string(space.heads[static_cast<size_t>(c)]);
    image::draw_text(img, left + c * cell + (cell - image::text_width(label, scale)) / 2, top - line - 2, label, ink, scale);
  }
  for (int r = 0; r < rows; ++r) {
    const std::string label = "layer " + std::to_string(space.layers[static_cast<size_t>(r)]);
    image::draw_text(img, 6, top + r * cell + (cell - line) / 2 + 2, label, ink, scale);
    for (int c = 0; c < cols; ++c) {
      const int64_t v = cells[static_cast<size_t>(r)][static_cast<size_t>(c)];
      const float level = high > low ? static_cast<float>(v - low) / static_cast<float>(high - low) : 1.0f;
      const image::Rgb colour = v < 0 ? grey : image::heat_color(level);
      image::fill_rect(img, left + c * cell + 1, top + r * cell + 1, cell - 2, cell - 2, colour);
      if (v < 0) continue;
      const std::string text = std::to_string(v);
      // Dark text on the bright (yellow-green) end of the ramp, white on the dark end.
      const image::Rgb pen = level > 0.6f ? ink : image::Rgb{255, 255, 255};
      image::draw_text(img, left + c * cell + (cell - image::text_width(text, scale)) / 2,
                    top + r * cell + (cell - line) / 2 + 2, text, pen, scale);
    }
  }
  image::draw_text(img, left, top + rows * cell + 6, "head ->", ink, scale);
  return img;
}

}  // namespace pnpovss::tune
