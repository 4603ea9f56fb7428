#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "pnpovss/cli/commands.h"
#include "pnpovss/cpu/cpu_info.h"
#include "pnpovss/hub/model_location.h"
#include "pnpovss/io/checkpoint.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/models/blip_itm.h"
#include "pnpovss/models/bridgetower_itm.h"
#include "pnpovss/models/clip_model.h"

namespace pnpovss::cli {
namespace {

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

std::string thousands(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

// "cpu ..." with the vector instructions and the BLAS, and a note when the BLAS runs slow.
std::string cpu_summary() {
  const cpu::CpuInfo cpu = cpu::cpu_info();
  std::string text = "cpu         " + cpu.vectors + " vectors, BLAS " + cpu.blas + "\n";
  if (!cpu.blas_warning.empty()) text += "note:       " + cpu.blas_warning + "\n";
  return text;
}

// The last lines of every model's report: tensors, dtypes and bytes on disk, parameters.
std::string weights_summary(const io::Checkpoint& checkpoint, int64_t params) {
  std::map<std::string, int64_t> dtypes;
  double file_bytes = 0;
  size_t tensors = 0;
  for (const auto& f : checkpoint.files()) {
    file_bytes += static_cast<double>(f.file()->size());
    for (const auto& t : f.tensors()) {
      dtypes[io::dtype_name(t.dtype)] += t.numel();
      ++tensors;
    }
  }
  std::string dtype_list;
  for (const auto& [name, count] : dtypes) dtype_list += (dtype_list.empty() ? "" : ", ") + name;
  std::ostringstream out;
  out << "weights     " << tensors << " tensors, " << dtype_list << " on disk, " << gib(file_bytes) << " in "
      << checkpoint.files().size() << " file(s), memory-mapped\n"
      << "parameters  " << thousands(params) << " (" << gib(static_cast<double>(params) * 4) << " as float32)\n"
      << "compute     float32 on CPU (segment, eval and tune take --device and --dtype)\n"
      << cpu_summary();
  return out.str();
}

// A CLIP checkpoint (model_type "clip"): the towers, the shared embedding and the weights.
int run_clip_info(const std::string& dir) {
  const auto checkpoint = io::Checkpoint::open_dir(dir);
  const auto model = models::ClipModel::from_tensors(models::ClipConfig::from_file(dir + "/config.json"),
                                                     runtime::load_float_tensors(checkpoint), checkpoint.description());
  const auto& c = model.config();
  const int64_t params = model.parameter_count();
  const auto& v = c.vision;
  const auto& t = c.text;
  std::cout << "model       " << dir << "\n"
            << "type        CLIPModel (model_type " << c.model_type << ")\n"
            << "vision      ViT: " << v.num_hidden_layers << " layers, width " << v.hidden_size << ", "
            << v.num_attention_heads << " heads, MLP " << v.intermediate_size << ", patch " << v.patch_size
            << ", image " << v.image_size << " (" << v.grid() << "x" << v.grid() << " grid), " << v.hidden_act << "\n"
            << "text        causal transformer: " << t.num_hidden_layers << " layers, width " << t.hidden_size << ", "
            << t.num_attention_heads << " heads, MLP " << t.intermediate_size << ", vocab " << t.vocab_size
            << ", at most " << t.max_position_embeddings << " tokens\n"
            << "heads       projections to " << c.projection_dim << ", logit scale " << model.logit_scale() << "\n"
            << weights_summary(checkpoint, params);
  return 0;
}

// A BridgeTower ITM checkpoint (model_type "bridgetower"): both towers, the cross-modal
// encoder whose text-to-image attention the method reads, and the weights.
int run_bridgetower_info(const std::string& dir) {
  const auto checkpoint = io::Checkpoint::open_dir(dir);
  const auto model = models::BridgeTowerItm::from_tensors(models::BridgeTowerConfig::from_file(dir + "/config.json"),
                                                          runtime::load_float_tensors(checkpoint), checkpoint.description());
  const auto& c = model.config();
  const int64_t params = model.parameter_count();
  const auto& v = c.vision;
  const auto& t = c.text;
  std::cout << "model       " << dir << "\n"
            << "type        BridgeTowerForImageAndTextRetrieval (model_type " << c.model_type << ")\n"
            << "vision      CLIP ViT: " << v.num_blocks() << " blocks, width " << v.hidden_size << ", " << v.num_heads()
            << " heads, patch " << v.patch_size << ", image " << v.image_size << " (" << v.grid() << "x" << v.grid()
            << " grid)\n"
            << "text        RoBERTa: " << t.num_hidden_layers << " layers, width " << t.hidden_size << ", "
            << t.num_attention_heads << " heads, MLP " << t.intermediate_size << ", vocab " << t.vocab_size << "\n"
            << "cross-modal " << c.num_hidden_layers << " layers (text and image), width " << c.hidden_size << ", "
            << t.num_attention_heads << " heads; bridged from unimodal layer " << c.split_index() << " on\n"
            << "heads       ITM (2 logits)\n"
            << weights_summary(checkpoint, params);
  return 0;
}

int run_info(const std::string& spec) {
  const std::string dir = hub::resolve_model_dir(spec);
  if (io::file_exists(dir + "/config.json")) {
    const nlohmann::json config = io::read_json_file(dir + "/config.json");
    if (config.is_object() && config.value("model_type", std::string()) == "bridgetower")
      return run_bridgetower_info(dir);
    if (models::is_clip_config(config)) return run_clip_info(dir);
  }
  // The checkpoint is opened once: for the model and for the dtypes and sizes on disk.
  const auto checkpoint = io::Checkpoint::open_dir(dir);
  const auto model = models::BlipItm::from_tensors(models::BlipConfig::from_file(dir + "/config.json"),
                                                   runtime::load_float_tensors(checkpoint), checkpoint.description());
  const auto& c = model.config();
  const int64_t params = model.parameter_count();
  const auto& v = c.vision;
  const auto& t = c.text;
  std::cout << "model       " << dir << "\n"
            << "type        BlipForImageTextRetrieval (model_type " << c.model_type << ")\n"
            << "vision      ViT: " << v.num_hidden_layers << " layers, width " << v.hidden_size << ", "
            << v.num_attention_heads << " heads, MLP " << v.intermediate_size << ", patch " << v.patch_size
            << ", image " << v.image_size << " (" << v.grid() << "x" << v.grid() << " grid), LN eps "
            << v.layer_norm_eps << "\n"
            << "text        BERT with cross-attention: " << t.num_hidden_layers << " layers, width "
            << t.hidden_size << ", " << t.num_attention_heads << " heads, MLP " << t.intermediate_size
            << ", vocab " << t.vocab_size << ", at most " << t.max_position_embeddings << " tokens\n"
            << "heads       ITM (2 logits), ITC projections to " << c.image_text_hidden_size << "\n"
            << weights_summary(checkpoint, params);
  return 0;
}

}  // namespace

Command add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print a model's type, sizes, dtype, parameter count and memory.");
  auto model = std::make_shared<std::string>(kDefaultModel);
  cmd->add_option("MODEL", *model, "model directory, or hub id org/name[@revision] (downloaded into the Hugging Face cache once)")
      ->capture_default_str();
  return [model]() { return run_info(*model); };
}

}  // namespace pnpovss::cli
