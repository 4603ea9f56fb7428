// resolve_settings (pnpovss/settings.h): one way from what a user chose to settings, for every
// front end.
#include <nlohmann/json.hpp>
#include <string>

#include "pnpovss/error.h"
#include "pnpovss/settings.h"
#include "pnpovss/settings/settings_json.h"

namespace pnpovss {
namespace {

// An enum setting through its parser, whose message lists the valid names.
template <typename Parse>
auto parsed(const std::string& setting, const std::string& name, Parse parse) {
  try {
    return parse(name);
  } catch (const InvalidArgument& e) {
    const std::string why = e.what();
    const size_t valid = why.find("(valid: ");
    throw SettingError(setting, "'" + name + "'", "is unknown " + (valid == std::string::npos ? why : why.substr(valid)));
  }
}

// The starting point: the preset, or the settings file or JSON (for the same backbone).
MethodSettings starting_settings(const SettingChoices& c, const std::string& backbone) {
  const bool from_file = c.settings_file.has_value(), from_json = c.settings_json.has_value();
  if (from_file && from_json) throw InvalidArgument("give a settings file or settings JSON, not both");
  if (!from_file && !from_json) return preset(c.preset.value_or("paper"), backbone);
  if (c.preset) throw InvalidArgument("give a preset or settings, not both (the settings name their preset)");
  std::string where;
  MethodSettings s;
  if (from_file) {
    where = "settings file '" + *c.settings_file + "'";
    s = read_settings_file(*c.settings_file);
  } else {
    where = "settings";
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(*c.settings_json);
    } catch (const nlohmann::json::exception& e) {
      throw InvalidArgument("settings: not valid JSON (" + std::string(e.what()) + ")");
    }
    s = settings_from_json(doc, where);
  }
  if (s.backbone != backbone)
    throw InvalidArgument(where + " was made for a " + s.backbone + " model, but the model is " + backbone);
  return s;
}

}  // namespace

MethodSettings resolve_settings(const SettingChoices& c, const std::string& backbone,
                                std::optional<DatasetRule> dataset) {
  MethodSettings s = starting_settings(c, backbone);
  if (c.size) s.input_size = *c.size;
  if (c.layer) s.attention_layer = *c.layer - 1;
  if (c.head) s.attention_head = *c.head - 1;
  if (c.iterations) s.dropout_iterations = *c.iterations;
  if (c.threshold) s.mask_threshold = *c.threshold;
  if (c.blur) s.post_blur = *c.blur;
  if (c.postprocess) s.post_mode = parsed("postprocess", *c.postprocess, parse_postprocess);
  if (c.background) s.background_mode = parsed("background", *c.background, parse_background_mode);
  if (c.arithmetic) s.post_arithmetic = parsed("arithmetic", *c.arithmetic, parse_post_arithmetic);
  if (dataset) apply_dataset_rule(s, *dataset);
  s.validate();
  return s;
}

}  // namespace pnpovss
