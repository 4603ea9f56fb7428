// CLIPImageProcessor (transformers v4.43.4) without libtorch: PIL bicubic resize of the
// shortest edge, centre crop, rescale (float64, then float32) and normalisation (float32).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pnpovss/image/codec.h"

namespace pnpovss::models {

struct ClipPreprocessConfig {
  // size {"shortest_edge": n} (or a plain integer); size {"height", "width"} resizes to exactly
  // that size instead (shortest_edge = 0 then).
  int shortest_edge = 224;
  int resize_height = 0, resize_width = 0;
  int crop_height = 224, crop_width = 224;
  double rescale_factor = 1.0 / 255.0;
  float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};  // OPENAI_CLIP_MEAN
  float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};  // OPENAI_CLIP_STD
  bool do_resize = true, do_center_crop = true, do_rescale = true, do_normalize = true;

  // Parses a preprocessor_config.json; absent fields keep the defaults above. Throws
  // pnpovss::Error naming the file and field for malformed values (and for a resample other
  // than bicubic, the only filter implemented).
  static ClipPreprocessConfig from_file(const std::string& path);
  // The same for a parsed document; `where` names its source in messages.
  static ClipPreprocessConfig from_json(const nlohmann::json& config, const std::string& where);
  // `dir`/preprocessor_config.json when present, the defaults otherwise.
  static ClipPreprocessConfig from_dir(const std::string& dir);
};

// Channel planes of a preprocessed image: 3 x height x width floats (CHW).
struct PixelPlanes {
  int height = 0, width = 0;
  std::vector<float> data;
};

// The processor's pixel_values for one RGB image. Throws pnpovss::Error for an empty image.
PixelPlanes clip_preprocess(const Image& image, const ClipPreprocessConfig& config);

}  // namespace pnpovss::models
