// The files `pnp-ovss segment` writes for one segmented image, its JSON record last (so that a
// record means the image is done; earlier_outputs.h):
//   <name>.labels.png        indexed PNG, one byte per pixel (16-bit beyond 255 labels)
//   <name>.overlay.png       the photo with the classes blended in and a legend
//   <name>.maps.safetensors  with --save-maps: every intermediate tensor
//   <name>.maps/             with --save-maps: heatmaps per class and the dropped patches
//   <name>.json              classes with pixel shares, settings, timings, what made it
#pragma once

#include <string>
#include <vector>

#include "pnpovss/run/record.h"
#include "pnpovss/run/runner.h"

namespace pnpovss::cli {

struct OutputPlan {
  std::string dir;       // --out
  bool save_maps = false;
  int max_label = 0;     // the size of the class list: labels run 0..max_label
};

// The paths written for `name`, the record last (what earlier_outputs checks).
std::vector<std::string> output_files(const OutputPlan& plan, const std::string& name);

// Removes the temporary files that a killed run left in the <name>.maps/ folders of `dir` (the
// folder itself is tidied by prepare_output_dir).
void remove_stale_map_temporaries(const std::string& dir);

// Writes every file of one segmented image under `name`. `run` names the model, device,
// settings and version in the record. Throws pnpovss::Error when a file cannot be written
// (io::WriteError when the disk refuses it).
void write_outputs(const OutputPlan& plan, const run::RunIdentity& run, const std::string& name, const run::Item& item,
                   const run::Outcome& outcome);

}  // namespace pnpovss::cli
