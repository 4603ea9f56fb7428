// BLIP image-text matching (Hugging Face BlipForImageTextRetrieval): a ViT image encoder, a
// BERT text encoder whose every layer cross-attends to the image tokens, an ITM head
// (match / no match logits) and ITC projections.
//
// Shapes: B batch, T text tokens, N = 1 + P image tokens (class token first, P patches),
// Dv vision width, Dt text width, H heads.
//
// Usage:
//   auto model = BlipItm::load("path/to/blip-itm-large-flickr");
//   auto image = model.encode_image(pixel_values);                 // [B, N, Dv]
//   auto capture = model.itm_attention_gradients(ids, mask, image, {7});
//   capture.probs[0], capture.grads[0]                             // [B, H, T, N]
//
// Thread safety: a loaded model is immutable; its methods may run concurrently.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "pnpovss/models/blip_config.h"
#include "pnpovss/models/weights.h"
#include "pnpovss/runtime/placement.h"
#include "pnpovss/runtime/tensor_bridge.h"
#include "pnpovss/settings.h"

namespace pnpovss::models {


struct CrossAttentionCapture {
  torch::Tensor itm_logits;          // [B, 2] raw logits, column 1 = "match"
  torch::Tensor text_hidden;         // [B, T, Dt] last hidden state
  std::vector<int64_t> layers;       // 0-based text layers, as requested
  std::vector<torch::Tensor> probs;  // per layer: cross-attention probabilities [B, H, T, N]
  std::vector<torch::Tensor> grads;  // per layer: d sum_b itm_logits[b, 1] / d probs
};

// Every parameter the model built from `config` expects, with checkpoint names and shapes.
std::vector<ParameterSpec> blip_itm_parameters(const BlipConfig& config);

class BlipItm {
 public:
  // Loads `dir`/config.json and the safetensors weights; throws pnpovss::Error.
  static BlipItm load(const std::string& dir);
  // Builds the model from tensors named as in the checkpoint (strict: see WeightLoader).
  static BlipItm from_tensors(const BlipConfig& config, runtime::TensorMap tensors, const std::string& origin);

  const BlipConfig& config() const { return config_; }
  int64_t parameter_count() const;

  // Moves every weight to `p` (a copy for another device or type; the loaded weights stay
  // memory-mapped for cpu/fp32). Inputs may then live anywhere: each method moves them, and
  // returns results on the model's device and type.
  void to(const runtime::Placement& p);
  const runtime::Placement& placement() const { return placement_; }

  // pixel_values [B, 3, H, W] (normalised) -> last_hidden_state [B, N, Dv] (post-LN applied).
  // H and W must be multiples of the patch size; another grid resizes the position table.
  torch::Tensor encode_image(const torch::Tensor& pixel_values,
                             PositionResize resize = PositionResize::HuggingFace) const;
  // post_layernorm(image_embeds[:, 0]): the vision pooler output (layer norm applied twice).
  torch::Tensor pool_image(const torch::Tensor& image_embeds) const;
  // Text encoder with cross-attention to `image_embeds` (or none when undefined): [B, T, Dt].
  torch::Tensor encode_text(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                            const torch::Tensor& image_embeds) const;
  // ITM logits [B, 2] for the pairs (image b, text b).
  torch::Tensor itm_logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                           const torch::Tensor& image_embeds) const;
  // ITC cosine similarities [B_images, B_texts] (no temperature).
  torch::Tensor itc_scores(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                           const torch::Tensor& image_embeds) const;
  // One forward pass and a backward pass from sum_b itm_logits[b, 1] down to the
  // cross-attention probabilities of the lowest requested layer only: layers below it run
  // without autograd and no parameter ever requires a gradient.
  CrossAttentionCapture itm_attention_gradients(const torch::Tensor& input_ids,
                                                const torch::Tensor& attention_mask,
                                                const torch::Tensor& image_embeds,
                                                const std::vector<int64_t>& layers) const;

  // Reproduces the cost of the reference implementation, for benchmarks: every weight
  // requires a gradient and itm_attention_gradients backpropagates through the whole graph,
  // image encoder included, as a loss.backward() does. The results are the same.
  void set_full_backward(bool on);
  bool full_backward() const { return full_backward_; }

  struct Linear {
    torch::Tensor weight, bias;
  };
  struct LayerNorm {
    torch::Tensor weight, bias;
  };
  struct VisionLayer {
    LayerNorm norm1, norm2;
    Linear qkv, projection, fc1, fc2;
  };
  struct TextAttention {
    Linear query, key, value, output;
    LayerNorm norm;
  };
  struct TextLayer {
    TextAttention self_attention, cross_attention;
    Linear intermediate, output;
    LayerNorm output_norm;
  };

 private:
  BlipConfig config_;
  runtime::Placement placement_;
  std::vector<torch::Tensor> parameters_;
  bool full_backward_ = false;
  // Vision
  torch::Tensor class_embedding_, position_embedding_, patch_weight_, patch_bias_;
  std::vector<VisionLayer> vision_layers_;
  LayerNorm post_layernorm_;
  // Text
  torch::Tensor word_embeddings_, position_embeddings_;
  LayerNorm text_embed_norm_;
  std::vector<TextLayer> text_layers_;
  // Heads
  Linear vision_proj_, text_proj_, itm_head_;

  // Calls `f` on every weight handle of the model (the members below, not parameters_).
  template <typename F>
  void for_each_weight(F&& f);
  torch::Tensor self_attention_mask(const torch::Tensor& attention_mask) const;
  torch::Tensor positions_for_grid(int64_t grid_h, int64_t grid_w, PositionResize resize) const;
  torch::Tensor resize_positions(int64_t grid_h, int64_t grid_w, PositionResize resize) const;
  // Position tables resized for a grid, kept: every dropout pass of an image asks for the same
  // one (a bicubic resize of the 1024-wide table, 17 ms at 768 px). Shared by copies of the
  // model, emptied when it moves (to); not used while weights require gradients.
  struct PositionCache;
  std::shared_ptr<PositionCache> position_cache_;
  torch::Tensor vision_layer(const VisionLayer& layer, const torch::Tensor& x) const;
  torch::Tensor text_embeddings(const torch::Tensor& input_ids) const;
  void check_text_inputs(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) const;

  // Called with each layer's cross-attention probabilities; may return a replacement (the
  // capture returns a gradient-tracking leaf) and record them.
  using ProbsHook = std::function<torch::Tensor(int64_t layer, const torch::Tensor& probs)>;
  torch::Tensor run_text_layers(torch::Tensor hidden, const torch::Tensor& self_mask,
                                const torch::Tensor& image_embeds, int64_t first, int64_t last,
                                const ProbsHook& hook) const;
  CrossAttentionCapture capture_with_full_backward(const torch::Tensor& input_ids, const torch::Tensor& mask,
                                                   const torch::Tensor& image_embeds,
                                                   const std::vector<int64_t>& layers) const;
  torch::Tensor text_layer(int64_t index, const torch::Tensor& hidden, const torch::Tensor& self_mask,
                           const torch::Tensor& image_embeds, const ProbsHook& hook) const;
};

}  // namespace pnpovss::models
