// A loaded model ready to segment: the backbone and the tokenizer of one checkpoint directory,
// chosen by its config.json. Every front end (segment, eval, tune, the Python module) goes
// through this, so a new backbone is added in one place.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pnpovss/image/codec.h"
#include "pnpovss/runtime/placement.h"
#include "pnpovss/segment/backbone.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/segment/prompt.h"
#include "pnpovss/settings.h"

namespace pnpovss::segment {

class Segmenter {
 public:
  // Loads the checkpoint in `model_dir` (a directory in Hugging Face layout; resolve hub ids
  // with hub::resolve_model_dir first). `resize` is how the position table follows the input
  // grid (MethodSettings::input_position_resize). Throws pnpovss::Error for an unknown model
  // type or a broken checkpoint.
  // `placement`: the device and type the model runs in (any that check_placement accepts).
  static Segmenter load(const std::string& model_dir, PositionResize resize = PositionResize::SizeBased,
                        const runtime::Placement& placement = {});

  Segmenter(Segmenter&&) noexcept;
  Segmenter& operator=(Segmenter&&) noexcept;
  ~Segmenter();

  const std::string& model_dir() const { return model_dir_; }
  // config.json's model_type: "blip" or "bridgetower".
  const std::string& model_type() const { return model_type_; }
  const runtime::Placement& placement() const { return placement_; }
  const Backbone& backbone() const { return *backbone_; }
  // The checkpoint's tokenizer as the prompt uses it (WordPiece for BLIP, RoBERTa BPE for
  // BridgeTower).
  const PromptTokenizer& tokenizer() const { return *tokenizer_; }

  // config.json's model_type of `model_dir` without loading the model, e.g. to choose the
  // backbone's preset defaults (preset(name, model_type)) before loading. Throws
  // pnpovss::Error when config.json is missing or has no model_type.
  static std::string read_model_type(const std::string& model_dir);

  // Throws pnpovss::Error when the class names cannot form a prompt (empty, duplicate, no
  // tokens, too long), without running the model.
  void check_classes(const std::vector<std::string>& classes, const MethodSettings& settings) const;
  // Throws pnpovss::SettingError when layer, head or input size do not fit this model (layers
  // and heads from 1). With `choices`, a value they do not hold is named as the preset's or the
  // settings file's.
  void check_settings(const MethodSettings& settings, const SettingChoices* choices = nullptr) const;

  // The prompt of `classes` with the token the settings ask for first (FirstToken::Enc: the
  // model's [ENC]); throws as check_classes.
  Prompt prompt(const std::vector<std::string>& classes, const MethodSettings& settings) const;

  SegmentationResult segment(const Image& image, const std::vector<std::string>& classes,
                             const MethodSettings& settings) const;
  // Several images in one batch through the model (see segment_images).
  std::vector<SegmentationResult> segment_batch(const std::vector<ImageTask>& tasks,
                                                const MethodSettings& settings) const;

 private:
  Segmenter() = default;
  std::string model_dir_, model_type_;
  runtime::Placement placement_;
  std::unique_ptr<PromptTokenizer> tokenizer_;
  std::unique_ptr<Backbone> backbone_;
};

}  // namespace pnpovss::segment
