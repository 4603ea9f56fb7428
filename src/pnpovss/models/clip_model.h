// CLIP (Hugging Face CLIPModel): a pre-LN ViT image tower and a causal pre-LN text tower, each
// followed by a bias-free projection into a shared embedding space, compared by cosine
// similarity scaled by exp(logit_scale).
//
// Shapes: B batch, T text tokens (at most max_position_embeddings), S image side (exactly the
// configured image_size), N = 1 + (S/p)^2 image tokens, Dv/Dt tower widths, D projection width.
//
// Usage:
//   auto model = ClipModel::load("path/to/clip-vit-base-patch16");
//   auto tok = text::ClipTokenizer::from_dir("path/to/clip-vit-base-patch16");
//   auto enc = tok.encode_batch({"a photo of a cat", "a photo of a dog"});
//   auto img = model.image_embeds(torch::stack({clip_pixel_values(image, pre)}));    // [1, D]
//   auto txt = model.text_embeds(ids, mask);                                       // [2, D]
//   auto logits = model.logits_per_image(img, txt);                                // [1, 2]
//
// All inference runs without autograd, in float32. Thread safety: a loaded model is immutable;
// its methods may run concurrently.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "pnpovss/image/codec.h"
#include "pnpovss/models/clip_config.h"
#include "pnpovss/models/clip_preprocess.h"
#include "pnpovss/models/weights.h"
#include "pnpovss/runtime/tensor_bridge.h"

namespace pnpovss::models {

// Every parameter the model built from `config` expects, with checkpoint names and shapes.
std::vector<ParameterSpec> clip_parameters(const ClipConfig& config);

class ClipModel {
 public:
  // A tower's outputs: last_hidden_state [B, L, D] and pooler_output [B, D].
  struct TowerOutput {
    torch::Tensor last_hidden_state, pooled;
  };

  // Loads `dir`/config.json and the safetensors weights (memory-mapped; strict: every key is
  // used, `*.position_ids` buffers are ignored). Throws pnpovss::Error.
  static ClipModel load(const std::string& dir);
  static ClipModel from_tensors(const ClipConfig& config, runtime::TensorMap tensors, const std::string& origin);

  const ClipConfig& config() const { return config_; }
  int64_t parameter_count() const;

  // Vision tower on pixel_values [B, 3, S, S]: last_hidden_state without post-LN [B, N, Dv],
  // pooled = post_layernorm(last_hidden_state[:, 0]) [B, Dv].
  TowerOutput encode_image(const torch::Tensor& pixel_values) const;
  // Text tower on ids [B, T] with an optional attention mask [B, T] (undefined: causal mask
  // only): last_hidden_state after final_layer_norm [B, T, Dt], pooled at the first end token.
  TowerOutput encode_text(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) const;

  // [B, 3, S, S] -> [B, D], L2-normalised visual_projection(pooled).
  torch::Tensor image_embeds(const torch::Tensor& pixel_values) const;
  // [B, T] ids and mask -> [B, D], L2-normalised text_projection(pooled).
  torch::Tensor text_embeds(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) const;
  // exp(logit_scale) of the checkpoint.
  double logit_scale() const { return logit_scale_exp_; }
  // logits_per_image [Bi, Bt] = image_embeds @ text_embeds^T * logit_scale().
  torch::Tensor logits_per_image(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds) const;

  struct Linear {
    torch::Tensor weight, bias;
  };
  struct LayerNorm {
    torch::Tensor weight, bias;
  };
  struct Layer {
    LayerNorm norm1, norm2;
    Linear q, k, v, out, fc1, fc2;
  };

 private:
  ClipConfig config_;
  // Vision
  torch::Tensor class_embedding_, patch_weight_, vision_positions_;
  LayerNorm pre_layernorm_, post_layernorm_;
  std::vector<Layer> vision_layers_;
  // Text
  torch::Tensor token_embedding_, text_positions_;
  std::vector<Layer> text_layers_;
  LayerNorm final_layernorm_;
  // Heads
  torch::Tensor visual_projection_, text_projection_;
  double logit_scale_exp_ = 1.0;

  torch::Tensor layer(const Layer& l, const torch::Tensor& x, const torch::Tensor& mask, int64_t heads,
                      double eps, const std::string& act) const;
  void check_pixels(const torch::Tensor& pixel_values) const;
  void check_text(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) const;
  torch::Tensor pool_positions(const torch::Tensor& input_ids) const;
};

// CLIP preprocessing of one image: shortest-edge resize (PIL bicubic), centre crop, rescale,
// normalise -> [3, H, W] float32 (H, W the crop size).
torch::Tensor clip_pixel_values(const Image& image, const ClipPreprocessConfig& config);

}  // namespace pnpovss::models
