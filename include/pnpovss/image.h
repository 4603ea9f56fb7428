// An 8-bit RGB image in memory, as every part of pnp-ovss takes it, and reading one from a file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pnpovss {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height x width x 3, row-major (HWC)
};

// Largest accepted image, in pixels (width * height): 2^28, about 268 megapixels.
constexpr int64_t kMaxImagePixels = int64_t{1} << 28;

// Decodes a JPEG, PNG or BMP file to RGB as PIL's Image.open(path).convert("RGB") does (alpha
// dropped, EXIF orientation ignored). Throws pnpovss::Error naming the file when it is
// unreadable, unsupported, truncated, empty or larger than kMaxImagePixels.
Image read_image(const std::string& path);

}  // namespace pnpovss
