#include "pnpovss/tune/trial.h"

#include <algorithm>

#include "pnpovss/error.h"

namespace pnpovss::tune {

std::string to_string(MaskSource v) {
  switch (v) {
    case MaskSource::GradCam:
      return "gradcam";
    case MaskSource::Dropout:
      return "dropout";
    case MaskSource::Final:
      return "final";
  }
  return "?";
}

MaskSource parse_mask_source(const std::string& name) {
  if (name == "gradcam") return MaskSource::GradCam;
  if (name == "dropout") return MaskSource::Dropout;
  if (name == "final") return MaskSource::Final;
  throw Error("unknown mask kind '" + name + "' (valid: gradcam, dropout, final)");
}

void RewardTally::add(const std::vector<std::string>& classes, const std::vector<bool>& wins) {
  if (classes.size() != wins.size()) throw Error("reward: one win flag per class expected");
  for (size_t c = 0; c < classes.size(); ++c) {
    auto it = std::find_if(per_class.begin(), per_class.end(),
                           [&](const ClassCount& x) { return x.name == classes[c]; });
    if (it == per_class.end()) {
      per_class.push_back({classes[c], 0, 0});
      it = per_class.end() - 1;
    }
    ++it->images;
    ++max_reward;
    if (wins[c]) {
      ++it->wins;
      ++reward;
    }
  }
}

}  // namespace pnpovss::tune
