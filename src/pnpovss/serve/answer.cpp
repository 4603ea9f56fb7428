#include "pnpovss/serve/answer.h"

#include <chrono>
#include <cmath>

#include "pnpovss/image/png.h"
#include "pnpovss/util/base64.h"

namespace pnpovss::serve {
namespace {

using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

int max_label(const run::Item& item) { return static_cast<int>(item.classes.names.size()); }

ojson pngs(const std::vector<run::Bytes>& images) {
  ojson list = ojson::array();
  for (const auto& png : images) list.push_back(util::base64_encode(png));
  return list;
}

// Three decimals are finer than a heatmap shows and keep the answer small.
ojson scores(const std::vector<float>& grid) {
  ojson list = ojson::array();
  for (float v : grid) list.push_back(std::round(static_cast<double>(v) * 1000.0) / 1000.0);
  return list;
}

ojson maps_json(const run::ExplainMaps& maps) {
  ojson classes = ojson::array();
  for (const run::ClassMaps& c : maps.classes)
    classes.push_back({{"label", c.label},
                       {"name", c.name},
                       {"attention", util::base64_encode(c.attention)},
                       {"gradcam", pngs(c.gradcam)},
                       {"final", util::base64_encode(c.final_map)},
                       {"score_grid", scores(c.score_grid)}});
  return {{"grid", maps.grid}, {"iterations", maps.iterations}, {"classes", classes}, {"dropped", pngs(maps.dropped)}};
}

}  // namespace

std::string answer_json(const AnsweredImage& a) {
  const auto start = Clock::now();
  run::ImageOutputs out = run::image_outputs(*a.identity, a.item->path, *a.item, *a.outcome, max_label(*a.item));
  ojson answer;
  answer["record"] = std::move(out.record);
  answer["labels_png"] = util::base64_encode(out.labels_png);
  answer["overlay_png"] = util::base64_encode(out.overlay_png);
  if (a.maps) answer["maps"] = maps_json(run::explain_maps(a.outcome->result, a.item->classes));
  // Last, so that "outputs" counts the encoding of everything above.
  answer["record"]["timings"] =
      run::stage_timings(*a.outcome, std::chrono::duration<double>(Clock::now() - start).count(), a.queue_seconds);
  return answer.dump();
}

run::Bytes answer_label_png(const AnsweredImage& a) {
  const Image& image = run::pixels_of(*a.item, *a.outcome);
  return image::encode_label_png(a.outcome->labels, image.width, image.height, max_label(*a.item));
}

}  // namespace pnpovss::serve
