#include "pnpovss/settings/choice_fields.h"

namespace pnpovss {

const std::vector<ChoiceField>& choice_fields() {
  using K = ChoiceField::Kind;
  using C = SettingChoices;
  static const std::vector<ChoiceField> fields = {
      {"preset", K::Text,
       "paper (the published method) or official (the released script, its dataset quirks included); defaults "
       "follow the model's backbone",
       nullptr, nullptr, &C::preset},
      {"settings", K::Text,
       "settings JSON to start from instead of a preset (tune's best_settings.json); other choices override it",
       nullptr, nullptr, &C::settings_file},
      {"size", K::Integer, "square model input in pixels, a multiple of the patch (paper: 336)", &C::size},
      {"layer", K::Integer, "text layer of the cross-attention, from 1 (BLIP paper: 8)", &C::layer, nullptr,
       nullptr, true},
      {"head", K::Integer, "attention head, from 1 (BLIP paper: 10)", &C::head, nullptr, nullptr, true},
      {"threshold", K::Number, "mask threshold in [0, 1] (paper: 0.15)", nullptr, &C::threshold, nullptr, true},
      {"blur", K::Number, "Gaussian sigma as a fraction of the long side, [0, 1] (0.05)", nullptr, &C::blur,
       nullptr, true},
      {"iterations", K::Integer, "Salience DropOut passes (4; 1 = no dropout)", &C::iterations},
      {"postprocess", K::Text, "none | blur | crf | blur+crf (blur+crf)", nullptr, nullptr, &C::postprocess},
      {"arithmetic", K::Text,
       "post-processing arithmetic: exact (the reference's: scipy's blur bit for bit up to 1024 px) | fast (the "
       "blur through the masks' factors at every size, within 1e-6 of scipy's; 3-14x faster at "
       "640x480) (exact)",
       nullptr, nullptr, &C::arithmetic},
      {"background", K::Text,
       "background channel: auto (the dataset's rule; always for own images) | always | never", nullptr, nullptr,
       &C::background},
  };
  return fields;
}

}  // namespace pnpovss
