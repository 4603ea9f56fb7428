// BridgeTower as a backbone of the method: image preprocessing, the prompt with RoBERTa's
// tokenizer, the real checkpoint's manifest, and segmentation end to end with the fixture model.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <map>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/models/bridgetower_itm.h"
#include "pnpovss/models/bridgetower_preprocess.h"
#include "pnpovss/models/random_checkpoint.h"
#include "pnpovss/segment/prompt.h"
#include "pnpovss/segment/segmenter.h"
#include "pnpovss/settings.h"
#include "pnpovss/text/roberta_tokenizer.h"

using namespace pnpovss;
using namespace pnpovss::segment;

namespace {

const std::string kData = PNPOVSS_TEST_DATA;
const std::string kModel = kData + "/bridgetower_itm";

const PromptTokenizer& roberta() {
  static const auto tok = prompt_tokenizer(text::RobertaTokenizer::from_dir(kModel));
  return *tok;
}

Image constant_image(int width, int height, uint8_t value) {
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.assign(static_cast<size_t>(width) * height * 3, value);
  return image;
}

}  // namespace

// ---- preprocessing ----------------------------------------------------------------------------

TEST(BridgeTowerPreprocess, ResizeFloorsToTheSizeDivisor) {
  using P = std::pair<int, int>;
  EXPECT_EQ(models::bridgetower_resize_size(160, 120, 64, 32), (P{64, 64}));   // 85.3 -> 85 -> 64
  EXPECT_EQ(models::bridgetower_resize_size(70, 45, 64, 32), (P{96, 64}));     // 99.6 -> 100 -> 96
  EXPECT_EQ(models::bridgetower_resize_size(640, 480, 294, 32), (P{384, 288}));  // 294 -> 288
  // The long side is capped at int(1333 / 800 * 64) = 106 (128 -> 106, 64 -> 53), then floored.
  EXPECT_EQ(models::bridgetower_resize_size(200, 100, 64, 32), (P{96, 32}));
}

TEST(BridgeTowerPreprocess, CropPadsWithPixelZerosAndBatchPadsWithNormalisedZeros) {
  models::BridgeTowerPreprocessConfig config;
  config.shortest_edge = 294;
  config.do_resize = false;
  // A 384 x 288 image cropped to 294: 3 rows of black above and below, 45 columns cut each side.
  const auto batch = models::preprocess_bridgetower({constant_image(384, 288, 200)}, config, true);
  ASSERT_EQ(batch.height, 294);
  ASSERT_EQ(batch.width, 294);
  const float black_r = (0.0f - 0.48145466f) / 0.26862954f;
  const float grey_r = (static_cast<float>(200.0 / 255.0) - 0.48145466f) / 0.26862954f;
  EXPECT_FLOAT_EQ(batch.pixels[0], black_r);                  // row 0
  EXPECT_FLOAT_EQ(batch.pixels[2 * 294 + 10], black_r);       // row 2
  EXPECT_FLOAT_EQ(batch.pixels[3 * 294 + 10], grey_r);        // row 3
  EXPECT_FLOAT_EQ(batch.pixels[290 * 294 + 10], grey_r);      // row 290
  EXPECT_FLOAT_EQ(batch.pixels[291 * 294 + 10], black_r);     // row 291
  for (int64_t m : batch.mask) ASSERT_EQ(m, 1);

  // Without the crop, two sizes are padded to the largest at the bottom and right with 0.
  config.do_resize = true;
  config.shortest_edge = 64;
  const auto padded = models::preprocess_bridgetower({constant_image(160, 120, 200), constant_image(70, 45, 200)}, config, false);
  ASSERT_EQ(padded.height, 64);
  ASSERT_EQ(padded.width, 96);
  EXPECT_EQ(padded.mask[63], 1);
  EXPECT_EQ(padded.mask[64], 0);
  EXPECT_FLOAT_EQ(padded.pixels[64], 0.0f);
  EXPECT_EQ(padded.mask[64 * 96 + 95], 1);  // second image: all valid
}

TEST(BridgeTowerPreprocess, ConfigFileAndErrors) {
  const auto config = models::BridgeTowerPreprocessConfig::from_file(kModel + "/preprocessor_config.json");
  EXPECT_EQ(config.shortest_edge, 64);
  EXPECT_EQ(config.size_divisor, 32);
  EXPECT_EQ(config.crop_side(), 64);
  EXPECT_THROW(models::bridgetower_resize_size(100, 100, 16, 32), Error);  // floors to 0
  EXPECT_THROW(models::preprocess_bridgetower({}, config, true), Error);
}

// ---- prompt -----------------------------------------------------------------------------------

TEST(BridgeTowerPrompt, IdsAndSpansFollowTheReferenceTokenization) {
  const Prompt p = build_prompt(roberta(), {"cat", "dog", "traffic light"}, ClassNameStyle::Natural, FirstToken::Enc, 0);
  EXPECT_EQ(p.text, "A picture of cat dog traffic light");
  // reference.json tokenization record of this text.
  EXPECT_EQ(p.tokenizer_ids, (std::vector<int64_t>{0, 250, 2170, 9, 4758, 2335, 1703, 1109, 2}));
  EXPECT_EQ(p.input_ids, p.tokenizer_ids);  // <s> is BridgeTower's first token either way
  ASSERT_EQ(p.spans.size(), 3u);
  EXPECT_EQ(p.spans[0].begin, 4);
  EXPECT_EQ(p.spans[0].end, 5);
  EXPECT_EQ(p.spans[1].begin, 5);
  EXPECT_EQ(p.spans[2].begin, 6);
  EXPECT_EQ(p.spans[2].end, 8);
  EXPECT_EQ(p.tokens[4], "\xc4\xa0" "cat");
}

TEST(BridgeTowerPrompt, MultiPieceNamesAndErrors) {
  // "a potted plant" tokenizes as a Ġp otted Ġplant (reference record).
  const Prompt p = build_prompt(roberta(), {"potted plant", "tv"}, ClassNameStyle::Natural, FirstToken::Cls, 0);
  EXPECT_EQ(p.spans[0].size(), 3);
  EXPECT_EQ(p.spans[1].begin, p.spans[0].end);
  EXPECT_THROW(build_prompt(roberta(), {"cat", "a <mask>"}, ClassNameStyle::Natural, FirstToken::Enc, 0), Error);
  EXPECT_THROW(build_prompt(roberta(), {"cat", "Cat"}, ClassNameStyle::Natural, FirstToken::Enc, 0), Error);
  EXPECT_THROW(build_prompt(roberta(), {}, ClassNameStyle::Natural, FirstToken::Enc, 0), Error);
}

// ---- the real checkpoint's keys ---------------------------------------------------------------

TEST(BridgeTowerManifest, EveryKeyAndShapeMapsOntoTheModel) {
  const std::string name = "BridgeTower__bridgetower-large-itm-mlm-itc.json";
  const auto manifest = models::read_manifest(kData + "/manifests/" + name);
  const auto config = models::BridgeTowerConfig::from_json(manifest.config, name);
  EXPECT_EQ(config.vision.grid(), 21);  // 294 / 14: the position table has 1 + 21 * 21 rows
  std::map<std::string, std::vector<int64_t>> expected, real;
  for (const auto& spec : models::bridgetower_itm_parameters(config)) expected[spec.name] = spec.shape;
  for (const auto& spec : manifest.parameters) real[spec.name] = spec.shape;
  EXPECT_EQ(expected.size(), 1033u);
  EXPECT_EQ(expected, real);
}

// ---- segmentation end to end ------------------------------------------------------------------

TEST(BridgeTowerSegment, SegmenterRunsTheMethodOnTheFixtureModel) {
  const auto model = Segmenter::load(kModel);
  EXPECT_EQ(model.model_type(), "bridgetower");
  EXPECT_EQ(Segmenter::read_model_type(kModel), "bridgetower");
  EXPECT_EQ(model.backbone().num_text_layers(), 2);
  EXPECT_EQ(model.backbone().num_heads(), 4);
  MethodSettings s = preset("paper", "bridgetower");
  EXPECT_EQ(s.attention_layer, 1);  // paper Table 2: layer 2, head 8 (1-based)
  EXPECT_EQ(s.attention_head, 7);
  EXPECT_THROW(model.check_settings(s), Error);  // the tiny model has 4 heads
  s.input_size = 64;
  s.attention_head = 2;
  model.check_settings(s);
  const Image image = image::decode_image_file(kModel + "/input.png");
  const auto r = model.segment(image, {"cat", "remote control"}, s);
  EXPECT_EQ(r.height, image.height);
  EXPECT_EQ(r.width, image.width);
  ASSERT_EQ(r.labels.size(), static_cast<size_t>(image.width) * image.height);
  for (int32_t l : r.labels) ASSERT_TRUE(l >= 0 && l <= 2);
  EXPECT_EQ(r.prompt.tokens.front(), "<s>");
  EXPECT_EQ(r.dropout.iterations.size(), 4u);
}
