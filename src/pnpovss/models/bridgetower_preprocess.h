// BridgeTower's image processor (Hugging Face BridgeTowerImageProcessor, transformers v4.43.4):
// resize so that the short side is `shortest_edge` and the long side at most
// int(1333 / 800 * shortest_edge), round each side (int(x + 0.5)) and floor it to a multiple of
// `size_divisor`; optionally centre-crop to a square (zero-padding in pixel space when the
// image is smaller); rescale and normalise; pad the batch at the bottom and right with zeros
// (in normalised space) to its largest size, with a pixel mask (1 = image, 0 = padding).
//
// Quirk kept: v4.43.4's preprocess() ignores the configured do_center_crop (the line has no
// assignment), so only an explicit request crops; BridgeTowerProcessor always requests it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pnpovss/image/codec.h"
#include "pnpovss/models/blip_preprocess.h"

namespace pnpovss::models {

struct BridgeTowerPreprocessConfig {
  int shortest_edge = 288;
  int size_divisor = 32;
  int crop_size = 0;  // side of the square crop; 0: shortest_edge (crop_size null)
  bool do_resize = true, do_pad = true;
  // Rescale factor, mean, std and their switches (CLIP's mean and std by default).
  ImagePreprocessConfig normalisation;

  // Parses a preprocessor_config.json; absent fields keep the defaults. Throws pnpovss::Error
  // naming the file and field for malformed values.
  static BridgeTowerPreprocessConfig from_file(const std::string& path);
  // The same for a parsed document; `where` names its source in messages.
  static BridgeTowerPreprocessConfig from_json(const nlohmann::json& config, const std::string& where);
  int crop_side() const { return crop_size > 0 ? crop_size : shortest_edge; }
};

// The resized {width, height} of a width x height image (get_resize_output_image_size with
// shorter = shortest_edge, longer = int(1333 / 800 * shortest_edge)). Throws pnpovss::Error when
// a side would become 0 (shortest_edge below size_divisor, or an extreme aspect ratio).
std::pair<int, int> bridgetower_resize_size(int width, int height, int shortest_edge, int size_divisor);

// A preprocessed batch: pixels [batch, 3, height, width] and mask [batch, height, width], row-major.
struct BridgeTowerBatch {
  std::vector<float> pixels;
  std::vector<int64_t> mask;
  int batch = 0, height = 0, width = 0;
};

// Preprocesses `images` as the processor does, with the centre crop when `center_crop` is true.
// Throws pnpovss::Error for an empty batch or an empty image.
BridgeTowerBatch preprocess_bridgetower(const std::vector<Image>& images, const BridgeTowerPreprocessConfig& config,
                                        bool center_crop);

}  // namespace pnpovss::models
