// Turning a decoded image into model input, with the arithmetic of Hugging Face's
// BlipImageProcessor: PIL bicubic resize, rescale in float64 then float32, normalize in float32.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pnpovss/image/codec.h"

namespace pnpovss::models {

struct ImagePreprocessConfig {
  // Target size (BlipImageProcessor's size {"height", "width"}; a shortest_edge size means a
  // square of that side).
  int height = 384, width = 384;
  double rescale_factor = 1.0 / 255.0;
  // OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, the BlipImageProcessor defaults.
  float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  bool do_resize = true, do_rescale = true, do_normalize = true;

  // Parses a preprocessor_config.json; absent fields keep the defaults above. Throws
  // pnpovss::Error naming the file and field for malformed values.
  static ImagePreprocessConfig from_file(const std::string& path);
  // The same for a parsed document; `where` names its source in messages.
  static ImagePreprocessConfig from_json(const nlohmann::json& config, const std::string& where);
};

// Returns 3 x height x width floats (CHW): `img` resized with PIL's bicubic filter to exactly
// height x width (aspect ratio not kept), x = float(double(u8) * rescale_factor), then
// (x - mean) / std in float32. Without do_resize the image must already have that size.
std::vector<float> preprocess_to_chw(const Image& img, int height, int width, const ImagePreprocessConfig& config);

}  // namespace pnpovss::models
