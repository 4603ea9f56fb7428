#include "pnpovss/segment/salience_dropout.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "pnpovss/error.h"
#include "pnpovss/segment/gradcam.h"
#include "pnpovss/util/interrupt.h"

namespace pnpovss::segment {
namespace {

struct Ranked {
  float value;
  int64_t index;
};

// Values of U in flat order; with `dropped`, only the patches still in S.
std::vector<Ranked> ranked_patches(const torch::Tensor& salience, const torch::Tensor* dropped) {
  const torch::Tensor u = salience.detach().to(torch::kCPU, torch::kFloat32).contiguous().view(-1);
  torch::Tensor d;
  if (dropped != nullptr) d = dropped->to(torch::kCPU, torch::kUInt8).contiguous().view(-1);
  if (d.defined() && d.numel() != u.numel()) throw Error("salience map and drop mask differ in size");
  const float* uv = u.data_ptr<float>();
  const uint8_t* dv = d.defined() ? d.data_ptr<uint8_t>() : nullptr;
  std::vector<Ranked> out;
  for (int64_t i = 0; i < u.numel(); ++i) {
    if (dv != nullptr && dv[i] != 0) continue;
    if (!std::isfinite(uv[i]))
      throw Error("the salience map has a non-finite value at patch " + std::to_string(i) +
                  ": the model produced NaN or infinite attention gradients");
    out.push_back({uv[i], i});
  }
  return out;
}

// Largest value first; equal values: lower flat index first.
bool more_salient(const Ranked& a, const Ranked& b) {
  return a.value != b.value ? a.value > b.value : a.index < b.index;
}

void check_settings_fit(const Backbone& backbone, const MethodSettings& s) {
  if (s.attention_layer < 0 || s.attention_layer >= backbone.num_text_layers())
    throw Error("layer " + std::to_string(s.attention_layer + 1) + " is out of range: the model has " +
                std::to_string(backbone.num_text_layers()) + " text layers (1.." +
                std::to_string(backbone.num_text_layers()) + ")");
  if (s.attention_head < 0 || s.attention_head >= backbone.num_heads())
    throw Error("head " + std::to_string(s.attention_head + 1) + " is out of range: the model has " +
                std::to_string(backbone.num_heads()) + " heads (1.." + std::to_string(backbone.num_heads()) + ")");
}

// Sum of the zeroed token maps; the released code adds the first iteration once more.
torch::Tensor aggregate(const std::vector<DropoutIteration>& iterations, bool first_twice) {
  torch::Tensor total = iterations.front().gradcam_tokens_zeroed.clone();
  for (size_t t = 1; t < iterations.size(); ++t) total += iterations[t].gradcam_tokens_zeroed;
  if (first_twice) total = iterations.front().gradcam_tokens_zeroed + total;
  return total;
}

}  // namespace

std::vector<int64_t> select_halving(const torch::Tensor& salience, const torch::Tensor& dropped) {
  std::vector<Ranked> remaining = ranked_patches(salience, &dropped);
  const size_t count = (remaining.size() + 1) / 2;
  std::partial_sort(remaining.begin(), remaining.begin() + static_cast<std::ptrdiff_t>(count), remaining.end(),
                    more_salient);
  std::vector<int64_t> out;
  for (size_t i = 0; i < count; ++i) out.push_back(remaining[i].index);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int64_t> select_topk(const torch::Tensor& salience, int64_t k) {
  std::vector<Ranked> all = ranked_patches(salience, nullptr);
  const size_t count = std::min(all.size(), static_cast<size_t>(std::max<int64_t>(k, 0)));
  // A stable ascending argsort puts equal values in index order, so its last k are, from the
  // end: the largest values, among equal ones the higher index first.
  auto later_in_argsort = [](const Ranked& a, const Ranked& b) {
    return a.value != b.value ? a.value > b.value : a.index > b.index;
  };
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(count), all.end(), later_in_argsort);
  std::vector<int64_t> out;
  for (size_t i = count; i-- > 0;) out.push_back(all[i].index);
  return out;
}

float median_over_remaining(const torch::Tensor& salience, const torch::Tensor& dropped) {
  std::vector<Ranked> remaining = ranked_patches(salience, &dropped);
  if (remaining.empty()) return 0.0f;
  std::vector<float> v;
  for (const auto& r : remaining) v.push_back(r.value);
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0f;
}

torch::Tensor zero_dropped_pixels(const torch::Tensor& pixels, const torch::Tensor& dropped, int64_t patch_size) {
  torch::Tensor out = pixels.clone();
  const torch::Tensor d = dropped.to(torch::kCPU, torch::kUInt8).contiguous();
  const uint8_t* dv = d.data_ptr<uint8_t>();
  const int64_t grid = d.size(1);
  for (int64_t i = 0; i < d.size(0); ++i)
    for (int64_t j = 0; j < grid; ++j)
      if (dv[i * grid + j] != 0)
        out.narrow(1, i * patch_size, patch_size).narrow(2, j * patch_size, patch_size).zero_();
  return out;
}

namespace {

// What one pass gave for one image, turned into the iteration's maps and its new drop set.
DropoutIteration finish_iteration(const HeadAttentionGradient& ag, torch::Tensor pixel_values,
                                  const torch::Tensor& dropped, const Prompt& prompt, const MethodSettings& settings,
                                  int64_t grid) {
  const torch::Tensor text_mask = torch::tensor(prompt.attention_mask, torch::kInt64).to(torch::kFloat32);
  DropoutIteration it;
  it.dropped_before = dropped.clone();
  it.pixel_values = std::move(pixel_values);
  const torch::Tensor probs = ag.probs.to(torch::kCPU, torch::kFloat32);
  const torch::Tensor grads = ag.grads.to(torch::kCPU, torch::kFloat32);
  it.itm_logits = ag.itm_logits.to(torch::kCPU, torch::kFloat32);
  it.attn_probs = patch_columns(probs, grid);
  it.attn_cls_column = probs.select(1, 0);
  it.attn_grad = patch_columns(grads, grid);
  it.gradcam_tokens = gradcam_tokens(probs, grads, text_mask, grid);
  it.gradcam_tokens_zeroed = zero_dropped(it.gradcam_tokens, dropped);
  it.class_maps = class_maps(it.gradcam_tokens_zeroed, prompt.spans, settings.maps_last_class_sum);
  it.salience = settings.dropout_u_over_wordpieces
                    ? zero_dropped(wordpiece_row_sum(it.gradcam_tokens, prompt.spans), dropped)
                    : it.class_maps.sum(0);
  it.eta = median_over_remaining(it.salience, dropped);
  it.new_dropped = settings.dropout_rule == DropRule::Halving ? select_halving(it.salience, dropped)
                                                              : select_topk(it.salience, settings.dropout_k);
  return it;
}

void check_dropout_inputs(const Backbone& backbone, const std::vector<torch::Tensor>& pixels,
                          const std::vector<const Prompt*>& prompts, const MethodSettings& settings) {
  check_settings_fit(backbone, settings);
  if (pixels.empty() || pixels.size() != prompts.size()) throw Error("Salience DropOut needs one prompt per image");
  for (const auto& p : pixels)
    if (p.dim() != 3 || p.size(0) != 3 || p.size(1) != p.size(2) || p.sizes() != pixels.front().sizes())
      throw Error("model input must be 3 x S x S pixels, the same S for every image of a batch");
  for (const Prompt* p : prompts)
    if (p == nullptr) throw Error("Salience DropOut needs one prompt per image");
  if (settings.dropout_iterations < 1) throw Error("dropout iterations must be 1 or more");
}

}  // namespace

DropoutResult salience_dropout(const Backbone& backbone, const torch::Tensor& pixels, const Prompt& prompt,
                               const MethodSettings& settings) {
  return std::move(salience_dropout_batch(backbone, {pixels}, {&prompt}, settings).front());
}

std::vector<DropoutResult> salience_dropout_batch(const Backbone& backbone, const std::vector<torch::Tensor>& pixels,
                                                  const std::vector<const Prompt*>& prompts,
                                                  const MethodSettings& settings) {
  check_dropout_inputs(backbone, pixels, prompts, settings);
  const int64_t ps = backbone.patch_size();
  const int64_t grid = backbone.grid(pixels.front().size(1));
  const size_t batch = pixels.size();
  std::vector<DropoutResult> results(batch);
  std::vector<torch::Tensor> dropped(batch);
  for (auto& d : dropped) d = torch::zeros({grid, grid}, torch::kUInt8);
  for (int t = 0; t < settings.dropout_iterations; ++t) {
    util::interruption_point();  // Ctrl-C in Python stops between model passes
    std::vector<torch::Tensor> inputs;
    for (size_t b = 0; b < batch; ++b) inputs.push_back(zero_dropped_pixels(pixels[b], dropped[b], ps));
    const auto passes = backbone.attention_and_gradient_batch(torch::stack(inputs), prompts,
                                                              settings.attention_layer, settings.attention_head);
    for (size_t b = 0; b < batch; ++b) {
      DropoutIteration it = finish_iteration(passes[b], inputs[b], dropped[b], *prompts[b], settings, grid);
      auto flat = dropped[b].view(-1);
      for (int64_t p : it.new_dropped) flat[p] = 1;
      results[b].iterations.push_back(std::move(it));
    }
  }
  for (size_t b = 0; b < batch; ++b) {
    auto& r = results[b];
    r.aggregated_tokens = aggregate(r.iterations, settings.dropout_first_iteration_twice);
    r.final_maps = class_maps(r.aggregated_tokens, prompts[b]->spans, settings.maps_last_class_sum);
  }
  return results;
}

}  // namespace pnpovss::segment
