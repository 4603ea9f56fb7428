// The method options that segment, eval and tune share, one per setting a user may choose
// (settings/choice_fields.h: --preset, --settings, --size, --layer, ...). They become the
// library's SettingChoices, resolved the same way as Python's keywords (resolve_settings).
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

#include "pnpovss/error.h"
#include "pnpovss/settings.h"

namespace pnpovss::cli {

struct MethodOptions {
  // The values, by setting name (map nodes stay put, so CLI11 can write into them).
  std::map<std::string, int> integers;
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> texts;
  std::map<std::string, CLI::Option*> options;
  // Whether --<name> was given.
  bool given(const std::string& name) const;
};

// Which options a command offers: all of them, or (tune) all but those the search chooses
// (layer, head, threshold, blur).
enum class MethodOptionSet { All, WithoutSearched };

// Registers --<name> on `cmd` for every choice field (and -s for --size).
void add_method_options(CLI::App* cmd, MethodOptions& o, MethodOptionSet set);

// The options given on the command line, as choices for resolve_settings.
SettingChoices setting_choices(const MethodOptions& o);

// A SettingError's message with the setting written as its option ("--layer 9 is out of range:
// ..."), when the command line has one.
std::string message_with_option(const SettingError& e);

}  // namespace pnpovss::cli
