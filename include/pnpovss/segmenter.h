// Segmenting images from C++: load a model once, then segment images into any classes.
//
//   #include <pnpovss/pnpovss.h>
//
//   pnpovss::SettingChoices choices;          // empty: the paper's method for the model
//   choices.layer = 8;                        // any setting the command line offers
//   const auto seg = pnpovss::Segmenter::load("Salesforce/blip-itm-large-flickr", choices);
//   const pnpovss::Result r = seg.segment(pnpovss::read_image("photo.jpg"), {"cat", "sofa"});
//   // r.labels[y * r.width + x]: 0 background, k = r.classes[k - 1]
//
// A Segmenter is immutable after load and may be used from several threads at once. Errors are
// thrown as pnpovss::Error (InvalidArgument, SettingError for what the caller gave).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/image.h"
#include "pnpovss/settings.h"

namespace pnpovss {

// Where the model runs.
struct ComputeChoices {
  std::string device = "cpu";  // cpu | cuda | cuda:N
  std::string dtype = "fp32";  // fp32 | bf16 | fp16 (CUDA); bf16 and fp16 change the maps slightly
  int threads = 0;             // libtorch threads for element-wise work, process-wide (0: leave as is)
  // Where the Dense CRF runs: auto (the model's device), cpu (the exact CRF) or cuda[:N] (the
  // same operations as tensors on that GPU; labels may differ at near-ties).
  std::string postprocess_device = "auto";
};

// One segmented image.
struct Result {
  int width = 0, height = 0;
  std::vector<std::string> classes;        // the prompt's classes; label k is classes[k - 1]
  std::vector<int32_t> labels;             // height x width, row-major: 0 background, k = classes[k - 1]
  std::vector<std::string> channel_names;  // the score channels: "background" first when used, then classes
  bool has_background = false;
  // channel_names.size() x height x width floats: the maps the labels were decided from (blurred
  // when the settings blur; before the Dense CRF). Shared, so that bindings can view it.
  std::shared_ptr<const float> scores;
  std::vector<std::pair<std::string, double>> timings;  // seconds per stage
};

// How segment_many shares out the work.
struct ManyChoices {
  std::string batch_size = "auto";  // images per model pass: auto (1 on the CPU) or a count
  std::string workers = "auto";     // images side by side on the CPU: auto (one per core) or a count
};

// One image of segment_many: its result, or why it failed.
struct Segmented {
  Result result;
  std::string error;               // empty when segmented
  bool invalid_argument = false;   // the error is the caller's (e.g. a repeated class name)
  bool ok() const { return error.empty(); }
};

class Segmenter {
 public:
  // Finds the model (a directory in Hugging Face layout, or a hub id org/name[@revision] looked
  // up in and downloaded into the Hugging Face cache), resolves the settings for its backbone
  // and loads it. Throws SettingError for settings that do not fit the model.
  static Segmenter load(const std::string& model, const SettingChoices& choices = {},
                        const ComputeChoices& compute = {});

  // Segments `image` into `classes` (in that order). Throws InvalidArgument for a bad class list.
  Result segment(const Image& image, const std::vector<std::string>& classes) const;
  // Segments several images, each with its own classes (or one list for all when
  // classes.size() == 1), with images side by side on the CPU or batched on a GPU. A failing
  // image fails alone; results are in image order and equal segment() on each.
  std::vector<Segmented> segment_many(const std::vector<const Image*>& images,
                                      const std::vector<std::vector<std::string>>& classes,
                                      const ManyChoices& many = {}) const;

  const MethodSettings& settings() const;
  // Every resolved setting as JSON (layers and heads from 1), as output records write it.
  std::string settings_json() const;
  const std::string& model_dir() const;
  const std::string& model_type() const;  // "blip" | "bridgetower"

  Segmenter(Segmenter&&) noexcept;
  Segmenter& operator=(Segmenter&&) noexcept;
  ~Segmenter();

 private:
  struct Impl;
  explicit Segmenter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pnpovss
