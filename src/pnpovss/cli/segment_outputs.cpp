#include "pnpovss/cli/segment_outputs.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/overlay.h"
#include "pnpovss/image/palette.h"
#include "pnpovss/image/png.h"
#include "pnpovss/io/file_write.h"
#include "pnpovss/io/safetensors.h"
#include "pnpovss/runtime/placement.h"
#include "pnpovss/runtime/tensor_bridge.h"

namespace pnpovss::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using ojson = nlohmann::ordered_json;
using runtime::cpu_float;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double rounded(double v, double scale) { return std::round(v * scale) / scale; }

// Letters, digits, '-' and '_' of a class name, the rest as '_' (file names of heatmaps).
std::string file_safe(const std::string& name) {
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    out += (std::isalnum(u) && u < 0x80) || c == '-' || c == '_' ? c : '_';
  }
  return out;
}

// "#rrggbb".
std::string hex_color(image::Rgb c) {
  char text[8];
  std::snprintf(text, sizeof text, "#%02x%02x%02x", c.r, c.g, c.b);
  return text;
}

// `minmax` false: the values are already in [0, 1] and keep their meaning across files.
void write_heatmap(const std::string& path, const torch::Tensor& map2d, bool minmax = true) {
  const torch::Tensor m = cpu_float(map2d);
  image::write_png_rgb(path, image::heatmap(m.data_ptr<float>(), static_cast<int>(m.size(0)),
                                            static_cast<int>(m.size(1)), 256, minmax));
}

// Per class, a file name: the class name made safe, with the label added when two collide.
std::vector<std::string> heatmap_names(const run::PromptClasses& classes) {
  std::vector<std::string> files;
  std::set<std::string> used;
  for (size_t k = 0; k < classes.names.size(); ++k) {
    std::string f = file_safe(classes.names[k]);
    if (f.empty() || !used.insert(f).second) f += "_" + std::to_string(classes.labels[k]);
    used.insert(f);
    files.push_back(f);
  }
  return files;
}

// --save-maps: every intermediate tensor, and per class the maps a person looks at first.
void save_maps(const std::string& base, const segment::SegmentationResult& r, const run::PromptClasses& classes,
               const ojson& record) {
  std::vector<std::pair<std::string, torch::Tensor>> named = r.named_tensors();
  std::vector<io::TensorView> views;
  for (auto& [name, tensor] : named) {
    tensor = tensor.detach().to(torch::kCPU).contiguous();
    views.push_back(runtime::view_of(name, tensor));
  }
  io::write_safetensors(base + ".maps.safetensors", views, {{"pnp_ovss", record.dump()}});

  const std::string dir = base + ".maps";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create '" + dir + "': " + ec.message());
  const std::vector<std::string> files = heatmap_names(classes);
  const auto& iterations = r.dropout.iterations;
  for (size_t k = 0; k < files.size(); ++k) {
    const std::string file = dir + "/" + files[k];
    if (!iterations.empty()) {
      // The attention itself, before GradCAM: iteration 0's rows of the class's wordpieces.
      const segment::ClassSpan span = r.prompt.spans[k];
      write_heatmap(file + ".attn.png", cpu_float(iterations[0].attn_probs).slice(0, span.begin, span.end).mean(0));
    }
    for (size_t t = 0; t < iterations.size(); ++t)
      write_heatmap(file + ".iter" + std::to_string(t) + ".gradcam.png",
                    iterations[t].class_maps[static_cast<int64_t>(k)]);
    write_heatmap(file + ".final.png", r.dropout.final_maps[static_cast<int64_t>(k)]);
  }
  // Dropped patches are shared by all classes: 0 kept, 0.5 zeroed in this iteration's input,
  // 1 chosen by this iteration (zeroed from the next one on).
  for (size_t t = 0; t < iterations.size(); ++t) {
    torch::Tensor m = cpu_float(iterations[t].dropped_before) * 0.5f;
    float* p = m.data_ptr<float>();
    for (int64_t idx : iterations[t].new_dropped)
      if (idx >= 0 && idx < m.numel()) p[idx] = 1.0f;
    write_heatmap(dir + "/dropped.iter" + std::to_string(t) + ".png", m, false);
  }
}

// The record's class list in label order (background first when its channel was used), with
// pixel shares and colours; the legend gets the classes that cover pixels.
ojson class_list(const run::Outcome& o, const run::PromptClasses& classes, int max_label,
                 std::vector<image::LegendEntry>& legend) {
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

}  // namespace

std::vector<std::string> output_files(const OutputPlan& plan, const std::string& name) {
  const std::string base = plan.dir + "/" + name;
  std::vector<std::string> files = {base + ".labels.png", base + ".overlay.png"};
  if (plan.save_maps) {
    files.push_back(base + ".maps.safetensors");
    files.push_back(base + ".maps");
  }
  files.push_back(base + ".json");
  return files;
}

void write_outputs(const OutputPlan& plan, const RunIdentity& run, const std::string& name, const run::Item& item,
                   const run::Outcome& o) {
  const auto start = Clock::now();
  const Image& image = o.image;
  const std::string base = plan.dir + "/" + name;
  io::write_file_atomic(base + ".labels.png", image::encode_label_png(o.labels, image.width, image.height, plan.max_label));
  std::vector<image::LegendEntry> legend;
  const ojson classes = class_list(o, item.classes, plan.max_label, legend);
  image::write_png_rgb(base + ".overlay.png", image::overlay_with_legend(image, o.labels, legend));

  ojson record = record_identity(run, item.path, o.image_sha256, item.classes.names, item.classes.labels);
  record["width"] = image.width;
  record["height"] = image.height;
  record["classes"] = classes;
  if (plan.save_maps) save_maps(base, o.result, item.classes, record);

  ojson timings;
  timings["decode"] = rounded(o.decode_seconds, 1e4);
  for (const auto& stage : o.result.timings) timings[stage.stage] = rounded(stage.seconds, 1e4);
  timings["outputs"] = rounded(seconds_since(start), 1e4);
  timings["total"] = rounded(o.decode_seconds + o.model_seconds + seconds_since(start), 1e4);
  record["timings"] = timings;
  io::write_file_atomic(base + ".json", record.dump(2) + "\n");
}

}  // namespace pnpovss::cli
