// BridgeTower image-text matching (Hugging Face BridgeTowerForImageAndTextRetrieval): a RoBERTa
// text tower and a CLIP-like vision tower whose top layers feed, through bridge ("link tower")
// layers, a cross-modal encoder of paired text and image layers; an ITM head on the two pooled
// class tokens (transformers v4.43.4, models/bridgetower/modeling_bridgetower.py).
//
// Shapes: B batch, T text tokens, N = 1 + P image tokens (class token first, P patches row-major),
// Dv vision width, D text / cross-modal width, K cross-modal layers, h cross-modal heads.
//
// Usage:
//   auto model = BridgeTowerItm::load("path/to/bridgetower-large-itm-mlm-itc");
//   auto out = model.itm_attention_gradients(pixel_values, ids, mask, {1});
//   out.probs[0], out.grads[0]      // [B, h, T, N] text-to-image cross-attention of layer 2
//
// Thread safety: a loaded model is immutable; its methods may run concurrently.
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "pnpovss/models/bridgetower_config.h"
#include "pnpovss/models/weights.h"
#include "pnpovss/runtime/placement.h"
#include "pnpovss/runtime/tensor_bridge.h"

namespace pnpovss::models {

struct BridgeTowerOutputs {
  torch::Tensor itm_logits;          // [B, 2] raw logits, column 1 = "match"
  torch::Tensor text_features;       // [B, T, D] last cross-modal text layer
  torch::Tensor image_features;      // [B, N, D] last cross-modal image layer
  torch::Tensor pooler_output;       // [B, 2D] cat(text pooler, image pooler)
  std::vector<int64_t> layers;       // 0-based cross-modal layers, as requested
  std::vector<torch::Tensor> probs;  // per layer: text-to-image cross-attention probabilities [B, h, T, N]
  std::vector<torch::Tensor> grads;  // per layer: d sum_b itm_logits[b, 1] / d probs
};

// Every parameter the model built from `config` expects, with checkpoint names and shapes.
std::vector<ParameterSpec> bridgetower_itm_parameters(const BridgeTowerConfig& config);

// Writes config.json and model.safetensors of a random-weight model into `dir` (created if
// needed); a later call with the same config reuses what is there.
void write_random_bridgetower_checkpoint(const BridgeTowerConfig& config, const std::string& dir, uint64_t seed);

class BridgeTowerItm {
 public:
  // Loads `dir`/config.json and the safetensors weights; throws pnpovss::Error.
  static BridgeTowerItm load(const std::string& dir);
  // Builds the model from tensors named as in the checkpoint (strict: see WeightLoader).
  static BridgeTowerItm from_tensors(const BridgeTowerConfig& config, runtime::TensorMap tensors,
                                     const std::string& origin);

  const BridgeTowerConfig& config() const { return config_; }
  int64_t parameter_count() const;

  // Moves every weight to `p` (a copy for another device or type; the loaded weights stay
  // memory-mapped for cpu/fp32). Inputs may then live anywhere: each method moves them, and
  // returns results on the model's device and type.
  void to(const runtime::Placement& p);
  const runtime::Placement& placement() const { return placement_; }

  // One forward pass without gradients. pixel_values [B, 3, H, W] (normalised; the patch grid
  // is H // patch x W // patch as the reference's convolution gives it; another grid than the
  // checkpoint's resizes the position table, see positions_for_grid), input_ids and
  // attention_mask [B, T] int64.
  BridgeTowerOutputs forward(const torch::Tensor& pixel_values, const torch::Tensor& input_ids,
                             const torch::Tensor& attention_mask) const;
  // The same forward pass, plus the text-to-image cross-attention probabilities of the given
  // cross-modal layers and their gradient from sum_b itm_logits[b, 1]. The backward pass stops
  // at the lowest requested layer: everything below it (both towers, lower cross-modal layers)
  // runs without autograd, and no parameter ever requires a gradient.
  BridgeTowerOutputs itm_attention_gradients(const torch::Tensor& pixel_values, const torch::Tensor& input_ids,
                                             const torch::Tensor& attention_mask,
                                             const std::vector<int64_t>& layers) const;

  // The position table for a grid_h x grid_w patch grid: the checkpoint's own for its grid,
  // otherwise the patch part resized with PyTorch bicubic interpolation (align_corners=false)
  // to the target size, class entry unchanged. This is the rule the method uses for BLIP, and
  // the one later transformers versions use for CLIP-like towers (interpolate_pos_encoding);
  // v4.43.4 has none for BridgeTower. [1 + grid_h*grid_w, Dv].
  torch::Tensor positions_for_grid(int64_t grid_h, int64_t grid_w) const;

  struct Linear {
    torch::Tensor weight, bias;
  };
  struct LayerNorm {
    torch::Tensor weight, bias;
  };
  struct VisionBlock {
    LayerNorm ln_1, ln_2;
    Linear in_proj, out_proj, c_fc, c_proj;
  };
  struct Attention {  // BERT attention: q, k, v, output dense, post-LN
    Linear query, key, value, output;
    LayerNorm norm;
  };
  struct TextLayer {  // RoBERTa layer: self-attention, FFN
    Attention self_attention;
    Linear intermediate, output;
    LayerNorm output_norm;
  };
  struct CrossLayer {  // self-attention, cross-attention, FFN
    Attention self_attention, cross_attention;
    Linear intermediate, output;
    LayerNorm output_norm;
  };

 private:
  // The bridge inputs of every cross-modal layer, from the unimodal towers (no autograd):
  // transform(tower features) + token-type embedding, before the link tower's layer norm.
  struct TowerFeatures {
    std::vector<torch::Tensor> text;   // K x [B, T, D]
    std::vector<torch::Tensor> image;  // K x [B, N, D]
  };
  using ProbsHook = std::function<torch::Tensor(int64_t layer, const torch::Tensor& probs)>;

  template <typename F>
  void for_each_weight(F&& f);
  // The additive key mask of the reference, (1 - mask) * lowest value of the model's type,
  // broadcast over heads and queries: [B, 1, 1, T] on the model's device.
  torch::Tensor extended_mask(const torch::Tensor& attention_mask) const;
  void check_inputs(const torch::Tensor& pixels, const torch::Tensor& ids, const torch::Tensor& mask) const;
  torch::Tensor vision_embeddings(const torch::Tensor& pixels) const;
  torch::Tensor vision_block(const VisionBlock& block, const torch::Tensor& x) const;
  torch::Tensor text_embeddings(const torch::Tensor& ids) const;
  torch::Tensor attention(const Attention& a, const torch::Tensor& queries, const torch::Tensor& keys,
                          const torch::Tensor& mask, const std::function<torch::Tensor(const torch::Tensor&)>& hook) const;
  torch::Tensor text_layer(const TextLayer& layer, const torch::Tensor& x, const torch::Tensor& mask) const;
  torch::Tensor cross_layer(const CrossLayer& layer, const torch::Tensor& x, const torch::Tensor& other,
                            const torch::Tensor& self_mask, const torch::Tensor& other_mask,
                            const std::function<torch::Tensor(const torch::Tensor&)>& hook) const;
  TowerFeatures towers(const torch::Tensor& pixels, const torch::Tensor& ids, const torch::Tensor& text_mask) const;
  // Cross-modal layers [0, K) with autograd from layer `grad_from` on; fills out's features,
  // pooler output and logits.
  void fuse(const TowerFeatures& towers, const torch::Tensor& text_mask, int64_t grad_from, const ProbsHook& hook,
            BridgeTowerOutputs& out) const;

  BridgeTowerConfig config_;
  runtime::Placement placement_;
  // Vision
  torch::Tensor class_embedding_, patch_weight_, position_embedding_;
  LayerNorm ln_pre_, ln_post_;
  std::vector<VisionBlock> vision_blocks_;
  // Text
  torch::Tensor word_embeddings_, position_embeddings_, text_token_type_;
  LayerNorm text_embed_norm_;
  std::vector<TextLayer> text_layers_;
  // Bridge and cross-modal encoder
  Linear text_transform_, image_transform_;
  torch::Tensor token_type_;  // [2, D]: 0 text, 1 image
  LayerNorm text_input_norm_, image_input_norm_;
  std::vector<LayerNorm> text_links_, image_links_;
  std::vector<CrossLayer> text_cross_, image_cross_;
  Linear text_pooler_, image_pooler_, itm_head_;
};

}  // namespace pnpovss::models
