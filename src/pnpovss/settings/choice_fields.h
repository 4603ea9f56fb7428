// The settings a user may choose in a front end, listed once: their names (the command line's
// --<name>, Python's <name>=), types and help. Front ends build their options and keywords from
// this list, so that they offer the same words.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pnpovss/settings.h"

namespace pnpovss {

struct ChoiceField {
  enum class Kind { Integer, Number, Text };
  const char* name;  // "layer"
  Kind kind;
  const char* help;
  // Where the choice goes (the one matching `kind` is set).
  std::optional<int> SettingChoices::*integer = nullptr;
  std::optional<double> SettingChoices::*number = nullptr;
  std::optional<std::string> SettingChoices::*text = nullptr;
  bool searched = false;  // chosen by tune's search, so tune does not offer it
};

// preset, settings (a settings file), size, layer, head, threshold, blur, iterations,
// postprocess, arithmetic, background: in this order.
const std::vector<ChoiceField>& choice_fields();

}  // namespace pnpovss
