#include "pnpovss/tune/grid.h"

#include <torch/torch.h>

#include "pnpovss/error.h"
#include "pnpovss/segment/gradcam.h"
#include "pnpovss/segment/postprocess.h"

namespace pnpovss::tune {
namespace {

torch::Tensor row(const std::vector<int64_t>& values) {
  return torch::tensor(values, torch::kInt64).view({1, static_cast<int64_t>(values.size())});
}

}  // namespace

torch::Tensor gradcam_grid(const segment::Backbone& backbone, const torch::Tensor& pixels,
                           const segment::Prompt& prompt, const MethodSettings& settings,
                           const std::vector<int64_t>& layers, const std::vector<int64_t>& heads) {
  if (layers.empty() || heads.empty()) throw Error("the layer x head grid needs at least one layer and one head");
  for (int64_t l : layers)
    if (l < 0 || l >= backbone.num_text_layers())
      throw Error("layer " + std::to_string(l + 1) + " is out of range: the model has " +
                  std::to_string(backbone.num_text_layers()) + " text layers");
  for (int64_t h : heads)
    if (h < 0 || h >= backbone.num_heads())
      throw Error("head " + std::to_string(h + 1) + " is out of range: the model has " +
                  std::to_string(backbone.num_heads()) + " heads");
  if (pixels.dim() != 3 || pixels.size(0) != 3 || pixels.size(1) != pixels.size(2))
    throw Error("model input must be 3 x S x S pixels");
  const int64_t grid = backbone.grid(pixels.size(1));
  const torch::Tensor mask = row(prompt.attention_mask);
  const torch::Tensor text_mask = mask[0].to(torch::kFloat32);
  const auto captured = backbone.attention_and_gradients(pixels.unsqueeze(0), row(prompt.input_ids), mask, layers);
  std::vector<torch::Tensor> per_layer;
  for (const auto& ag : captured) {
    std::vector<torch::Tensor> per_head;
    for (int64_t h : heads) {
      const torch::Tensor tokens = segment::gradcam_tokens(ag.probs[h].to(torch::kFloat32),
                                                           ag.grads[h].to(torch::kFloat32), text_mask, grid);
      per_head.push_back(segment::class_maps(tokens, prompt.spans, settings.maps_last_class_sum));
    }
    per_layer.push_back(torch::stack(per_head));
  }
  return torch::stack(per_layer);
}

torch::Tensor threshold_masks(const torch::Tensor& maps, double threshold) {
  const torch::Tensor x = maps.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const std::vector<int64_t> dims{1, 2};
  const torch::Tensor varies = x.amax(dims, true) > x.amin(dims, true);
  // Compared in float32, as build_channel_stack does.
  const torch::Tensor keep = (segment::minmax_channels(x) >= static_cast<float>(threshold)).logical_and(varies);
  return keep.to(torch::kFloat32);
}

}  // namespace pnpovss::tune
