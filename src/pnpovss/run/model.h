// From what a user names (a model directory or hub id, and their setting choices) to a loaded
// model with settings that fit it, the same way for every front end.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pnpovss/runtime/placement.h"
#include "pnpovss/segment/segmenter.h"
#include "pnpovss/settings.h"

namespace pnpovss::run {

// The backbone whose presets apply to the checkpoint in `model_dir` ("blip", "bridgetower"),
// from its config.json. An unsupported model type is reported when the model is loaded.
std::string backbone_of(const std::string& model_dir);

// A model named by a user, found, and the settings chosen for it.
struct ModelChoice {
  std::string dir;          // the checkpoint directory (a hub id is downloaded into the cache)
  MethodSettings settings;  // resolved for the model's backbone (and the dataset's rules)
  std::vector<std::string> notes;  // worth telling the user (settings tuned for another model)
};

// Finds the model (hub::resolve_model_dir) and resolves the choices for its backbone; reads
// only config.json, so that bad settings fail before anything heavy. Throws as
// hub::resolve_model_dir and resolve_settings.
ModelChoice choose_model(const std::string& model, const SettingChoices& choices,
                         std::optional<DatasetRule> dataset = std::nullopt);

// Loads the model of `choice` on `placement` and checks that the settings fit it (layer, head,
// input size); a value the user did not choose is named as the preset's. Throws
// pnpovss::SettingError or the loader's errors.
segment::Segmenter load_model(const ModelChoice& choice, const runtime::Placement& placement,
                              const SettingChoices& choices);

// Where the Dense CRF runs (DenseCrfParams::device) when a user asks for `choice`: "auto" is the
// model's device (a GPU post-processes there, the CPU runs the exact CRF), else cpu, cuda or
// cuda:N. Throws pnpovss::Error for a device this build or machine does not have.
std::string postprocess_device(const std::string& choice, const runtime::Placement& model);

}  // namespace pnpovss::run
