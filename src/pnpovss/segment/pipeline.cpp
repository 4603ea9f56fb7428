#include "pnpovss/segment/pipeline.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <chrono>

#include "pnpovss/cpu/large_blocks.h"
#include "pnpovss/cpu/system_memory.h"
#include "pnpovss/error.h"
#include "pnpovss/image/resize.h"
#include "pnpovss/models/blip_preprocess.h"

namespace pnpovss::segment {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

torch::Tensor row_tensor(const std::vector<int64_t>& values) {
  return torch::tensor(values, torch::kInt64).view({1, static_cast<int64_t>(values.size())});
}

torch::Tensor spans_tensor(const std::vector<ClassSpan>& spans) {
  std::vector<int64_t> flat;
  for (const auto& s : spans) {
    flat.push_back(s.begin);
    flat.push_back(s.end);
  }
  return torch::tensor(flat, torch::kInt64).view({static_cast<int64_t>(spans.size()), 2});
}

torch::Tensor image_tensor(const std::vector<int32_t>& values, int height, int width) {
  return torch::tensor(values, torch::kInt32).view({height, width});
}

void check_original(const Image& original) {
  if (original.width <= 0 || original.height <= 0 ||
      original.rgb.size() != static_cast<size_t>(original.width) * original.height * 3)
    throw Error("the original image is empty or its pixel buffer does not match its size");
}

void check_pixels(const torch::Tensor& pixels, const MethodSettings& settings) {
  const int64_t s = settings.input_size;
  if (!pixels.defined() || pixels.dim() != 3 || pixels.size(0) != 3 || pixels.size(1) != s || pixels.size(2) != s)
    throw Error("model input must be 3 x " + std::to_string(s) + " x " + std::to_string(s) +
                " pixels (the input size of the settings)");
}

// Labels 0 = background, k = classes[k-1], for each channel of the stack.
std::vector<int32_t> class_label_table(int num_classes, bool has_background) {
  std::vector<int32_t> table;
  if (has_background) table.push_back(0);
  for (int k = 1; k <= num_classes; ++k) table.push_back(k);
  return table;
}

}  // namespace

torch::Tensor preprocess_image(const Backbone& backbone, const Image& image, const MethodSettings& settings) {
  const int s = settings.input_size;
  models::ImagePreprocessConfig config = backbone.image_preprocess();
  std::vector<float> chw;
  if (settings.ade_unnormalized_input) {
    // The released ADE script: PIL bilinear, then torchvision's ToTensor only (a float32
    // division by 255, no normalisation).
    config.do_resize = false;
    config.do_rescale = false;
    config.do_normalize = false;
    chw = models::preprocess_to_chw(image::resize_bilinear_pil(image, s, s), s, s, config);
    for (float& v : chw) v /= 255.0f;
  } else {
    chw = models::preprocess_to_chw(image, s, s, config);
  }
  return torch::tensor(chw, torch::kFloat32).view({3, s, s});
}

SegmentationResult segment_image(const Backbone& backbone, const text::WordPieceTokenizer& tokenizer,
                                 const Image& original, const std::vector<std::string>& classes,
                                 const MethodSettings& settings) {
  return segment_image(backbone, *borrowed_prompt_tokenizer(tokenizer), original, classes, settings);
}

SegmentationResult run_from_pixels(const Backbone& backbone, const text::WordPieceTokenizer& tokenizer,
                                   const torch::Tensor& pixel_values, const Image& original,
                                   const std::vector<std::string>& classes, const MethodSettings& settings) {
  return run_from_pixels(backbone, *borrowed_prompt_tokenizer(tokenizer), pixel_values, original, classes, settings);
}

SegmentationResult segment_image(const Backbone& backbone, const PromptTokenizer& tokenizer,
                                 const Image& original, const std::vector<std::string>& classes,
                                 const MethodSettings& settings) {
  settings.validate();
  check_original(original);
  const auto start = Clock::now();
  const torch::Tensor pixels = preprocess_image(backbone, original, settings);
  const double preprocess_seconds = seconds_since(start);
  SegmentationResult result = run_from_pixels(backbone, tokenizer, pixels, original, classes, settings);
  result.timings.insert(result.timings.begin(), {"preprocess", preprocess_seconds});
  return result;
}

namespace {

// The result up to its prompt: sizes, model input and tokens.
SegmentationResult begin_result(const Backbone& backbone, const PromptTokenizer& tokenizer,
                                const torch::Tensor& pixel_values, const Image& original,
                                const std::vector<std::string>& classes, const MethodSettings& settings) {
  check_original(original);
  check_pixels(pixel_values, settings);
  SegmentationResult r;
  r.height = original.height;
  r.width = original.width;
  r.pixel_values = pixel_values.to(torch::kCPU, torch::kFloat32);
  const auto start = Clock::now();
  r.prompt = build_prompt(tokenizer, classes, settings.prompt_class_names, settings.prompt_first_token,
                          backbone.enc_token_id());
  r.timings.push_back({"prompt", seconds_since(start)});
  return r;
}

// Everything after Salience DropOut: channel stack, blur, argmax or CRF, labels.
void finish_result(SegmentationResult& r, const Image& original, const std::vector<std::string>& classes,
                   const MethodSettings& settings) {
  auto start = Clock::now();
  r.maps = channel_masks(r.dropout.final_maps, r.height, r.width, settings);
  check_postprocess_memory(r.maps, settings, cpu::available_memory_bytes());
  // A large image blurred through the factors never needs the full-size unblurred stack.
  if (!blurs_through_factors(r.maps, settings)) upsample_channels(r.maps, settings);
  r.has_background = r.maps.has_background;
  if (uses_blur(settings)) r.blurred = blur_channels(r.maps, settings);
  const torch::Tensor& decided = r.blurred.defined() ? r.blurred : r.maps.stack;
  r.argmax = argmax_channels(decided);
  r.timings.push_back({"postprocess", seconds_since(start)});

  if (uses_crf(settings)) {
    start = Clock::now();
    r.channels = crf_channels(decided, original, settings.post_crf);
    r.timings.push_back({"crf", seconds_since(start)});
  } else {
    const int32_t* a = r.argmax.data_ptr<int32_t>();
    r.channels.assign(a, a + r.argmax.numel());
  }

  if (r.has_background) r.channel_names.push_back(kBackgroundName);
  r.channel_names.insert(r.channel_names.end(), classes.begin(), classes.end());
  r.labels = map_labels(r.channels, class_label_table(static_cast<int>(classes.size()), r.has_background), false);
}

}  // namespace

SegmentationResult run_from_pixels(const Backbone& backbone, const PromptTokenizer& tokenizer,
                                   const torch::Tensor& pixel_values, const Image& original,
                                   const std::vector<std::string>& classes, const MethodSettings& settings) {
  settings.validate();
  SegmentationResult r = begin_result(backbone, tokenizer, pixel_values, original, classes, settings);
  const auto start = Clock::now();
  r.dropout = salience_dropout(backbone, r.pixel_values, r.prompt, settings);
  r.timings.push_back({"dropout", seconds_since(start)});
  finish_result(r, original, classes, settings);
  return r;
}

std::vector<SegmentationResult> model_stage(const Backbone& backbone, const PromptTokenizer& tokenizer,
                                            const std::vector<ImageTask>& tasks, const MethodSettings& settings) {
  settings.validate();
  if (tasks.empty()) return {};
  std::vector<SegmentationResult> results;
  for (const ImageTask& task : tasks) {
    if (task.image == nullptr || task.classes == nullptr) throw Error("every image of a batch needs its classes");
    check_original(*task.image);
    auto start = Clock::now();
    const torch::Tensor pixels = preprocess_image(backbone, *task.image, settings);
    const double preprocess_seconds = seconds_since(start);
    results.push_back(begin_result(backbone, tokenizer, pixels, *task.image, *task.classes, settings));
    results.back().timings.insert(results.back().timings.begin(), {"preprocess", preprocess_seconds});
  }
  std::vector<torch::Tensor> pixels;
  std::vector<const Prompt*> prompts;
  for (const auto& r : results) {
    pixels.push_back(r.pixel_values);
    prompts.push_back(&r.prompt);
  }
  auto start = Clock::now();
  std::vector<DropoutResult> dropouts = salience_dropout_batch(backbone, pixels, prompts, settings);
  // The batch's model time, shared out equally.
  const double dropout_seconds = seconds_since(start) / static_cast<double>(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    results[i].dropout = std::move(dropouts[i]);
    results[i].timings.push_back({"dropout", dropout_seconds});
  }
  return results;
}

void postprocess_stage(const std::vector<ImageTask>& tasks, std::vector<SegmentationResult>& results,
                       const MethodSettings& settings) {
  if (results.size() != tasks.size()) throw Error("post-processing needs one result per image");
  // The model's freed activations kept for its next pass (cpu/large_blocks.h) would sit idle
  // through the blur and the Dense CRF, where a large photo's peak memory is: they go back to
  // the system (on huge pages, mapping them again costs about 0.1 ms per MB).
  cpu::release_kept_blocks();
  // Images are post-processed side by side on libtorch's intra-op threads (each one's own
  // operations then run single-threaded); with one thread, as on the CPU path, in order.
  at::parallel_for(0, static_cast<int64_t>(tasks.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) finish_result(results[i], *tasks[i].image, *tasks[i].classes, settings);
  });
}

std::vector<SegmentationResult> segment_images(const Backbone& backbone, const PromptTokenizer& tokenizer,
                                               const std::vector<ImageTask>& tasks, const MethodSettings& settings) {
  std::vector<SegmentationResult> results = model_stage(backbone, tokenizer, tasks, settings);
  postprocess_stage(tasks, results, settings);
  return results;
}

std::vector<int32_t> dataset_label_map(const SegmentationResult& result, const std::vector<int32_t>& class_labels,
                                       int32_t background_label, bool official_inplace) {
  const size_t classes = result.channel_names.size() - (result.has_background ? 1 : 0);
  if (class_labels.size() != classes)
    throw Error("got " + std::to_string(class_labels.size()) + " dataset labels for " + std::to_string(classes) +
                " classes: give one label per class");
  std::vector<int32_t> table;
  if (result.has_background) table.push_back(background_label);
  table.insert(table.end(), class_labels.begin(), class_labels.end());
  return map_labels(result.channels, table, official_inplace);
}

std::vector<std::pair<std::string, torch::Tensor>> SegmentationResult::named_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  out.emplace_back("input_ids", row_tensor(prompt.input_ids));
  out.emplace_back("input_ids_tokenizer", row_tensor(prompt.tokenizer_ids));
  out.emplace_back("attention_mask", row_tensor(prompt.attention_mask));
  out.emplace_back("class_spans", spans_tensor(prompt.spans));
  out.emplace_back("pixel_values", pixel_values);
  for (size_t t = 0; t < dropout.iterations.size(); ++t) {
    const DropoutIteration& it = dropout.iterations[t];
    const std::string p = "iter" + std::to_string(t) + ".";
    out.emplace_back(p + "dropped_before_mask", it.dropped_before);
    out.emplace_back(p + "pixel_values", it.pixel_values);
    out.emplace_back(p + "itm_logits", it.itm_logits);
    out.emplace_back(p + "attn_probs", it.attn_probs);
    out.emplace_back(p + "attn_cls_column", it.attn_cls_column);
    out.emplace_back(p + "attn_grad", it.attn_grad);
    out.emplace_back(p + "gradcam_tokens", it.gradcam_tokens);
    out.emplace_back(p + "gradcam_tokens_zeroed", it.gradcam_tokens_zeroed);
    out.emplace_back(p + "class_maps", it.class_maps);
    out.emplace_back(p + "U", it.salience);
    out.emplace_back(p + "eta", torch::tensor({it.eta}, torch::kFloat32));
    out.emplace_back(p + "new_dropped", torch::tensor(it.new_dropped, torch::kInt64));
  }
  out.emplace_back("agg_tokens", dropout.aggregated_tokens);
  out.emplace_back("final_maps", dropout.final_maps);
  out.emplace_back("final_minmax", maps.normalized);
  out.emplace_back("keep_mask", maps.keep);
  out.emplace_back("masks", maps.masks);
  if (maps.stack.defined()) out.emplace_back("stack", maps.stack);
  if (blurred.defined()) out.emplace_back("blurred", blurred);
  out.emplace_back("argmax", argmax);
  out.emplace_back("channels", image_tensor(channels, height, width));
  out.emplace_back("labels", image_tensor(labels, height, width));
  return out;
}

}  // namespace pnpovss::segment
