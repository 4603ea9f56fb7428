#include "pnpovss/tune/dataset_input.h"

#include "pnpovss/error.h"
#include "pnpovss/eval/label_png.h"

namespace pnpovss::tune {

std::vector<TuneImage> dataset_tune_images(const eval::Dataset& dataset, size_t limit) {
  // Ground-truth values mean classes through the mmseg protocol's tables (void and ignored
  // values map to no class).
  const eval::Scoring scoring = dataset.scoring(eval::Protocol::Mmseg);
  const std::vector<int> prompt = dataset.prompt_classes();
  std::vector<TuneImage> out;
  for (const auto& sample : dataset.samples) {
    if (limit > 0 && out.size() >= limit) break;
    const eval::LabelMap labels = eval::read_label_png(sample.label);
    std::vector<bool> present(static_cast<size_t>(scoring.num_classes()), false);
    for (int32_t v : labels.values) {
      const int32_t c = scoring.gt(v);
      if (c >= 0 && c < scoring.num_classes()) present[static_cast<size_t>(c)] = true;
    }
    TuneImage image;
    image.path = sample.image;
    for (int e : prompt) {
      const int32_t c = scoring.pred(e);
      if (c >= 0 && c < scoring.num_classes() && present[static_cast<size_t>(c)])
        image.classes.push_back(dataset.classes[static_cast<size_t>(e)]);
    }
    if (!image.classes.empty()) out.push_back(std::move(image));
  }
  if (out.empty()) throw Error("dataset '" + dataset.name + "' under '" + dataset.root + "': no image has a class to tune on");
  return out;
}

}  // namespace pnpovss::tune
