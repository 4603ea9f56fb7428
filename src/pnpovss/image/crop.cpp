#include "pnpovss/image/crop.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "pnpovss/error.h"

namespace pnpovss::image {

std::pair<int, int> shortest_edge_size(int width, int height, int size) {
  if (width <= 0 || height <= 0 || size <= 0)
    throw Error("shortest-edge resize of a " + std::to_string(width) + "x" + std::to_string(height) +
                " image to " + std::to_string(size) + ": sizes must be positive");
  const int short_side = std::min(width, height), long_side = std::max(width, height);
  // Python's int(size * long / short): true division in double precision, then truncation.
  const double scaled = static_cast<double>(size) * static_cast<double>(long_side) / static_cast<double>(short_side);
  if (scaled > 65536.0 * 16)
    throw Error("shortest-edge resize of a " + std::to_string(width) + "x" + std::to_string(height) +
                " image to " + std::to_string(size) + " gives an unreasonably long side");
  const int new_long = static_cast<int>(scaled);
  return width <= height ? std::make_pair(size, new_long) : std::make_pair(new_long, size);
}

Image center_crop(const Image& image, int crop_width, int crop_height) {
  if (crop_width <= 0 || crop_height <= 0)
    throw Error("centre crop to " + std::to_string(crop_width) + "x" + std::to_string(crop_height) +
                ": the crop size must be positive");
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3)
    throw Error("centre crop of an empty or malformed image");
  // Padding (zeros) to at least the crop size, the larger share before the image.
  const int padded_w = std::max(image.width, crop_width), padded_h = std::max(image.height, crop_height);
  const int pad_left = (padded_w - image.width + 1) / 2, pad_top = (padded_h - image.height + 1) / 2;
  const int left = (padded_w - crop_width) / 2, top = (padded_h - crop_height) / 2;
  Image out;
  out.width = crop_width;
  out.height = crop_height;
  out.rgb.assign(static_cast<size_t>(crop_width) * static_cast<size_t>(crop_height) * 3, 0);
  for (int y = 0; y < crop_height; ++y) {
    const int sy = y + top - pad_top;
    if (sy < 0 || sy >= image.height) continue;
    // Columns of this output row that fall inside the source image.
    const int x0 = std::max(0, pad_left - left), x1 = std::min(crop_width, pad_left - left + image.width);
    if (x1 <= x0) continue;
    const int sx0 = x0 + left - pad_left;
    std::memcpy(&out.rgb[(static_cast<size_t>(y) * crop_width + x0) * 3],
                &image.rgb[(static_cast<size_t>(sy) * image.width + sx0) * 3], static_cast<size_t>(x1 - x0) * 3);
  }
  return out;
}

}  // namespace pnpovss::image
