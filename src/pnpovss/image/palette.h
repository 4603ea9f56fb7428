// The fixed label colours of every image pnp-ovss writes (label PNG palettes, overlays,
// legends). Label 0 (background) is black; label k > 0 gets the colour of the bit-interleaved
// scheme used by PASCAL VOC's annotation PNGs: bit j of k (from the low end) goes to bit 7 - j/3
// of red, green or blue (j % 3 = 0, 1, 2). So 1 = (128, 0, 0), 2 = (0, 128, 0), 3 = (128, 128, 0),
// 4 = (0, 0, 128), ..., and every label below 2^24 has its own colour. Users who know VOC's
// colours read our label PNGs the same way.
#pragma once

#include <cstdint>
#include <vector>

namespace pnpovss::image {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
  bool operator!=(const Rgb& o) const { return !(*this == o); }
};

// The colour of `label` (>= 0; negative labels are black).
Rgb label_color(int64_t label);

// `count` palette entries (labels 0..count-1) as r, g, b bytes (3 * count bytes).
std::vector<uint8_t> palette_bytes(int count);

}  // namespace pnpovss::image
