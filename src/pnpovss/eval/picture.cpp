#include "pnpovss/eval/picture.h"

#include <algorithm>
#include <set>

#include "pnpovss/error.h"
#include "pnpovss/image/overlay.h"
#include "pnpovss/image/palette.h"

namespace pnpovss::eval {
namespace {

const image::Rgb kBlack{0, 0, 0};

bool is_class(int32_t v, size_t count) { return v >= 0 && static_cast<size_t>(v) < count; }

// Class colours: those of the labels the classes have in `segment` (colour_labels), or k + 1.
struct Colours {
  const std::vector<int32_t>& labels;
  size_t count;
  image::Rgb of(int32_t v) const {
    if (!is_class(v, count)) return kBlack;
    return image::label_color(labels.empty() ? v + 1 : labels[static_cast<size_t>(v)]);
  }
};

// Paints the label map `labels` (w x h) into `canvas` at column x0, row y0.
void paint_labels(Image& canvas, int x0, int y0, int w, int h, const std::vector<int32_t>& labels,
                  const Colours& colours) {
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const image::Rgb c = colours.of(labels[static_cast<size_t>(y) * w + x]);
      uint8_t* p = &canvas.rgb[(static_cast<size_t>(y0 + y) * canvas.width + x0 + x) * 3];
      p[0] = c.r, p[1] = c.g, p[2] = c.b;
    }
}

// Small images are enlarged by pixel repetition so that the panels and their titles are readable.
constexpr int kMinPanelWidth = 200;

template <typename T>
std::vector<T> enlarge(const std::vector<T>& values, int w, int h, int channels, int factor) {
  std::vector<T> out;
  out.reserve(values.size() * static_cast<size_t>(factor) * factor);
  for (int y = 0; y < h * factor; ++y)
    for (int x = 0; x < w * factor; ++x)
      for (int c = 0; c < channels; ++c)
        out.push_back(values[(static_cast<size_t>(y / factor) * w + x / factor) * channels + c]);
  return out;
}

}  // namespace

Image comparison_picture(const Image& original, const std::vector<int32_t>& gt_original,
                         const std::vector<int32_t>& pred_original, const std::vector<std::string>& class_names,
                         const std::vector<int32_t>& colour_labels) {
  if (!colour_labels.empty() && colour_labels.size() != class_names.size())
    throw Error("comparison picture: one colour label per class is needed");
  const size_t pixels = static_cast<size_t>(original.width) * original.height;
  if (gt_original.size() != pixels || pred_original.size() != pixels)
    throw Error("comparison picture: the label maps do not match the image size");
  const int factor = original.width < kMinPanelWidth ? (kMinPanelWidth + original.width - 1) / original.width : 1;
  Image image;
  image.width = original.width * factor;
  image.height = original.height * factor;
  image.rgb = enlarge(original.rgb, original.width, original.height, 3, factor);
  const std::vector<int32_t> ground_truth = enlarge(gt_original, original.width, original.height, 1, factor);
  const std::vector<int32_t> prediction = enlarge(pred_original, original.width, original.height, 1, factor);
  const int w = image.width, h = image.height;
  const int scale = image::legend_scale(w);
  const int gap = 8 * scale, title = image::text_line_height(scale) + 4 * scale;
  Image canvas;
  canvas.width = 3 * w + 2 * gap;
  canvas.height = h + title;
  canvas.rgb.assign(static_cast<size_t>(canvas.width) * canvas.height * 3, 255);
  const char* titles[3] = {"image", "ground truth", "prediction"};
  for (int i = 0; i < 3; ++i) image::draw_text(canvas, i * (w + gap) + 2 * scale, 2 * scale, titles[i], kBlack, scale);
  for (int y = 0; y < h; ++y)
    std::copy_n(&image.rgb[static_cast<size_t>(y) * w * 3], static_cast<size_t>(w) * 3,
                &canvas.rgb[static_cast<size_t>(y + title) * canvas.width * 3]);
  const size_t count = class_names.size();
  const Colours colours{colour_labels, count};
  paint_labels(canvas, w + gap, title, w, h, ground_truth, colours);
  paint_labels(canvas, 2 * (w + gap), title, w, h, prediction, colours);

  std::set<int32_t> present;
  bool unlabeled = false;
  for (const auto* map : {&ground_truth, &prediction})
    for (int32_t v : *map) {
      if (is_class(v, count))
        present.insert(v);
      else
        unlabeled = true;
    }
  std::vector<image::LegendEntry> legend;
  for (int32_t k : present) legend.push_back({class_names[static_cast<size_t>(k)], colours.of(k)});
  if (unlabeled) legend.push_back({"ignored / no class", kBlack});
  // Label 0 everywhere: the canvas keeps its colours and gets the legend panel below.
  return image::overlay_with_legend(canvas, std::vector<int32_t>(static_cast<size_t>(canvas.width) * canvas.height, 0),
                                 legend);
}

}  // namespace pnpovss::eval
