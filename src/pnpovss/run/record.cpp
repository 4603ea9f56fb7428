#include "pnpovss/run/record.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>

#include "pnpovss/image/codec.h"
#include "pnpovss/image/palette.h"
#include "pnpovss/image/png.h"
#include "pnpovss/runtime/placement.h"

namespace pnpovss::run {
namespace {

using ojson = nlohmann::ordered_json;
using runtime::cpu_float;

double rounded(double v, double scale) { return std::round(v * scale) / scale; }

// "#rrggbb".
std::string hex_color(image::Rgb c) {
  char text[8];
  std::snprintf(text, sizeof text, "#%02x%02x%02x", c.r, c.g, c.b);
  return text;
}

// The record's class list in label order (background first when its channel was used), with
// pixel shares and colours; the legend gets the classes that cover pixels.
ojson class_list(const Outcome& o, const PromptClasses& classes, int max_label, std::vector<image::LegendEntry>& legend) {
  std::vector<int64_t> counts(static_cast<size_t>(max_label) + 1, 0);
  for (int32_t v : o.labels) ++counts[static_cast<size_t>(v)];
  std::vector<std::pair<int32_t, std::string>> present;
  if (o.result.has_background) present.emplace_back(0, segment::kBackgroundName);
  std::vector<std::pair<int32_t, std::string>> sorted;
  for (size_t k = 0; k < classes.names.size(); ++k) sorted.emplace_back(classes.labels[k], classes.names[k]);
  std::sort(sorted.begin(), sorted.end());
  present.insert(present.end(), sorted.begin(), sorted.end());

  const double pixels = static_cast<double>(o.labels.size());
  ojson list = ojson::array();
  for (const auto& [label, name] : present) {
    const image::Rgb c = image::label_color(label);
    const int64_t n = counts[static_cast<size_t>(label)];
    list.push_back({{"label", label},
                    {"name", name},
                    {"pixel_share", rounded(static_cast<double>(n) / pixels, 1e6)},
                    {"color", hex_color(c)}});
    if (n > 0) legend.push_back({name, c});
  }
  return list;
}

Bytes heatmap_png(const torch::Tensor& map2d, bool minmax = true) {
  const torch::Tensor m = cpu_float(map2d);
  return image::encode_png_rgb(image::heatmap(m.data_ptr<float>(), static_cast<int>(m.size(0)),
                                              static_cast<int>(m.size(1)), 256, minmax),
                               "a heatmap");
}

// `map2d` scaled to 0..1 (all 0 when flat), row-major.
std::vector<float> unit_scaled(const torch::Tensor& map2d) {
  torch::Tensor m = cpu_float(map2d).flatten();
  const float lo = m.min().item<float>(), hi = m.max().item<float>();
  m = hi > lo ? (m - lo) / (hi - lo) : torch::zeros_like(m);
  m = m.contiguous();
  return std::vector<float>(m.data_ptr<float>(), m.data_ptr<float>() + m.numel());
}

}  // namespace

ojson record_identity(const RunIdentity& run, const std::string& image_path, const std::string& image_sha256,
                      const std::vector<std::string>& names, const std::vector<int32_t>& labels) {
  ojson prompt = ojson::array();
  for (size_t k = 0; k < names.size() && k < labels.size(); ++k) prompt.push_back({{"label", labels[k]}, {"name", names[k]}});
  ojson identity;
  identity["image"] = image_path;
  identity["image_sha256"] = image_sha256;
  identity["model"] = run.model;
  identity["device"] = run.device;
  identity["version"] = run.version;
  identity["prompt"] = prompt;
  identity["settings"] = run.settings;
  return identity;
}

ImageOutputs image_outputs(const RunIdentity& run, const std::string& image_name, const Item& item,
                           const Outcome& o, int max_label) {
  const Image& image = pixels_of(item, o);
  ImageOutputs out;
  out.labels_png = image::encode_label_png(o.labels, image.width, image.height, max_label);
  std::vector<image::LegendEntry> legend;
  const ojson classes = class_list(o, item.classes, max_label, legend);
  out.overlay_png = image::encode_png_rgb(image::overlay_with_legend(image, o.labels, legend), "the overlay");
  out.record = record_identity(run, image_name, o.image_sha256, item.classes.names, item.classes.labels);
  out.record["width"] = image.width;
  out.record["height"] = image.height;
  out.record["classes"] = classes;
  return out;
}

ojson stage_timings(const Outcome& o, double outputs_seconds, std::optional<double> queue_seconds) {
  ojson timings;
  if (queue_seconds) timings["queue"] = rounded(*queue_seconds, 1e4);
  timings["decode"] = rounded(o.decode_seconds, 1e4);
  for (const auto& stage : o.result.timings) timings[stage.stage] = rounded(stage.seconds, 1e4);
  timings["outputs"] = rounded(outputs_seconds, 1e4);
  timings["total"] = rounded(queue_seconds.value_or(0) + o.decode_seconds + o.model_seconds + outputs_seconds, 1e4);
  return timings;
}

ExplainMaps explain_maps(const segment::SegmentationResult& r, const PromptClasses& classes) {
  ExplainMaps maps;
  const auto& iterations = r.dropout.iterations;
  maps.iterations = static_cast<int>(iterations.size());
  maps.grid = r.dropout.final_maps.defined() ? static_cast<int>(r.dropout.final_maps.size(-1)) : 0;
  for (size_t k = 0; k < classes.names.size(); ++k) {
    const auto row = static_cast<int64_t>(k);
    ClassMaps c;
    c.label = classes.labels[k];
    c.name = classes.names[k];
    if (!iterations.empty()) {
      // The attention itself, before GradCAM: iteration 0's rows of the class's wordpieces.
      const segment::ClassSpan span = r.prompt.spans[k];
      c.attention = heatmap_png(cpu_float(iterations[0].attn_probs).slice(0, span.begin, span.end).mean(0));
    }
    for (const auto& iteration : iterations) c.gradcam.push_back(heatmap_png(iteration.class_maps[row]));
    c.final_map = heatmap_png(r.dropout.final_maps[row]);
    c.score_grid = unit_scaled(r.dropout.final_maps[row]);
    maps.classes.push_back(std::move(c));
  }
  for (const auto& iteration : iterations) {
    torch::Tensor m = cpu_float(iteration.dropped_before) * 0.5f;
    float* p = m.data_ptr<float>();
    for (int64_t idx : iteration.new_dropped)
      if (idx >= 0 && idx < m.numel()) p[idx] = 1.0f;
    maps.dropped.push_back(heatmap_png(m, false));
  }
  return maps;
}

}  // namespace pnpovss::run
