// What the method needs from an image-text-matching model: one forward pass of an image and a
// prompt, the raw "match" logit, and one text layer's cross-attention probabilities with their
// gradient from that logit (docs/method.md §3).
//
// Shapes: S input side, ps patch size, P = S / ps grid side, N = 1 + P*P image tokens (the
// ViT class token first, then the patches row-major), T text tokens, H heads.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/models/blip_preprocess.h"
#include "pnpovss/segment/prompt.h"

namespace pnpovss::segment {

// Results are float32 tensors on the CPU, whatever device and type the model runs in.
struct AttentionGradient {
  torch::Tensor itm_logits;  // [2] raw ITM logits; index 1 ("match") is the backpropagated scalar
  torch::Tensor probs;       // [H, T, N] cross-attention probabilities of the requested layer
  torch::Tensor grads;       // [H, T, N] d itm_logits[1] / d probs
};

// One head of one layer for one image of a batch (T: that image's own prompt length).
struct HeadAttentionGradient {
  torch::Tensor itm_logits;  // [2]
  torch::Tensor probs;       // [T, N]
  torch::Tensor grads;       // [T, N]
};

// input ids or mask as a [1, T] int64 row.
torch::Tensor prompt_row(const std::vector<int64_t>& values);
// Throws pnpovss::Error unless pixels is [B, 3, S, S] with one well-formed prompt per image.
void check_batch(const torch::Tensor& pixels, const std::vector<const Prompt*>& prompts);
// The prompts padded on the right to the longest with `pad_id`: ids [B, T] and mask [B, T]
// int64, the padding masked out.
struct PaddedPrompts {
  torch::Tensor ids, mask;
};
PaddedPrompts padded_prompts(const std::vector<const Prompt*>& prompts, int64_t pad_id);
// A batch's results split per image: logits [B, 2], probs and grads [B, H, T, N] of one layer
// on the model's device -> one entry per image with head `head`, its own prompt's T rows, in
// float32 on the CPU (one copy of the chosen head for the whole batch).
std::vector<HeadAttentionGradient> head_of_each_image(const torch::Tensor& logits, const torch::Tensor& probs,
                                                      const torch::Tensor& grads, int64_t head,
                                                      const std::vector<const Prompt*>& prompts);

class Backbone {
 public:
  virtual ~Backbone() = default;

  virtual int64_t patch_size() const = 0;
  // Grid side P for an S x S input; throws pnpovss::Error when S is not a multiple of the patch.
  virtual int64_t grid(int64_t input_size) const {
    const int64_t ps = patch_size();
    if (input_size <= 0 || input_size % ps != 0)
      throw Error("input size " + std::to_string(input_size) + " is not a positive multiple of the patch size " +
                  std::to_string(ps) + ": choose e.g. " + std::to_string(ps * 21));
    return input_size / ps;
  }
  virtual int64_t num_text_layers() const = 0;
  virtual int64_t num_heads() const = 0;
  // The first-token id the model was fine-tuned with in place of [CLS] (BLIP's [ENC]).
  virtual int64_t enc_token_id() const = 0;
  // Resize, rescale and normalisation constants of the model's image processor (the size is
  // overridden by the method's input size).
  virtual const models::ImagePreprocessConfig& image_preprocess() const = 0;

  // pixels [1, 3, S, S] (normalised), ids and mask [1, T] int64, layer 0-based.
  virtual AttentionGradient attention_and_gradient(const torch::Tensor& pixels, const torch::Tensor& ids,
                                                   const torch::Tensor& mask, int64_t layer) const {
    return attention_and_gradients(pixels, ids, mask, {layer}).front();
  }
  // The same for several layers from one forward and one backward (label-free tuning scores
  // every layer and head at once): one entry per requested layer, in the given order, each
  // equal to what attention_and_gradient gives for that layer alone.
  virtual std::vector<AttentionGradient> attention_and_gradients(const torch::Tensor& pixels, const torch::Tensor& ids,
                                                                 const torch::Tensor& mask,
                                                                 const std::vector<int64_t>& layers) const = 0;

  // Several images, each with its own prompt, in one forward and one backward where the model
  // supports it (prompts of different lengths are padded and masked): pixels [B, 3, S, S],
  // prompts[b] the prompt of image b. Entry b equals the head `head` of
  // attention_and_gradient(pixels[b], prompts[b], layer) up to float rounding. This default
  // runs the images one at a time.
  virtual std::vector<HeadAttentionGradient> attention_and_gradient_batch(const torch::Tensor& pixels,
                                                                          const std::vector<const Prompt*>& prompts,
                                                                          int64_t layer, int64_t head) const;
};

}  // namespace pnpovss::segment
