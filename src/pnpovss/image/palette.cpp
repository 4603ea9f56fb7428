#include "pnpovss/image/palette.h"

#include <cstddef>

namespace pnpovss::image {

Rgb label_color(int64_t label) {
  Rgb c;
  if (label <= 0) return c;
  int r = 0, g = 0, b = 0;
  uint64_t v = static_cast<uint64_t>(label);
  // Three bits of the label per step, most significant colour bit first, so that small labels
  // get the most different colours.
  for (int shift = 7; shift >= 0 && v != 0; --shift, v >>= 3) {
    r |= static_cast<int>(v & 1) << shift;
    g |= static_cast<int>((v >> 1) & 1) << shift;
    b |= static_cast<int>((v >> 2) & 1) << shift;
  }
  c.r = static_cast<uint8_t>(r);
  c.g = static_cast<uint8_t>(g);
  c.b = static_cast<uint8_t>(b);
  return c;
}

std::vector<uint8_t> palette_bytes(int count) {
  std::vector<uint8_t> out;
  if (count <= 0) return out;
  out.reserve(static_cast<size_t>(count) * 3);
  for (int k = 0; k < count; ++k) {
    const Rgb c = label_color(k);
    out.push_back(c.r);
    out.push_back(c.g);
    out.push_back(c.b);
  }
  return out;
}

}  // namespace pnpovss::image
