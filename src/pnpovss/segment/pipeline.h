// The whole method on one image (docs/method.md §1-6): preprocessing, prompt,
// Salience DropOut, post-processing. Every intermediate is kept for checks and --save-maps.
//
// Shapes: S input side, P grid side, T text tokens, K classes, C channels (K, or K + 1 with
// the background first), H x W the original image.
//
// Label convention of SegmentationResult::labels: 0 = background, k = classes[k - 1]
// (1-based position in the given class list), whether or not a background channel was used.
// SegmentationResult::channels holds the raw channel indices into channel_names.
#pragma once

#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "pnpovss/image/codec.h"
#include "pnpovss/segment/backbone.h"
#include "pnpovss/segment/postprocess.h"
#include "pnpovss/segment/prompt.h"
#include "pnpovss/segment/salience_dropout.h"
#include "pnpovss/settings.h"
#include "pnpovss/text/wordpiece.h"

namespace pnpovss::segment {

constexpr const char* kBackgroundName = "background";

struct StageTiming {
  std::string stage;  // "preprocess", "prompt", "dropout", "postprocess", "crf"
  double seconds = 0.0;
};

struct SegmentationResult {
  int height = 0, width = 0;
  std::vector<int32_t> labels;              // H*W row-major: 0 = background, k = classes[k-1]
  std::vector<int32_t> channels;            // H*W row-major: index into channel_names
  std::vector<std::string> channel_names;   // "background" first when used, then the classes as given
  bool has_background = false;
  std::vector<StageTiming> timings;

  // Intermediates.
  torch::Tensor pixel_values;  // [3, S, S] iteration-0 input
  Prompt prompt;
  DropoutResult dropout;
  ChannelStack maps;           // normalized, keep, masks, stack (not for large blurred images)
  torch::Tensor blurred;       // [C, H, W] blurred and min-max'ed stack; undefined without blur
  torch::Tensor argmax;        // [H, W] int32 argmax of the blurred (or unblurred) stack

  // Every intermediate as (name, tensor), named as in the pipeline fixtures: input_ids,
  // input_ids_tokenizer, attention_mask, class_spans, pixel_values, iter{t}.* (dropped_before_mask,
  // pixel_values, itm_logits, attn_probs, attn_cls_column, attn_grad, gradcam_tokens,
  // gradcam_tokens_zeroed, class_maps, U, eta, new_dropped), agg_tokens, final_maps,
  // final_minmax, keep_mask, masks, stack (left out where blurs_through_factors), blurred, argmax,
  // channels, labels.
  std::vector<std::pair<std::string, torch::Tensor>> named_tensors() const;
};

// Segments `original` into `classes` (given order) with the backbone and the tokenizer of one
// checkpoint. Throws pnpovss::Error for invalid settings, settings that do not fit the backbone
// (layer, head, input size), or bad class names.
SegmentationResult segment_image(const Backbone& backbone, const PromptTokenizer& tokenizer,
                                 const Image& original, const std::vector<std::string>& classes,
                                 const MethodSettings& settings);
SegmentationResult segment_image(const Backbone& backbone, const text::WordPieceTokenizer& tokenizer,
                                 const Image& original, const std::vector<std::string>& classes,
                                 const MethodSettings& settings);

// The same from given model input `pixel_values` [3, S, S] (normalised, S = settings.input_size);
// `original` gives the output size and the CRF colours.
SegmentationResult run_from_pixels(const Backbone& backbone, const PromptTokenizer& tokenizer,
                                   const torch::Tensor& pixel_values, const Image& original,
                                   const std::vector<std::string>& classes, const MethodSettings& settings);
SegmentationResult run_from_pixels(const Backbone& backbone, const text::WordPieceTokenizer& tokenizer,
                                   const torch::Tensor& pixel_values, const Image& original,
                                   const std::vector<std::string>& classes, const MethodSettings& settings);

// One image of a batch and its class list (both must outlive the call).
struct ImageTask {
  const Image* image = nullptr;
  const std::vector<std::string>* classes = nullptr;
};

// segment_image for several images at once: one model pass per dropout iteration for the whole
// batch (each image keeps its own prompt, class list and drop set; prompts of different lengths
// are padded and masked). Entry i equals segment_image of tasks[i] up to float rounding in the
// model. Post-processing runs per image on the CPU. Throws as segment_image; an error in one
// image's input fails the whole batch.
std::vector<SegmentationResult> segment_images(const Backbone& backbone, const PromptTokenizer& tokenizer,
                                               const std::vector<ImageTask>& tasks, const MethodSettings& settings);
// segment_images in its two stages, so that a caller can overlap them (segment_in_batches on a
// GPU post-processes one batch on the CPU while the model runs the next): the model stage
// (preprocessing, prompts, Salience DropOut for the whole batch) leaves each result without
// its channel stack and labels; the post-processing stage completes results[i] from tasks[i]
// (channel stack, blur, argmax or Dense CRF, labels), images side by side on libtorch's threads.
std::vector<SegmentationResult> model_stage(const Backbone& backbone, const PromptTokenizer& tokenizer,
                                            const std::vector<ImageTask>& tasks, const MethodSettings& settings);
void postprocess_stage(const std::vector<ImageTask>& tasks, std::vector<SegmentationResult>& results,
                       const MethodSettings& settings);

// The result's channels relabelled with dataset ids: `background_label` for the background
// channel (when used) and class_labels[k] for classes[k]. With `official_inplace` (setting
// labels_official_inplace_remap) the released code's in-place loop is reproduced (see map_labels).
std::vector<int32_t> dataset_label_map(const SegmentationResult& result, const std::vector<int32_t>& class_labels,
                                       int32_t background_label, bool official_inplace);

// The model input of `image` for `settings.input_size` with the backbone's normalisation: [3, S, S].
torch::Tensor preprocess_image(const Backbone& backbone, const Image& image, const MethodSettings& settings);

}  // namespace pnpovss::segment
