// preprocessor_config.json through the three image processors that read it: BLIP's
// (ImagePreprocessConfig, also the normalisation of BridgeTower's), CLIP's and BridgeTower's.
// An accepted config is used the way the models use it: output sizes for a few image shapes,
// and, where the output is small, the preprocessing of a small image.
#include <cstddef>
#include <cstdint>
#include <utility>

#include "common.h"
#include "pnpovss/image/crop.h"
#include "pnpovss/models/blip_preprocess.h"
#include "pnpovss/models/bridgetower_preprocess.h"
#include "pnpovss/models/clip_preprocess.h"

namespace {

using namespace pnpovss;

// Shapes whose aspect ratios reach the limits of the size arithmetic.
constexpr std::pair<int, int> kShapes[] = {{1, 1}, {640, 480}, {3, 4000}, {65536, 1}};
// Output sizes up to this many pixels are preprocessed for real.
constexpr int64_t kSmallOutput = 64 * 64;

Image small_image() {
  Image image;
  image.width = 5;
  image.height = 3;
  for (int i = 0; i < image.width * image.height * 3; ++i) image.rgb.push_back(static_cast<uint8_t>(i * 17));
  return image;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json doc = fuzz::parse_json(std::string(reinterpret_cast<const char*>(data), size));
  if (doc.is_discarded()) return 0;  // read_json_file refuses it before the readers see it
  const Image image = small_image();
  fuzz::accepts([&] {
    const auto config = models::ImagePreprocessConfig::from_json(doc, "preprocessor_config.json");
    fuzz::expect(config.height > 0 && config.width > 0, "an accepted BLIP size is not positive");
    if (int64_t{config.height} * config.width <= kSmallOutput) {
      const std::vector<float> chw = models::preprocess_to_chw(image, config.height, config.width, config);
      fuzz::expect(chw.size() == size_t{3} * config.height * config.width, "BLIP output of the wrong size");
    }
  });
  fuzz::accepts([&] {
    const auto config = models::ClipPreprocessConfig::from_json(doc, "preprocessor_config.json");
    for (const auto& shape : kShapes)
      fuzz::accepts([&] { image::shortest_edge_size(shape.first, shape.second, config.shortest_edge); });
    const int64_t resized = config.shortest_edge > 0 ? int64_t{config.shortest_edge} * config.shortest_edge * 2
                                                     : int64_t{config.resize_height} * config.resize_width;
    if (resized <= kSmallOutput && int64_t{config.crop_height} * config.crop_width <= kSmallOutput) {
      fuzz::accepts([&] {
        const models::PixelPlanes planes = models::clip_preprocess(image, config);
        fuzz::expect(planes.data.size() == size_t{3} * planes.height * planes.width, "CLIP output of the wrong size");
      });
    }
  });
  fuzz::accepts([&] {
    const auto config = models::BridgeTowerPreprocessConfig::from_json(doc, "preprocessor_config.json");
    fuzz::expect(config.crop_side() > 0 && config.size_divisor > 0, "an accepted BridgeTower size is not positive");
    for (const auto& shape : kShapes)
      fuzz::accepts([&] {
        models::bridgetower_resize_size(shape.first, shape.second, config.shortest_edge, config.size_divisor);
      });
    if (int64_t{config.shortest_edge} * config.shortest_edge * 2 <= kSmallOutput &&
        int64_t{config.crop_side()} * config.crop_side() <= kSmallOutput) {
      fuzz::accepts([&] {
        const models::BridgeTowerBatch batch = models::preprocess_bridgetower({image, image}, config, true);
        fuzz::expect(batch.pixels.size() == size_t{2} * 3 * batch.height * batch.width, "BridgeTower output of the wrong size");
      });
    }
  });
  return 0;
}
