#include "pnpovss/settings.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <utility>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/settings/settings_json.h"

namespace pnpovss {
namespace {

// Per backbone, the paper's tuned values (docs/method.md, Presets and §9), 1-based.
struct BackboneDefaults {
  const char* backbone;
  int layer_1based;
  int head_1based;
  double threshold;
  double blur;
  int input_size;
};

// Per preset, the behaviour switches (sections 2-5; `official` = the released script).
struct PresetBehaviour {
  const char* preset;
  ClassNameStyle class_names;
  DropRule drop_rule;
  bool first_iteration_twice;
  bool u_over_wordpieces;
  bool last_class_sum;
  bool threshold_keeps_values;
  bool official_inplace_remap;
};

constexpr BackboneDefaults kBackbones[] = {
    {"blip", 8, 10, 0.15, 0.05, 336},
    // Paper Table 2: cross-modal text layer 2, head 8; 336 px is a 24x24 grid of 14-px patches.
    {"bridgetower", 2, 8, 0.15, 0.05, 336},
};

constexpr PresetBehaviour kPresets[] = {
    {"paper", ClassNameStyle::Natural, DropRule::Halving, false, false, false, false, false},
    {"official", ClassNameStyle::Fused, DropRule::TopK, true, true, true, true, true},
};

// The released script drops 10 patches per iteration.
constexpr int kOfficialDropK = 10;

template <typename Enum>
using NameTable = std::vector<std::pair<Enum, const char*>>;

const NameTable<FirstToken> kFirstTokens = {{FirstToken::Enc, "enc"}, {FirstToken::Cls, "cls"}};
const NameTable<ClassNameStyle> kNameStyles = {{ClassNameStyle::Natural, "natural"},
                                               {ClassNameStyle::Fused, "fused"}};
const NameTable<DropRule> kDropRules = {{DropRule::Halving, "halving"}, {DropRule::TopK, "topk"}};
const NameTable<BackgroundMode> kBackgroundModes = {
    {BackgroundMode::Auto, "auto"}, {BackgroundMode::Always, "always"}, {BackgroundMode::Never, "never"}};
const NameTable<DatasetRule> kDatasets = {{DatasetRule::UserImages, "user"}, {DatasetRule::Voc, "voc"},
                                          {DatasetRule::CocoObject, "coco_object"},
                                          {DatasetRule::Context, "context"}, {DatasetRule::Ade, "ade"},
                                          {DatasetRule::CocoStuff, "coco_stuff"}};
const NameTable<Postprocess> kPostprocess = {{Postprocess::None, "none"}, {Postprocess::Blur, "blur"},
                                             {Postprocess::Crf, "crf"}, {Postprocess::BlurCrf, "blur+crf"}};
const NameTable<PositionResize> kPositionResizes = {{PositionResize::SizeBased, "size"},
                                                    {PositionResize::HuggingFace, "hf"}};
const NameTable<PostArithmetic> kPostArithmetics = {{PostArithmetic::Fast, "fast"}, {PostArithmetic::Exact, "exact"}};

template <typename Enum>
std::string name_of(const NameTable<Enum>& table, Enum value) {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return "?";
}

template <typename Enum>
Enum parse_name(const NameTable<Enum>& table, const std::string& name, const char* what) {
  std::string valid;
  for (const auto& [v, n] : table) {
    if (name == n) return v;
    valid += valid.empty() ? n : std::string(", ") + n;
  }
  throw InvalidArgument("unknown " + std::string(what) + " '" + name + "' (valid: " + valid + ")");
}

const BackboneDefaults& backbone_defaults(const std::string& backbone) {
  std::string valid;
  for (const auto& b : kBackbones) {
    if (backbone == b.backbone) return b;
    valid += valid.empty() ? b.backbone : std::string(", ") + b.backbone;
  }
  throw InvalidArgument("unknown backbone '" + backbone + "' (valid: " + valid + ")");
}

const PresetBehaviour& preset_behaviour(const std::string& name) {
  std::string valid;
  for (const auto& p : kPresets) {
    if (name == p.preset) return p;
    valid += valid.empty() ? p.preset : std::string(", ") + p.preset;
  }
  throw InvalidArgument("unknown preset '" + name + "' (valid: " + valid + ")");
}

std::string value_text(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

void check(bool ok, const char* setting, double value, const std::string& problem) {
  if (!ok) throw SettingError(setting, value_text(value), problem);
}

bool is_coco(DatasetRule d) { return d == DatasetRule::CocoObject || d == DatasetRule::CocoStuff; }

}  // namespace

MethodSettings preset(const std::string& preset_name, const std::string& backbone) {
  const PresetBehaviour& p = preset_behaviour(preset_name);
  const BackboneDefaults& b = backbone_defaults(backbone);
  MethodSettings s;
  s.preset = p.preset;
  s.backbone = b.backbone;
  s.input_size = b.input_size;
  s.attention_layer = b.layer_1based - 1;
  s.attention_head = b.head_1based - 1;
  s.mask_threshold = b.threshold;
  s.post_blur = b.blur;
  s.prompt_class_names = p.class_names;
  s.dropout_rule = p.drop_rule;
  s.dropout_k = kOfficialDropK;
  s.dropout_first_iteration_twice = p.first_iteration_twice;
  s.dropout_u_over_wordpieces = p.u_over_wordpieces;
  s.maps_last_class_sum = p.last_class_sum;
  s.mask_threshold_keeps_values = p.threshold_keeps_values;
  s.labels_official_inplace_remap = p.official_inplace_remap;
  return s;
}

void apply_dataset_rule(MethodSettings& settings, DatasetRule dataset) {
  settings.background_dataset = dataset;
  if (settings.preset == "official") {
    settings.mask_rescale_after_upsample = is_coco(dataset);
    settings.ade_unnormalized_input = dataset == DatasetRule::Ade;
  }
}

void MethodSettings::validate() const {
  check(input_size > 0 && input_size <= 4096, "size", input_size, "must be in 1..4096 (336 or 768 for BLIP)");
  check(attention_layer >= 0, "layer", attention_layer + 1, "is out of range: layers count from 1");
  check(attention_head >= 0, "head", attention_head + 1, "is out of range: heads count from 1");
  check(dropout_iterations >= 1, "iterations", dropout_iterations, "must be 1 or more (1 = no dropout)");
  check(dropout_rule != DropRule::TopK || dropout_k >= 1, "dropout_k", dropout_k, "must be 1 or more for the topk rule");
  check(std::isfinite(mask_threshold) && mask_threshold >= 0.0 && mask_threshold <= 1.0, "threshold", mask_threshold,
        "must be in [0, 1] (it applies to min-max normalised maps)");
  check(std::isfinite(post_blur) && post_blur >= 0.0 && post_blur <= 1.0, "blur", post_blur,
        "must be in [0, 1] (Gaussian sigma as a fraction of the long image side; 0 = off)");
  check(post_crf.iterations >= 1, "post_crf.iterations", post_crf.iterations, "must be 1 or more");
  for (const auto& [name, width] : {std::pair<const char*, float>{"post_crf.gaussian_sxy", post_crf.gaussian_sxy},
                                    {"post_crf.bilateral_sxy", post_crf.bilateral_sxy},
                                    {"post_crf.bilateral_srgb", post_crf.bilateral_srgb}})
    check(width > 0, name, width, "must be positive (a kernel width)");
  check(post_crf.gaussian_weight >= 0, "post_crf.gaussian_weight", post_crf.gaussian_weight, "must not be negative");
  check(post_crf.bilateral_weight >= 0, "post_crf.bilateral_weight", post_crf.bilateral_weight, "must not be negative");
}

std::string MethodSettings::describe() const {
  std::ostringstream out;
  out << "preset=" << preset << " backbone=" << backbone << " size=" << input_size
      << (ade_unnormalized_input ? "(bilinear,unnormalized)" : "")
      << " layer=" << attention_layer + 1 << " head=" << attention_head + 1
      << " first_token=" << to_string(prompt_first_token) << " names=" << to_string(prompt_class_names)
      << " iterations=" << dropout_iterations << " drop=" << to_string(dropout_rule);
  if (dropout_rule == DropRule::TopK) out << "(k=" << dropout_k << ")";
  out << " threshold=" << mask_threshold << (mask_threshold_keeps_values ? "(values)" : "(binary)")
      << " background=" << to_string(background_mode) << "/" << to_string(background_dataset)
      << " postprocess=" << to_string(post_mode) << " blur=" << post_blur
      << " arithmetic=" << to_string(post_arithmetic);
  return out.str();
}

nlohmann::json to_json(const MethodSettings& s) {
  nlohmann::json crf = {{"iterations", s.post_crf.iterations},
                        {"gaussian_sxy", s.post_crf.gaussian_sxy},
                        {"gaussian_weight", s.post_crf.gaussian_weight},
                        {"bilateral_sxy", s.post_crf.bilateral_sxy},
                        {"bilateral_srgb", s.post_crf.bilateral_srgb},
                        {"bilateral_weight", s.post_crf.bilateral_weight}};
  return {{"preset", s.preset},
          {"backbone", s.backbone},
          {"input_size", s.input_size},
          {"input_position_resize", to_string(s.input_position_resize)},
          {"ade_unnormalized_input", s.ade_unnormalized_input},
          {"attention_layer_1based", s.attention_layer + 1},
          {"attention_head_1based", s.attention_head + 1},
          {"prompt_first_token", to_string(s.prompt_first_token)},
          {"prompt_class_names", to_string(s.prompt_class_names)},
          {"dropout_iterations", s.dropout_iterations},
          {"dropout_rule", to_string(s.dropout_rule)},
          {"dropout_k", s.dropout_k},
          {"dropout_first_iteration_twice", s.dropout_first_iteration_twice},
          {"dropout_u_over_wordpieces", s.dropout_u_over_wordpieces},
          {"maps_last_class_sum", s.maps_last_class_sum},
          {"mask_threshold", s.mask_threshold},
          {"mask_threshold_keeps_values", s.mask_threshold_keeps_values},
          {"mask_rescale_after_upsample", s.mask_rescale_after_upsample},
          {"background_mode", to_string(s.background_mode)},
          {"background_dataset", to_string(s.background_dataset)},
          {"post_mode", to_string(s.post_mode)},
          {"post_blur", s.post_blur},
          {"post_arithmetic", to_string(s.post_arithmetic)},
          {"post_crf", crf},
          {"labels_official_inplace_remap", s.labels_official_inplace_remap}};
}

bool uses_background(const MethodSettings& s, int num_classes) {
  switch (s.background_mode) {
    case BackgroundMode::Always:
      return true;
    case BackgroundMode::Never:
      return false;
    case BackgroundMode::Auto:
      break;
  }
  switch (s.background_dataset) {
    case DatasetRule::UserImages:
    case DatasetRule::Voc:
    case DatasetRule::CocoObject:
      return true;
    case DatasetRule::Context:
    case DatasetRule::Ade:
    case DatasetRule::CocoStuff:
      return num_classes < 3;
  }
  return true;
}

bool uses_blur(const MethodSettings& s) {
  return (s.post_mode == Postprocess::Blur || s.post_mode == Postprocess::BlurCrf) && s.post_blur > 0.0;
}

bool uses_crf(const MethodSettings& s) {
  return s.post_mode == Postprocess::Crf || s.post_mode == Postprocess::BlurCrf;
}

std::string to_string(FirstToken v) { return name_of(kFirstTokens, v); }
std::string to_string(ClassNameStyle v) { return name_of(kNameStyles, v); }
std::string to_string(DropRule v) { return name_of(kDropRules, v); }
std::string to_string(BackgroundMode v) { return name_of(kBackgroundModes, v); }
std::string to_string(DatasetRule v) { return name_of(kDatasets, v); }
std::string to_string(Postprocess v) { return name_of(kPostprocess, v); }
std::string to_string(PositionResize v) { return name_of(kPositionResizes, v); }
std::string to_string(PostArithmetic v) { return name_of(kPostArithmetics, v); }

FirstToken parse_first_token(const std::string& n) { return parse_name(kFirstTokens, n, "first token"); }
ClassNameStyle parse_class_name_style(const std::string& n) { return parse_name(kNameStyles, n, "class name style"); }
DropRule parse_drop_rule(const std::string& n) { return parse_name(kDropRules, n, "drop rule"); }
BackgroundMode parse_background_mode(const std::string& n) {
  return parse_name(kBackgroundModes, n, "background mode");
}
DatasetRule parse_dataset_rule(const std::string& n) { return parse_name(kDatasets, n, "dataset rule"); }
Postprocess parse_postprocess(const std::string& n) { return parse_name(kPostprocess, n, "postprocess mode"); }
PositionResize parse_position_resize(const std::string& n) {
  return parse_name(kPositionResizes, n, "position resize");
}
PostArithmetic parse_post_arithmetic(const std::string& n) {
  return parse_name(kPostArithmetics, n, "post-processing arithmetic");
}

}  // namespace pnpovss
