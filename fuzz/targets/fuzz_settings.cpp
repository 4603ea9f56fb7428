// Settings JSON (settings/settings_json, settings/resolve): the text of --settings files and of
// the server's and Python's settings, wrapped or not ("best_settings", "settings"), resolved
// for both backbones with and without a dataset's rules. Accepted settings must survive their
// own to_json(): read back, they give the same JSON.
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "pnpovss/settings.h"
#include "pnpovss/settings/settings_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pnpovss;
  const std::string text(reinterpret_cast<const char*>(data), size);
  // The dataset whose rules apply, chosen by the input so that every rule gets its share.
  const DatasetRule rules[] = {DatasetRule::UserImages, DatasetRule::Voc,     DatasetRule::CocoObject,
                               DatasetRule::Context,    DatasetRule::Ade,     DatasetRule::CocoStuff};
  const DatasetRule rule = rules[size % 6];
  for (const char* backbone : {"blip", "bridgetower"}) {
    SettingChoices choices;
    choices.settings_json = text;
    fuzz::accepts([&] {
      const MethodSettings plain = resolve_settings(choices, backbone);
      const nlohmann::json written = to_json(plain);
      fuzz::expect(to_json(settings_from_json(written, "written")) == written,
                   "to_json() of accepted settings does not read back to the same settings");
      (void)plain.describe();
    });
    fuzz::accepts([&] { resolve_settings(choices, backbone, rule); });
  }
  const nlohmann::json doc = fuzz::parse_json(text);
  if (!doc.is_discarded()) fuzz::accepts([&] { settings_from_json(doc, "settings file 'fuzz.json'"); });
  return 0;
}
