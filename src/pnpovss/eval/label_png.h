// Label maps read as raw indices. A label PNG stores one class index per pixel: VOC's as an
// 8-bit palette image (the index is the label, the palette only colours it), the others as
// 8-bit grayscale, ours with more than 255 classes as 16-bit grayscale. Decoders that expand
// palettes to RGB (stb_image, PIL's convert) would turn labels into colours, so this reads the
// samples themselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pnpovss::eval {

struct LabelMap {
  int width = 0, height = 0;
  std::vector<int32_t> values;  // height x width row-major, the stored samples
};

// Decodes a non-interlaced PNG of color type 0 (gray, 1/2/4/8/16 bits) or 3 (palette, 1/2/4/8
// bits) to its raw samples. Throws pnpovss::Error naming `origin` for anything else (RGB,
// alpha, interlacing, a bad CRC, truncated or corrupt data).
LabelMap decode_label_png(const uint8_t* data, size_t size, const std::string& origin);
LabelMap read_label_png(const std::string& path);

}  // namespace pnpovss::eval
