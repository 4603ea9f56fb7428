#include "pnpovss/cli/segment_outputs.h"

#include <torch/torch.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "pnpovss/error.h"
#include "pnpovss/io/file_write.h"
#include "pnpovss/io/safetensors.h"
#include "pnpovss/runtime/tensor_bridge.h"

namespace pnpovss::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using ojson = nlohmann::ordered_json;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Letters, digits, '-' and '_' of a class name, the rest as '_' (file names of heatmaps).
std::string file_safe(const std::string& name) {
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    out += (std::isalnum(u) && u < 0x80) || c == '-' || c == '_' ? c : '_';
  }
  return out;
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
  const run::ExplainMaps maps = run::explain_maps(r, classes);
  const std::vector<std::string> files = heatmap_names(classes);
  for (size_t k = 0; k < files.size(); ++k) {
    const std::string file = dir + "/" + files[k];
    const run::ClassMaps& c = maps.classes[k];
    if (!c.attention.empty()) io::write_file_atomic(file + ".attn.png", c.attention);
    for (size_t t = 0; t < c.gradcam.size(); ++t) io::write_file_atomic(file + ".iter" + std::to_string(t) + ".gradcam.png", c.gradcam[t]);
    io::write_file_atomic(file + ".final.png", c.final_map);
  }
  for (size_t t = 0; t < maps.dropped.size(); ++t)
    io::write_file_atomic(dir + "/dropped.iter" + std::to_string(t) + ".png", maps.dropped[t]);
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

void remove_stale_map_temporaries(const std::string& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->path().extension() == ".maps" && it->is_directory(type_ec) && !it->is_symlink(type_ec))
      io::remove_stale_temporaries(it->path().string());
  }
}

void write_outputs(const OutputPlan& plan, const run::RunIdentity& run, const std::string& name,
                   const run::Item& item, const run::Outcome& o) {
  const auto start = Clock::now();
  const std::string base = plan.dir + "/" + name;
  run::ImageOutputs out = run::image_outputs(run, item.path, item, o, plan.max_label);
  io::write_file_atomic(base + ".labels.png", out.labels_png);
  io::write_file_atomic(base + ".overlay.png", out.overlay_png);
  if (plan.save_maps) save_maps(base, o.result, item.classes, out.record);
  out.record["timings"] = run::stage_timings(o, seconds_since(start));
  io::write_file_atomic(base + ".json", out.record.dump(2) + "\n");
}

}  // namespace pnpovss::cli
