#include "pnpovss/check/pipeline_fixture.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <optional>

#include "pnpovss/check/fixture.h"
#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/segment/blip_backbone.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/text/wordpiece.h"

namespace pnpovss::check {
namespace {

using json = nlohmann::json;
using segment::SegmentationResult;

const json& field(const json& obj, const char* key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key))
    throw Error("pipeline fixture: reference.json has no '" + where + "." + key + "'");
  return obj[key];
}

int int_field(const json& obj, const char* key, const std::string& where) {
  const json& v = field(obj, key, where);
  if (!v.is_number_integer()) throw Error("pipeline fixture: '" + where + "." + key + "' must be an integer");
  return v.get<int>();
}

double number_field(const json& obj, const char* key, const std::string& where) {
  const json& v = field(obj, key, where);
  if (!v.is_number()) throw Error("pipeline fixture: '" + where + "." + key + "' must be a number");
  return v.get<double>();
}

// "preset" when given, else the name quoted in the fixture's "spec" ("..., preset 'official'").
std::string preset_name(const json& ref) {
  if (ref.contains("preset") && ref["preset"].is_string()) return ref["preset"].get<std::string>();
  const std::string spec = ref.value("spec", std::string());
  const std::string marker = "preset '";
  const auto at = spec.find(marker);
  if (at != std::string::npos) {
    const auto begin = at + marker.size();
    const auto end = spec.find('\'', begin);
    if (end != std::string::npos) return spec.substr(begin, end - begin);
  }
  throw Error("pipeline fixture: reference.json names no preset (neither 'preset' nor \"preset '...'\" in 'spec')");
}

std::string model_dir(const std::string& dir, const json& ref) {
  const std::string relative = field(ref, "model_dir", "").get<std::string>();
  return !relative.empty() && relative.front() == '/' ? relative : dir + "/" + relative;
}

std::string image_file(const std::string& dir, const json& ref) {
  std::string file = "input.png";
  if (ref.contains("image") && ref["image"].is_object()) file = ref["image"].value("file", file);
  return dir + "/" + file;
}

// The fixture's method parameters on top of its preset; the fixtures stop before the CRF.
MethodSettings base_settings(const json& ref, const segment::Backbone& backbone) {
  const json& p = field(ref, "parameters", "");
  MethodSettings s = preset(preset_name(ref), "blip");
  s.input_size = int_field(p, "image_size", "parameters");
  if (int_field(p, "patch_size", "parameters") != backbone.patch_size())
    throw Error("pipeline fixture: patch size " + std::to_string(int_field(p, "patch_size", "parameters")) +
                " differs from the model's " + std::to_string(backbone.patch_size()));
  if (p.contains("grid_P") && int_field(p, "grid_P", "parameters") != backbone.grid(s.input_size))
    throw Error("pipeline fixture: grid_P does not match image_size / patch_size");
  if (p.contains("prompt_prefix") && p["prompt_prefix"] != segment::kPromptPrefix)
    throw Error("pipeline fixture: prompt prefix '" + p["prompt_prefix"].dump() + "' is not supported");
  s.attention_layer = int_field(p, "cross_layer_index_0based", "parameters");
  s.attention_head = int_field(p, "head_index_0based", "parameters");
  s.dropout_iterations = int_field(p, "drop_iterations", "parameters");
  if (p.contains("patches_dropped_per_iteration_k"))
    s.dropout_k = int_field(p, "patches_dropped_per_iteration_k", "parameters");
  s.mask_threshold = number_field(p, "threshold", "parameters");
  s.post_blur = number_field(p, "blur_scale", "parameters");
  s.post_mode = Postprocess::Blur;
  return s;
}

// "dataset_rule": a dataset name; or "background_rule": always | never | if_fewer_than_3_classes.
void apply_case_rule(const json& c, MethodSettings& s) {
  if (c.contains("dataset_rule")) {
    apply_dataset_rule(s, parse_dataset_rule(c["dataset_rule"].get<std::string>()));
    return;
  }
  const std::string rule = c.value("background_rule", std::string("auto"));
  if (rule == "if_fewer_than_3_classes") {
    s.background_mode = BackgroundMode::Auto;
    apply_dataset_rule(s, DatasetRule::Context);  // the stuff datasets' rule
  } else {
    s.background_mode = parse_background_mode(rule);
  }
}

struct CaseRun {
  std::string name;
  std::vector<std::string> classes;
  std::vector<int32_t> dataset_labels;
  std::optional<SegmentationResult> result;
  std::map<std::string, torch::Tensor> tensors;
  std::string error;
};

TensorCheck not_computed(const std::string& name, const std::string& why) {
  TensorCheck c;
  c.name = name;
  c.skipped = true;
  c.note = why;
  return c;
}

TensorCheck compare_masked(const std::string& name, const torch::Tensor& got_in, const torch::Tensor& ref_in,
                           const torch::Tensor& skip_in) {
  const torch::Tensor got = got_in.to(torch::kInt64).contiguous();
  const torch::Tensor ref = ref_in.to(torch::kInt64).contiguous();
  if (got.sizes() != ref.sizes()) return shape_mismatch(name, got.sizes().vec(), ref.sizes().vec());
  torch::Tensor skip;
  if (skip_in.defined()) {
    skip = skip_in.to(torch::kUInt8).contiguous();
    if (skip.numel() != got.numel()) return shape_mismatch(name, got.sizes().vec(), skip.sizes().vec());
  }
  return compare_ints_masked(name, got.data_ptr<int64_t>(), ref.data_ptr<int64_t>(),
                             skip.defined() ? skip.data_ptr<uint8_t>() : nullptr, got.numel());
}

// Top-1 minus top-2 channel value per pixel of [C, H, W]; infinite with a single channel.
torch::Tensor top2_gap(const torch::Tensor& blurred) {
  if (blurred.size(0) < 2) return torch::full({blurred.size(1), blurred.size(2)}, INFINITY);
  const torch::Tensor top = std::get<0>(blurred.topk(2, 0));
  return top[0] - top[1];
}

class PipelineChecker {
 public:
  PipelineChecker(const std::string& dir, const runtime::Placement& placement)
      : fx_(dir),
        ref_(io::read_json_file(dir + "/reference.json")),
        backbone_(segment::BlipBackbone::load(model_dir(dir, ref_), PositionResize::SizeBased, placement)),
        tokenizer_(text::WordPieceTokenizer::from_dir(model_dir(dir, ref_))),
        original_(image::decode_image_file(image_file(dir, ref_))),
        settings_(base_settings(ref_, backbone_)) {}

  std::vector<TensorCheck> run() {
    for (const json& c : field(ref_, "cases", "")) run_case(c);
    std::vector<TensorCheck> checks;
    for (const auto& name : fx_.tensor_names()) checks.push_back(check(name));
    return checks;
  }

 private:
  Fixture fx_;
  json ref_;
  segment::BlipBackbone backbone_;
  text::WordPieceTokenizer tokenizer_;
  Image original_;
  MethodSettings settings_;
  std::map<std::string, CaseRun> cases_;

  torch::Tensor fixture_pixels() const {
    if (fx_.has("pixel_values")) return fx_.tensor("pixel_values").to(torch::kFloat32);
    return segment::preprocess_image(backbone_, original_, settings_);
  }

  void run_case(const json& c) {
    CaseRun run;
    run.name = field(c, "name", "cases[]").get<std::string>();
    const char* classes_key = c.contains("classes_as_given") ? "classes_as_given" : "classes";
    run.classes = field(c, classes_key, "cases[" + run.name + "]").get<std::vector<std::string>>();
    if (c.contains("dataset_labels")) run.dataset_labels = c["dataset_labels"].get<std::vector<int32_t>>();
    try {
      MethodSettings s = settings_;
      apply_case_rule(c, s);
      run.result = segment::run_from_pixels(backbone_, tokenizer_, fixture_pixels(), original_, run.classes, s);
      for (auto& [name, tensor] : run.result->named_tensors()) run.tensors[name] = tensor;
    } catch (const Error& e) {
      run.error = e.what();
    }
    cases_[run.name] = std::move(run);
  }

  TensorCheck check(const std::string& name) {
    const auto dot = name.find('.');
    if (dot != std::string::npos && cases_.count(name.substr(0, dot))) {
      try {
        return check_case(cases_.at(name.substr(0, dot)), name, name.substr(dot + 1));
      } catch (const Error& e) {
        return not_computed(name, e.what());
      }
    }
    if (name == "pixel_values")
      return fx_.compare(name, segment::preprocess_image(backbone_, original_, settings_));
    if (name == "original_image")
      return fx_.compare(name,
                         torch::tensor(original_.rgb, torch::kUInt8).view({original_.height, original_.width, 3}));
    return not_computed(name, "no rule computes this tensor");
  }

  TensorCheck check_case(const CaseRun& run, const std::string& name, const std::string& item) {
    if (!run.result) return not_computed(name, "case failed: " + run.error);
    static const std::map<std::string, std::string> kAliases = {{"class_maps_agg", "final_maps"},
                                                               {"class_maps_minmax", "final_minmax"},
                                                               {"thresholded", "masks"},
                                                               {"mask_binary", "masks"}};
    const std::string key = kAliases.count(item) ? kAliases.at(item) : item;
    const std::string prefix = run.name + ".";
    if (item == "argmax") return compare_masked(name, run.tensors.at("argmax"), fx_.tensor(name), skip_mask(prefix));
    if (item == "argmax_ambiguous") return check_ambiguity(run, name);
    if (item == "label_direct" || item == "label_official_remap") return check_labels(run, name, item);
    auto it = run.tensors.find(key);
    if (it == run.tensors.end()) return not_computed(name, "no rule computes this tensor");
    return fx_.compare(name, it->second);
  }

  torch::Tensor skip_mask(const std::string& prefix) const {
    const std::string name = prefix + "argmax_ambiguous";
    return fx_.has(name) ? fx_.tensor(name) : torch::Tensor();
  }

  TensorCheck check_labels(const CaseRun& run, const std::string& name, const std::string& item) {
    if (run.dataset_labels.empty()) return not_computed(name, "the case lists no dataset_labels");
    // The fixtures stop before the CRF, so the channels are the argmax of the blurred stack.
    const std::vector<int32_t> labels =
        segment::dataset_label_map(*run.result, run.dataset_labels, 0, item == "label_official_remap");
    const torch::Tensor got = torch::tensor(labels, torch::kInt32).view({run.result->height, run.result->width});
    return compare_masked(name, got, fx_.tensor(name), skip_mask(run.name + "."));
  }

  // The fixture marks pixels whose top-2 blurred values are closer than max(1e-4, 10 * atol of
  // the blurred stack); pixels that close to that cut are not decidable within tolerance.
  TensorCheck check_ambiguity(const CaseRun& run, const std::string& name) {
    const auto blurred = run.tensors.find("blurred");
    if (blurred == run.tensors.end()) return not_computed(name, "no blurred stack");
    const double atol = fx_.tolerance(run.name + ".blurred").atol;
    const double cut = std::max(1e-4, 10.0 * atol);
    const torch::Tensor gap = top2_gap(blurred->second).to(torch::kFloat64);
    const torch::Tensor mine = (gap < cut).to(torch::kUInt8);
    const torch::Tensor borderline = ((gap - cut).abs() <= 2.0 * atol).to(torch::kUInt8);
    TensorCheck c = compare_masked(name, mine, fx_.tensor(name), borderline);
    const auto at = c.note.find(" ambiguous skipped");
    if (at != std::string::npos) c.note.replace(at, 18, " borderline skipped");
    c.note += ", cut " + std::to_string(cut);
    return c;
  }
};

}  // namespace

bool is_pipeline_fixture(const json& reference) {
  if (!reference.is_object() || !reference.contains("parameters") || !reference.contains("cases")) return false;
  const json& p = reference["parameters"];
  const json& cases = reference["cases"];
  if (!p.is_object() || !cases.is_array() || cases.empty()) return false;
  for (const char* key : {"drop_iterations", "grid_P", "cross_layer_index_0based", "head_index_0based"})
    if (!p.contains(key)) return false;
  for (const json& c : cases)
    if (!c.is_object() || !c.contains("name") || !(c.contains("classes") || c.contains("classes_as_given")))
      return false;
  return true;
}

std::vector<TensorCheck> check_pipeline_fixture(const std::string& dir, const runtime::Placement& placement) {
  PipelineChecker checker(dir, placement);
  return checker.run();
}

}  // namespace pnpovss::check
