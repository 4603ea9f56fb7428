// The method options that segment, eval and tune share: a preset or a settings file to start
// from, and the settings a user may override on the command line. The preset follows the
// model's backbone (BLIP and BridgeTower have their own paper defaults).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "pnpovss/segment/segmenter.h"
#include "pnpovss/segment/settings.h"

namespace pnpovss::cli {

struct MethodOptions {
  std::string preset = "paper";
  std::string settings_file;  // --settings: a settings JSON (tune's best_settings.json, a segment record)
  int size = 0, layer = 0, head = 0, iterations = 0;
  double threshold = 0, blur = 0;
  std::string postprocess, background;
  // Which options were given; unset pointers belong to options a command does not offer.
  CLI::Option *preset_opt = nullptr, *settings_opt = nullptr, *size_opt = nullptr, *layer_opt = nullptr,
              *head_opt = nullptr, *iterations_opt = nullptr, *threshold_opt = nullptr, *blur_opt = nullptr,
              *postprocess_opt = nullptr, *background_opt = nullptr;
};

// Which options a command offers: all of them, or (tune) all but those the search chooses
// (layer, head, threshold, blur).
enum class MethodOptionSet { All, WithoutSearched };

// Registers --preset, --settings, --size, --iterations, --postprocess, --background and, for
// MethodOptionSet::All, --layer, --head, --threshold and --blur on `cmd`.
void add_method_options(CLI::App* cmd, MethodOptions& o, MethodOptionSet set);

// The backbone whose preset applies to the checkpoint in `model_dir` ("blip", "bridgetower").
std::string backbone_of(const std::string& model_dir);

// The `backbone`'s preset, or the settings file, with every given option on top, validated.
// Throws pnpovss::Error for --preset together with --settings, a settings file made for
// another backbone, and out-of-range values.
segment::MethodSettings resolve_method_settings(const MethodOptions& o, const std::string& backbone);

// Throws pnpovss::Error when layer, head or input size do not fit `model`, saying whether the
// value came from the command line or from the preset.
void check_settings_fit(const MethodOptions& o, const segment::Segmenter& model, const segment::MethodSettings& s);

}  // namespace pnpovss::cli
