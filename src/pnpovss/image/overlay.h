// Pictures for people: a label map blended over its image with a legend of class names, and
// small score maps as coloured heatmaps. Text is stb_easy_font's vector font, rasterised here
// into the RGB pixels (ASCII only; other characters print as '?').
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pnpovss/image/codec.h"
#include "pnpovss/image/palette.h"

namespace pnpovss::image {

struct LegendEntry {
  std::string name;
  Rgb color;
};

// Font scale of the legend: 2 (12-pixel lines become 24) up to 600 px wide images, 3 above.
int legend_scale(int image_width);
// Size in pixels of one line of `text` at `scale`.
int text_width(const std::string& text, int scale);
int text_line_height(int scale);
// Draws `text` with its top-left corner at (x, y); pixels outside the image are skipped.
void draw_text(Image& image, int x, int y, const std::string& text, Rgb color, int scale);
// Fills the rectangle [x, x+w) x [y, y+h), clipped to the image.
void fill_rect(Image& image, int x, int y, int w, int h, Rgb color);

// Every pixel with a label > 0 becomes the rounded mean of its colour and label_color(label);
// background pixels (label 0) keep the image's colour. `labels` is height x width.
Image blend_labels(const Image& image, const std::vector<int32_t>& labels);

// blend_labels() with a white legend panel appended below: one swatch (with a grey frame, so
// black and white swatches show) and name per entry, laid out left to right in rows. The
// result is as wide as the image, or wider when a single entry needs more room.
Image overlay_with_legend(const Image& image, const std::vector<int32_t>& labels,
                          const std::vector<LegendEntry>& legend);

// A viridis-like ramp through 5 colours for v in [0, 1] (clamped; NaN reads as 0): dark purple
// at 0, blue, teal, green, yellow at 1.
Rgb heat_color(float v);

// `values` (height x width row-major) min-max normalised (a constant map is all 0; with
// `minmax` false the values are taken as they are, clamped to [0, 1]), coloured with heat_color
// and enlarged by pixel repetition (nearest neighbour) by the smallest integer factor that
// makes both sides at least `min_side` pixels (capped so no side passes 4096).
Image heatmap(const float* values, int height, int width, int min_side = 256, bool minmax = true);

}  // namespace pnpovss::image
