#include "pnpovss/models/bridgetower_preprocess.h"

#include <algorithm>
#include <cmath>

#include "pnpovss/error.h"
#include "pnpovss/image/crop.h"
#include "pnpovss/image/resize.h"
#include "pnpovss/io/json_file.h"

namespace pnpovss::models {
namespace {

int positive(int64_t value, const std::string& where, const char* what) {
  if (value <= 0 || value > 65536) throw Error(where + ": " + what + " must be a positive integer up to 65536");
  return static_cast<int>(value);
}

// {"shortest_edge": n} or n (get_size_dict(size, default_to_square=False)); 0 when absent.
int read_shortest_edge(const nlohmann::json& config, const char* key, const std::string& where) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return 0;
  if (it->is_number_integer()) return positive(it->get<int64_t>(), where, key);
  if (it->is_object() && it->contains("shortest_edge") && (*it)["shortest_edge"].is_number_integer())
    return positive((*it)["shortest_edge"].get<int64_t>(), where, key);
  throw Error(where + ": field '" + key + "' must be {\"shortest_edge\": N} (BridgeTower resizes and crops by the short side)");
}

}  // namespace

BridgeTowerPreprocessConfig BridgeTowerPreprocessConfig::from_file(const std::string& path) {
  return from_json(io::read_json_file(path), path);
}

BridgeTowerPreprocessConfig BridgeTowerPreprocessConfig::from_json(const nlohmann::json& config,
                                                                   const std::string& path) {
  if (!config.is_object()) throw Error("'" + path + "' must hold a JSON object");
  BridgeTowerPreprocessConfig out;
  out.normalisation = ImagePreprocessConfig::from_json(config, path);
  if (const int edge = read_shortest_edge(config, "size", path)) out.shortest_edge = edge;
  out.crop_size = read_shortest_edge(config, "crop_size", path);
  out.size_divisor = positive(io::json_int(config, "size_divisor", out.size_divisor, path), path, "size_divisor");
  out.do_resize = io::json_bool(config, "do_resize", out.do_resize, path);
  out.do_pad = io::json_bool(config, "do_pad", out.do_pad, path);
  return out;
}

std::pair<int, int> bridgetower_resize_size(int width, int height, int shortest_edge, int size_divisor) {
  if (width <= 0 || height <= 0 || shortest_edge <= 0 || size_divisor <= 0)
    throw Error("BridgeTower resize of a " + std::to_string(width) + "x" + std::to_string(height) +
                " image: sizes must be positive");
  // Python float arithmetic, as get_resize_output_image_size does it.
  const double min_size = shortest_edge;
  const double max_size = static_cast<int>(1333.0 / 800.0 * shortest_edge);
  const double scale = min_size / std::min(width, height);
  double new_h = height < width ? min_size : scale * height;
  double new_w = height < width ? scale * width : min_size;
  if (std::max(new_h, new_w) > max_size) {
    const double shrink = max_size / std::max(new_h, new_w);
    new_h *= shrink;
    new_w *= shrink;
  }
  const int h = static_cast<int>(new_h + 0.5) / size_divisor * size_divisor;
  const int w = static_cast<int>(new_w + 0.5) / size_divisor * size_divisor;
  if (h <= 0 || w <= 0)
    throw Error("BridgeTower resize of a " + std::to_string(width) + "x" + std::to_string(height) +
                " image to shortest edge " + std::to_string(shortest_edge) + " gives an empty side after flooring to a multiple of " +
                std::to_string(size_divisor));
  return {w, h};
}

BridgeTowerBatch preprocess_bridgetower(const std::vector<Image>& images, const BridgeTowerPreprocessConfig& config,
                                        bool center_crop) {
  if (images.empty()) throw Error("BridgeTower preprocessing: no images");
  // Resize and crop in uint8 (as PIL and the processor do), then rescale and normalise.
  std::vector<Image> sized;
  for (const Image& image : images) {
    if (image.width <= 0 || image.height <= 0) throw Error("BridgeTower preprocessing: empty image");
    Image s = image;
    if (config.do_resize) {
      const auto [w, h] = bridgetower_resize_size(image.width, image.height, config.shortest_edge, config.size_divisor);
      s = image::resize_bicubic_pil(image, w, h);
    }
    if (center_crop) s = image::center_crop(s, config.crop_side(), config.crop_side());
    sized.push_back(std::move(s));
  }
  BridgeTowerBatch out;
  out.batch = static_cast<int>(sized.size());
  for (const Image& s : sized) {
    out.height = std::max(out.height, s.height);
    out.width = std::max(out.width, s.width);
  }
  if (!config.do_pad)
    for (const Image& s : sized)
      if (s.width != out.width || s.height != out.height)
        throw Error("BridgeTower preprocessing without padding needs images of one size");
  const size_t plane = static_cast<size_t>(out.height) * out.width;
  out.pixels.assign(static_cast<size_t>(out.batch) * 3 * plane, 0.0f);  // padding: 0 after normalisation
  out.mask.assign(static_cast<size_t>(out.batch) * plane, 0);
  ImagePreprocessConfig norm = config.normalisation;
  norm.do_resize = false;
  for (int b = 0; b < out.batch; ++b) {
    const Image& s = sized[b];
    const std::vector<float> chw = preprocess_to_chw(s, s.height, s.width, norm);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < s.height; ++y)
        std::copy_n(&chw[(static_cast<size_t>(c) * s.height + y) * s.width], s.width,
                    &out.pixels[((static_cast<size_t>(b) * 3 + c) * out.height + y) * out.width]);
    for (int y = 0; y < s.height; ++y)
      std::fill_n(&out.mask[(static_cast<size_t>(b) * out.height + y) * out.width], s.width, 1);
  }
  return out;
}

}  // namespace pnpovss::models
