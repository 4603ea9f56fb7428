#include "pnpovss/models/blip_itm.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>

#include "pnpovss/error.h"
#include "pnpovss/io/checkpoint.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/runtime/parallel_rows.h"
#include "pnpovss/runtime/cpu_allocator.h"
#include "pnpovss/runtime/vision_attention.h"

namespace pnpovss::models {
namespace {

using Linear = BlipItm::Linear;
using LayerNorm = BlipItm::LayerNorm;

torch::Tensor apply(const Linear& l, const torch::Tensor& x) { return torch::linear(x, l.weight, l.bias); }

torch::Tensor apply(const LayerNorm& n, const torch::Tensor& x, double eps) {
  return torch::layer_norm(x, {x.size(-1)}, n.weight, n.bias, eps);
}

// softmax(q k^T * scale) v for q, k, v [B, H, N, dh] -> [B, N, H*dh], one head at a time: on
// the CPU, libtorch's batched matmul is about three times slower than a matrix product per
// head, and one head's N x N scores stay in cache between the two products and the softmax
// instead of streaming all heads' scores through memory. The scale is applied inside the first
// product (BLAS alpha), as one rounding of the same value the reference computes.
torch::Tensor vision_attention_per_head(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        double scale) {
  const int64_t B = q.size(0), H = q.size(1), N = q.size(2), dh = q.size(3);
  torch::Tensor context = torch::empty({B, N, H * dh}, q.options());
  torch::Tensor scores = torch::empty({N, N}, q.options());
  torch::Tensor probs = torch::empty({N, N}, q.options());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      at::addmm_out(scores, scores, q[b][h], k[b][h].t(), /*beta=*/0, /*alpha=*/scale);
      at::_softmax_out(probs, scores, -1, false);
      torch::Tensor out = context[b].narrow(1, h * dh, dh);  // written in place, merged layout
      at::mm_out(out, probs, v[b][h]);
    }
  return context;
}

// Names and shapes of one linear layer's parameters.
void add_linear(std::vector<ParameterSpec>& specs, const std::string& prefix, int64_t out, int64_t in) {
  specs.push_back({prefix + ".weight", {out, in}});
  specs.push_back({prefix + ".bias", {out}});
}

void add_norm(std::vector<ParameterSpec>& specs, const std::string& prefix, int64_t width) {
  specs.push_back({prefix + ".weight", {width}});
  specs.push_back({prefix + ".bias", {width}});
}

std::string vision_layer_prefix(int64_t i) { return "vision_model.encoder.layers." + std::to_string(i); }
std::string text_layer_prefix(int64_t i) { return "text_encoder.encoder.layer." + std::to_string(i); }

void add_text_attention(std::vector<ParameterSpec>& specs, const std::string& prefix, int64_t width,
                        int64_t kv_width) {
  add_linear(specs, prefix + ".self.query", width, width);
  add_linear(specs, prefix + ".self.key", width, kv_width);
  add_linear(specs, prefix + ".self.value", width, kv_width);
  add_linear(specs, prefix + ".output.dense", width, width);
  add_norm(specs, prefix + ".output.LayerNorm", width);
}

}  // namespace

std::vector<ParameterSpec> blip_itm_parameters(const BlipConfig& c) {
  const auto& v = c.vision;
  const auto& t = c.text;
  std::vector<ParameterSpec> specs;
  specs.push_back({"vision_model.embeddings.class_embedding", {1, 1, v.hidden_size}});
  specs.push_back({"vision_model.embeddings.position_embedding", {1, v.num_positions(), v.hidden_size}});
  specs.push_back({"vision_model.embeddings.patch_embedding.weight", {v.hidden_size, 3, v.patch_size, v.patch_size}});
  specs.push_back({"vision_model.embeddings.patch_embedding.bias", {v.hidden_size}});
  for (int64_t i = 0; i < v.num_hidden_layers; ++i) {
    const std::string p = vision_layer_prefix(i);
    add_linear(specs, p + ".self_attn.qkv", 3 * v.hidden_size, v.hidden_size);
    add_linear(specs, p + ".self_attn.projection", v.hidden_size, v.hidden_size);
    add_norm(specs, p + ".layer_norm1", v.hidden_size);
    add_linear(specs, p + ".mlp.fc1", v.intermediate_size, v.hidden_size);
    add_linear(specs, p + ".mlp.fc2", v.hidden_size, v.intermediate_size);
    add_norm(specs, p + ".layer_norm2", v.hidden_size);
  }
  add_norm(specs, "vision_model.post_layernorm", v.hidden_size);
  specs.push_back({"text_encoder.embeddings.word_embeddings.weight", {t.vocab_size, t.hidden_size}});
  specs.push_back({"text_encoder.embeddings.position_embeddings.weight", {t.max_position_embeddings, t.hidden_size}});
  add_norm(specs, "text_encoder.embeddings.LayerNorm", t.hidden_size);
  for (int64_t i = 0; i < t.num_hidden_layers; ++i) {
    const std::string p = text_layer_prefix(i);
    add_text_attention(specs, p + ".attention", t.hidden_size, t.hidden_size);
    add_text_attention(specs, p + ".crossattention", t.hidden_size, t.encoder_hidden_size);
    add_linear(specs, p + ".intermediate.dense", t.intermediate_size, t.hidden_size);
    add_linear(specs, p + ".output.dense", t.hidden_size, t.intermediate_size);
    add_norm(specs, p + ".output.LayerNorm", t.hidden_size);
  }
  add_linear(specs, "vision_proj", c.image_text_hidden_size, v.hidden_size);
  add_linear(specs, "text_proj", c.image_text_hidden_size, t.hidden_size);
  add_linear(specs, "itm_head", 2, t.hidden_size);
  return specs;
}

BlipItm BlipItm::load(const std::string& dir) {
  runtime::install_cpu_allocator();  // large activations on reused huge pages (cpu_allocator.h)
  const std::string config_path = dir + "/config.json";
  if (!io::file_exists(config_path))
    throw Error("'" + dir + "' is not a model directory: config.json is missing");
  BlipConfig config = BlipConfig::from_file(config_path);
  io::Checkpoint checkpoint = io::Checkpoint::open_dir(dir);
  return from_tensors(config, runtime::load_float_tensors(checkpoint), checkpoint.description());
}

BlipItm BlipItm::from_tensors(const BlipConfig& config, runtime::TensorMap tensors, const std::string& origin) {
  WeightLoader w(std::move(tensors), origin);
  // Shapes come from the single table above, so loading and the manifest tests agree.
  std::map<std::string, std::vector<int64_t>> shapes;
  for (auto& spec : blip_itm_parameters(config)) shapes[spec.name] = spec.shape;
  BlipItm m;
  m.position_cache_ = std::make_shared<PositionCache>();
  auto take = [&](const std::string& name) {
    torch::Tensor t = w.take(name, shapes.at(name));
    m.parameters_.push_back(t);
    return t;
  };
  auto linear = [&](const std::string& p) { return Linear{take(p + ".weight"), take(p + ".bias")}; };
  auto norm = [&](const std::string& p) { return LayerNorm{take(p + ".weight"), take(p + ".bias")}; };
  auto attention = [&](const std::string& p) {
    return TextAttention{linear(p + ".self.query"), linear(p + ".self.key"), linear(p + ".self.value"),
                         linear(p + ".output.dense"), norm(p + ".output.LayerNorm")};
  };

  m.config_ = config;
  m.class_embedding_ = take("vision_model.embeddings.class_embedding");
  m.position_embedding_ = take("vision_model.embeddings.position_embedding");
  m.patch_weight_ = take("vision_model.embeddings.patch_embedding.weight");
  m.patch_bias_ = take("vision_model.embeddings.patch_embedding.bias");
  for (int64_t i = 0; i < config.vision.num_hidden_layers; ++i) {
    const std::string p = vision_layer_prefix(i);
    VisionLayer layer;
    layer.qkv = linear(p + ".self_attn.qkv");
    layer.projection = linear(p + ".self_attn.projection");
    layer.norm1 = norm(p + ".layer_norm1");
    layer.fc1 = linear(p + ".mlp.fc1");
    layer.fc2 = linear(p + ".mlp.fc2");
    layer.norm2 = norm(p + ".layer_norm2");
    m.vision_layers_.push_back(layer);
  }
  m.post_layernorm_ = norm("vision_model.post_layernorm");
  m.word_embeddings_ = take("text_encoder.embeddings.word_embeddings.weight");
  m.position_embeddings_ = take("text_encoder.embeddings.position_embeddings.weight");
  m.text_embed_norm_ = norm("text_encoder.embeddings.LayerNorm");
  for (int64_t i = 0; i < config.text.num_hidden_layers; ++i) {
    const std::string p = text_layer_prefix(i);
    TextLayer layer;
    layer.self_attention = attention(p + ".attention");
    layer.cross_attention = attention(p + ".crossattention");
    layer.intermediate = linear(p + ".intermediate.dense");
    layer.output = linear(p + ".output.dense");
    layer.output_norm = norm(p + ".output.LayerNorm");
    m.text_layers_.push_back(layer);
  }
  m.vision_proj_ = linear("vision_proj");
  m.text_proj_ = linear("text_proj");
  m.itm_head_ = linear("itm_head");
  w.finish();
  return m;
}

int64_t BlipItm::parameter_count() const {
  int64_t n = 0;
  for (const auto& spec : blip_itm_parameters(config_)) {
    int64_t k = 1;
    for (int64_t d : spec.shape) k *= d;
    n += k;
  }
  return n;
}

template <typename F>
void BlipItm::for_each_weight(F&& f) {
  auto linear = [&](auto& l) { f(l.weight); f(l.bias); };  // and LayerNorm: a weight and a bias each
  auto& norm = linear;
  for (torch::Tensor* t : {&class_embedding_, &position_embedding_, &patch_weight_, &patch_bias_}) f(*t);
  for (auto& l : vision_layers_) {
    norm(l.norm1);
    norm(l.norm2);
    for (Linear* x : {&l.qkv, &l.projection, &l.fc1, &l.fc2}) linear(*x);
  }
  norm(post_layernorm_);
  f(word_embeddings_);
  f(position_embeddings_);
  norm(text_embed_norm_);
  for (auto& l : text_layers_) {
    for (TextAttention* a : {&l.self_attention, &l.cross_attention}) {
      for (Linear* x : {&a->query, &a->key, &a->value, &a->output}) linear(*x);
      norm(a->norm);
    }
    linear(l.intermediate);
    linear(l.output);
    norm(l.output_norm);
  }
  for (Linear* x : {&vision_proj_, &text_proj_, &itm_head_}) linear(*x);
}

void BlipItm::to(const runtime::Placement& p) {
  runtime::check_placement(p);
  parameters_.clear();
  for_each_weight([&](torch::Tensor& t) {
    t = t.to(p.device, p.dtype).requires_grad_(full_backward_);
    parameters_.push_back(t);
  });
  placement_ = p;
  position_cache_ = std::make_shared<PositionCache>();  // tables of the old placement go
}

// ---- vision ------------------------------------------------------------------------------

struct BlipItm::PositionCache {
  std::mutex mutex;
  std::map<std::tuple<int64_t, int64_t, int>, torch::Tensor> tables;
};

torch::Tensor BlipItm::positions_for_grid(int64_t grid_h, int64_t grid_w, PositionResize resize) const {
  if (full_backward_ || torch::GradMode::is_enabled() || !position_cache_)
    return resize_positions(grid_h, grid_w, resize);
  const auto key = std::make_tuple(grid_h, grid_w, static_cast<int>(resize));
  {
    std::lock_guard<std::mutex> lock(position_cache_->mutex);
    const auto kept = position_cache_->tables.find(key);
    if (kept != position_cache_->tables.end()) return kept->second;
  }
  torch::Tensor table = resize_positions(grid_h, grid_w, resize);
  std::lock_guard<std::mutex> lock(position_cache_->mutex);
  position_cache_->tables.emplace(key, table);
  return table;
}

torch::Tensor BlipItm::resize_positions(int64_t grid_h, int64_t grid_w, PositionResize resize) const {
  const int64_t trained = position_embedding_.size(1) - 1;
  const auto side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(trained))));
  if (side * side != trained) throw Error("the position table of this checkpoint is not a square grid");
  const bool unchanged = resize == PositionResize::HuggingFace
                             ? (grid_h * grid_w == trained && grid_h == grid_w)
                             : (grid_h == side && grid_w == side);
  if (unchanged) return position_embedding_;
  const int64_t width = position_embedding_.size(2);
  torch::Tensor cls = position_embedding_.narrow(1, 0, 1);
  // Resized in float32 whatever the model's type (not every libtorch has bicubic for bf16).
  torch::Tensor grid = position_embedding_.narrow(1, 1, trained)
                           .to(torch::kFloat32)
                           .reshape({1, side, side, width})
                           .permute({0, 3, 1, 2});
  torch::Tensor resized;
  if (resize == PositionResize::HuggingFace) {
    // transformers passes scale_factor=((h0 + 0.1)/side, (w0 + 0.1)/side); the kernel samples
    // with that scale, not with the ratio of the sizes (src = (dst + 0.5) * side/(h0+0.1) - 0.5).
    const double scale_h = (static_cast<double>(grid_h) + 0.1) / static_cast<double>(side);
    const double scale_w = (static_cast<double>(grid_w) + 0.1) / static_cast<double>(side);
    resized = at::upsample_bicubic2d(grid.contiguous(), {grid_h, grid_w}, false, scale_h, scale_w);
  } else {
    resized = at::upsample_bicubic2d(grid.contiguous(), {grid_h, grid_w}, false, c10::nullopt, c10::nullopt);
  }
  resized = resized.permute({0, 2, 3, 1}).reshape({1, grid_h * grid_w, width}).to(placement_.dtype);
  return torch::cat({cls, resized}, 1);
}

torch::Tensor BlipItm::vision_layer(const VisionLayer& layer, const torch::Tensor& x) const {
  const auto& vc = config_.vision;
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2), H = vc.num_attention_heads;
  // The element-wise steps spread over the cores when they may (parallel_rows.h).
  auto norm = [&](const LayerNorm& n, const torch::Tensor& t) {
    return runtime::rows_layer_norm(t, n.weight, n.bias, vc.layer_norm_eps);
  };
  auto linear = [&](const Linear& l, const torch::Tensor& t) { return runtime::rows_linear(t, l.weight, l.bias); };
  // q, k and v are contiguous row blocks of the fused qkv projection.
  torch::Tensor qkv = linear(layer.qkv, norm(layer.norm1, x)).view({B, N, 3, H, D / H}).permute({2, 0, 3, 1, 4});
  torch::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
  // On a GPU, libtorch's fused kernel (the scale is 1/sqrt(head size) there too).
  torch::Tensor context = runtime::fused_gpu_attention(q, k, v);
  const double scale = std::pow(static_cast<double>(D / H), -0.5);
  // The fused kernel and the per-head path write into buffers, which autograd cannot follow:
  // the reference-cost mode (set_full_backward) keeps the batched products. The per-head path
  // serves what the fused kernel does not (bf16, CPUs without AVX2, CUDA without SDPA).
  if (!context.defined()) context = runtime::fused_cpu_attention(q, k, v, scale);
  if (!context.defined() && !torch::GradMode::is_enabled()) context = vision_attention_per_head(q, k, v, scale);
  if (!context.defined()) {
    torch::Tensor probs = torch::softmax(torch::matmul(q, k.transpose(-1, -2)).mul_(scale), -1);
    context = runtime::merge_heads(torch::matmul(probs, v));
  }
  const torch::Tensor h = runtime::rows_add(x, linear(layer.projection, context));
  return runtime::rows_add(h, linear(layer.fc2, runtime::rows_gelu(linear(layer.fc1, norm(layer.norm2, h)))));
}

torch::Tensor BlipItm::encode_image(const torch::Tensor& pixel_values, PositionResize resize) const {
  const auto& vc = config_.vision;
  if (pixel_values.dim() != 4 || pixel_values.size(1) != 3)
    throw Error("pixel_values must have shape [B, 3, H, W], got " + io::shape_string(pixel_values.sizes().vec()));
  const int64_t height = pixel_values.size(2), width = pixel_values.size(3);
  if (height < vc.patch_size || width < vc.patch_size || height % vc.patch_size || width % vc.patch_size)
    throw Error("image size " + std::to_string(height) + "x" + std::to_string(width) +
                " must be a positive multiple of the patch size " + std::to_string(vc.patch_size));
  // No autograd for the image encoder: the gradient stops at the cross-attention probs.
  torch::AutoGradMode grad_mode(full_backward_);
  torch::Tensor patches = torch::conv2d(pixel_values.to(placement_.device, placement_.dtype), patch_weight_, patch_bias_, vc.patch_size);
  patches = patches.flatten(2).transpose(1, 2);  // [B, P, Dv]
  torch::Tensor cls = class_embedding_.expand({pixel_values.size(0), 1, vc.hidden_size});
  torch::Tensor x = torch::cat({cls, patches}, 1);
  x = x + positions_for_grid(height / vc.patch_size, width / vc.patch_size, resize);
  for (const auto& layer : vision_layers_) x = vision_layer(layer, x);
  return apply(post_layernorm_, x, vc.layer_norm_eps);
}

torch::Tensor BlipItm::pool_image(const torch::Tensor& image_embeds) const {
  torch::NoGradGuard no_grad;
  return apply(post_layernorm_, image_embeds.select(1, 0).to(placement_.device, placement_.dtype),
               config_.vision.layer_norm_eps);
}

// ---- text --------------------------------------------------------------------------------

void BlipItm::check_text_inputs(const torch::Tensor& ids, const torch::Tensor& mask) const {
  if (ids.dim() != 2 || ids.size(1) == 0) throw Error("input_ids must have shape [B, T] with T > 0");
  if (mask.sizes() != ids.sizes()) throw Error("attention_mask must have the shape of input_ids");
  if (ids.size(1) > config_.text.max_position_embeddings)
    throw Error("the text has " + std::to_string(ids.size(1)) + " tokens; this model accepts at most " +
                std::to_string(config_.text.max_position_embeddings));
  const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  if (lo < 0 || hi >= config_.text.vocab_size)
    throw Error("token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the vocabulary of " +
                std::to_string(config_.text.vocab_size));
}

torch::Tensor BlipItm::text_embeddings(const torch::Tensor& ids) const {
  const int64_t T = ids.size(1);
  torch::Tensor x = torch::embedding(word_embeddings_, ids.to(placement_.device)) + position_embeddings_.narrow(0, 0, T).unsqueeze(0);
  return apply(text_embed_norm_, x, config_.text.layer_norm_eps);
}

torch::Tensor BlipItm::text_layer(int64_t index, const torch::Tensor& hidden, const torch::Tensor& self_mask,
                                  const torch::Tensor& image_embeds, const ProbsHook& hook) const {
  const auto& tc = config_.text;
  const TextLayer& layer = text_layers_[index];
  const double inv_scale = std::sqrt(static_cast<double>(tc.hidden_size / tc.num_attention_heads));
  auto attend = [&](const TextAttention& a, const torch::Tensor& queries, const torch::Tensor& keys,
                    const torch::Tensor& mask, bool capture) {
    torch::Tensor q = runtime::split_heads(apply(a.query, queries), tc.num_attention_heads);
    torch::Tensor k = runtime::split_heads(apply(a.key, keys), tc.num_attention_heads);
    torch::Tensor v = runtime::split_heads(apply(a.value, keys), tc.num_attention_heads);
    // BERT divides by sqrt(head size) (BLIP's vision tower multiplies by its inverse).
    torch::Tensor scores = torch::matmul(q, k.transpose(-1, -2)) / inv_scale;
    if (mask.defined()) scores = scores + mask;
    torch::Tensor probs = torch::softmax(scores, -1);
    if (capture && hook) probs = hook(index, probs);
    torch::Tensor context = runtime::merge_heads(torch::matmul(probs, v));
    return apply(a.norm, queries + apply(a.output, context), tc.layer_norm_eps);
  };
  torch::Tensor x = attend(layer.self_attention, hidden, hidden, self_mask, false);
  // The image mask is all ones, so the cross-attention mask adds exactly 0 and is left out.
  if (image_embeds.defined()) x = attend(layer.cross_attention, x, image_embeds, torch::Tensor(), true);
  torch::Tensor ffn = apply(layer.output, torch::gelu(apply(layer.intermediate, x)));
  return apply(layer.output_norm, x + ffn, tc.layer_norm_eps);
}

torch::Tensor BlipItm::run_text_layers(torch::Tensor hidden, const torch::Tensor& self_mask,
                                       const torch::Tensor& image_embeds, int64_t first, int64_t last,
                                       const ProbsHook& hook) const {
  const torch::Tensor image =
      image_embeds.defined() ? image_embeds.to(placement_.device, placement_.dtype) : image_embeds;
  for (int64_t i = first; i < last; ++i) hidden = text_layer(i, hidden, self_mask, image, hook);
  return hidden;
}

// BLIP's text model builds its self-attention mask as (1 - mask) * -10000, not with the dtype
// minimum that other transformers models use (modeling_blip_text.py).
torch::Tensor BlipItm::self_attention_mask(const torch::Tensor& attention_mask) const {
  torch::Tensor m = attention_mask.to(placement_.device, torch::kFloat32).unsqueeze(1).unsqueeze(1);
  return ((1.0 - m) * -10000.0).to(placement_.dtype);
}

torch::Tensor BlipItm::encode_text(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                   const torch::Tensor& image_embeds) const {
  check_text_inputs(input_ids, attention_mask);
  if (image_embeds.defined() && image_embeds.size(0) != input_ids.size(0))
    throw Error("the batch of texts and images must have the same size");
  torch::NoGradGuard no_grad;
  return run_text_layers(text_embeddings(input_ids), self_attention_mask(attention_mask), image_embeds, 0,
                         config_.text.num_hidden_layers, nullptr);
}

torch::Tensor BlipItm::itm_logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                  const torch::Tensor& image_embeds) const {
  if (!image_embeds.defined()) throw Error("itm_logits needs image embeddings");
  torch::Tensor hidden = encode_text(input_ids, attention_mask, image_embeds);
  torch::NoGradGuard no_grad;
  return apply(itm_head_, hidden.select(1, 0));
}

torch::Tensor BlipItm::itc_scores(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                  const torch::Tensor& image_embeds) const {
  torch::Tensor text = encode_text(input_ids, attention_mask, torch::Tensor());
  torch::NoGradGuard no_grad;
  namespace F = torch::nn::functional;
  auto unit = F::NormalizeFuncOptions().dim(-1);
  torch::Tensor image_feat = F::normalize(apply(vision_proj_, image_embeds.select(1, 0).to(placement_.device, placement_.dtype)), unit);
  torch::Tensor text_feat = F::normalize(apply(text_proj_, text.select(1, 0)), unit);
  return torch::matmul(image_feat, text_feat.t());
}

CrossAttentionCapture BlipItm::itm_attention_gradients(const torch::Tensor& input_ids,
                                                       const torch::Tensor& attention_mask,
                                                       const torch::Tensor& image_embeds,
                                                       const std::vector<int64_t>& layers) const {
  check_text_inputs(input_ids, attention_mask);
  if (!image_embeds.defined() || image_embeds.size(0) != input_ids.size(0))
    throw Error("the batch of texts and images must have the same size");
  const int64_t depth = config_.text.num_hidden_layers;
  if (layers.empty()) throw Error("no cross-attention layer requested");
  for (int64_t l : layers)
    if (l < 0 || l >= depth)
      throw Error("cross-attention layer " + std::to_string(l + 1) + " is out of range: the model has " +
                  std::to_string(depth) + " text layers (1.." + std::to_string(depth) + ")");
  if (full_backward_) return capture_with_full_backward(input_ids, attention_mask, image_embeds, layers);
  const int64_t first = *std::min_element(layers.begin(), layers.end());
  const torch::Tensor mask = self_attention_mask(attention_mask);

  torch::Tensor hidden;
  {
    // Nothing below the first captured layer lies on the path from the logit to the probs.
    torch::NoGradGuard no_grad;
    hidden = run_text_layers(text_embeddings(input_ids), mask, image_embeds, 0, first, nullptr);
  }
  torch::AutoGradMode grad_on(true);
  std::map<int64_t, torch::Tensor> captured;
  ProbsHook hook = [&](int64_t layer, const torch::Tensor& probs) {
    if (std::find(layers.begin(), layers.end(), layer) == layers.end()) return probs;
    // The lowest layer's probs become the leaf of the graph; higher layers depend on it.
    torch::Tensor p = layer == first ? probs.detach().requires_grad_(true) : probs;
    captured[layer] = p;
    return p;
  };
  hidden = run_text_layers(hidden, mask, image_embeds, first, depth, hook);
  torch::Tensor logits = apply(itm_head_, hidden.select(1, 0));

  std::vector<torch::Tensor> inputs;
  for (int64_t l : layers) inputs.push_back(captured.at(l));
  auto grads = torch::autograd::grad({logits.select(1, 1).sum()}, inputs, /*grad_outputs=*/{},
                                     /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
  CrossAttentionCapture out;
  out.itm_logits = logits.detach();
  out.text_hidden = hidden.detach();
  out.layers = layers;
  for (size_t i = 0; i < layers.size(); ++i) {
    out.probs.push_back(inputs[i].detach());
    // A layer whose probs do not reach the logit (none in BLIP) has a zero gradient.
    out.grads.push_back(grads[i].defined() ? grads[i] : torch::zeros_like(inputs[i]));
  }
  return out;
}

void BlipItm::set_full_backward(bool on) {
  full_backward_ = on;
  for (auto& p : parameters_) p.requires_grad_(on);
}

CrossAttentionCapture BlipItm::capture_with_full_backward(const torch::Tensor& input_ids,
                                                          const torch::Tensor& attention_mask,
                                                          const torch::Tensor& image_embeds,
                                                          const std::vector<int64_t>& layers) const {
  torch::AutoGradMode grad_on(true);
  std::map<int64_t, torch::Tensor> captured;
  ProbsHook hook = [&](int64_t layer, const torch::Tensor& probs) {
    if (std::find(layers.begin(), layers.end(), layer) != layers.end()) {
      probs.retain_grad();
      captured[layer] = probs;
    }
    return probs;
  };
  torch::Tensor hidden = run_text_layers(text_embeddings(input_ids), self_attention_mask(attention_mask),
                                         image_embeds, 0, config_.text.num_hidden_layers, hook);
  torch::Tensor logits = apply(itm_head_, hidden.select(1, 0));
  logits.select(1, 1).sum().backward();
  CrossAttentionCapture out;
  out.itm_logits = logits.detach();
  out.text_hidden = hidden.detach();
  out.layers = layers;
  for (int64_t l : layers) {
    out.probs.push_back(captured.at(l).detach());
    out.grads.push_back(captured.at(l).grad());
  }
  // Weight gradients are the reference's wasted work; drop them so they do not accumulate.
  for (const auto& p : parameters_) const_cast<torch::Tensor&>(p).mutable_grad() = torch::Tensor();
  return out;
}

}  // namespace pnpovss::models
