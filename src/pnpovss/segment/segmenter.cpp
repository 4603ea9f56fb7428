#include "pnpovss/segment/segmenter.h"

#include <nlohmann/json.hpp>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/segment/blip_backbone.h"
#include "pnpovss/segment/bridgetower_backbone.h"
#include "pnpovss/segment/prompt.h"

namespace pnpovss::segment {

std::string Segmenter::read_model_type(const std::string& dir) {
  const nlohmann::json config = io::read_json_file(dir + "/config.json");
  const auto it = config.find("model_type");
  if (it == config.end() || !it->is_string())
    throw Error(dir + "/config.json has no \"model_type\": is this a Hugging Face checkpoint directory?");
  return it->get<std::string>();
}

Segmenter::Segmenter(Segmenter&&) noexcept = default;
Segmenter& Segmenter::operator=(Segmenter&&) noexcept = default;
Segmenter::~Segmenter() = default;

Segmenter Segmenter::load(const std::string& model_dir, PositionResize resize, const runtime::Placement& placement) {
  Segmenter s;
  s.model_dir_ = model_dir;
  s.model_type_ = read_model_type(model_dir);
  s.placement_ = placement;
  if (s.model_type_ == "blip") {
    s.tokenizer_ = prompt_tokenizer(text::WordPieceTokenizer::from_dir(model_dir));
    s.backbone_ = std::make_unique<BlipBackbone>(BlipBackbone::load(model_dir, resize, placement));
    return s;
  }
  if (s.model_type_ == "bridgetower") {
    s.tokenizer_ = prompt_tokenizer(text::RobertaTokenizer::from_dir(model_dir));
    s.backbone_ = std::make_unique<BridgeTowerBackbone>(BridgeTowerBackbone::load(model_dir, placement));
    return s;
  }
  throw Error(model_dir + ": model type \"" + s.model_type_ +
              "\" is not supported; pnp-ovss segments with image-text matching models of type \"blip\" or "
              "\"bridgetower\"");
}

void Segmenter::check_classes(const std::vector<std::string>& classes, const MethodSettings& settings) const {
  // The first token's id does not matter for these checks.
  build_prompt(*tokenizer_, classes, settings.prompt_class_names, FirstToken::Cls, 0);
}

void Segmenter::check_settings(const MethodSettings& settings, const SettingChoices* choices) const {
  // Where a value came from, when the caller did not choose it.
  const auto origin = [&](const std::optional<int>& chosen) -> std::string {
    if (choices == nullptr || chosen) return "";
    if (choices->settings_file) return "from settings file '" + *choices->settings_file + "'";
    if (choices->settings_json) return "from the settings";
    return "the " + settings.preset + " preset's";
  };
  const Backbone& bb = *backbone_;
  const int layers = bb.num_text_layers(), heads = bb.num_heads();
  if (settings.attention_layer < 0 || settings.attention_layer >= layers)
    throw SettingError("layer", std::to_string(settings.attention_layer + 1),
                       "is out of range: the model has " + std::to_string(layers) + " text layers, choose 1.." +
                           std::to_string(layers),
                       origin(choices ? choices->layer : std::nullopt));
  if (settings.attention_head < 0 || settings.attention_head >= heads)
    throw SettingError("head", std::to_string(settings.attention_head + 1),
                       "is out of range: the model has " + std::to_string(heads) + " heads, choose 1.." +
                           std::to_string(heads),
                       origin(choices ? choices->head : std::nullopt));
  const int64_t patch = bb.patch_size();
  if (settings.input_size <= 0 || settings.input_size % patch != 0)
    throw SettingError("size", std::to_string(settings.input_size),
                       "is not a multiple of the model's patch size " + std::to_string(patch) + ": choose e.g. " +
                           std::to_string(patch * 21),
                       origin(choices ? choices->size : std::nullopt));
}

Prompt Segmenter::prompt(const std::vector<std::string>& classes, const MethodSettings& settings) const {
  return build_prompt(*tokenizer_, classes, settings.prompt_class_names, settings.prompt_first_token,
                      backbone_->enc_token_id());
}

SegmentationResult Segmenter::segment(const Image& image, const std::vector<std::string>& classes,
                                      const MethodSettings& settings) const {
  return segment_image(*backbone_, *tokenizer_, image, classes, settings);
}

std::vector<SegmentationResult> Segmenter::segment_batch(const std::vector<ImageTask>& tasks,
                                                         const MethodSettings& settings) const {
  return segment_images(*backbone_, *tokenizer_, tasks, settings);
}

}  // namespace pnpovss::segment

