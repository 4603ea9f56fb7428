// What one tuning trial records, without libtorch: which masks were scored and the reward
// they earned. The trials journal (journal.h) reads these back from disk, so they live in the
// tune_core layer, which parses untrusted files and is fuzzed with the other core parsers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pnpovss::tune {

// The masks a reward is computed from (evaluator.h): GradCAM masks of one pass, Salience
// DropOut masks, or the final masks of the whole method.
enum class MaskSource { GradCam, Dropout, Final };
std::string to_string(MaskSource v);
MaskSource parse_mask_source(const std::string& name);  // gradcam | dropout | final

// Per class, the reward summed over images and how many images have the class.
struct ClassCount {
  std::string name;
  int64_t wins = 0;
  int64_t images = 0;
};

// The total over images of one setting.
struct RewardTally {
  int64_t reward = 0;        // sum of wins
  int64_t max_reward = 0;    // sum of K(I): every mask winning
  std::vector<ClassCount> per_class;  // in first-seen order

  void add(const std::vector<std::string>& classes, const std::vector<bool>& wins);
};

}  // namespace pnpovss::tune
