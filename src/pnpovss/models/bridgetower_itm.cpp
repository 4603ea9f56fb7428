#include "pnpovss/models/bridgetower_itm.h"

#include <sys/stat.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>

#include "pnpovss/error.h"
#include "pnpovss/io/checkpoint.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/io/safetensors.h"
#include "pnpovss/models/random_checkpoint.h"
#include "pnpovss/runtime/cpu_allocator.h"
#include "pnpovss/runtime/vision_attention.h"

namespace pnpovss::models {
namespace {

using Linear = BridgeTowerItm::Linear;
using LayerNorm = BridgeTowerItm::LayerNorm;
using Hook = std::function<torch::Tensor(const torch::Tensor&)>;

torch::Tensor apply(const Linear& l, const torch::Tensor& x) { return torch::linear(x, l.weight, l.bias); }

torch::Tensor apply(const LayerNorm& n, const torch::Tensor& x, double eps) {
  return torch::layer_norm(x, {x.size(-1)}, n.weight, n.bias, eps);
}

// ---- parameter table ----------------------------------------------------------------------

const std::string kVisual = "bridgetower.vision_model.visual";
const std::string kText = "bridgetower.text_model";

void add_linear(std::vector<ParameterSpec>& specs, const std::string& prefix, int64_t out, int64_t in) {
  specs.push_back({prefix + ".weight", {out, in}});
  specs.push_back({prefix + ".bias", {out}});
}

void add_norm(std::vector<ParameterSpec>& specs, const std::string& prefix, int64_t width) {
  specs.push_back({prefix + ".weight", {width}});
  specs.push_back({prefix + ".bias", {width}});
}

void add_attention(std::vector<ParameterSpec>& specs, const std::string& prefix, int64_t width) {
  add_linear(specs, prefix + ".self.query", width, width);
  add_linear(specs, prefix + ".self.key", width, width);
  add_linear(specs, prefix + ".self.value", width, width);
  add_linear(specs, prefix + ".output.dense", width, width);
  add_norm(specs, prefix + ".output.LayerNorm", width);
}

void add_ffn(std::vector<ParameterSpec>& specs, const std::string& prefix, int64_t width, int64_t inner) {
  add_linear(specs, prefix + ".intermediate.dense", inner, width);
  add_linear(specs, prefix + ".output.dense", width, inner);
  add_norm(specs, prefix + ".output.LayerNorm", width);
}

std::string numbered(const std::string& prefix, int64_t i) { return prefix + "." + std::to_string(i); }

void add_vision(std::vector<ParameterSpec>& specs, const BridgeTowerVisionConfig& v) {
  const int64_t D = v.hidden_size;
  specs.push_back({kVisual + ".embeddings.class_embedding", {D}});
  specs.push_back({kVisual + ".embeddings.patch_embedding.weight", {D, 3, v.patch_size, v.patch_size}});
  specs.push_back({kVisual + ".embeddings.position_embedding.weight", {v.num_positions(), D}});
  add_norm(specs, kVisual + ".ln_pre", D);
  for (int64_t i = 0; i < v.num_blocks(); ++i) {
    const std::string p = numbered(kVisual + ".transformer.resblocks", i);
    specs.push_back({p + ".attn.in_proj_weight", {3 * D, D}});
    specs.push_back({p + ".attn.in_proj_bias", {3 * D}});
    add_linear(specs, p + ".attn.out_proj", D, D);
    add_norm(specs, p + ".ln_1", D);
    add_linear(specs, p + ".mlp.c_fc", 4 * D, D);
    add_linear(specs, p + ".mlp.c_proj", D, 4 * D);
    add_norm(specs, p + ".ln_2", D);
  }
  add_norm(specs, kVisual + ".ln_post", D);
  // Present in such checkpoints, but the reference forward pass applies ln_post only.
  if (!v.share_layernorm)
    for (int64_t i = 0; i < v.num_hidden_layers; ++i) add_norm(specs, numbered(kVisual + ".ln_separate", i), D);
}

void add_text(std::vector<ParameterSpec>& specs, const BridgeTowerTextConfig& t) {
  const int64_t D = t.hidden_size;
  specs.push_back({kText + ".embeddings.word_embeddings.weight", {t.vocab_size, D}});
  specs.push_back({kText + ".embeddings.position_embeddings.weight", {t.max_position_embeddings, D}});
  specs.push_back({kText + ".embeddings.token_type_embeddings.weight", {t.type_vocab_size, D}});
  add_norm(specs, kText + ".embeddings.LayerNorm", D);
  for (int64_t i = 0; i < t.num_hidden_layers; ++i) {
    const std::string p = numbered(kText + ".encoder.layer", i);
    add_attention(specs, p + ".attention", D);
    add_ffn(specs, p, D, t.intermediate_size);
  }
  add_linear(specs, kText + ".pooler.dense", D, D);  // unused by ITM
}

}  // namespace

std::vector<ParameterSpec> bridgetower_itm_parameters(const BridgeTowerConfig& c) {
  const int64_t H = c.hidden_size, D = c.text.hidden_size;
  std::vector<ParameterSpec> specs;
  add_linear(specs, "bridgetower.cross_modal_text_transform", H, D);
  add_linear(specs, "bridgetower.cross_modal_image_transform", H, c.vision.hidden_size);
  specs.push_back({"bridgetower.token_type_embeddings.weight", {2, H}});
  add_vision(specs, c.vision);
  add_text(specs, c.text);
  for (const char* side : {"image", "text"})
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = numbered(std::string("bridgetower.cross_modal_") + side + "_layers", i);
      add_attention(specs, p + ".attention", D);
      add_attention(specs, p + ".crossattention", D);
      add_ffn(specs, p, D, c.text.intermediate_size);
    }
  add_linear(specs, "bridgetower.cross_modal_image_pooler.dense", H, H);
  add_linear(specs, "bridgetower.cross_modal_text_pooler.dense", H, H);
  add_norm(specs, "bridgetower.cross_modal_text_layernorm", H);
  add_norm(specs, "bridgetower.cross_modal_image_layernorm", H);
  for (const char* side : {"text", "image"})
    for (int64_t i = 0; i + 1 < c.num_hidden_layers; ++i)
      add_norm(specs, numbered(std::string("bridgetower.cross_modal_") + side + "_link_tower", i) + ".LayerNorm", H);
  add_linear(specs, "itm_score.fc", 2, 2 * H);
  return specs;
}

void write_random_bridgetower_checkpoint(const BridgeTowerConfig& config, const std::string& dir, uint64_t seed) {
  ::mkdir(dir.c_str(), 0755);
  const std::string config_path = dir + "/config.json";
  const std::string weights_path = dir + "/model.safetensors";
  const std::string config_text = config.to_json().dump(2);
  if (io::file_exists(config_path) && io::file_exists(weights_path) && io::read_text_file(config_path) == config_text)
    return;
  const auto specs = bridgetower_itm_parameters(config);
  runtime::TensorMap weights = random_weights(specs, seed);
  std::vector<io::TensorView> views;
  for (const auto& spec : specs) views.push_back(runtime::view_of(spec.name, weights.at(spec.name)));
  io::write_safetensors(weights_path, views, {{"format", "pt"}, {"note", "random weights"}});
  std::ofstream(config_path) << config_text;
}

// ---- loading ------------------------------------------------------------------------------

BridgeTowerItm BridgeTowerItm::load(const std::string& dir) {
  runtime::install_cpu_allocator();  // large activations on reused huge pages (cpu_allocator.h)
  const std::string config_path = dir + "/config.json";
  if (!io::file_exists(config_path)) throw Error("'" + dir + "' is not a model directory: config.json is missing");
  const BridgeTowerConfig config = BridgeTowerConfig::from_file(config_path);
  io::Checkpoint checkpoint = io::Checkpoint::open_dir(dir);
  return from_tensors(config, runtime::load_float_tensors(checkpoint), checkpoint.description());
}

BridgeTowerItm BridgeTowerItm::from_tensors(const BridgeTowerConfig& config, runtime::TensorMap tensors,
                                            const std::string& origin) {
  WeightLoader w(std::move(tensors), origin);
  // Shapes come from the one table above, so loading and the manifest test agree.
  std::map<std::string, std::vector<int64_t>> shapes;
  for (auto& spec : bridgetower_itm_parameters(config)) shapes[spec.name] = spec.shape;
  auto take = [&](const std::string& name) { return w.take(name, shapes.at(name)); };
  auto linear = [&](const std::string& p) { return Linear{take(p + ".weight"), take(p + ".bias")}; };
  auto norm = [&](const std::string& p) { return LayerNorm{take(p + ".weight"), take(p + ".bias")}; };
  auto attention = [&](const std::string& p) {
    return Attention{linear(p + ".self.query"), linear(p + ".self.key"), linear(p + ".self.value"),
                     linear(p + ".output.dense"), norm(p + ".output.LayerNorm")};
  };

  BridgeTowerItm m;
  m.config_ = config;
  m.class_embedding_ = take(kVisual + ".embeddings.class_embedding");
  m.patch_weight_ = take(kVisual + ".embeddings.patch_embedding.weight");
  m.position_embedding_ = take(kVisual + ".embeddings.position_embedding.weight");
  m.ln_pre_ = norm(kVisual + ".ln_pre");
  for (int64_t i = 0; i < config.vision.num_blocks(); ++i) {
    const std::string p = numbered(kVisual + ".transformer.resblocks", i);
    VisionBlock b;
    b.in_proj = Linear{take(p + ".attn.in_proj_weight"), take(p + ".attn.in_proj_bias")};
    b.out_proj = linear(p + ".attn.out_proj");
    b.ln_1 = norm(p + ".ln_1");
    b.c_fc = linear(p + ".mlp.c_fc");
    b.c_proj = linear(p + ".mlp.c_proj");
    b.ln_2 = norm(p + ".ln_2");
    m.vision_blocks_.push_back(b);
  }
  m.ln_post_ = norm(kVisual + ".ln_post");
  if (!config.vision.share_layernorm)
    for (int64_t i = 0; i < config.vision.num_hidden_layers; ++i) norm(numbered(kVisual + ".ln_separate", i));

  m.word_embeddings_ = take(kText + ".embeddings.word_embeddings.weight");
  m.position_embeddings_ = take(kText + ".embeddings.position_embeddings.weight");
  m.text_token_type_ = take(kText + ".embeddings.token_type_embeddings.weight");
  m.text_embed_norm_ = norm(kText + ".embeddings.LayerNorm");
  for (int64_t i = 0; i < config.text.num_hidden_layers; ++i) {
    const std::string p = numbered(kText + ".encoder.layer", i);
    m.text_layers_.push_back(TextLayer{attention(p + ".attention"), linear(p + ".intermediate.dense"),
                                       linear(p + ".output.dense"), norm(p + ".output.LayerNorm")});
  }
  linear(kText + ".pooler.dense");

  m.text_transform_ = linear("bridgetower.cross_modal_text_transform");
  m.image_transform_ = linear("bridgetower.cross_modal_image_transform");
  m.token_type_ = take("bridgetower.token_type_embeddings.weight");
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    for (auto* side : {&m.image_cross_, &m.text_cross_}) {
      const std::string p = numbered(side == &m.text_cross_ ? "bridgetower.cross_modal_text_layers"
                                                            : "bridgetower.cross_modal_image_layers",
                                     i);
      side->push_back(CrossLayer{attention(p + ".attention"), attention(p + ".crossattention"),
                                 linear(p + ".intermediate.dense"), linear(p + ".output.dense"),
                                 norm(p + ".output.LayerNorm")});
    }
  }
  m.image_pooler_ = linear("bridgetower.cross_modal_image_pooler.dense");
  m.text_pooler_ = linear("bridgetower.cross_modal_text_pooler.dense");
  m.text_input_norm_ = norm("bridgetower.cross_modal_text_layernorm");
  m.image_input_norm_ = norm("bridgetower.cross_modal_image_layernorm");
  for (int64_t i = 0; i + 1 < config.num_hidden_layers; ++i) {
    m.text_links_.push_back(norm(numbered("bridgetower.cross_modal_text_link_tower", i) + ".LayerNorm"));
    m.image_links_.push_back(norm(numbered("bridgetower.cross_modal_image_link_tower", i) + ".LayerNorm"));
  }
  m.itm_head_ = linear("itm_score.fc");
  w.finish();
  return m;
}

template <typename F>
void BridgeTowerItm::for_each_weight(F&& f) {
  auto linear = [&](auto& l) { f(l.weight); f(l.bias); };  // and LayerNorm: a weight and a bias each
  auto& norm = linear;
  auto attention = [&](Attention& a) {
    for (Linear* x : {&a.query, &a.key, &a.value, &a.output}) linear(*x);
    norm(a.norm);
  };
  for (torch::Tensor* t : {&class_embedding_, &patch_weight_, &position_embedding_}) f(*t);
  norm(ln_pre_);
  norm(ln_post_);
  for (auto& b : vision_blocks_) {
    norm(b.ln_1);
    norm(b.ln_2);
    for (Linear* x : {&b.in_proj, &b.out_proj, &b.c_fc, &b.c_proj}) linear(*x);
  }
  for (torch::Tensor* t : {&word_embeddings_, &position_embeddings_, &text_token_type_, &token_type_}) f(*t);
  norm(text_embed_norm_);
  for (auto& l : text_layers_) {
    attention(l.self_attention);
    linear(l.intermediate);
    linear(l.output);
    norm(l.output_norm);
  }
  for (auto* side : {&text_cross_, &image_cross_})
    for (auto& l : *side) {
      attention(l.self_attention);
      attention(l.cross_attention);
      linear(l.intermediate);
      linear(l.output);
      norm(l.output_norm);
    }
  for (LayerNorm* n : {&text_input_norm_, &image_input_norm_}) norm(*n);
  for (auto* links : {&text_links_, &image_links_})
    for (auto& n : *links) norm(n);
  for (Linear* x : {&text_transform_, &image_transform_, &text_pooler_, &image_pooler_, &itm_head_}) linear(*x);
}

void BridgeTowerItm::to(const runtime::Placement& p) {
  runtime::check_placement(p);
  for_each_weight([&](torch::Tensor& t) { t = t.to(p.device, p.dtype); });
  placement_ = p;
}

int64_t BridgeTowerItm::parameter_count() const {
  int64_t n = 0;
  for (const auto& spec : bridgetower_itm_parameters(config_)) {
    int64_t k = 1;
    for (int64_t d : spec.shape) k *= d;
    n += k;
  }
  return n;
}

// ---- vision tower -------------------------------------------------------------------------

torch::Tensor BridgeTowerItm::positions_for_grid(int64_t grid_h, int64_t grid_w) const {
  const int64_t side = config_.vision.grid();
  if (grid_h == side && grid_w == side) return position_embedding_;
  const int64_t width = position_embedding_.size(1);
  torch::Tensor cls = position_embedding_.narrow(0, 0, 1);
  // Resized in float32 whatever the model's type (not every libtorch has bicubic for bf16).
  torch::Tensor grid = position_embedding_.narrow(0, 1, side * side)
                           .to(torch::kFloat32)
                           .reshape({1, side, side, width})
                           .permute({0, 3, 1, 2});
  torch::Tensor resized =
      at::upsample_bicubic2d(grid.contiguous(), {grid_h, grid_w}, false, c10::nullopt, c10::nullopt);
  resized = resized.permute({0, 2, 3, 1}).reshape({grid_h * grid_w, width}).to(placement_.dtype);
  return torch::cat({cls, resized}, 0);
}

torch::Tensor BridgeTowerItm::vision_embeddings(const torch::Tensor& pixels) const {
  const auto& vc = config_.vision;
  const torch::Tensor input = pixels.to(placement_.device, placement_.dtype);
  torch::Tensor patches = torch::conv2d(input, patch_weight_, {}, vc.patch_size);
  const int64_t grid_h = patches.size(2), grid_w = patches.size(3);
  patches = patches.flatten(2).transpose(1, 2);  // [B, P, Dv]
  torch::Tensor cls = class_embedding_.view({1, 1, vc.hidden_size}).expand({pixels.size(0), 1, vc.hidden_size});
  torch::Tensor x = torch::cat({cls, patches}, 1) + positions_for_grid(grid_h, grid_w).unsqueeze(0);
  return apply(ln_pre_, x, vc.layer_norm_eps);
}

// A CLIP residual block (nn.MultiheadAttention with 64-wide heads, quick-GELU MLP), batch first.
torch::Tensor BridgeTowerItm::vision_block(const VisionBlock& block, const torch::Tensor& x) const {
  const auto& vc = config_.vision;
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2), H = vc.num_heads();
  torch::Tensor qkv = apply(block.in_proj, apply(block.ln_1, x, vc.layer_norm_eps))
                          .view({B, N, 3, H, D / H})
                          .permute({2, 0, 3, 1, 4});
  const double scale = 1.0 / std::sqrt(static_cast<double>(D / H));
  const torch::Tensor q = qkv[0] * scale;  // scaled before the product, as the reference does
  // libtorch's fused kernel on a GPU scales by 1/sqrt(head size) itself, so it takes q unscaled.
  torch::Tensor context = runtime::fused_gpu_attention(qkv[0], qkv[1], qkv[2]);
  if (!context.defined()) context = runtime::fused_cpu_attention(q, qkv[1], qkv[2], 1.0);
  if (!context.defined())
    context = runtime::merge_heads(torch::matmul(torch::softmax(torch::matmul(q, qkv[1].transpose(-1, -2)), -1), qkv[2]));
  torch::Tensor h = x + apply(block.out_proj, context);
  torch::Tensor inner = apply(block.c_fc, apply(block.ln_2, h, vc.layer_norm_eps));
  inner = inner * torch::sigmoid(1.702 * inner);  // quick_gelu
  return h + apply(block.c_proj, inner);
}

// ---- text tower and attention layers ------------------------------------------------------

torch::Tensor BridgeTowerItm::text_embeddings(const torch::Tensor& input_ids) const {
  const auto& tc = config_.text;
  const torch::Tensor ids = input_ids.to(placement_.device);
  // RoBERTa positions: real tokens count up from pad + 1, padding stays at pad.
  torch::Tensor real = ids.ne(tc.pad_token_id).to(torch::kInt64);
  torch::Tensor positions = torch::cumsum(real, 1) * real + tc.pad_token_id;
  torch::Tensor x = torch::embedding(word_embeddings_, ids) + text_token_type_[0] +
                    torch::embedding(position_embeddings_, positions);
  return apply(text_embed_norm_, x, tc.layer_norm_eps);
}

torch::Tensor BridgeTowerItm::attention(const Attention& a, const torch::Tensor& queries, const torch::Tensor& keys,
                                        const torch::Tensor& mask, const Hook& hook) const {
  const auto& tc = config_.text;
  const int64_t heads = tc.num_attention_heads;
  torch::Tensor q = runtime::split_heads(apply(a.query, queries), heads);
  torch::Tensor k = runtime::split_heads(apply(a.key, keys), heads);
  torch::Tensor v = runtime::split_heads(apply(a.value, keys), heads);
  torch::Tensor scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(q.size(-1)));
  if (mask.defined()) scores = scores + mask;
  torch::Tensor probs = torch::softmax(scores, -1);
  if (hook) probs = hook(probs);
  torch::Tensor context = runtime::merge_heads(torch::matmul(probs, v));
  return apply(a.norm, queries + apply(a.output, context), tc.layer_norm_eps);
}

torch::Tensor BridgeTowerItm::text_layer(const TextLayer& layer, const torch::Tensor& x,
                                         const torch::Tensor& mask) const {
  torch::Tensor h = attention(layer.self_attention, x, x, mask, nullptr);
  torch::Tensor ffn = apply(layer.output, torch::gelu(apply(layer.intermediate, h)));
  return apply(layer.output_norm, h + ffn, config_.text.layer_norm_eps);
}

torch::Tensor BridgeTowerItm::cross_layer(const CrossLayer& layer, const torch::Tensor& x, const torch::Tensor& other,
                                          const torch::Tensor& self_mask, const torch::Tensor& other_mask,
                                          const Hook& hook) const {
  torch::Tensor h = attention(layer.self_attention, x, x, self_mask, nullptr);
  h = attention(layer.cross_attention, h, other, other_mask, hook);
  torch::Tensor ffn = apply(layer.output, torch::gelu(apply(layer.intermediate, h)));
  return apply(layer.output_norm, h + ffn, config_.text.layer_norm_eps);
}

// ---- fusion ---------------------------------------------------------------------------------

namespace {
double lowest_value(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kBFloat16: return static_cast<float>(std::numeric_limits<c10::BFloat16>::lowest());
    case torch::kHalf: return static_cast<float>(std::numeric_limits<c10::Half>::lowest());
    default: return std::numeric_limits<float>::lowest();
  }
}
}  // namespace

// get_extended_attention_mask: (1 - mask) * finfo(dtype).min. Computed in float32, where the
// lowest value of every supported type is exact, then converted.
torch::Tensor BridgeTowerItm::extended_mask(const torch::Tensor& attention_mask) const {
  torch::Tensor m = attention_mask.to(placement_.device, torch::kFloat32).unsqueeze(1).unsqueeze(1);
  return ((1.0 - m) * lowest_value(placement_.dtype)).to(placement_.dtype);
}

void BridgeTowerItm::check_inputs(const torch::Tensor& pixels, const torch::Tensor& ids,
                                  const torch::Tensor& mask) const {
  const auto& vc = config_.vision;
  const auto& tc = config_.text;
  if (pixels.dim() != 4 || pixels.size(1) != 3)
    throw Error("pixel_values must have shape [B, 3, H, W], got " + io::shape_string(pixels.sizes().vec()));
  const int64_t height = pixels.size(2), width = pixels.size(3);
  // The patch convolution ignores a remainder below the patch size, as in the reference.
  if (height < vc.patch_size || width < vc.patch_size)
    throw Error("image size " + std::to_string(height) + "x" + std::to_string(width) +
                " is smaller than the patch size " + std::to_string(vc.patch_size));
  if (ids.dim() != 2 || ids.size(1) == 0) throw Error("input_ids must have shape [B, T] with T > 0");
  if (mask.sizes() != ids.sizes()) throw Error("attention_mask must have the shape of input_ids");
  if (ids.size(0) != pixels.size(0)) throw Error("the batch of texts and images must have the same size");
  const int64_t max_tokens = tc.max_position_embeddings - tc.pad_token_id - 1;
  if (ids.size(1) > max_tokens)
    throw Error("the text has " + std::to_string(ids.size(1)) + " tokens; this model accepts at most " +
                std::to_string(max_tokens));
  const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  if (lo < 0 || hi >= tc.vocab_size)
    throw Error("token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the vocabulary of " +
                std::to_string(tc.vocab_size));
}

BridgeTowerItm::TowerFeatures BridgeTowerItm::towers(const torch::Tensor& pixels, const torch::Tensor& ids,
                                                     const torch::Tensor& text_mask) const {
  torch::NoGradGuard no_grad;
  const int64_t K = config_.num_hidden_layers, split = config_.split_index();
  const double veps = config_.vision.layer_norm_eps;
  torch::Tensor text = text_embeddings(ids);
  torch::Tensor image = vision_embeddings(pixels);
  for (int64_t i = 0; i < split; ++i) {
    text = text_layer(text_layers_[i], text, text_mask);
    image = vision_block(vision_blocks_[i], image);
  }
  TowerFeatures f;
  const torch::Tensor text_type = token_type_[0], image_type = token_type_[1];
  for (int64_t j = 0; j < K; ++j) {
    if (j > 0) {  // one more unimodal layer per further cross-modal layer
      text = text_layer(text_layers_[split + j - 1], text, text_mask);
      image = vision_block(vision_blocks_[split + j - 1], image);
    }
    f.text.push_back(apply(text_transform_, text) + text_type);
    f.image.push_back(apply(image_transform_, apply(ln_post_, image, veps)) + image_type);
  }
  return f;
}

void BridgeTowerItm::fuse(const TowerFeatures& towers, const torch::Tensor& text_mask, int64_t grad_from,
                          const ProbsHook& hook, BridgeTowerOutputs& out) const {
  const double eps = config_.layer_norm_eps;
  torch::Tensor text_out, image_out;
  for (int64_t j = 0; j < config_.num_hidden_layers; ++j) {
    torch::AutoGradMode grad_mode(j >= grad_from);
    torch::Tensor text_in, image_in;
    if (j == 0) {
      text_in = apply(text_input_norm_, towers.text[0], eps);
      image_in = apply(image_input_norm_, towers.image[0], eps);
    } else {  // link towers: LN(bridge input + previous cross-modal output)
      text_in = apply(text_links_[j - 1], towers.text[j] + text_out, eps);
      image_in = apply(image_links_[j - 1], towers.image[j] + image_out, eps);
    }
    Hook layer_hook;
    if (hook) layer_hook = [&hook, j](const torch::Tensor& probs) { return hook(j, probs); };
    // The image mask is all ones: its extended mask adds exactly 0 and is left out.
    text_out = cross_layer(text_cross_[j], text_in, image_in, text_mask, torch::Tensor(), layer_hook);
    image_out = cross_layer(image_cross_[j], image_in, text_in, torch::Tensor(), text_mask, nullptr);
  }
  torch::AutoGradMode grad_mode(grad_from < config_.num_hidden_layers);
  torch::Tensor pooled = torch::cat({torch::tanh(apply(text_pooler_, text_out.select(1, 0))),
                                     torch::tanh(apply(image_pooler_, image_out.select(1, 0)))},
                                    -1);
  out.itm_logits = apply(itm_head_, pooled);
  out.text_features = text_out;
  out.image_features = image_out;
  out.pooler_output = pooled;
}

BridgeTowerOutputs BridgeTowerItm::forward(const torch::Tensor& pixel_values, const torch::Tensor& input_ids,
                                           const torch::Tensor& attention_mask) const {
  check_inputs(pixel_values, input_ids, attention_mask);
  torch::NoGradGuard no_grad;
  const torch::Tensor mask = extended_mask(attention_mask);
  BridgeTowerOutputs out;
  fuse(towers(pixel_values, input_ids, mask), mask, config_.num_hidden_layers, nullptr, out);
  return out;
}

BridgeTowerOutputs BridgeTowerItm::itm_attention_gradients(const torch::Tensor& pixel_values,
                                                           const torch::Tensor& input_ids,
                                                           const torch::Tensor& attention_mask,
                                                           const std::vector<int64_t>& layers) const {
  check_inputs(pixel_values, input_ids, attention_mask);
  const int64_t depth = config_.num_hidden_layers;
  if (layers.empty()) throw Error("no cross-modal layer requested");
  for (int64_t l : layers)
    if (l < 0 || l >= depth)
      throw Error("cross-modal layer " + std::to_string(l + 1) + " is out of range: the model has " +
                  std::to_string(depth) + " cross-modal layers (1.." + std::to_string(depth) + ")");
  const int64_t first = *std::min_element(layers.begin(), layers.end());
  const torch::Tensor mask = extended_mask(attention_mask);
  const TowerFeatures features = towers(pixel_values, input_ids, mask);

  std::map<int64_t, torch::Tensor> captured;
  ProbsHook hook = [&](int64_t layer, const torch::Tensor& probs) {
    if (std::find(layers.begin(), layers.end(), layer) == layers.end()) return probs;
    // The lowest layer's probs become the leaf of the graph; higher layers depend on it.
    torch::Tensor p = layer == first ? probs.detach().requires_grad_(true) : probs;
    captured[layer] = p;
    return p;
  };
  BridgeTowerOutputs out;
  fuse(features, mask, first, hook, out);

  std::vector<torch::Tensor> inputs;
  for (int64_t l : layers) inputs.push_back(captured.at(l));
  torch::AutoGradMode grad_on(true);
  auto grads = torch::autograd::grad({out.itm_logits.select(1, 1).sum()}, inputs, /*grad_outputs=*/{},
                                     /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
  out.itm_logits = out.itm_logits.detach();
  out.text_features = out.text_features.detach();
  out.image_features = out.image_features.detach();
  out.pooler_output = out.pooler_output.detach();
  out.layers = layers;
  for (size_t i = 0; i < layers.size(); ++i) {
    out.probs.push_back(inputs[i].detach());
    out.grads.push_back(grads[i].defined() ? grads[i] : torch::zeros_like(inputs[i]));
  }
  return out;
}

}  // namespace pnpovss::models
