#include "pnpovss/models/blip_preprocess.h"

#include <cmath>

#include "pnpovss/error.h"
#include "pnpovss/image/resize.h"
#include "pnpovss/io/json_file.h"

namespace pnpovss::models {

namespace {

int positive_int(const nlohmann::json& value, const std::string& where, const char* what) {
  if (!value.is_number_integer() || value.get<int64_t>() <= 0 || value.get<int64_t>() > 65536) {
    throw Error(where + ": " + what + " must be a positive integer up to 65536");
  }
  return static_cast<int>(value.get<int64_t>());
}

// size is {"height", "width"}, a plain integer (a square), or {"shortest_edge"}, taken as a
// square because BlipImageProcessor resizes to a fixed size.
void read_size(const nlohmann::json& config, const std::string& where, ImagePreprocessConfig& out) {
  auto it = config.find("size");
  if (it == config.end() || it->is_null()) return;
  if (it->is_number()) {
    out.height = out.width = positive_int(*it, where, "size");
    return;
  }
  if (!it->is_object()) throw Error(where + ": field 'size' must be an object or an integer");
  if (it->contains("height") || it->contains("width")) {
    if (!it->contains("height") || !it->contains("width")) {
      throw Error(where + ": field 'size' needs both 'height' and 'width'");
    }
    out.height = positive_int((*it)["height"], where, "size.height");
    out.width = positive_int((*it)["width"], where, "size.width");
    return;
  }
  if (it->contains("shortest_edge")) {
    out.height = out.width = positive_int((*it)["shortest_edge"], where, "size.shortest_edge");
    return;
  }
  throw Error(where + ": field 'size' must have 'height' and 'width' or 'shortest_edge'");
}

// image_mean / image_std: three numbers, or one number for all channels (as Hugging Face allows).
void read_triple(const nlohmann::json& config, const char* key, const std::string& where, float (&out)[3]) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return;
  if (it->is_number()) {
    out[0] = out[1] = out[2] = static_cast<float>(it->get<double>());
  } else if (it->is_array() && it->size() == 3 && (*it)[0].is_number() && (*it)[1].is_number() &&
             (*it)[2].is_number()) {
    for (size_t c = 0; c < 3; ++c) out[c] = static_cast<float>((*it)[c].get<double>());
  } else {
    throw Error(where + ": field '" + key + "' must be a number or a list of 3 numbers");
  }
  for (float v : out) {
    if (!std::isfinite(v)) throw Error(where + ": field '" + key + "' must hold finite numbers");
  }
}

}  // namespace

ImagePreprocessConfig ImagePreprocessConfig::from_file(const std::string& path) {
  return from_json(io::read_json_file(path), path);
}

ImagePreprocessConfig ImagePreprocessConfig::from_json(const nlohmann::json& config, const std::string& path) {
  if (!config.is_object()) throw Error("'" + path + "' must hold a JSON object");
  ImagePreprocessConfig out;
  read_size(config, path, out);
  out.rescale_factor = io::json_number(config, "rescale_factor", out.rescale_factor, path);
  if (!std::isfinite(out.rescale_factor)) throw Error(path + ": field 'rescale_factor' must be finite");
  read_triple(config, "image_mean", path, out.mean);
  read_triple(config, "image_std", path, out.std);
  for (float s : out.std) {
    if (s == 0.0f) throw Error(path + ": field 'image_std' must not contain 0");
  }
  out.do_resize = io::json_bool(config, "do_resize", out.do_resize, path);
  out.do_rescale = io::json_bool(config, "do_rescale", out.do_rescale, path);
  out.do_normalize = io::json_bool(config, "do_normalize", out.do_normalize, path);
  const int64_t resample = io::json_int(config, "resample", 3, path);
  if (resample != 3) {
    throw Error(path + ": 'resample' is " + std::to_string(resample) +
                "; only bicubic (3), the BLIP and CLIP setting, is implemented");
  }
  return out;
}

std::vector<float> preprocess_to_chw(const Image& img, int height, int width, const ImagePreprocessConfig& config) {
  if (height <= 0 || width <= 0) {
    throw Error("invalid model input size " + std::to_string(height) + "x" + std::to_string(width));
  }
  Image resized;
  const Image* src = &img;
  if (config.do_resize) {
    resized = image::resize_bicubic_pil(img, width, height);
    src = &resized;
  } else if (img.width != width || img.height != height) {
    throw Error("the image is " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                " but the model input is " + std::to_string(width) + "x" + std::to_string(height) +
                " and resizing is disabled (do_resize=false)");
  }
  const size_t plane = static_cast<size_t>(height) * static_cast<size_t>(width);
  std::vector<float> out(3 * plane);
  for (size_t i = 0; i < plane; ++i) {
    for (size_t c = 0; c < 3; ++c) {
      const uint8_t u = src->rgb[i * 3 + c];
      // Hugging Face rescales in float64 and casts to float32, then normalizes in float32.
      float x = config.do_rescale ? static_cast<float>(static_cast<double>(u) * config.rescale_factor)
                                  : static_cast<float>(u);
      if (config.do_normalize) x = (x - config.mean[c]) / config.std[c];
      out[c * plane + i] = x;
    }
  }
  return out;
}

}  // namespace pnpovss::models
