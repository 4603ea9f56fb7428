#include "pnpovss/image/overlay.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "pnpovss/error.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

namespace pnpovss::image {
namespace {

// stb_easy_font's line advance in font units.
constexpr int kFontLine = 12;
// Glyphs reach at most this far below the top of the line (descenders included).
constexpr int kFontGlyphHeight = 9;

// stb_easy_font indexes a table by (character - 32): keep only printable ASCII, and print one
// '?' per other UTF-8 character (continuation bytes are skipped).
std::string printable(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (u >= 0x20 && u < 0x7F) {
      out += ch;
    } else if ((u & 0xC0) != 0x80) {
      out += '?';
    }
  }
  return out;
}

void check_image(const Image& image) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3)
    throw Error("the image is empty or its pixel buffer does not match its size");
}

void put(Image& image, int x, int y, Rgb c) {
  uint8_t* p = image.rgb.data() + (static_cast<size_t>(y) * image.width + x) * 3;
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

// Legend geometry at one scale.
struct LegendLayout {
  int scale, margin, swatch, gap, spacing, row_height;
  explicit LegendLayout(int s)
      : scale(s), margin(6 * s), swatch(kFontGlyphHeight * s), gap(4 * s), spacing(12 * s), row_height(kFontLine * s) {}
  int entry_width(const std::string& name) const { return swatch + gap + text_width(name, scale); }
};

}  // namespace

int legend_scale(int image_width) { return image_width > 600 ? 3 : 2; }

int text_width(const std::string& text, int scale) {
  std::string t = printable(text);
  return stb_easy_font_width(t.data()) * scale;
}

int text_line_height(int scale) { return kFontLine * scale; }

void draw_text(Image& image, int x, int y, const std::string& text, Rgb color, int scale) {
  check_image(image);
  std::string t = printable(text);
  if (t.empty()) return;
  // stb's estimate is ~270 bytes per character; 4x that leaves room for the densest glyphs.
  std::vector<char> vertices(t.size() * 1024 + 64);
  const int quads = stb_easy_font_print(0, 0, t.data(), nullptr, vertices.data(), static_cast<int>(vertices.size()));
  // Each quad is 4 vertices of 16 bytes (x, y, z as floats, then 4 colour bytes); the quads
  // are axis-aligned rectangles, so the min and max corner define them.
  for (int q = 0; q < quads; ++q) {
    float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
    for (int v = 0; v < 4; ++v) {
      float vx = 0, vy = 0;
      const char* vertex = vertices.data() + (static_cast<size_t>(q) * 4 + v) * 16;
      std::memcpy(&vx, vertex, sizeof vx);
      std::memcpy(&vy, vertex + 4, sizeof vy);
      x0 = std::min(x0, vx);
      x1 = std::max(x1, vx);
      y0 = std::min(y0, vy);
      y1 = std::max(y1, vy);
    }
    const int px0 = x + static_cast<int>(std::lround(x0 * scale));
    const int px1 = x + static_cast<int>(std::lround(x1 * scale));
    const int py0 = y + static_cast<int>(std::lround(y0 * scale));
    const int py1 = y + static_cast<int>(std::lround(y1 * scale));
    fill_rect(image, px0, py0, px1 - px0, py1 - py0, color);
  }
}

void fill_rect(Image& image, int x, int y, int w, int h, Rgb color) {
  check_image(image);
  const int xa = std::max(x, 0), xb = std::min(x + w, image.width);
  const int ya = std::max(y, 0), yb = std::min(y + h, image.height);
  for (int yy = ya; yy < yb; ++yy)
    for (int xx = xa; xx < xb; ++xx) put(image, xx, yy, color);
}

Image blend_labels(const Image& image, const std::vector<int32_t>& labels) {
  check_image(image);
  const size_t count = static_cast<size_t>(image.width) * static_cast<size_t>(image.height);
  if (labels.size() != count) throw Error("the label map does not match the image size");
  Image out = image;
  for (size_t i = 0; i < count; ++i) {
    if (labels[i] <= 0) continue;
    const Rgb c = label_color(labels[i]);
    uint8_t* p = out.rgb.data() + i * 3;
    // Rounded mean, halves up.
    p[0] = static_cast<uint8_t>((p[0] + c.r + 1) / 2);
    p[1] = static_cast<uint8_t>((p[1] + c.g + 1) / 2);
    p[2] = static_cast<uint8_t>((p[2] + c.b + 1) / 2);
  }
  return out;
}

Image overlay_with_legend(const Image& image, const std::vector<int32_t>& labels,
                          const std::vector<LegendEntry>& legend) {
  Image blended = blend_labels(image, labels);
  if (legend.empty()) return blended;
  const LegendLayout L(legend_scale(image.width));
  int width = image.width;
  for (const auto& e : legend) width = std::max(width, L.entry_width(e.name) + 2 * L.margin);
  // Flow layout: entries left to right, a new row when the next one does not fit.
  std::vector<std::pair<int, int>> at;  // (x, row) per entry
  int x = L.margin, row = 0;
  for (const auto& e : legend) {
    const int w = L.entry_width(e.name);
    if (x > L.margin && x + w > width - L.margin) {
      x = L.margin;
      ++row;
    }
    at.emplace_back(x, row);
    x += w + L.spacing;
  }
  const int panel = 2 * L.margin + (row + 1) * L.row_height - (L.row_height - L.swatch);
  Image out;
  out.width = width;
  out.height = image.height + panel;
  out.rgb.assign(static_cast<size_t>(out.width) * out.height * 3, 255);
  for (int y = 0; y < image.height; ++y)
    std::copy_n(blended.rgb.data() + static_cast<size_t>(y) * image.width * 3, static_cast<size_t>(image.width) * 3,
                out.rgb.data() + static_cast<size_t>(y) * out.width * 3);
  const Rgb frame{96, 96, 96}, ink{0, 0, 0};
  const int border = std::max(1, L.scale / 2);
  for (size_t i = 0; i < legend.size(); ++i) {
    const int ex = at[i].first;
    const int ey = image.height + L.margin + at[i].second * L.row_height;
    fill_rect(out, ex, ey, L.swatch, L.swatch, frame);
    fill_rect(out, ex + border, ey + border, L.swatch - 2 * border, L.swatch - 2 * border, legend[i].color);
    draw_text(out, ex + L.swatch + L.gap, ey, legend[i].name, ink, L.scale);
  }
  return out;
}

Rgb heat_color(float v) {
  static const float kStops[5][3] = {
      {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  if (!(v > 0.0f)) v = 0.0f;  // also NaN
  if (v > 1.0f) v = 1.0f;
  const float pos = v * 4.0f;
  const int i = std::min(static_cast<int>(pos), 3);
  const float f = pos - static_cast<float>(i);
  auto mix = [&](int c) {
    return static_cast<uint8_t>(std::lround(kStops[i][c] + (kStops[i + 1][c] - kStops[i][c]) * f));
  };
  return Rgb{mix(0), mix(1), mix(2)};
}

Image heatmap(const float* values, int height, int width, int min_side, bool minmax) {
  if (height <= 0 || width <= 0) throw Error("a heatmap needs at least one value");
  const size_t count = static_cast<size_t>(width) * static_cast<size_t>(height);
  float lo = 0, hi = 1;
  bool any = !minmax;
  for (size_t i = 0; i < count && minmax; ++i) {
    if (!std::isfinite(values[i])) continue;
    lo = any ? std::min(lo, values[i]) : values[i];
    hi = any ? std::max(hi, values[i]) : values[i];
    any = true;
  }
  const int want = std::max(1, min_side);
  int factor = std::max(1, (want + std::min(height, width) - 1) / std::min(height, width));
  factor = std::max(1, std::min(factor, 4096 / std::max(height, width)));
  Image out;
  out.width = width * factor;
  out.height = height * factor;
  out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      const float v = values[static_cast<size_t>(y / factor) * width + x / factor];
      const float n = (hi > lo && std::isfinite(v)) ? (v - lo) / (hi - lo) : 0.0f;
      put(out, x, y, heat_color(n));
    }
  return out;
}

}  // namespace pnpovss::image
