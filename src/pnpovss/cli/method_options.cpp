#include "pnpovss/cli/method_options.h"

#include <algorithm>

#include "pnpovss/settings/choice_fields.h"

namespace pnpovss::cli {

bool MethodOptions::given(const std::string& name) const {
  const auto it = options.find(name);
  return it != options.end() && it->second->count() > 0;
}

void add_method_options(CLI::App* cmd, MethodOptions& o, MethodOptionSet set) {
  for (const ChoiceField& f : choice_fields()) {
    if (f.searched && set == MethodOptionSet::WithoutSearched) continue;
    const std::string name = f.name;
    const std::string flags = (name == "size" ? "-s,--" : "--") + name;
    CLI::Option* opt = nullptr;
    switch (f.kind) {
      case ChoiceField::Kind::Integer:
        opt = cmd->add_option(flags, o.integers[name], f.help);
        break;
      case ChoiceField::Kind::Number:
        opt = cmd->add_option(flags, o.numbers[name], f.help);
        break;
      case ChoiceField::Kind::Text:
        opt = cmd->add_option(flags, o.texts[name], f.help);
        break;
    }
    o.options[name] = opt;
  }
}

SettingChoices setting_choices(const MethodOptions& o) {
  SettingChoices c;
  for (const ChoiceField& f : choice_fields()) {
    if (!o.given(f.name)) continue;
    if (f.integer) c.*f.integer = o.integers.at(f.name);
    if (f.number) c.*f.number = o.numbers.at(f.name);
    if (f.text) c.*f.text = o.texts.at(f.name);
  }
  return c;
}

std::string message_with_option(const SettingError& e) {
  // The method's choices and the compute options (--batch-size for batch_size).
  bool has_option = false;
  for (const char* compute : {"device", "dtype", "workers", "batch_size", "threads"})
    has_option = has_option || e.setting() == compute;
  for (const ChoiceField& f : choice_fields()) has_option = has_option || e.setting() == f.name;
  if (!has_option) return e.what();
  std::string option = e.setting();
  std::replace(option.begin(), option.end(), '_', '-');
  return e.message_naming("--" + option + " " + e.value());
}

}  // namespace pnpovss::cli
