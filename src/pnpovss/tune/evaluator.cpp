#include "pnpovss/tune/evaluator.h"

#include <torch/torch.h>

#include <cstdint>
#include <utility>

#include "pnpovss/error.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/segment/salience_dropout.h"
#include "pnpovss/tune/grid.h"

namespace pnpovss::tune {
namespace {

// The cache key of a mask: its class, shape and bytes (masks are small: P x P, or H x W 0/1).
std::string mask_key(int64_t cls, const torch::Tensor& mask) {
  const torch::Tensor m = mask.to(torch::kFloat32).contiguous();
  std::string key = std::to_string(cls) + ":" + std::to_string(m.size(0)) + "x" + std::to_string(m.size(1)) + ":";
  key.append(reinterpret_cast<const char*>(m.data_ptr<float>()), static_cast<size_t>(m.numel()) * sizeof(float));
  return key;
}

}  // namespace

PipelineEvaluator::PipelineEvaluator(const segment::Segmenter& model, const MaskScorer& scorer,
                                     MethodSettings base, std::vector<TuneImage> images, EmptyImage empty)
    : model_(model), scorer_(scorer), base_(std::move(base)) {
  base_.validate();
  for (auto& input : images) {
    Prepared p;
    p.original = image::decode_image_file(input.path);
    model.check_classes(input.classes, base_);
    p.model_pixels = segment::preprocess_image(model.backbone(), p.original, base_);
    p.scored = prepare_scored_image(scorer, p.original, input.classes, empty);
    p.input = std::move(input);
    images_.push_back(std::move(p));
  }
}

MethodSettings PipelineEvaluator::settings_for(const Candidate& c) const {
  MethodSettings s = base_;
  s.attention_layer = c.layer - 1;
  s.attention_head = c.head - 1;
  s.mask_threshold = c.threshold;
  s.post_blur = c.blur;
  s.validate();
  return s;
}

torch::Tensor PipelineEvaluator::masks(size_t i, const Candidate& setting, MaskSource source) const {
  const Prepared& p = images_.at(i);
  MethodSettings s = settings_for(setting);
  if (source == MaskSource::Final) {
    const auto r = segment::run_from_pixels(model_.backbone(), model_.tokenizer(), p.model_pixels, p.original,
                                            p.input.classes, s);
    const torch::Tensor labels = torch::tensor(r.labels, torch::kInt32).view({r.height, r.width});
    std::vector<torch::Tensor> per_class;
    for (size_t k = 0; k < p.input.classes.size(); ++k)
      per_class.push_back(labels.eq(static_cast<int32_t>(k + 1)).to(torch::kFloat32));
    return torch::stack(per_class);
  }
  if (source == MaskSource::GradCam) s.dropout_iterations = 1;
  const segment::Prompt prompt = model_.prompt(p.input.classes, s);
  const auto dropout = segment::salience_dropout(model_.backbone(), p.model_pixels, prompt, s);
  return threshold_masks(dropout.final_maps, s.mask_threshold);
}

std::vector<bool> PipelineEvaluator::cached_wins(Prepared& p, const std::vector<int64_t>& classes,
                                                 const torch::Tensor& masks) {
  std::vector<bool> out(classes.size(), false);
  std::vector<std::string> keys;
  std::vector<int64_t> todo_index, todo_class;
  std::unordered_map<std::string, size_t> pending;  // key -> first todo position
  std::vector<size_t> todo_of(classes.size(), SIZE_MAX);
  for (size_t m = 0; m < classes.size(); ++m) {
    keys.push_back(mask_key(classes[m], masks[static_cast<int64_t>(m)]));
    if (const auto it = p.verdicts.find(keys.back()); it != p.verdicts.end()) {
      out[m] = it->second;
    } else if (const auto q = pending.find(keys.back()); q != pending.end()) {
      todo_of[m] = q->second;
    } else {
      pending.emplace(keys.back(), todo_index.size());
      todo_of[m] = todo_index.size();
      todo_index.push_back(static_cast<int64_t>(m));
      todo_class.push_back(classes[m]);
    }
  }
  requested_ += classes.size();
  scored_ += todo_index.size();
  if (todo_index.empty()) return out;
  const torch::Tensor todo_masks = masks.index_select(0, torch::tensor(todo_index, torch::kInt64));
  const std::vector<bool> fresh = mask_wins(scorer_, p.scored, todo_class, todo_masks);
  for (size_t t = 0; t < todo_index.size(); ++t) p.verdicts[keys[static_cast<size_t>(todo_index[t])]] = fresh[t];
  for (size_t m = 0; m < classes.size(); ++m)
    if (todo_of[m] != SIZE_MAX) out[m] = fresh[todo_of[m]];
  return out;
}

std::vector<bool> PipelineEvaluator::wins(size_t i, const Candidate& setting, MaskSource source) {
  Prepared& p = images_.at(i);
  const torch::Tensor m = masks(i, setting, source);
  std::vector<int64_t> classes;
  for (int64_t k = 0; k < m.size(0); ++k) classes.push_back(k);
  return cached_wins(p, classes, m);
}

std::vector<std::vector<bool>> PipelineEvaluator::grid_wins(size_t i, const SearchSpace& space) {
  Prepared& p = images_.at(i);
  MethodSettings s = base_;
  s.dropout_iterations = 1;
  const segment::Prompt prompt = model_.prompt(p.input.classes, s);
  std::vector<int64_t> layers, heads;
  for (int l : space.layers) layers.push_back(l - 1);
  for (int h : space.heads) heads.push_back(h - 1);
  const torch::Tensor maps = gradcam_grid(model_.backbone(), p.model_pixels, prompt, s, layers, heads);
  // Every candidate's masks in one list, so the scorer sees full batches of distinct masks.
  const auto k = static_cast<int64_t>(p.input.classes.size());
  std::vector<torch::Tensor> all;
  std::vector<int64_t> classes;
  for (size_t li = 0; li < layers.size(); ++li)
    for (size_t hi = 0; hi < heads.size(); ++hi)
      for (double t : space.thresholds) {
        all.push_back(threshold_masks(maps[static_cast<int64_t>(li)][static_cast<int64_t>(hi)], t));
        for (int64_t c = 0; c < k; ++c) classes.push_back(c);
      }
  const std::vector<bool> flat = cached_wins(p, classes, torch::cat(all));
  std::vector<std::vector<bool>> out;
  for (size_t c = 0; c < all.size(); ++c)
    out.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(c * k),
                     flat.begin() + static_cast<std::ptrdiff_t>((c + 1) * k));
  return out;
}

}  // namespace pnpovss::tune
