// The segmentation method: fixture parity of the whole pipeline (both presets), the drop rules
// on hand-made salience maps, the prompt's class spans, post-processing edge cases and settings.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <torch/torch.h>

#include <set>

#include "pnpovss/check/fixture.h"
#include "pnpovss/check/pipeline_fixture.h"
#include "pnpovss/cpu/simd.h"
#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/segment/blip_backbone.h"
#include "pnpovss/segment/gradcam.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/segment/postprocess.h"
#include "pnpovss/segment/prompt.h"
#include "pnpovss/segment/salience_dropout.h"
#include "pnpovss/settings.h"
#include "pnpovss/settings/settings_json.h"
#include "pnpovss/text/wordpiece.h"

using namespace pnpovss;
using namespace pnpovss::segment;

namespace {

const std::string kData = PNPOVSS_TEST_DATA;

void expect_fixture_passes(const std::string& dir) {
  ASSERT_TRUE(check::is_pipeline_fixture(io::read_json_file(dir + "/reference.json")));
  const auto checks = check::check_pipeline_fixture(dir);
  EXPECT_EQ(checks.size(), check::Fixture(dir).tensor_names().size());
  for (const auto& c : checks) EXPECT_TRUE(c.passed && !c.skipped) << check::format_check(c);
}

torch::Tensor grid_of(const std::vector<float>& values, int64_t side) {
  return torch::tensor(values, torch::kFloat32).view({side, side});
}

torch::Tensor mask_of(const std::vector<int64_t>& dropped, int64_t side) {
  torch::Tensor m = torch::zeros({side * side}, torch::kUInt8);
  for (int64_t p : dropped) m[p] = 1;
  return m.view({side, side});
}

const text::WordPieceTokenizer& tokenizer() {
  static const auto tok = text::WordPieceTokenizer::from_dir(kData + "/blip_itm");
  return tok;
}

// A model whose attention rises with the patch index and whose gradients are all 1: every
// GradCAM row is (n + 1) / N at patch n, so the drop sets are known in advance.
class RampBackbone : public Backbone {
 public:
  mutable std::vector<torch::Tensor> inputs;

  int64_t patch_size() const override { return 16; }
  int64_t num_text_layers() const override { return 2; }
  int64_t num_heads() const override { return 2; }
  int64_t enc_token_id() const override { return 30523; }
  const models::ImagePreprocessConfig& image_preprocess() const override { return preprocess_; }
  std::vector<AttentionGradient> attention_and_gradients(const torch::Tensor& pixels, const torch::Tensor& ids,
                                                         const torch::Tensor&,
                                                         const std::vector<int64_t>&) const override {
    inputs.push_back(pixels[0].clone());
    const int64_t n = 1 + (pixels.size(2) / 16) * (pixels.size(2) / 16);
    const int64_t t = ids.size(1);
    AttentionGradient out;
    out.itm_logits = torch::tensor({0.0f, 1.0f});
    out.probs = (torch::arange(1, n + 1, torch::kFloat32) / n).expand({2, t, n}).contiguous();
    out.grads = torch::ones({2, t, n});
    return {out};
  }

 private:
  models::ImagePreprocessConfig preprocess_;
};

}  // namespace

// ---- whole pipeline against the fixtures ------------------------------------------------------

TEST(PipelineFixture, OfficialPresetMatchesEveryTensor) { expect_fixture_passes(kData + "/pipeline"); }

TEST(PipelineFixture, PaperPresetMatchesEveryTensor) { expect_fixture_passes(kData + "/pipeline_paper"); }

TEST(PipelineFixture, OtherFixtureKindsAreNotPipelines) {
  EXPECT_FALSE(check::is_pipeline_fixture(io::read_json_file(kData + "/blip_itm/reference.json")));
  EXPECT_FALSE(check::is_pipeline_fixture(io::read_json_file(kData + "/densecrf/reference.json")));
}

TEST(PipelineEndToEnd, SegmentImageWithBlurAndCrf) {
  const auto backbone = BlipBackbone::load(kData + "/blip_itm");
  const Image image = image::decode_image_file(kData + "/pipeline_paper/input.png");
  MethodSettings s = preset("paper", "blip");
  s.input_size = 64;
  s.attention_layer = 1;
  s.attention_head = 0;
  const SegmentationResult r = segment_image(backbone, tokenizer(), image, {"cat", "dog"}, s);
  EXPECT_EQ(r.channel_names, (std::vector<std::string>{"background", "cat", "dog"}));
  ASSERT_EQ(r.labels.size(), static_cast<size_t>(image.width * image.height));
  for (int32_t v : r.labels) ASSERT_TRUE(v >= 0 && v <= 2);
  std::vector<std::string> stages;
  for (const auto& t : r.timings) stages.push_back(t.stage);
  EXPECT_EQ(stages, (std::vector<std::string>{"preprocess", "prompt", "dropout", "postprocess", "crf"}));
  EXPECT_TRUE(r.blurred.defined());
  // Without the CRF the channels are the argmax of the blurred stack.
  s.post_mode = Postprocess::Blur;
  const SegmentationResult plain = segment_image(backbone, tokenizer(), image, {"cat", "dog"}, s);
  const torch::Tensor argmax = plain.argmax.contiguous();
  const int32_t* a = argmax.data_ptr<int32_t>();
  EXPECT_EQ(plain.channels, std::vector<int32_t>(a, a + argmax.numel()));
  EXPECT_EQ(dataset_label_map(plain, {8, 12}, 0, false).size(), plain.channels.size());
  EXPECT_THROW(dataset_label_map(plain, {8}, 0, false), Error);
  s.input_size = 60;
  EXPECT_THROW(segment_image(backbone, tokenizer(), image, {"cat"}, s), Error);
}

TEST(PipelineEndToEnd, LargeImageIsBlurredThroughTheFactorsWithoutTheFullSizeStack) {
  const auto backbone = BlipBackbone::load(kData + "/blip_itm");
  Image image;  // wider than kScipyExactBlurMaxSide: a colour ramp
  image.width = static_cast<int>(kScipyExactBlurMaxSide) + 76;
  image.height = 60;
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x)
      for (int c = 0; c < 3; ++c) image.rgb.push_back(static_cast<uint8_t>((x / 5 + y * (c + 1)) % 256));
  MethodSettings s = preset("paper", "blip");
  s.input_size = 64;
  s.attention_layer = 1;
  s.attention_head = 0;
  s.post_mode = Postprocess::Blur;
  const SegmentationResult r = segment_image(backbone, tokenizer(), image, {"cat", "dog"}, s);
  EXPECT_TRUE(blurs_through_factors(r.maps, s));
  EXPECT_FALSE(r.maps.stack.defined());
  ASSERT_TRUE(r.blurred.defined());
  EXPECT_EQ(r.blurred.sizes(), (std::vector<int64_t>{3, image.height, image.width}));
  for (const auto& [name, tensor] : r.named_tensors()) EXPECT_NE(name, "stack");
  // The same maps blurred the scipy way from the full-size stack.
  const ChannelStack full = build_channel_stack(r.dropout.final_maps, image.height, image.width, s);
  EXPECT_LT((r.blurred - blur_stack(full.stack, s)).abs().max().item<float>(), 1e-5f);
  // Without the blur the stack is the channels' source again.
  s.post_mode = Postprocess::None;
  const SegmentationResult plain = segment_image(backbone, tokenizer(), image, {"cat", "dog"}, s);
  EXPECT_FALSE(blurs_through_factors(plain.maps, s));
  EXPECT_TRUE(torch::equal(plain.maps.stack, full.stack));
}

TEST(PostprocessMemory, RefusesWhatTheSystemCannotGiveAndNamesTheWayOut) {
  MethodSettings s;  // blur + CRF
  s.background_mode = BackgroundMode::Always;
  ChannelStack c = channel_masks(torch::rand({150, 24, 24}), 3000, 4000, s);
  const uint64_t needed = postprocess_bytes(3000, 4000, 151, s, /*full_size_stack=*/false);
  EXPECT_FALSE(blurs_through_factors(ChannelStack{}, s));
  EXPECT_TRUE(blurs_through_factors(c, s));
  EXPECT_LT(needed, postprocess_bytes(3000, 4000, 151, s, true));  // the factors spare the stack
  EXPECT_NO_THROW(check_postprocess_memory(c, s, 0));              // unknown: no check
  EXPECT_NO_THROW(check_postprocess_memory(c, s, needed));
  try {
    check_postprocess_memory(c, s, needed / 2);
    FAIL() << "post-processing with half the memory it needs must be refused";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const char* part : {"4000x3000", "151 channels", "GiB", "fewer classes", "leave out the Dense CRF"})
      EXPECT_NE(message.find(part), std::string::npos) << message;
  }
  MethodSettings on_gpu = s;  // the CRF's memory is the GPU's
  on_gpu.post_crf.device = "cuda:0";
  MethodSettings blur_only = s;
  blur_only.post_mode = Postprocess::Blur;
  EXPECT_EQ(postprocess_bytes(3000, 4000, 151, on_gpu, false), postprocess_bytes(3000, 4000, 151, blur_only, false));
  s.post_mode = Postprocess::Blur;  // no CRF to leave out
  try {
    check_postprocess_memory(c, s, 1);
    FAIL() << "must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("Dense CRF"), std::string::npos) << e.what();
  }
}

// ---- drop rules ------------------------------------------------------------------------------

TEST(DropoutHalving, DropsTheLargerHalfOfDistinctValues) {
  // 4x4, values distinct: the 8 largest are at 15, 14, 13, 12, 3, 2, 1, 0.
  const auto u = grid_of({9, 10, 11, 12, 1, 2, 3, 4, 5, 6, 7, 8, 13, 14, 15, 16}, 4);
  EXPECT_EQ(select_halving(u, mask_of({}, 4)), (std::vector<int64_t>{0, 1, 2, 3, 12, 13, 14, 15}));
  EXPECT_FLOAT_EQ(median_over_remaining(u, mask_of({}, 4)), 8.5f);
}

TEST(DropoutHalving, OddRemainingCountDropsTheMiddleToo) {
  // S = 7 patches (9 dropped): ceil(7/2) = 4, the median itself (value 4 at index 6) included.
  const auto u = grid_of({0, 0, 0, 0, 7, 1, 4, 2, 0, 6, 3, 5, 0, 0, 0, 0}, 4);
  const auto dropped = mask_of({0, 1, 2, 3, 8, 12, 13, 14, 15}, 4);
  EXPECT_EQ(select_halving(u, dropped), (std::vector<int64_t>{4, 6, 9, 11}));
  EXPECT_FLOAT_EQ(median_over_remaining(u, dropped), 4.0f);
}

TEST(DropoutHalving, TiesGoToTheLowerFlatIndex) {
  // S = {1, 4, 6, 9, 10, 11}: values 2, 5, 5, 5, 5, 1. Three go: the three 5s of lowest index.
  const auto u = grid_of({0, 2, 0, 0, 5, 0, 5, 0, 0, 5, 5, 1, 0, 0, 0, 0}, 4);
  const auto dropped = mask_of({0, 2, 3, 5, 7, 8, 12, 13, 14, 15}, 4);
  EXPECT_EQ(select_halving(u, dropped), (std::vector<int64_t>{4, 6, 9}));
}

TEST(DropoutHalving, AllZeroSalienceDropsTheLowestIndices) {
  // GradCAM is exactly 0 where gradients are negative; U >= median would drop all of S.
  const auto u = torch::zeros({4, 4});
  const auto dropped = mask_of({0, 5, 10}, 4);
  EXPECT_EQ(select_halving(u, dropped), (std::vector<int64_t>{1, 2, 3, 4, 6, 7, 8}));
  EXPECT_EQ(select_halving(u, mask_of({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, 4)),
            (std::vector<int64_t>{15}));
  EXPECT_TRUE(select_halving(u, torch::ones({4, 4}, torch::kUInt8)).empty());
}

TEST(DropoutTopK, ReturnsTheLastKOfAStableAscendingArgsort) {
  const auto u = grid_of({0.5f, 0.9f, 0.1f, 0.9f}, 2);
  EXPECT_EQ(select_topk(u, 2), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(select_topk(u, 3), (std::vector<int64_t>{0, 1, 3}));
  EXPECT_EQ(select_topk(u, 9).size(), 4u);
}

TEST(DropoutLoop, DroppedPatchesStayZeroInLaterMaps) {
  RampBackbone backbone;
  MethodSettings s = preset("paper", "blip");
  s.input_size = 64;
  s.attention_layer = 1;
  s.attention_head = 1;
  const Prompt prompt = build_prompt(tokenizer(), {"cat", "potted plant"}, s.prompt_class_names,
                                     s.prompt_first_token, backbone.enc_token_id());
  const torch::Tensor pixels = torch::ones({3, 64, 64});
  const DropoutResult r = salience_dropout(backbone, pixels, prompt, s);
  ASSERT_EQ(r.iterations.size(), 4u);
  // The ramp makes the highest indices the most salient: 8 + 4 + 2 + 1 patches.
  const std::vector<std::vector<int64_t>> expected = {
      {8, 9, 10, 11, 12, 13, 14, 15}, {4, 5, 6, 7}, {2, 3}, {1}};
  std::set<int64_t> dropped;
  for (size_t t = 0; t < r.iterations.size(); ++t) {
    const DropoutIteration& it = r.iterations[t];
    EXPECT_EQ(it.new_dropped, expected[t]);
    const torch::Tensor gone = it.dropped_before.to(torch::kBool);
    EXPECT_EQ(gone.sum().item<int64_t>(), static_cast<int64_t>(dropped.size()));
    // Zero in the class maps, U and the image the model saw; the un-zeroed tokens keep values.
    EXPECT_EQ(it.class_maps.masked_select(gone.expand_as(it.class_maps)).abs().sum().item<float>(), 0.0f);
    EXPECT_EQ(it.salience.masked_select(gone).abs().sum().item<float>(), 0.0f);
    for (int64_t p : dropped) {
      const torch::Tensor block = backbone.inputs[t].narrow(1, p / 4 * 16, 16).narrow(2, p % 4 * 16, 16);
      EXPECT_EQ(block.abs().sum().item<float>(), 0.0f) << "patch " << p << " at iteration " << t;
      EXPECT_GT(it.gradcam_tokens[0].view(-1)[p].item<float>(), 0.0f);
    }
    EXPECT_EQ(backbone.inputs[t].eq(1).sum().item<int64_t>(), 3 * 256 * (16 - static_cast<int64_t>(dropped.size())));
    dropped.insert(it.new_dropped.begin(), it.new_dropped.end());
  }
  // The final maps only hold what each patch scored while it was still in S: patch p scores
  // (p + 2) / 17 per iteration; patch 15 went after one iteration, patch 0 stayed for all four.
  EXPECT_NEAR(r.final_maps[0].view(-1)[15].item<float>(), 1.0f, 1e-6);
  EXPECT_NEAR(r.final_maps[0].view(-1)[0].item<float>(), 8.0f / 17.0f, 1e-6);
}

TEST(DropoutLoop, RejectsLayersAndHeadsBeyondTheModel) {
  RampBackbone backbone;
  MethodSettings s = preset("paper", "blip");
  s.input_size = 64;
  const Prompt prompt = build_prompt(tokenizer(), {"cat"}, s.prompt_class_names, s.prompt_first_token, 30523);
  EXPECT_THROW(salience_dropout(backbone, torch::zeros({3, 64, 64}), prompt, s), Error);  // layer 8 of 2
  s.attention_layer = 0;
  s.attention_head = 5;
  EXPECT_THROW(salience_dropout(backbone, torch::zeros({3, 64, 64}), prompt, s), Error);
  s.attention_head = 0;
  EXPECT_THROW(salience_dropout(backbone, torch::zeros({3, 60, 60}), prompt, s), Error);
}

// ---- prompt ----------------------------------------------------------------------------------

TEST(PromptSpans, NaturalNamesWithSpacesAndHyphens) {
  const Prompt p = build_prompt(tokenizer(), {"cat", "potted plant", "tv-monitor"}, ClassNameStyle::Natural,
                                FirstToken::Enc, 30523);
  EXPECT_EQ(p.text, "A picture of cat potted plant tv-monitor");
  // [CLS] a picture of | cat | pot ##ted plant | tv - monitor | [SEP]
  ASSERT_EQ(p.spans.size(), 3u);
  EXPECT_EQ(p.spans[0].begin, 4);
  EXPECT_EQ(p.spans[0].end, 5);
  EXPECT_EQ(p.spans[1].begin, 5);
  EXPECT_EQ(p.spans[1].end, 8);
  EXPECT_EQ(p.spans[2].begin, 8);
  EXPECT_EQ(p.spans[2].end, 11);
  EXPECT_EQ(p.tokens[5], "pot");
  EXPECT_EQ(p.tokens[6], "##ted");
  EXPECT_EQ(p.tokens[9], "-");
  EXPECT_EQ(p.tokens.back(), "[SEP]");
  EXPECT_EQ(p.input_ids.front(), 30523);
  EXPECT_EQ(p.tokenizer_ids.front(), tokenizer().cls_id());
  EXPECT_EQ(p.input_ids.size(), 12u);
  EXPECT_EQ(p.attention_mask, std::vector<int64_t>(12, 1));
}

TEST(PromptSpans, FusedNamesAndMultiWordpieceSpans) {
  const Prompt p = build_prompt(tokenizer(), {"potted plant", "tv-monitor", "dog"}, ClassNameStyle::Fused,
                                FirstToken::Cls, 30523);
  EXPECT_EQ(p.text, "A picture of pottedplant tvmonitor dog");
  EXPECT_EQ(p.class_names, (std::vector<std::string>{"pottedplant", "tvmonitor", "dog"}));
  ASSERT_EQ(p.spans.size(), 3u);
  EXPECT_EQ(p.spans[0].size(), 4);  // pot ##ted ##pl ##ant
  EXPECT_EQ(p.spans[1].size(), 3);  // tv ##mon ##itor
  EXPECT_EQ(p.spans[2].begin, 4 + 4 + 3);
  EXPECT_EQ(p.input_ids, p.tokenizer_ids);  // [CLS] kept
}

TEST(PromptSpans, ExtraWhitespaceIsNormalised) {
  const Prompt p = build_prompt(tokenizer(), {"  potted \t plant "}, ClassNameStyle::Natural, FirstToken::Enc, 30523);
  EXPECT_EQ(p.text, "A picture of potted plant");
  EXPECT_EQ(p.spans[0].size(), 3);
}

TEST(PromptErrors, RejectsBadClassLists) {
  const auto& tok = tokenizer();
  auto build = [&](const std::vector<std::string>& classes, ClassNameStyle style = ClassNameStyle::Natural) {
    return build_prompt(tok, classes, style, FirstToken::Enc, 30523);
  };
  EXPECT_THROW(build({}), Error);
  EXPECT_THROW(build({"cat", "   "}), Error);
  EXPECT_THROW(build({"cat", ""}), Error);
  EXPECT_THROW(build({"Cat", "dog", "cat"}), Error);
  EXPECT_THROW(build({"tv monitor", "tv-monitor"}, ClassNameStyle::Fused), Error);
  EXPECT_THROW(build({"cat", "\x01"}), Error);      // no wordpieces
  EXPECT_THROW(build({"cat", "a [SEP] b"}), Error);  // would end the prompt early
  std::string long_name;
  for (int i = 0; i < 300; ++i) long_name += "cat dog ";
  try {
    build({long_name});
    FAIL() << "a 600-word class name must be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("605"), std::string::npos) << e.what();  // 3 + 600 + 2 tokens
  }
}

// ---- post-processing -------------------------------------------------------------------------

TEST(PostprocessBlur, ConstantChannelBecomesZeros) {
  torch::Tensor stack = torch::zeros({2, 30, 40});
  stack[0].fill_(1.0f);
  stack[1].narrow(0, 10, 5).narrow(1, 10, 5).fill_(1.0f);
  MethodSettings s;
  s.post_blur = 0.05;
  const torch::Tensor blurred = blur_stack(stack, s);
  EXPECT_EQ(blurred[0].abs().max().item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(blurred[1].max().item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(blurred[1].min().item<float>(), 0.0f);
}

TEST(PostprocessBlur, KernelAndReflectBorder) {
  const auto k = gaussian_kernel(2.0);
  ASSERT_EQ(k.size(), 17u);  // radius int(4 * 2 + 0.5) = 8
  double sum = 0;
  for (double v : k) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-12);
  // Half-sample symmetric border (d c b a | a b c d): with radius 2 the first sample of the
  // ramp 0 1 2 3 sees 1 0 | 0 1 2.
  const auto w = gaussian_kernel(0.5);
  ASSERT_EQ(w.size(), 5u);
  const torch::Tensor line = torch::arange(0, 4, torch::kFloat32).view({1, 1, 4});
  const torch::Tensor out = gaussian_filter_channels(line, 0.5);
  EXPECT_FLOAT_EQ(out.view(-1)[0].item<float>(), static_cast<float>(w[0] * 1 + w[3] * 1 + w[4] * 2));
  const torch::Tensor flat = gaussian_filter_channels(torch::full({1, 5, 3}, 2.5f), 3.0);
  EXPECT_NEAR((flat - 2.5f).abs().max().item<float>(), 0.0f, 1e-6);
}

// The separable filter, written out per output value: axis 0 then axis 1, each summing
// kernel[j] * sample in kernel order in double and rounding to float, reflect borders.
torch::Tensor direct_gaussian_filter(const torch::Tensor& stack, double sigma) {
  const auto k = gaussian_kernel(sigma);
  const auto r = static_cast<int64_t>(k.size() / 2);
  auto reflect = [](int64_t i, int64_t n) {
    while (i < 0 || i >= n) i = i < 0 ? -1 - i : 2 * n - 1 - i;
    return i;
  };
  const int64_t c = stack.size(0), h = stack.size(1), w = stack.size(2);
  torch::Tensor a = stack.contiguous().clone(), b = torch::empty_like(a);
  auto in = a.accessor<float, 3>();
  auto mid = b.accessor<float, 3>();
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        double sum = 0.0;
        for (size_t j = 0; j < k.size(); ++j) sum += k[j] * in[ch][reflect(y + static_cast<int64_t>(j) - r, h)][x];
        mid[ch][y][x] = static_cast<float>(sum);
      }
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        double sum = 0.0;
        for (size_t j = 0; j < k.size(); ++j) sum += k[j] * mid[ch][y][reflect(x + static_cast<int64_t>(j) - r, w)];
        in[ch][y][x] = static_cast<float>(sum);
      }
  return a;
}

TEST(PostprocessBlur, EqualsDirectSeparableCorrelation) {
  torch::manual_seed(7);
  // Every vector width this CPU runs (2 doubles: SSE2; 4: AVX2; 8: AVX-512), each bit for bit.
  const std::vector<int> widths = blur_lane_widths();
  EXPECT_EQ(widths.back() == 8, ::pnpovss::cpu::simd::cpu_has_avx512());  // the widest is among them
  // Odd and even sizes, rows narrower and wider than a block of 4 vectors; the large sigma
  // reaches past the plane, so borders reflect repeatedly.
  for (const auto& size : {std::vector<int64_t>{2, 37, 53}, std::vector<int64_t>{1, 16, 10},
                           std::vector<int64_t>{1, 40, 71}})
    for (double sigma : {1.3, 9.0}) {
      const torch::Tensor stack = torch::rand(size);
      const torch::Tensor want = direct_gaussian_filter(stack, sigma);
      for (int lanes : widths)
        EXPECT_TRUE(torch::equal(gaussian_filter_channels(stack, sigma, lanes), want))
            << size[1] << "x" << size[2] << ", sigma " << sigma << ", " << lanes << " lanes";
    }
  EXPECT_THROW(gaussian_filter_channels(torch::rand({1, 4, 4}), 1.0, 3), Error);
}

// The blur as tensor operations (for a GPU), run here on the CPU: each pass is a convolution in
// double, whose sums differ from scipy's ordered ones by far less than a float rounding, so
// almost every value is scipy's float and none is more than one rounding away.
TEST(PostprocessBlur, TensorBlurRoundsAsScipyButAtBoundaries) {
  torch::manual_seed(11);
  int64_t values = 0, differing = 0;
  for (const auto& size : {std::vector<int64_t>{2, 37, 53}, std::vector<int64_t>{3, 96, 128},
                           std::vector<int64_t>{1, 40, 71}})
    for (double sigma : {1.3, 9.0, 32.0}) {
      const torch::Tensor stack = torch::rand(size);
      const torch::Tensor want = gaussian_filter_channels(stack, sigma);
      const torch::Tensor got = gaussian_filter_tensor(stack, sigma);
      ASSERT_EQ(got.sizes(), want.sizes());
      const torch::Tensor off = (got - want).abs();
      const torch::Tensor one_rounding = want.abs() * std::ldexp(1.0, -23) + 1e-30;
      EXPECT_TRUE(off.le(one_rounding).all().item<bool>()) << size[1] << "x" << size[2] << ", sigma " << sigma;
      values += want.numel();
      differing += off.gt(0).sum().item<int64_t>();
    }
  std::printf("%lld of %lld blurred values differ from scipy's by one rounding\n", static_cast<long long>(differing),
              static_cast<long long>(values));
  EXPECT_LE(differing * 1000, values);
  EXPECT_THROW(gaussian_filter_tensor(torch::rand({4, 4}), 1.0), Error);
}

// Final maps whose masks leave some cells of every class empty, so the background has both
// values; `seed` picks them.
ChannelStack random_channel_stack(int64_t classes, int64_t grid, int64_t height, int64_t width, uint64_t seed,
                                  const MethodSettings& s) {
  torch::manual_seed(seed);
  return build_channel_stack(torch::rand({classes, grid, grid}).pow(3), height, width, s);
}

TEST(PostprocessBlur, FactoredFilterEqualsTheDirectOneWithinFloatRounding) {
  MethodSettings s;
  s.mask_threshold = 0.45;
  // Odd and even sizes, grids that divide the size and do not, background on and off, a sigma
  // that reflects repeatedly, and a 1-pixel-wide image.
  struct Case {
    int64_t classes, grid, height, width;
    double sigma;
    BackgroundMode background;
  };
  for (const Case& t : {Case{3, 7, 97, 150, 7.5, BackgroundMode::Always},
                        Case{2, 5, 41, 41, 30.0, BackgroundMode::Never},
                        Case{4, 24, 60, 1, 3.0, BackgroundMode::Always},
                        Case{1, 2, 33, 64, 1.2, BackgroundMode::Always}}) {
    s.background_mode = t.background;
    const ChannelStack c = random_channel_stack(t.classes, t.grid, t.height, t.width, 11, s);
    ASSERT_TRUE(channels_are_separable(c, s));
    ASSERT_EQ(c.has_background, t.background == BackgroundMode::Always);
    if (c.has_background) {
      ASSERT_GT(c.stack[0].sum().item<float>(), 0.0f) << "the case has no background";
    }
    const torch::Tensor want = gaussian_filter_channels(c.stack, t.sigma);
    const torch::Tensor got = factored_gaussian_filter(c, t.sigma);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT((got - want).abs().max().item<float>(), 1e-6f)
        << t.height << "x" << t.width << " from " << t.grid << "x" << t.grid << ", sigma " << t.sigma;
  }
}

TEST(PostprocessBlur, FastArithmeticTakesTheFactoredPathExactStaysScipyExactUpToTheLimit) {
  MethodSettings s;
  s.mask_threshold = 0.45;
  s.background_mode = BackgroundMode::Always;
  s.post_arithmetic = PostArithmetic::Fast;
  const ChannelStack small = random_channel_stack(2, 6, 30, kScipyExactBlurMaxSide, 3, s);
  const double small_sigma = s.post_blur * static_cast<double>(kScipyExactBlurMaxSide);
  EXPECT_TRUE(blurs_through_factors(small, s));
  const torch::Tensor fast = blur_channels(small, s);
  EXPECT_TRUE(torch::equal(fast, minmax_channels(factored_gaussian_filter(small, small_sigma))));
  EXPECT_LT((fast - blur_stack(small.stack, s)).abs().max().item<float>(), 1e-5f);
  MethodSettings exact = s;
  exact.post_arithmetic = PostArithmetic::Exact;
  EXPECT_FALSE(blurs_through_factors(small, exact));
  EXPECT_TRUE(torch::equal(blur_channels(small, exact), blur_stack(small.stack, exact)));
  // Above the limit the direct blur would take minutes, so both take the factors.
  const ChannelStack large = random_channel_stack(2, 6, 30, kScipyExactBlurMaxSide + 1, 3, s);
  const double sigma = s.post_blur * static_cast<double>(kScipyExactBlurMaxSide + 1);
  for (const MethodSettings& settings : {s, exact}) {
    EXPECT_TRUE(blurs_through_factors(large, settings));
    const torch::Tensor got = blur_channels(large, settings);
    EXPECT_TRUE(torch::equal(got, minmax_channels(factored_gaussian_filter(large, sigma))));
    EXPECT_LT((got - blur_stack(large.stack, settings)).abs().max().item<float>(), 1e-5f);
  }
}

TEST(PostprocessBlur, RescaledOrNegativeMasksAreNotSeparable) {
  MethodSettings s;
  s.mask_threshold = 0.45;
  s.background_mode = BackgroundMode::Always;
  ChannelStack c = random_channel_stack(2, 4, 8, 8, 5, s);
  EXPECT_TRUE(channels_are_separable(c, s));
  s.mask_rescale_after_upsample = true;  // min-max after upsampling moves the zeros
  EXPECT_FALSE(channels_are_separable(c, s));
  s.mask_rescale_after_upsample = false;
  c.masks[0][0][0] = -0.5f;  // a zero between a negative and a positive value is not a zero mask
  EXPECT_FALSE(channels_are_separable(c, s));
  EXPECT_THROW(factored_gaussian_filter(ChannelStack{}, 1.0), Error);
}

TEST(PostprocessUpsample, GridRowsAreExactAndZerosStayZero) {
  // 4 -> 7 with align_corners: output rows 0, 2, 4, 6 sit on source rows 0, 1, 2, 3.
  torch::Tensor maps = torch::zeros({1, 4, 4});
  maps[0][3][3] = 1.0f;
  maps[0][1][1] = 0.3f;
  const torch::Tensor up = upsample_bilinear_exact(maps, 7, 7);
  EXPECT_EQ(up[0][2][2].item<float>(), 0.3f);
  EXPECT_EQ(up[0][6][6].item<float>(), 1.0f);
  EXPECT_EQ(up[0][4][4].item<float>(), 0.0f);
  EXPECT_NEAR(up[0][5][5].item<float>(), 0.25f, 1e-7);
  const torch::Tensor reference =
      torch::upsample_bilinear2d(maps.unsqueeze(0), {7, 7}, /*align_corners=*/true)[0];
  EXPECT_LT((up - reference).abs().max().item<float>(), 1e-6);
}

TEST(PostprocessMaps, ConstantMapGivesAnEmptyMaskAndBackground) {
  MethodSettings s;
  s.mask_threshold = 0.0;  // would keep every patch of a map that varies
  torch::Tensor maps = torch::zeros({2, 2, 2});
  maps[0].fill_(0.7f);
  maps[1][0][0] = 1.0f;
  const ChannelStack c = build_channel_stack(maps, 3, 3, s);
  EXPECT_TRUE(c.has_background);
  EXPECT_EQ(c.keep[0].sum().item<int64_t>(), 0);
  EXPECT_EQ(c.keep[1].sum().item<int64_t>(), 4);
  ASSERT_EQ(c.stack.size(0), 3);
  EXPECT_EQ(c.stack[0].sum().item<float>(), 0.0f);  // channel 1 is 1 everywhere
}

TEST(PostprocessLabels, DirectLookupAndOfficialInPlaceRemap) {
  // The released code's loop relabels channel 2 -> 1, then every 1 -> 10.
  const std::vector<int32_t> channels = {0, 1, 2, 2};
  EXPECT_EQ(map_labels(channels, {63, 10, 1}, false), (std::vector<int32_t>{63, 10, 1, 1}));
  EXPECT_EQ(map_labels(channels, {63, 10, 1}, true), (std::vector<int32_t>{63, 10, 10, 10}));
  EXPECT_THROW(map_labels({3}, {63, 10, 1}, false), Error);
}

TEST(PostprocessArgmax, TiesGoToTheLowestChannel) {
  torch::Tensor stack = torch::zeros({3, 1, 2});
  stack[1][0][0] = 1.0f;
  stack[2][0][0] = 1.0f;
  const torch::Tensor a = argmax_channels(stack);
  EXPECT_EQ(a[0][0].item<int32_t>(), 1);
  EXPECT_EQ(a[0][1].item<int32_t>(), 0);
}

// ---- settings --------------------------------------------------------------------------------

TEST(PipelineSettings, PresetsHoldThePapersValues) {
  const MethodSettings blip = preset("paper", "blip");
  EXPECT_EQ(blip.attention_layer, 7);
  EXPECT_EQ(blip.attention_head, 9);
  EXPECT_EQ(blip.input_size, 336);
  EXPECT_DOUBLE_EQ(blip.mask_threshold, 0.15);
  EXPECT_DOUBLE_EQ(blip.post_blur, 0.05);
  EXPECT_EQ(blip.dropout_rule, DropRule::Halving);
  const MethodSettings bt = preset("paper", "bridgetower");
  EXPECT_EQ(bt.attention_layer, 1);
  EXPECT_EQ(bt.attention_head, 7);
  const MethodSettings official = preset("official", "blip");
  EXPECT_EQ(official.dropout_rule, DropRule::TopK);
  EXPECT_EQ(official.dropout_k, 10);
  EXPECT_TRUE(official.dropout_first_iteration_twice && official.dropout_u_over_wordpieces &&
              official.maps_last_class_sum && official.mask_threshold_keeps_values &&
              official.labels_official_inplace_remap);
  EXPECT_EQ(official.prompt_class_names, ClassNameStyle::Fused);
  // The reference's arithmetic unless asked otherwise.
  EXPECT_EQ(blip.post_arithmetic, PostArithmetic::Exact);
  EXPECT_EQ(official.post_arithmetic, PostArithmetic::Exact);
  EXPECT_EQ(parse_post_arithmetic("exact"), PostArithmetic::Exact);
  EXPECT_EQ(to_string(PostArithmetic::Fast), "fast");
  EXPECT_THROW(parse_post_arithmetic("precise"), Error);
  EXPECT_THROW(preset("papers", "blip"), Error);
  EXPECT_THROW(preset("paper", "clip"), Error);
  const auto json = to_json(blip);
  EXPECT_EQ(json["attention_layer_1based"], 8);
  EXPECT_EQ(json["attention_head_1based"], 10);
  EXPECT_NE(blip.describe().find("layer=8 head=10"), std::string::npos);
  EXPECT_EQ(json["post_arithmetic"], "exact");
}

TEST(PipelineSettings, ValidationNamesTheBadOption) {
  const MethodSettings good = preset("paper", "blip");
  EXPECT_NO_THROW(good.validate());
  auto rejects = [&](auto change) {
    MethodSettings s = good;
    change(s);
    EXPECT_THROW(s.validate(), Error);
  };
  rejects([](MethodSettings& s) { s.mask_threshold = 1.5; });
  rejects([](MethodSettings& s) { s.mask_threshold = -0.1; });
  rejects([](MethodSettings& s) { s.post_blur = -0.01; });
  rejects([](MethodSettings& s) { s.post_blur = 1.5; });
  rejects([](MethodSettings& s) { s.dropout_iterations = 0; });
  rejects([](MethodSettings& s) { s.input_size = 0; });
  rejects([](MethodSettings& s) {
    s.dropout_rule = DropRule::TopK;
    s.dropout_k = 0;
  });
  rejects([](MethodSettings& s) { s.attention_layer = -1; });
  try {
    MethodSettings s = good;
    s.mask_threshold = 2.0;
    s.validate();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("threshold"), std::string::npos);
  }
  EXPECT_THROW(parse_postprocess("crf+blur"), Error);
  EXPECT_EQ(parse_postprocess("blur+crf"), Postprocess::BlurCrf);
}

TEST(PipelineSettings, BackgroundFollowsTheDatasetRule) {
  MethodSettings s = preset("paper", "blip");
  EXPECT_TRUE(uses_background(s, 20));  // user images: on
  apply_dataset_rule(s, DatasetRule::Context);
  EXPECT_FALSE(uses_background(s, 3));
  EXPECT_TRUE(uses_background(s, 2));
  apply_dataset_rule(s, DatasetRule::Voc);
  EXPECT_TRUE(uses_background(s, 20));
  s.background_mode = BackgroundMode::Never;
  EXPECT_FALSE(uses_background(s, 1));
  MethodSettings official = preset("official", "blip");
  apply_dataset_rule(official, DatasetRule::CocoStuff);
  EXPECT_TRUE(official.mask_rescale_after_upsample);
  apply_dataset_rule(s, DatasetRule::CocoStuff);
  EXPECT_FALSE(s.mask_rescale_after_upsample);
}
