// The exhaustive layer x head grid on the BLIP fixture model: the maps of every (layer, head)
// from one pass equal those of separate single-(layer, head) runs of the method, and the
// evaluator's verdicts from the grid equal its verdicts trial by trial.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <functional>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/segment/blip_backbone.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/segment/postprocess.h"
#include "pnpovss/segment/prompt.h"
#include "pnpovss/segment/salience_dropout.h"
#include "pnpovss/segment/segmenter.h"
#include "pnpovss/tune/evaluator.h"
#include "pnpovss/tune/grid.h"
#include "pnpovss/tune/reward.h"

using namespace pnpovss;
using namespace pnpovss::tune;

namespace {

const std::string kData = PNPOVSS_TEST_DATA;

MethodSettings tiny_settings(const std::string& preset_name) {
  MethodSettings s = preset(preset_name, "blip");
  s.input_size = 64;
  s.attention_layer = 0;
  s.attention_head = 0;
  return s;
}

// A deterministic stand-in for CLIP (not CLIP): the input is the image averaged to 8 x 8, and
// class k's score is the dot product with a fixed pseudo-random pattern seeded by its name.
class PatternScorer : public MaskScorer {
 public:
  torch::Tensor preprocess(const Image& image) const override {
    torch::Tensor x = torch::tensor(std::vector<float>(image.rgb.begin(), image.rgb.end()))
                          .view({image.height, image.width, 3})
                          .permute({2, 0, 1})
                          .unsqueeze(0);
    return torch::adaptive_avg_pool2d(x / 255.0f - 0.5f, {8, 8})[0];
  }
  torch::Tensor empty_image(EmptyImage kind) const override {
    return kind == EmptyImage::Black ? torch::full({3, 8, 8}, -0.5f) : torch::zeros({3, 8, 8});
  }
  torch::Tensor masks_to_input(const torch::Tensor& masks, int height, int width) const override {
    (void)height;
    (void)width;
    return resize_and_crop_masks(masks, 8, 8, 8, 8);
  }
  torch::Tensor class_probabilities(const torch::Tensor& pixels, const std::vector<std::string>& names) const override {
    std::vector<torch::Tensor> scores;
    for (const auto& n : names) {
      torch::manual_seed(static_cast<uint64_t>(std::hash<std::string>()(n) % 100000));
      const torch::Tensor pattern = torch::randn({3, 8, 8});
      scores.push_back((pixels * pattern).sum({1, 2, 3}) * 4.0f);
    }
    return torch::softmax(torch::stack(scores, 1), 1);
  }
};

}  // namespace

TEST(TuneGrid, EveryLayerAndHeadEqualsItsOwnRun) {
  const auto backbone = segment::BlipBackbone::load(kData + "/blip_itm");
  const auto tokenizer = text::WordPieceTokenizer::from_dir(kData + "/blip_itm");
  const Image image = image::decode_image_file(kData + "/blip_itm/input.png");
  for (const char* preset_name : {"paper", "official"}) {
    MethodSettings s = tiny_settings(preset_name);
    s.dropout_iterations = 1;
    const torch::Tensor pixels = segment::preprocess_image(backbone, image, s);
    const segment::Prompt prompt = segment::build_prompt(tokenizer, {"cat", "potted plant", "remote control"},
                                                         s.prompt_class_names, s.prompt_first_token,
                                                         backbone.enc_token_id());
    const std::vector<int64_t> layers = {0, 1, 2}, heads = {0, 1, 2, 3};
    const torch::Tensor grid = gradcam_grid(backbone, pixels, prompt, s, layers, heads);
    int non_zero = 0;
    ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{3, 4, 3, 4, 4}));
    for (int64_t l : layers)
      for (int64_t h : heads) {
        s.attention_layer = static_cast<int>(l);
        s.attention_head = static_cast<int>(h);
        const auto single = segment::salience_dropout(backbone, pixels, prompt, s);
        const torch::Tensor want = single.iterations[0].class_maps;
        const torch::Tensor got = grid[l][h];
        // The same arithmetic on the same captured tensors: equal up to float rounding of the
        // backward through more layers.
        EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-9))
            << preset_name << " layer " << l + 1 << " head " << h + 1 << " max diff "
            << (got - want).abs().max().item<float>();
        non_zero += want.abs().sum().item<float>() > 0.0f ? 1 : 0;
        // Masks: the post-processing's keep rule.
        for (double t : {0.05, 0.45}) {
          s.mask_threshold = t;
          const auto stack = segment::build_channel_stack(single.final_maps, 4, 4, s);
          EXPECT_TRUE(torch::equal(threshold_masks(got, t), stack.keep.to(torch::kFloat32)));
        }
      }
    // Random weights leave some heads without a positive gradient (all-zero maps); most have one.
    EXPECT_GT(non_zero, 6) << preset_name;
    // Subsets and orders of layers and heads give the same slices.
    const torch::Tensor part = gradcam_grid(backbone, pixels, prompt, s, {2, 0}, {3});
    EXPECT_TRUE(torch::allclose(part[0][0], grid[2][3], 1e-5, 1e-9));
    EXPECT_TRUE(torch::allclose(part[1][0], grid[0][3], 1e-5, 1e-9));
    EXPECT_THROW(gradcam_grid(backbone, pixels, prompt, s, {3}, {0}), Error);
    EXPECT_THROW(gradcam_grid(backbone, pixels, prompt, s, {0}, {4}), Error);
    EXPECT_THROW(gradcam_grid(backbone, pixels, prompt, s, {}, {0}), Error);
  }
}

TEST(TuneGrid, ThresholdMasksOfAConstantMapAreEmpty) {
  torch::Tensor maps = torch::zeros({2, 2, 2});
  maps[0].fill_(3.0f);
  maps[1][0][0] = 1.0f;
  const torch::Tensor m = threshold_masks(maps, 0.15);
  EXPECT_EQ(m[0].sum().item<float>(), 0.0f);
  EXPECT_EQ(m[1].sum().item<float>(), 1.0f);
}

TEST(TuneGrid, EvaluatorVerdictsFromTheGridEqualSingleTrials) {
  const auto model = segment::Segmenter::load(kData + "/blip_itm");
  const PatternScorer scorer;
  std::vector<TuneImage> images = {{kData + "/blip_itm/input.png", {"cat", "remote control"}},
                                   {kData + "/blip_itm/random.png", {"dog", "sky", "cat"}}};
  PipelineEvaluator ev(model, scorer, tiny_settings("paper"), images, EmptyImage::Black);
  const SearchSpace space = paper_space("blip", 3, 4);
  const auto candidates = space.stage1_candidates();
  int wins = 0, total = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const auto grid = ev.grid_wins(i, space);
    ASSERT_EQ(grid.size(), candidates.size());
    for (size_t c = 0; c < candidates.size(); c += 7) {
      Candidate cand = candidates[c];
      cand.blur = 0.05;
      EXPECT_EQ(grid[c], ev.wins(i, cand, MaskSource::GradCam)) << "image " << i << " candidate " << c;
    }
    for (const auto& w : grid)
      for (bool b : w) {
        wins += b;
        ++total;
      }
  }
  // Neither all wins nor all losses, or the comparison above would prove little.
  EXPECT_GT(wins, 0);
  EXPECT_LT(wins, total);
  // Final masks: one per class at the image's size, labels as the pipeline gives them.
  Candidate c{2, 3, 0.15, 0.05};
  const torch::Tensor final_masks = ev.masks(0, c, MaskSource::Final);
  const Image im = image::decode_image_file(images[0].path);
  ASSERT_EQ(final_masks.sizes(), (std::vector<int64_t>{2, im.height, im.width}));
  EXPECT_LE(final_masks.sum(0).max().item<float>(), 1.0f);  // a pixel belongs to one class at most
  EXPECT_EQ(ev.masks(0, c, MaskSource::Dropout).sizes(), (std::vector<int64_t>{2, 4, 4}));
  EXPECT_EQ(ev.wins(1, c, MaskSource::Dropout).size(), 3u);
  // A bad image fails at construction, naming it.
  std::vector<TuneImage> bad = {{kData + "/no_such.png", {"cat"}}};
  EXPECT_THROW(PipelineEvaluator(model, scorer, tiny_settings("paper"), bad, EmptyImage::Black), Error);
}
