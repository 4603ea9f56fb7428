#include "pnpovss/models/clip_model.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <map>

#include "pnpovss/error.h"
#include "pnpovss/io/checkpoint.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/runtime/cpu_allocator.h"
#include "pnpovss/runtime/vision_attention.h"

namespace pnpovss::models {
namespace {

using Linear = ClipModel::Linear;
using LayerNorm = ClipModel::LayerNorm;

torch::Tensor apply(const Linear& l, const torch::Tensor& x) { return torch::linear(x, l.weight, l.bias); }

torch::Tensor apply(const LayerNorm& n, const torch::Tensor& x, double eps) {
  return torch::layer_norm(x, {x.size(-1)}, n.weight, n.bias, eps);
}

torch::Tensor activation(const torch::Tensor& x, const std::string& act) {
  if (act == "quick_gelu") return x * torch::sigmoid(1.702 * x);
  if (act == "gelu") return torch::gelu(x);
  // gelu_new / gelu_pytorch_tanh: the tanh approximation, written out (the `approximate`
  // argument of torch::gelu does not exist in every supported libtorch).
  const double k = 0.7978845608028654;  // sqrt(2 / pi)
  return 0.5 * x * (1.0 + torch::tanh(k * (x + 0.044715 * torch::pow(x, 3.0))));
}

void add_linear(std::vector<ParameterSpec>& specs, const std::string& prefix, int64_t out, int64_t in) {
  specs.push_back({prefix + ".weight", {out, in}});
  specs.push_back({prefix + ".bias", {out}});
}

void add_norm(std::vector<ParameterSpec>& specs, const std::string& prefix, int64_t width) {
  specs.push_back({prefix + ".weight", {width}});
  specs.push_back({prefix + ".bias", {width}});
}

void add_layers(std::vector<ParameterSpec>& specs, const std::string& tower, int64_t depth, int64_t width,
                int64_t inner) {
  for (int64_t i = 0; i < depth; ++i) {
    const std::string p = tower + ".encoder.layers." + std::to_string(i);
    for (const char* proj : {"k_proj", "v_proj", "q_proj", "out_proj"})
      add_linear(specs, p + ".self_attn." + proj, width, width);
    add_norm(specs, p + ".layer_norm1", width);
    add_linear(specs, p + ".mlp.fc1", inner, width);
    add_linear(specs, p + ".mlp.fc2", width, inner);
    add_norm(specs, p + ".layer_norm2", width);
  }
}

float finfo_min() { return std::numeric_limits<float>::lowest(); }

}  // namespace

std::vector<ParameterSpec> clip_parameters(const ClipConfig& c) {
  const auto& t = c.text;
  const auto& v = c.vision;
  std::vector<ParameterSpec> specs;
  specs.push_back({"logit_scale", {}});
  specs.push_back({"text_model.embeddings.token_embedding.weight", {t.vocab_size, t.hidden_size}});
  specs.push_back({"text_model.embeddings.position_embedding.weight", {t.max_position_embeddings, t.hidden_size}});
  add_layers(specs, "text_model", t.num_hidden_layers, t.hidden_size, t.intermediate_size);
  add_norm(specs, "text_model.final_layer_norm", t.hidden_size);
  specs.push_back({"vision_model.embeddings.class_embedding", {v.hidden_size}});
  specs.push_back({"vision_model.embeddings.patch_embedding.weight", {v.hidden_size, 3, v.patch_size, v.patch_size}});
  specs.push_back({"vision_model.embeddings.position_embedding.weight", {v.num_positions(), v.hidden_size}});
  add_norm(specs, "vision_model.pre_layrnorm", v.hidden_size);
  add_layers(specs, "vision_model", v.num_hidden_layers, v.hidden_size, v.intermediate_size);
  add_norm(specs, "vision_model.post_layernorm", v.hidden_size);
  specs.push_back({"visual_projection.weight", {c.projection_dim, v.hidden_size}});
  specs.push_back({"text_projection.weight", {c.projection_dim, t.hidden_size}});
  return specs;
}

ClipModel ClipModel::load(const std::string& dir) {
  runtime::install_cpu_allocator();  // large activations on reused huge pages (cpu_allocator.h)
  const std::string config_path = dir + "/config.json";
  if (!io::file_exists(config_path)) throw Error("'" + dir + "' is not a model directory: config.json is missing");
  ClipConfig config = ClipConfig::from_file(config_path);
  io::Checkpoint checkpoint = io::Checkpoint::open_dir(dir);
  return from_tensors(config, runtime::load_float_tensors(checkpoint), checkpoint.description());
}

ClipModel ClipModel::from_tensors(const ClipConfig& config, runtime::TensorMap tensors, const std::string& origin) {
  // PyTorch's load_state_dict accepts a one-element [1] tensor for a 0-dim parameter; some
  // checkpoints (and the reference fixtures) store logit_scale that way.
  auto scale = tensors.find("logit_scale");
  if (scale != tensors.end() && scale->second.dim() == 1 && scale->second.size(0) == 1)
    scale->second = scale->second.reshape({});
  WeightLoader w(std::move(tensors), origin);
  // Shapes come from the single table above, so loading and the manifest tests agree.
  std::map<std::string, std::vector<int64_t>> shapes;
  for (auto& spec : clip_parameters(config)) shapes[spec.name] = spec.shape;
  auto take = [&](const std::string& name) { return w.take(name, shapes.at(name)); };
  auto linear = [&](const std::string& p) { return Linear{take(p + ".weight"), take(p + ".bias")}; };
  auto norm = [&](const std::string& p) { return LayerNorm{take(p + ".weight"), take(p + ".bias")}; };
  auto layers = [&](const std::string& tower, int64_t depth) {
    std::vector<Layer> out;
    for (int64_t i = 0; i < depth; ++i) {
      const std::string p = tower + ".encoder.layers." + std::to_string(i);
      Layer l;
      l.q = linear(p + ".self_attn.q_proj");
      l.k = linear(p + ".self_attn.k_proj");
      l.v = linear(p + ".self_attn.v_proj");
      l.out = linear(p + ".self_attn.out_proj");
      l.norm1 = norm(p + ".layer_norm1");
      l.fc1 = linear(p + ".mlp.fc1");
      l.fc2 = linear(p + ".mlp.fc2");
      l.norm2 = norm(p + ".layer_norm2");
      out.push_back(l);
    }
    return out;
  };

  ClipModel m;
  m.config_ = config;
  // exp in float32, as the reference computes logit_scale.exp().
  m.logit_scale_exp_ = take("logit_scale").exp().item<float>();
  if (!std::isfinite(m.logit_scale_exp_)) throw Error(origin + ": logit_scale is not a finite number");
  m.token_embedding_ = take("text_model.embeddings.token_embedding.weight");
  m.text_positions_ = take("text_model.embeddings.position_embedding.weight");
  m.text_layers_ = layers("text_model", config.text.num_hidden_layers);
  m.final_layernorm_ = norm("text_model.final_layer_norm");
  m.class_embedding_ = take("vision_model.embeddings.class_embedding");
  m.patch_weight_ = take("vision_model.embeddings.patch_embedding.weight");
  m.vision_positions_ = take("vision_model.embeddings.position_embedding.weight");
  m.pre_layernorm_ = norm("vision_model.pre_layrnorm");
  m.vision_layers_ = layers("vision_model", config.vision.num_hidden_layers);
  m.post_layernorm_ = norm("vision_model.post_layernorm");
  m.visual_projection_ = take("visual_projection.weight");
  m.text_projection_ = take("text_projection.weight");
  w.finish();
  return m;
}

int64_t ClipModel::parameter_count() const {
  int64_t n = 0;
  for (const auto& spec : clip_parameters(config_)) {
    int64_t k = 1;
    for (int64_t d : spec.shape) k *= d;
    n += k;
  }
  return n;
}

// One pre-LN encoder layer (CLIPEncoderLayer): q is scaled by head_dim^-0.5 before QK^T; `mask`
// (additive, broadcast to [B, H, T, T]) may be undefined.
torch::Tensor ClipModel::layer(const Layer& l, const torch::Tensor& x, const torch::Tensor& mask, int64_t heads,
                               double eps, const std::string& act) const {
  const torch::Tensor h = apply(l.norm1, x, eps);
  const double scale = 1.0 / std::sqrt(static_cast<double>(x.size(2) / heads));
  torch::Tensor q = runtime::split_heads(apply(l.q, h) * scale, heads);
  torch::Tensor k = runtime::split_heads(apply(l.k, h), heads);
  torch::Tensor v = runtime::split_heads(apply(l.v, h), heads);
  // The vision tower has no mask: the fused CPU kernel then computes the same (q is already
  // scaled, so it scales by 1).
  torch::Tensor attended = mask.defined() ? torch::Tensor() : runtime::fused_cpu_attention(q, k, v, 1.0);
  if (!attended.defined()) {
    torch::Tensor scores = torch::matmul(q, k.transpose(-1, -2));
    if (mask.defined()) scores = scores + mask;
    attended = runtime::merge_heads(torch::matmul(torch::softmax(scores, -1), v));
  }
  torch::Tensor y = x + apply(l.out, attended);
  return y + apply(l.fc2, activation(apply(l.fc1, apply(l.norm2, y, eps)), act));
}

// ---- vision ------------------------------------------------------------------------------

void ClipModel::check_pixels(const torch::Tensor& pixel_values) const {
  const int64_t s = config_.vision.image_size;
  if (!pixel_values.defined() || pixel_values.dim() != 4 || pixel_values.size(1) != 3 || pixel_values.size(0) == 0)
    throw Error("pixel_values must be a non-empty [B, 3, H, W] tensor");
  if (pixel_values.size(2) != s || pixel_values.size(3) != s)
    throw Error("the image input is " + std::to_string(pixel_values.size(3)) + "x" +
                std::to_string(pixel_values.size(2)) + " but this CLIP model takes exactly " + std::to_string(s) +
                "x" + std::to_string(s) + " (its preprocessor's crop size)");
  if (!pixel_values.is_floating_point()) throw Error("pixel_values must be floating point");
}

ClipModel::TowerOutput ClipModel::encode_image(const torch::Tensor& pixel_values) const {
  check_pixels(pixel_values);
  torch::NoGradGuard no_grad;
  const auto& vc = config_.vision;
  torch::Tensor pixels = pixel_values.to(torch::kFloat32);
  torch::Tensor patches = torch::conv2d(pixels, patch_weight_, {}, vc.patch_size);  // [B, D, g, g]
  patches = patches.flatten(2).transpose(1, 2);                                       // [B, P, D]
  torch::Tensor cls = class_embedding_.view({1, 1, -1}).expand({patches.size(0), 1, patches.size(2)});
  torch::Tensor x = torch::cat({cls, patches}, 1) + vision_positions_.unsqueeze(0);
  x = apply(pre_layernorm_, x, vc.layer_norm_eps);
  for (const Layer& l : vision_layers_) x = layer(l, x, torch::Tensor(), vc.num_attention_heads, vc.layer_norm_eps, vc.hidden_act);
  return {x, apply(post_layernorm_, x.select(1, 0), vc.layer_norm_eps)};
}

torch::Tensor ClipModel::image_embeds(const torch::Tensor& pixel_values) const {
  TowerOutput out = encode_image(pixel_values);
  torch::NoGradGuard no_grad;
  namespace F = torch::nn::functional;
  return F::normalize(torch::matmul(out.pooled, visual_projection_.t()), F::NormalizeFuncOptions().dim(-1));
}

// ---- text --------------------------------------------------------------------------------

void ClipModel::check_text(const torch::Tensor& ids, const torch::Tensor& mask) const {
  if (!ids.defined() || ids.dim() != 2 || ids.size(0) == 0 || ids.size(1) == 0)
    throw Error("input_ids must be a non-empty [B, T] tensor");
  if (ids.is_floating_point()) throw Error("input_ids must be integers");
  if (mask.defined() && mask.sizes() != ids.sizes()) throw Error("attention_mask must have the shape of input_ids");
  if (ids.size(1) > config_.text.max_position_embeddings)
    throw Error("the text has " + std::to_string(ids.size(1)) + " tokens; this CLIP model accepts at most " +
                std::to_string(config_.text.max_position_embeddings));
  const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  if (lo < 0 || hi >= config_.text.vocab_size)
    throw Error("token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the vocabulary of " +
                std::to_string(config_.text.vocab_size));
}

// CLIPTextTransformer's pooling: legacy configs (eos_token_id == 2) take input_ids.argmax(-1),
// the first occurrence of the highest id (<|endoftext|> in CLIP's vocabulary); others the first
// position holding eos_token_id (0 when there is none).
torch::Tensor ClipModel::pool_positions(const torch::Tensor& ids) const {
  if (config_.text.eos_token_id == 2) return ids.argmax(-1);
  return (ids == config_.text.eos_token_id).to(torch::kInt32).argmax(-1);
}

ClipModel::TowerOutput ClipModel::encode_text(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) const {
  check_text(input_ids, attention_mask);
  torch::NoGradGuard no_grad;
  const auto& tc = config_.text;
  const torch::Tensor ids = input_ids.to(torch::kInt64);
  const int64_t T = ids.size(1);
  torch::Tensor x = torch::embedding(token_embedding_, ids) + text_positions_.narrow(0, 0, T).unsqueeze(0);
  // Causal mask (finfo.min above the diagonal) plus the padding mask ((1 - m) * finfo.min),
  // added separately as the reference does: a masked causal entry becomes -inf, and a row
  // whose only visible key is padding still gets a finite score.
  torch::Tensor mask = torch::triu(torch::full({T, T}, finfo_min()), 1).view({1, 1, T, T});
  if (attention_mask.defined())
    mask = mask + (1.0 - attention_mask.to(torch::kFloat32)).view({ids.size(0), 1, 1, T}) * finfo_min();
  for (const Layer& l : text_layers_) x = layer(l, x, mask, tc.num_attention_heads, tc.layer_norm_eps, tc.hidden_act);
  x = apply(final_layernorm_, x, tc.layer_norm_eps);
  torch::Tensor rows = torch::arange(ids.size(0), torch::kInt64);
  return {x, x.index({rows, pool_positions(ids)})};
}

torch::Tensor ClipModel::text_embeds(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) const {
  TowerOutput out = encode_text(input_ids, attention_mask);
  torch::NoGradGuard no_grad;
  namespace F = torch::nn::functional;
  return F::normalize(torch::matmul(out.pooled, text_projection_.t()), F::NormalizeFuncOptions().dim(-1));
}

torch::Tensor ClipModel::logits_per_image(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds) const {
  if (!image_embeds.defined() || !text_embeds.defined() || image_embeds.dim() != 2 || text_embeds.dim() != 2 ||
      image_embeds.size(1) != text_embeds.size(1))
    throw Error("logits_per_image needs [Bi, D] image and [Bt, D] text embeddings of the same width");
  torch::NoGradGuard no_grad;
  // The reference computes text @ image^T * scale and transposes it.
  return (torch::matmul(text_embeds, image_embeds.t()) * logit_scale_exp_).t();
}

torch::Tensor clip_pixel_values(const Image& image, const ClipPreprocessConfig& config) {
  PixelPlanes planes = clip_preprocess(image, config);
  return torch::from_blob(planes.data.data(), {3, planes.height, planes.width}, torch::kFloat32).clone();
}

}  // namespace pnpovss::models
