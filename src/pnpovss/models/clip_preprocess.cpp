#include "pnpovss/models/clip_preprocess.h"

#include <cmath>
#include <tuple>

#include "pnpovss/error.h"
#include "pnpovss/image/crop.h"
#include "pnpovss/image/resize.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"

namespace pnpovss::models {

namespace {

int positive_int(const nlohmann::json& value, const std::string& where, const std::string& what) {
  if (!value.is_number_integer() || value.get<int64_t>() <= 0 || value.get<int64_t>() > 65536)
    throw Error(where + ": " + what + " must be a positive integer up to 65536");
  return static_cast<int>(value.get<int64_t>());
}

// get_size_dict(size, default_to_square=False): an integer or {"shortest_edge"} is a
// shortest-edge size; {"height", "width"} an exact size.
void read_size(const nlohmann::json& config, const std::string& where, ClipPreprocessConfig& out) {
  auto it = config.find("size");
  if (it == config.end() || it->is_null()) return;
  if (it->is_number()) {
    out.shortest_edge = positive_int(*it, where, "size");
    return;
  }
  if (it->is_object() && it->contains("shortest_edge")) {
    out.shortest_edge = positive_int((*it)["shortest_edge"], where, "size.shortest_edge");
    return;
  }
  if (it->is_object() && it->contains("height") && it->contains("width")) {
    out.shortest_edge = 0;
    out.resize_height = positive_int((*it)["height"], where, "size.height");
    out.resize_width = positive_int((*it)["width"], where, "size.width");
    return;
  }
  throw Error(where + ": field 'size' must be an integer, {\"shortest_edge\"} or {\"height\", \"width\"}");
}

// get_size_dict(crop_size, default_to_square=True): an integer is a square.
void read_crop(const nlohmann::json& config, const std::string& where, ClipPreprocessConfig& out) {
  auto it = config.find("crop_size");
  if (it == config.end() || it->is_null()) return;
  if (it->is_number()) {
    out.crop_height = out.crop_width = positive_int(*it, where, "crop_size");
    return;
  }
  if (it->is_object() && it->contains("height") && it->contains("width")) {
    out.crop_height = positive_int((*it)["height"], where, "crop_size.height");
    out.crop_width = positive_int((*it)["width"], where, "crop_size.width");
    return;
  }
  throw Error(where + ": field 'crop_size' must be an integer or {\"height\", \"width\"}");
}

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
  for (float v : out)
    if (!std::isfinite(v)) throw Error(where + ": field '" + key + "' must hold finite numbers");
}

}  // namespace

ClipPreprocessConfig ClipPreprocessConfig::from_file(const std::string& path) {
  return from_json(io::read_json_file(path), path);
}

ClipPreprocessConfig ClipPreprocessConfig::from_json(const nlohmann::json& config, const std::string& path) {
  if (!config.is_object()) throw Error("'" + path + "' must hold a JSON object");
  ClipPreprocessConfig out;
  read_size(config, path, out);
  read_crop(config, path, out);
  out.rescale_factor = io::json_number(config, "rescale_factor", out.rescale_factor, path);
  if (!std::isfinite(out.rescale_factor)) throw Error(path + ": field 'rescale_factor' must be finite");
  read_triple(config, "image_mean", path, out.mean);
  read_triple(config, "image_std", path, out.std);
  for (float s : out.std)
    if (s == 0.0f) throw Error(path + ": field 'image_std' must not contain 0");
  out.do_resize = io::json_bool(config, "do_resize", out.do_resize, path);
  out.do_center_crop = io::json_bool(config, "do_center_crop", out.do_center_crop, path);
  out.do_rescale = io::json_bool(config, "do_rescale", out.do_rescale, path);
  out.do_normalize = io::json_bool(config, "do_normalize", out.do_normalize, path);
  const int64_t resample = io::json_int(config, "resample", 3, path);
  if (resample != 3)
    throw Error(path + ": 'resample' is " + std::to_string(resample) +
                "; only bicubic (3), the CLIP setting, is implemented");
  return out;
}

ClipPreprocessConfig ClipPreprocessConfig::from_dir(const std::string& dir) {
  const std::string path = dir + "/preprocessor_config.json";
  return io::file_exists(path) ? from_file(path) : ClipPreprocessConfig();
}

PixelPlanes clip_preprocess(const Image& image, const ClipPreprocessConfig& config) {
  if (image.width <= 0 || image.height <= 0) throw Error("cannot preprocess an empty image");
  Image current = image;
  if (config.do_resize) {
    int w = config.resize_width, h = config.resize_height;
    if (config.shortest_edge > 0) std::tie(w, h) = image::shortest_edge_size(image.width, image.height, config.shortest_edge);
    current = image::resize_bicubic_pil(current, w, h);
  }
  if (config.do_center_crop) current = image::center_crop(current, config.crop_width, config.crop_height);
  PixelPlanes out;
  out.height = current.height;
  out.width = current.width;
  const size_t plane = static_cast<size_t>(out.height) * static_cast<size_t>(out.width);
  out.data.resize(3 * plane);
  for (size_t i = 0; i < plane; ++i) {
    for (size_t c = 0; c < 3; ++c) {
      const uint8_t u = current.rgb[i * 3 + c];
      // Hugging Face rescales in float64 and casts to float32, then normalizes in float32.
      float x = config.do_rescale ? static_cast<float>(static_cast<double>(u) * config.rescale_factor)
                                  : static_cast<float>(u);
      if (config.do_normalize) x = (x - config.mean[c]) / config.std[c];
      out.data[c * plane + i] = x;
    }
  }
  return out;
}

}  // namespace pnpovss::models
