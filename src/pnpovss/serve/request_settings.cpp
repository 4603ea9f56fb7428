#include "pnpovss/serve/request_settings.h"

#include <map>
#include <string>

#include "pnpovss/serve/http_error.h"
#include "pnpovss/settings/settings_json.h"

namespace pnpovss::serve {
namespace {

using nlohmann::json;

const char* kWhere = "the request's settings";

// The record's name of a setting the library names by its option ("layer" -> attention_layer_1based).
std::string record_name(const std::string& setting) {
  static const std::map<std::string, std::string> names = {
      {"layer", "attention_layer_1based"}, {"head", "attention_head_1based"}, {"size", "input_size"},
      {"threshold", "mask_threshold"},     {"blur", "post_blur"},             {"iterations", "dropout_iterations"},
      {"postprocess", "post_mode"},        {"background", "background_mode"}};
  const auto it = names.find(setting);
  return it == names.end() ? setting : it->second;
}

// The start: the server's settings, or the named preset for the model's backbone.
MethodSettings base_settings(const json& overrides, const MethodSettings& server_settings) {
  if (!overrides.contains("preset")) return server_settings;
  const json& name = overrides["preset"];
  if (!name.is_string()) throw HttpError(422, std::string(kWhere) + ": preset must be \"paper\" or \"official\"");
  return preset(name.get<std::string>(), server_settings.backbone);
}

}  // namespace

MethodSettings request_settings(const json& overrides, const MethodSettings& server_settings,
                                const segment::Segmenter& model) {
  if (!overrides.is_object())
    throw HttpError(422, std::string(kWhere) + " must be a JSON object, e.g. {\"attention_layer_1based\": 8}");
  if (overrides.empty()) return server_settings;
  MethodSettings settings;
  try {
    json doc = to_json(base_settings(overrides, server_settings));
    for (const auto& [key, value] : overrides.items()) {
      if (key == "backbone" && value != doc["backbone"])
        throw HttpError(422, std::string(kWhere) + ": backbone " + value.dump() + " does not fit this server's model, a " +
                                 doc["backbone"].get<std::string>() + " model");
      if (key == "post_crf" && value.is_object()) {
        doc[key].update(value);  // a partial Dense CRF block keeps the other parameters
      } else {
        doc[key] = value;
      }
    }
    settings = settings_from_json(doc, kWhere);
    // Where and how the CRF computes is the server's (settings JSON holds only the method).
    settings.post_crf.device = server_settings.post_crf.device;
    settings.post_crf.threads = server_settings.post_crf.threads;
    settings.post_crf.vector_width = server_settings.post_crf.vector_width;
    if (settings.input_position_resize != server_settings.input_position_resize)
      throw HttpError(422, std::string(kWhere) + ": input_position_resize is fixed when the model is loaded (\"" +
                               to_string(server_settings.input_position_resize) +
                               "\" here): start the server with the other preset to change it");
    model.check_settings(settings);
  } catch (const HttpError&) {
    throw;
  } catch (const SettingError& e) {
    throw HttpError(422, std::string(kWhere) + ": " + record_name(e.setting()) + " " + e.value() + " " + e.problem());
  } catch (const Error& e) {
    throw HttpError(422, e.what());
  }
  return settings;
}

}  // namespace pnpovss::serve
