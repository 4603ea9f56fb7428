#include "pnpovss/cli/method_options.h"

#include "pnpovss/error.h"
#include "pnpovss/segment/settings_json.h"

namespace pnpovss::cli {

namespace {

bool given(const CLI::Option* opt) { return opt != nullptr && opt->count() > 0; }

// "--layer 9" for a value typed by the user, "layer 9 (the paper preset's)" for a default.
std::string origin(const CLI::Option* opt, const char* what, int value, const std::string& preset) {
  if (given(opt)) return "--" + std::string(what) + " " + std::to_string(value);
  return std::string(what) + " " + std::to_string(value) + " (the " + preset + " preset's)";
}

}  // namespace

void add_method_options(CLI::App* cmd, MethodOptions& o, MethodOptionSet set) {
  o.preset_opt = cmd->add_option("--preset", o.preset,
                                 "paper (the published method) or official (the released script, its dataset "
                                 "quirks included); defaults follow the model's backbone")
                     ->capture_default_str();
  o.settings_opt = cmd->add_option("--settings", o.settings_file,
                                   "settings JSON to start from instead of --preset (tune's best_settings.json); "
                                   "options given here override it");
  o.size_opt = cmd->add_option("-s,--size", o.size, "square model input in pixels, a multiple of the patch (paper: 336)");
  if (set == MethodOptionSet::All) {
    o.layer_opt = cmd->add_option("--layer", o.layer, "text layer of the cross-attention, from 1 (BLIP paper: 8)");
    o.head_opt = cmd->add_option("--head", o.head, "attention head, from 1 (BLIP paper: 10)");
    o.threshold_opt = cmd->add_option("--threshold", o.threshold, "mask threshold in [0, 1] (paper: 0.15)");
    o.blur_opt = cmd->add_option("--blur", o.blur, "Gaussian sigma as a fraction of the long side, [0, 1] (0.05)");
  }
  o.iterations_opt = cmd->add_option("--iterations", o.iterations, "Salience DropOut passes (4; 1 = no dropout)");
  o.postprocess_opt = cmd->add_option("--postprocess", o.postprocess, "none | blur | crf | blur+crf (blur+crf)");
  o.background_opt = cmd->add_option("--background", o.background,
                                     "background channel: auto (the dataset's rule; always for own images) | "
                                     "always | never");
}

std::string backbone_of(const std::string& model_dir) {
  const std::string type = segment::Segmenter::read_model_type(model_dir);
  // An unsupported type is reported by Segmenter::load with the list of supported ones.
  return type == "bridgetower" ? "bridgetower" : "blip";
}

segment::MethodSettings resolve_method_settings(const MethodOptions& o, const std::string& backbone) {
  if (!o.settings_file.empty() && given(o.preset_opt))
    throw Error("give --preset or --settings, not both (the settings file names its preset)");
  segment::MethodSettings s;
  if (o.settings_file.empty()) {
    s = segment::preset(o.preset, backbone);
  } else {
    s = segment::read_settings_file(o.settings_file);
    if (s.backbone != backbone)
      throw Error("settings file '" + o.settings_file + "' was made for a " + s.backbone + " model, but the model is " +
                  backbone);
  }
  if (given(o.size_opt)) s.input_size = o.size;
  if (given(o.layer_opt)) {
    if (o.layer < 1) throw Error("--layer " + std::to_string(o.layer) + " is out of range: layers count from 1");
    s.attention_layer = o.layer - 1;
  }
  if (given(o.head_opt)) {
    if (o.head < 1) throw Error("--head " + std::to_string(o.head) + " is out of range: heads count from 1");
    s.attention_head = o.head - 1;
  }
  if (given(o.iterations_opt)) s.dropout_iterations = o.iterations;
  if (given(o.threshold_opt)) s.mask_threshold = o.threshold;
  if (given(o.blur_opt)) s.post_blur = o.blur;
  if (given(o.postprocess_opt)) s.post_mode = segment::parse_postprocess(o.postprocess);
  if (given(o.background_opt)) s.background_mode = segment::parse_background_mode(o.background);
  s.validate();
  return s;
}

void check_settings_fit(const MethodOptions& o, const segment::Segmenter& model, const segment::MethodSettings& s) {
  const segment::Backbone& bb = model.backbone();
  if (s.attention_layer >= bb.num_text_layers())
    throw Error(origin(o.layer_opt, "layer", s.attention_layer + 1, s.preset) + " is out of range: the model has " +
                std::to_string(bb.num_text_layers()) + " text layers, choose --layer 1.." +
                std::to_string(bb.num_text_layers()));
  if (s.attention_head >= bb.num_heads())
    throw Error(origin(o.head_opt, "head", s.attention_head + 1, s.preset) + " is out of range: the model has " +
                std::to_string(bb.num_heads()) + " heads, choose --head 1.." + std::to_string(bb.num_heads()));
  model.check_settings(s);
}

}  // namespace pnpovss::cli
