// The reward of one setting on one image, from the pipeline's masks (docs/method.md §8).
// Three kinds of masks can be scored: GradCAM masks (one pass, no Salience DropOut), Salience
// DropOut masks (every iteration, thresholded at the patch grid) and the final masks (the whole
// method with blur and CRF, one per class at the image's size).
#pragma once

#include <torch/types.h>

#include <atomic>
#include <string>
#include <unordered_map>
#include <vector>

#include "pnpovss/image/codec.h"
#include "pnpovss/segment/segmenter.h"
#include "pnpovss/settings.h"
#include "pnpovss/tune/reward.h"
#include "pnpovss/tune/search.h"
#include "pnpovss/tune/trial.h"
#include "pnpovss/tune/tune_input.h"

namespace pnpovss::tune {

// What the search needs: per image and setting, which classes' masks win. Tests substitute
// evaluators with known answers. With TuneOptions::workers above 1, wins() and grid_wins() are
// called from several threads at once, each for other images.
class TrialEvaluator {
 public:
  virtual ~TrialEvaluator() = default;
  virtual size_t num_images() const = 0;
  virtual const TuneImage& image(size_t i) const = 0;
  // One win flag per class of image i.
  virtual std::vector<bool> wins(size_t i, const Candidate& setting, MaskSource masks) = 0;
  // Per stage-1 candidate of `space` (stage1_candidates() order), the win flags of image i on
  // GradCAM masks, all from one model pass.
  virtual std::vector<std::vector<bool>> grid_wins(size_t i, const SearchSpace& space) = 0;
};

// The real thing: the segmentation model's masks scored by a MaskScorer. Images are decoded and
// preprocessed once, at construction (an unreadable image fails there, naming it).
class PipelineEvaluator : public TrialEvaluator {
 public:
  PipelineEvaluator(const segment::Segmenter& model, const MaskScorer& scorer, MethodSettings base,
                    std::vector<TuneImage> images, EmptyImage empty);

  size_t num_images() const override { return images_.size(); }
  const TuneImage& image(size_t i) const override { return images_.at(i).input; }
  std::vector<bool> wins(size_t i, const Candidate& setting, MaskSource masks) override;
  std::vector<std::vector<bool>> grid_wins(size_t i, const SearchSpace& space) override;

  // The base settings with the candidate's layer, head, threshold and blur.
  MethodSettings settings_for(const Candidate& c) const;
  // Class masks [K, h, w] of image i for a setting (GradCAM and DropOut: P x P; final: H x W).
  torch::Tensor masks(size_t i, const Candidate& setting, MaskSource source) const;

  // Masks asked about, and those of them the scorer had to see (the others repeated a mask of
  // the same class and image seen before): the scorer's cost is one image pass per scored mask.
  size_t requested_masks() const { return requested_; }
  size_t scored_masks() const { return scored_; }

 private:
  struct Prepared {
    TuneImage input;
    Image original;
    torch::Tensor model_pixels;  // [3, S, S]
    ScoredImage scored;
    std::unordered_map<std::string, bool> verdicts;  // (class, mask bytes) -> win
  };
  // Win flags of masks [M, h, w] for classes[m], reusing verdicts of masks seen before.
  std::vector<bool> cached_wins(Prepared& p, const std::vector<int64_t>& classes, const torch::Tensor& masks);

  const segment::Segmenter& model_;
  const MaskScorer& scorer_;
  MethodSettings base_;
  std::vector<Prepared> images_;
  std::atomic<size_t> requested_{0}, scored_{0};
};

}  // namespace pnpovss::tune
