// Reading MethodSettings back from the JSON that to_json() writes (segment's records, tune's
// best_settings.json), so that a tuned setting can be handed to segment and eval as a file.
// Every field is checked: an unknown key, a wrong type or a value out of range is an error
// naming the file and the key, never a silently ignored typo.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "pnpovss/settings.h"

namespace pnpovss {

// Every resolved setting (layers and heads 1-based), to be echoed into outputs.
nlohmann::json to_json(const MethodSettings& settings);

// The settings in `doc`: an object as to_json() writes it, or an object holding one under
// "best_settings" (tune's results file) or "settings" (segment's per-image record). Fields
// that are absent keep the values of the document's "preset" for its "backbone" (defaults:
// paper, blip). `where` names the source in messages. Throws pnpovss::Error.
MethodSettings settings_from_json(const nlohmann::json& doc, const std::string& where);

// settings_from_json() of the file at `path`.
MethodSettings read_settings_file(const std::string& path);

// What `tune` writes as best_settings.json: the settings, and under "tuned_for" the model they
// were tuned for, so that using them with another model can be pointed out.
nlohmann::json tuned_settings_json(const MethodSettings& settings, const std::string& model_dir);
// The model a settings file names under "tuned_for" ("" when it names none or is unreadable).
std::string tuned_for_model(const std::string& path);

}  // namespace pnpovss
