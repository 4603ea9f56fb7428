#include "pnpovss/run/model.h"

#include <filesystem>

#include "pnpovss/hub/model_location.h"
#include "pnpovss/settings/settings_json.h"

namespace pnpovss::run {
namespace {

bool same_folder(const std::string& a, const std::string& b) {
  std::error_code ec_a, ec_b;
  const auto pa = std::filesystem::weakly_canonical(a, ec_a), pb = std::filesystem::weakly_canonical(b, ec_b);
  return ec_a || ec_b ? a == b : pa == pb;
}

}  // namespace

std::string backbone_of(const std::string& model_dir) {
  return segment::Segmenter::read_model_type(model_dir) == "bridgetower" ? "bridgetower" : "blip";
}

ModelChoice choose_model(const std::string& model, const SettingChoices& choices, std::optional<DatasetRule> dataset) {
  ModelChoice c;
  c.dir = hub::resolve_model_dir(model);
  c.settings = resolve_settings(choices, backbone_of(c.dir), dataset);
  if (choices.settings_file) {
    const std::string tuned_for = tuned_for_model(*choices.settings_file);
    if (!tuned_for.empty() && !same_folder(tuned_for, c.dir))
      c.notes.push_back("settings file '" + *choices.settings_file + "' was tuned for the model " + tuned_for +
                        ", not for " + c.dir + ": its layer, head and threshold may not suit this one");
  }
  return c;
}

std::string postprocess_device(const std::string& choice, const runtime::Placement& model) {
  if (choice == "auto") return model.device.is_cpu() ? "cpu" : model.device.str();
  const torch::Device device = runtime::parse_device(choice);
  runtime::check_placement({device, torch::kFloat32});
  return device.str();
}

segment::Segmenter load_model(const ModelChoice& choice, const runtime::Placement& placement,
                              const SettingChoices& choices) {
  segment::Segmenter model = segment::Segmenter::load(choice.dir, choice.settings.input_position_resize, placement);
  model.check_settings(choice.settings, &choices);
  return model;
}

}  // namespace pnpovss::run
