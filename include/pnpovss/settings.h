// Every option of the segmentation method (docs/method.md), with the two presets:
// `paper` (the method as published) and `official` (the released script, quirks included).
// Each quirk of the released script is its own option so that it can be switched alone.
//
// Layers and heads are stored 0-based; to_json() and describe() print them 1-based, as the
// command line and docs/method.md number them (BLIP: layer 8, head 10).
#pragma once

#include <optional>
#include <string>

#include "pnpovss/densecrf_params.h"

namespace pnpovss {

// First text token fed to the text encoder (docs/method.md §2).
enum class FirstToken { Enc, Cls };
// Class names in the prompt: as given, or with spaces and hyphens removed (the released code's
// "pottedplant", "tvmonitor").
enum class ClassNameStyle { Natural, Fused };
// Salience DropOut (docs/method.md §4): drop the larger half of the remaining patches by U, or a fixed
// number of top-U patches.
enum class DropRule { Halving, TopK };
// Whether a background channel is placed first (docs/method.md §5.4).
enum class BackgroundMode { Auto, Always, Never };
// The dataset whose rule `BackgroundMode::Auto` follows; UserImages: always on.
enum class DatasetRule { UserImages, Voc, CocoObject, Context, Ade, CocoStuff };
// What turns the channel stack into labels (docs/method.md §5.5-5.6).
enum class Postprocess { None, Blur, Crf, BlurCrf };
// How the backbone's position table is resized to another input grid (docs/method.md §1.4):
// bicubic to the target grid size, as the original BLIP code does (the method), or transformers'
// interpolate_pos_encoding, bicubic with scale factor (h0 + 0.1) / sqrt(N0).
enum class PositionResize { SizeBased, HuggingFace };
// How post-processing computes (docs/method.md §5.5): Exact repeats the reference's arithmetic
// (scipy's Gaussian blur bit for bit, up to kScipyExactBlurMaxSide); Fast blurs through the
// masks' separable factors at every size, the same sums in another order (within 1e-6): the
// blurred argmax moves only at float-rounding ties, but with many classes the Dense CRF carries
// such differences further (docs/performance.md), so Exact is the default.
enum class PostArithmetic { Fast, Exact };

struct MethodSettings {
  std::string preset = "paper";
  std::string backbone = "blip";

  // Image input: S x S pixels, a multiple of the backbone's patch size.
  int input_size = 336;
  PositionResize input_position_resize = PositionResize::SizeBased;
  // official on ADE20K: PIL bilinear resize and no normalisation (inputs in [0, 1]), a quirk
  // of the released script (docs/method.md §1).
  bool ade_unnormalized_input = false;

  // Cross-attention map: text layer and head, 0-based.
  int attention_layer = 7;
  int attention_head = 9;

  FirstToken prompt_first_token = FirstToken::Enc;
  ClassNameStyle prompt_class_names = ClassNameStyle::Natural;

  int dropout_iterations = 4;
  DropRule dropout_rule = DropRule::Halving;
  int dropout_k = 10;                          // patches per iteration for DropRule::TopK
  bool dropout_first_iteration_twice = false;  // official: 2*M(1) + M(2) + ...
  bool dropout_u_over_wordpieces = false;      // official: U sums wordpiece rows, not class maps

  bool maps_last_class_sum = false;  // official: the last class's wordpiece rows are summed

  double mask_threshold = 0.15;
  bool mask_threshold_keeps_values = false;   // official: keep raw values above the threshold
  bool mask_rescale_after_upsample = false;   // official COCO script: min-max per channel again

  BackgroundMode background_mode = BackgroundMode::Auto;
  DatasetRule background_dataset = DatasetRule::UserImages;

  Postprocess post_mode = Postprocess::BlurCrf;
  double post_blur = 0.05;  // Gaussian sigma relative to the long image side; 0 = no blur
  PostArithmetic post_arithmetic = PostArithmetic::Exact;  // Fast: see the enum
  DenseCrfParams post_crf;

  bool labels_official_inplace_remap = false;  // official: in-place relabeling loop

  // Throws pnpovss::Error naming the first invalid option and its valid range.
  void validate() const;
  // One line for logs: "preset=paper backbone=blip size=336 layer=8 head=10 ...".
  std::string describe() const;
};

// The settings of `preset_name` ("paper" | "official") for `backbone` ("blip" |
// "bridgetower"); throws pnpovss::Error for unknown names.
MethodSettings preset(const std::string& preset_name, const std::string& backbone);

// Sets the dataset whose rules apply: the background rule, and for the `official` preset the
// COCO script's min-max after upsampling (COCO-Object and COCO-Stuff) and the ADE script's
// unnormalised bilinear input.
void apply_dataset_rule(MethodSettings& settings, DatasetRule dataset);

// Whether the background channel is used for `num_classes` classes (docs/method.md §5.4: VOC and
// COCO-Object always; Context, ADE and COCO-Stuff only below 3 classes; user images always).
bool uses_background(const MethodSettings& settings, int num_classes);
// Whether blurring applies: the mode includes it and the relative sigma is positive.
bool uses_blur(const MethodSettings& settings);
bool uses_crf(const MethodSettings& settings);

// Name <-> enum for the CLI and outputs. Parsers throw pnpovss::Error listing the valid names.
std::string to_string(FirstToken v);
std::string to_string(ClassNameStyle v);
std::string to_string(DropRule v);
std::string to_string(BackgroundMode v);
std::string to_string(DatasetRule v);
std::string to_string(Postprocess v);
std::string to_string(PositionResize v);
std::string to_string(PostArithmetic v);
FirstToken parse_first_token(const std::string& name);            // enc | cls
ClassNameStyle parse_class_name_style(const std::string& name);   // natural | fused
DropRule parse_drop_rule(const std::string& name);                // halving | topk
BackgroundMode parse_background_mode(const std::string& name);    // auto | always | never
DatasetRule parse_dataset_rule(const std::string& name);  // user | voc | coco_object | context | ade | coco_stuff
Postprocess parse_postprocess(const std::string& name);           // none | blur | crf | blur+crf
PositionResize parse_position_resize(const std::string& name);    // size | hf
PostArithmetic parse_post_arithmetic(const std::string& name);    // fast | exact

// What a user chose, each choice optional: the front ends fill it from their options (command
// line flags, Python keywords, request fields) and resolve_settings() turns it into settings,
// so that the same words give the same settings everywhere.
struct SettingChoices {
  std::optional<std::string> preset;         // "paper" (default) | "official"
  std::optional<std::string> settings_file;  // a settings JSON to start from (tune's best_settings.json)
  std::optional<std::string> settings_json;  // the same as JSON text (a Python dict, a request field)
  std::optional<int> size, layer, head, iterations;  // layer and head count from 1
  std::optional<double> threshold, blur;
  std::optional<std::string> postprocess, background, arithmetic;
};

// The settings `choices` make for a model of `backbone` ("blip" | "bridgetower"): the preset (or
// the settings file or JSON, which must have been made for the same backbone), the chosen
// values on top, the dataset's rules when `dataset` is given (apply_dataset_rule), validated.
// Throws SettingError naming the setting for a bad value, InvalidArgument for a preset together
// with a settings file, or a settings file of another backbone, and Error for an unreadable file.
MethodSettings resolve_settings(const SettingChoices& choices, const std::string& backbone,
                                std::optional<DatasetRule> dataset = std::nullopt);

}  // namespace pnpovss
