// The CLIP reward's counting on cases whose answer is known by construction. The scorer here is
// a documented stub, not CLIP: class k "sees" only row k of a 4 x 4 input, f(x, k) = 10 * the
// mean of channel 0 over that row, so a mask covering exactly row k makes class k the most
// likely one, and anything symmetric (nothing, everything) leaves the classes tied.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <map>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/tune/reward.h"

using namespace pnpovss;
using namespace pnpovss::tune;

namespace {

constexpr int kSide = 4;

class RowScorer : public MaskScorer {
 public:
  mutable int batches = 0;
  mutable int64_t scored_images = 0;

  // Pixels in [-0.5, 0.5]: value / 255 - 0.5, so black is -0.5 and the "mean colour" is 0.
  torch::Tensor preprocess(const Image& image) const override {
    EXPECT_EQ(image.width, kSide);
    EXPECT_EQ(image.height, kSide);
    torch::Tensor out = torch::empty({3, kSide, kSide});
    for (int y = 0; y < kSide; ++y)
      for (int x = 0; x < kSide; ++x)
        for (int c = 0; c < 3; ++c) out[c][y][x] = image.rgb[(y * kSide + x) * 3 + c] / 255.0f - 0.5f;
    return out;
  }
  torch::Tensor empty_image(EmptyImage kind) const override {
    return kind == EmptyImage::Black ? torch::full({3, kSide, kSide}, -0.5f) : torch::zeros({3, kSide, kSide});
  }
  torch::Tensor masks_to_input(const torch::Tensor& masks, int height, int width) const override {
    return resize_and_crop_masks(masks, height, width, kSide, kSide);
  }
  torch::Tensor class_probabilities(const torch::Tensor& pixels, const std::vector<std::string>& names) const override {
    ++batches;
    scored_images += pixels.size(0);
    static const std::map<std::string, int64_t> rows = {{"cat", 0}, {"dog", 1}, {"sky", 2}, {"sea", 3}};
    std::vector<torch::Tensor> columns;
    for (const auto& n : names) columns.push_back(pixels.select(1, 0).select(1, rows.at(n)).mean(1) * 10.0f);
    return torch::softmax(torch::stack(columns, 1), 1);
  }
};

Image white_image() {
  Image im;
  im.width = im.height = kSide;
  im.rgb.assign(kSide * kSide * 3, 255);
  return im;
}

// Masks [K, 4, 4] with mask k covering the rows rows[k] (-1: none, 4: all).
torch::Tensor row_masks(const std::vector<int>& rows) {
  torch::Tensor m = torch::zeros({static_cast<int64_t>(rows.size()), kSide, kSide});
  for (size_t k = 0; k < rows.size(); ++k) {
    if (rows[k] == kSide) m[static_cast<int64_t>(k)].fill_(1.0f);
    else if (rows[k] >= 0) m[static_cast<int64_t>(k)][rows[k]].fill_(1.0f);
  }
  return m;
}

}  // namespace

TEST(TuneReward, EmptyImageIsUniformForTheStub) {
  RowScorer scorer;
  const ScoredImage im = prepare_scored_image(scorer, white_image(), {"cat", "dog", "sky"}, EmptyImage::Black);
  ASSERT_EQ(im.empty_probs.numel(), 3);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(im.empty_probs[k].item<float>(), 1.0f / 3.0f, 1e-6);
  EXPECT_FALSE(im.empty_is_zero);
  EXPECT_TRUE(prepare_scored_image(scorer, white_image(), {"cat"}, EmptyImage::Mean).empty_is_zero);
}

TEST(TuneReward, MaskOnItsOwnRowWinsOthersDoNot) {
  RowScorer scorer;
  const ScoredImage im = prepare_scored_image(scorer, white_image(), {"cat", "dog", "sky"}, EmptyImage::Black);
  // cat on row 0 (its own): win. dog on row 2 (sky's): loss. sky on row 2: win.
  EXPECT_EQ(class_wins(scorer, im, row_masks({0, 2, 2})), (std::vector<bool>{true, false, true}));
  // All zero (the mean colour against black: every class scores 0, a tie) and the full image
  // (every class scores 5, a tie): ties are not wins. sky on its own row 2 still wins; on
  // dog's row 1 it loses.
  EXPECT_EQ(class_wins(scorer, im, row_masks({-1, 4, 2})), (std::vector<bool>{false, false, true}));
  EXPECT_EQ(class_wins(scorer, im, row_masks({-1, 4, 1})), (std::vector<bool>{false, false, false}));
}

TEST(TuneReward, AllZeroMasksAgainstTheMeanImageAreNotScored) {
  RowScorer scorer;
  const ScoredImage im = prepare_scored_image(scorer, white_image(), {"cat", "dog"}, EmptyImage::Mean);
  scorer.scored_images = 0;
  EXPECT_EQ(class_wins(scorer, im, row_masks({-1, -1})), (std::vector<bool>{false, false}));
  EXPECT_EQ(scorer.scored_images, 0);
  EXPECT_EQ(class_wins(scorer, im, row_masks({0, -1})), (std::vector<bool>{true, false}));
  EXPECT_EQ(scorer.scored_images, 1);
}

TEST(TuneReward, MaskWinsScoresEachMaskForItsOwnClassInBatches) {
  RowScorer scorer;
  const ScoredImage im = prepare_scored_image(scorer, white_image(), {"cat", "dog", "sky", "sea"}, EmptyImage::Black);
  scorer.batches = 0;
  // Five masks: (cat, row 0) win, (cat, row 1) loss, (sea, row 3) win, (dog, row 1) win, (dog, all) tie.
  const auto wins = mask_wins(scorer, im, {0, 0, 3, 1, 1}, row_masks({0, 1, 3, 1, 4}), /*batch=*/2);
  EXPECT_EQ(wins, (std::vector<bool>{true, false, true, true, false}));
  EXPECT_EQ(scorer.batches, 3);
  EXPECT_THROW(mask_wins(scorer, im, {0, 4}, row_masks({0, 1})), Error);
  EXPECT_THROW(class_wins(scorer, im, row_masks({0})), Error);
}

TEST(TuneReward, TallySumsOverImagesAndClasses) {
  RewardTally tally;
  tally.add({"cat", "dog", "sky"}, {true, false, true});
  tally.add({"dog", "cat"}, {true, true});
  tally.add({"sea"}, {false});
  EXPECT_EQ(tally.reward, 4);
  EXPECT_EQ(tally.max_reward, 6);
  ASSERT_EQ(tally.per_class.size(), 4u);
  EXPECT_EQ(tally.per_class[0].name, "cat");
  EXPECT_EQ(tally.per_class[0].wins, 2);
  EXPECT_EQ(tally.per_class[0].images, 2);
  EXPECT_EQ(tally.per_class[1].name, "dog");
  EXPECT_EQ(tally.per_class[1].wins, 1);
  EXPECT_EQ(tally.per_class[3].name, "sea");
  EXPECT_EQ(tally.per_class[3].wins, 0);
  EXPECT_THROW(tally.add({"cat"}, {true, false}), Error);
}

TEST(TuneReward, MaskGeometryFollowsShortestEdgeResizeAndCentreCrop) {
  // A 2 x 8 mask whose left half is 1, resized to 4 x 16 (bilinear, half-pixel centres: output
  // column c samples source column (c + 0.5) / 2 - 0.5), then the centre 4 x 4 crop takes
  // columns 6..9, which sample source 2.75, 3.25, 3.75, 4.25: 1, 0.75, 0.25, 0.
  torch::Tensor m = torch::zeros({1, 2, 8});
  m[0].narrow(1, 0, 4).fill_(1.0f);
  const torch::Tensor out = resize_and_crop_masks(m, 4, 16, 4, 4);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{1, 4, 4}));
  for (int y = 0; y < 4; ++y) {
    EXPECT_FLOAT_EQ(out[0][y][0].item<float>(), 1.0f);
    EXPECT_FLOAT_EQ(out[0][y][1].item<float>(), 0.75f);
    EXPECT_FLOAT_EQ(out[0][y][2].item<float>(), 0.25f);
    EXPECT_FLOAT_EQ(out[0][y][3].item<float>(), 0.0f);
  }
  // A crop larger than the resized mask pads zeros, ceil(diff / 2) before.
  const torch::Tensor padded = resize_and_crop_masks(torch::ones({1, 2, 2}), 2, 2, 5, 5);
  EXPECT_FLOAT_EQ(padded.sum().item<float>(), 4.0f);
  EXPECT_FLOAT_EQ(padded[0][2][2].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(padded[0][1][1].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(padded[0][3][3].item<float>(), 1.0f);
}
