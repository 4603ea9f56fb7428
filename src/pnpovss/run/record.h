// What a front end hands back for one segmented image, built once for all of them: the JSON
// record (`segment` writes it as <name>.json, the server answers with it), the label PNG, the
// overlay, and the explanation maps (the attention, GradCAM per Salience DropOut iteration, the
// patches dropped, the final map) as heatmap PNGs. Everything is returned as bytes; writing
// files or answering a request is the front end's business.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "pnpovss/image/overlay.h"
#include "pnpovss/run/runner.h"

namespace pnpovss::run {

using Bytes = std::vector<uint8_t>;

// What all images of a run share.
struct RunIdentity {
  std::string model;                // the model directory
  std::string device;               // the placement, e.g. "cpu/fp32"
  nlohmann::ordered_json settings;  // the method settings as JSON
  std::string version;              // "pnp-ovss X.Y.Z"
};

// The fields of one image's record that decide its outputs, in record order: image,
// image_sha256, model, device, version, prompt ([{label, name}] in prompt order), settings.
nlohmann::ordered_json record_identity(const RunIdentity& run, const std::string& image_path,
                                       const std::string& image_sha256, const std::vector<std::string>& names,
                                       const std::vector<int32_t>& labels);

// One segmented image's record without its timings, its label PNG and its overlay.
struct ImageOutputs {
  nlohmann::ordered_json record;  // identity, width, height, classes [{label, name, pixel_share, color}]
  Bytes labels_png;               // image::encode_label_png of the labels, 0..max_label
  Bytes overlay_png;              // the photo with the labels blended in and a legend
};

// `image_name` is what the record calls the image (a path, an upload's file name); the pixels
// are pixels_of(item, outcome); `max_label` the largest label the run can give (the size of its
// class list). Throws pnpovss::Error.
ImageOutputs image_outputs(const RunIdentity& run, const std::string& image_name, const Item& item,
                           const Outcome& outcome, int max_label);

// The record's "timings": the time spent waiting in a queue (when there was one), decode, the
// method's stages, `outputs_seconds` (writing or encoding the outputs) and the total, in seconds
// rounded to 0.1 ms.
nlohmann::ordered_json stage_timings(const Outcome& outcome, double outputs_seconds,
                                     std::optional<double> queue_seconds = std::nullopt);

// The maps that show why a pixel got its label, as heatmap PNGs (image::heatmap: at least 256 px
// on a side, each min-max scaled on its own unless said otherwise).
struct ClassMaps {
  int32_t label = 0;
  std::string name;
  Bytes attention;              // the chosen head's cross-attention, iteration 0, the class's wordpieces
  std::vector<Bytes> gradcam;   // the class map of each dropout iteration
  Bytes final_map;              // the sum over iterations (the map that is thresholded)
  std::vector<float> score_grid;  // the final map min-max scaled to 0..1, grid x grid row-major
};
struct ExplainMaps {
  int grid = 0;                 // the model's patch grid side
  int iterations = 0;
  std::vector<ClassMaps> classes;  // in prompt order
  // Per iteration, shared by all classes: 0 kept, 0.5 zeroed in this iteration's input, 1 chosen
  // by this iteration (zeroed from the next one on); not min-max scaled.
  std::vector<Bytes> dropped;
};
ExplainMaps explain_maps(const segment::SegmentationResult& result, const PromptClasses& classes);

}  // namespace pnpovss::run
