// CLIP: parity with the reference implementation through the library API and the fixture
// protocol, strict weight loading, bad input, and the key/shape mapping of the real
// openai/clip-vit-* checkpoints (from their manifests, without running the full-size models).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "pnpovss/check/clip_fixture.h"
#include "pnpovss/check/fixture.h"
#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/io/checkpoint.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/safetensors.h"
#include "pnpovss/models/clip_model.h"
#include "pnpovss/models/random_checkpoint.h"
#include "pnpovss/text/clip_tokenizer.h"

using namespace pnpovss;

namespace {

const std::string kData = PNPOVSS_TEST_DATA;
const std::string kFixture = kData + "/clip";

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const models::ClipModel& fixture_model() {
  static const models::ClipModel model = models::ClipModel::load(kFixture);
  return model;
}

runtime::TensorMap fixture_weights() {
  static io::Checkpoint checkpoint = io::Checkpoint::open_dir(kFixture);
  runtime::TensorMap tensors;
  for (const auto& [name, t] : runtime::load_float_tensors(checkpoint)) tensors[name] = t.clone();
  return tensors;
}

models::ClipConfig fixture_config() { return models::ClipConfig::from_file(kFixture + "/config.json"); }

void expect_close(const check::Fixture& fx, const std::string& name, const torch::Tensor& got) {
  const auto c = fx.compare(name, got);
  EXPECT_TRUE(c.passed) << check::format_check(c);
}

}  // namespace

TEST(ClipParity, EveryModelTensorWithinItsTolerance) {
  check::Fixture fixture(kFixture);
  ASSERT_TRUE(check::is_clip_fixture(fixture));
  const auto checks = check::check_clip_fixture(fixture);
  // Every tensor but the 3 inputs (pixel_values, input_ids, attention_mask) is compared.
  EXPECT_EQ(checks.size(), fixture.tensor_names().size() - 3);
  for (const auto& c : checks) {
    std::cout << check::format_check(c) << "\n";
    EXPECT_TRUE(c.passed && !c.skipped) << check::format_check(c);
  }
}

TEST(ClipParity, TokenizationPromptsAndPreprocessing) {
  check::Fixture fixture(kFixture);
  const auto checks = check::check_clip_inputs(fixture);
  ASSERT_EQ(checks.size(), 4u);  // tokenization records, input_ids, attention_mask, pixel_values
  for (const auto& c : checks) {
    std::cout << check::format_check(c) << "\n";
    EXPECT_TRUE(c.passed && !c.skipped) << check::format_check(c);
  }
}

TEST(ClipParity, LibraryApiFromTextAndImages) {
  // The way a caller uses the model: tokenizer batch padded to the longest prompt (not 77),
  // preprocessing from the image files, embeddings and logits.
  check::Fixture fx(kFixture);
  const auto& model = fixture_model();
  const auto tok = text::ClipTokenizer::from_dir(kFixture);
  const auto prompts = fx.reference()["class_prompts"].get<std::vector<std::string>>();
  const auto enc = tok.encode_batch(prompts);
  const auto ids = torch::tensor(enc.ids, torch::kInt64).view({enc.rows, enc.cols});
  const auto mask = torch::tensor(enc.mask, torch::kInt64).view({enc.rows, enc.cols});
  const torch::Tensor text = model.text_embeds(ids, mask);
  // Padding after <|endoftext|> cannot change the pooled output (causal mask).
  expect_close(fx, "text_embeds", text);

  const auto pre = models::ClipPreprocessConfig::from_dir(kFixture);
  std::vector<torch::Tensor> images;
  for (const char* file : {"input.png", "random.png"})
    images.push_back(models::clip_pixel_values(image::decode_image_file(kFixture + "/" + file), pre));
  const torch::Tensor pixels = torch::stack(images);
  const auto pixel_check = fx.compare("pixel_values", pixels, fx.preprocessing_tolerance("pixel_values"));
  EXPECT_TRUE(pixel_check.passed) << check::format_check(pixel_check);
  std::cout << check::format_check(pixel_check) << "\n";

  // Model outputs from the reference pixels, so they do not depend on resize details.
  const torch::Tensor image = model.image_embeds(fx.tensor("pixel_values"));
  expect_close(fx, "image_embeds", image);
  const torch::Tensor logits = model.logits_per_image(image, text);
  expect_close(fx, "logits_per_image", logits);
  EXPECT_FALSE(logits.requires_grad());
  EXPECT_NEAR(model.logit_scale(), std::exp(3.3), 1e-4);
  // Unit vectors.
  EXPECT_TRUE(torch::allclose(image.norm(2, -1), torch::ones({image.size(0)}), 1e-5, 1e-5));
}

TEST(ClipParity, MaskAndNoMaskGiveTheSameEmbeddings) {
  check::Fixture fx(kFixture);
  const auto ids = fx.tensor("input_ids");
  const auto with_mask = fixture_model().text_embeds(ids, fx.tensor("attention_mask"));
  const auto without = fixture_model().text_embeds(ids, torch::Tensor());
  EXPECT_TRUE(torch::allclose(with_mask, without, 1e-5, 1e-6));
}

TEST(ClipParity, PoolingFollowsEosTokenId) {
  // eos_token_id 2 (legacy): the highest id; another value: the first position holding it.
  auto config = fixture_config();
  config.text.eos_token_id = 49407;
  const auto model = models::ClipModel::from_tensors(config, fixture_weights(), "fixture");
  const auto ids = torch::tensor({{49406, 320, 2368, 49407, 49407}}, torch::kInt64);
  const auto legacy = fixture_model().encode_text(ids, torch::Tensor());
  const auto modern = model.encode_text(ids, torch::Tensor());
  EXPECT_TRUE(torch::allclose(legacy.pooled, legacy.last_hidden_state.select(1, 3)));
  EXPECT_TRUE(torch::allclose(modern.pooled, modern.last_hidden_state.select(1, 3)));
  // A higher id before the end token: legacy pooling picks it, the modern rule does not.
  const auto odd = torch::tensor({{49406, 49407, 2368, 49407}}, torch::kInt64);
  config.text.eos_token_id = 2368;
  const auto by_id = models::ClipModel::from_tensors(config, fixture_weights(), "fixture").encode_text(odd, {});
  EXPECT_TRUE(torch::allclose(by_id.pooled, by_id.last_hidden_state.select(1, 2)));
}

TEST(ClipModel, RejectsBadInputs) {
  const auto& model = fixture_model();
  const auto ids = torch::tensor({{49406, 320, 49407}}, torch::kInt64);
  EXPECT_NE(error_of([&] { model.image_embeds(torch::zeros({1, 3, 64, 64})); }).find("takes exactly 56x56"),
            std::string::npos);
  EXPECT_THROW(model.image_embeds(torch::zeros({3, 56, 56})), Error);
  EXPECT_THROW(model.image_embeds(torch::zeros({1, 4, 56, 56})), Error);
  EXPECT_NE(error_of([&] { model.text_embeds(torch::tensor({{49406, 49408}}, torch::kInt64), {}); })
                .find("token id 49408 is outside the vocabulary"),
            std::string::npos);
  EXPECT_NE(error_of([&] { model.text_embeds(torch::zeros({1, 78}, torch::kInt64), {}); }).find("at most 77"),
            std::string::npos);
  EXPECT_THROW(model.text_embeds(ids, torch::ones({1, 4}, torch::kInt64)), Error);
  EXPECT_THROW(model.text_embeds(torch::zeros({1, 3}), {}), Error);  // float ids
  EXPECT_THROW(model.logits_per_image(torch::zeros({2, 32}), torch::zeros({3, 31})), Error);
  EXPECT_NE(error_of([] { models::ClipModel::load(kData + "/blip_itm"); }).find("expected 'clip'"), std::string::npos);
  EXPECT_NE(error_of([] { models::ClipModel::load(kData + "/nonexistent"); }).find("config.json is missing"),
            std::string::npos);
}

// ---- strict weight loading ---------------------------------------------------------------

TEST(ClipWeights, MissingWrongAndUnexpectedKeysAreNamed) {
  auto tensors = fixture_weights();
  tensors.erase("text_projection.weight");
  std::string msg = error_of([&] { models::ClipModel::from_tensors(fixture_config(), tensors, "ckpt"); });
  EXPECT_NE(msg.find("missing weight 'text_projection.weight' (expected shape [32, 48])"), std::string::npos) << msg;

  tensors = fixture_weights();
  tensors["visual_projection.weight"] = torch::zeros({32, 65});
  msg = error_of([&] { models::ClipModel::from_tensors(fixture_config(), tensors, "ckpt"); });
  EXPECT_NE(msg.find("'visual_projection.weight' has shape [32, 65], expected [32, 64]"), std::string::npos) << msg;

  tensors = fixture_weights();
  tensors["text_model.embeddings.position_ids"] = torch::zeros({1, 77});
  tensors["vision_model.embeddings.position_ids"] = torch::zeros({1, 17});
  EXPECT_NO_THROW(models::ClipModel::from_tensors(fixture_config(), tensors, "ckpt"));
  tensors["text_model.pooler.weight"] = torch::zeros({48, 48});
  msg = error_of([&] { models::ClipModel::from_tensors(fixture_config(), tensors, "ckpt"); });
  EXPECT_NE(msg.find("unexpected weight 'text_model.pooler.weight'"), std::string::npos) << msg;
}

// ---- real checkpoints --------------------------------------------------------------------

class RealClipCheckpoint : public testing::TestWithParam<std::string> {};

TEST_P(RealClipCheckpoint, EveryKeyAndShapeMapsOntoTheModel) {
  const std::string path = kData + "/manifests/" + GetParam();
  const auto manifest = models::read_manifest(path);
  const auto config = models::ClipConfig::from_json(manifest.config, GetParam());
  std::map<std::string, std::vector<int64_t>> expected, real;
  for (const auto& spec : models::clip_parameters(config)) expected[spec.name] = spec.shape;
  for (const auto& spec : manifest.parameters) real[spec.name] = spec.shape;
  EXPECT_EQ(expected, real);

  // The strict loader accepts exactly the manifest's keys and shapes. Weights live on the meta
  // device (no memory), except logit_scale, which loading reads.
  runtime::TensorMap tensors;
  for (const auto& spec : manifest.parameters)
    tensors[spec.name] = torch::empty(spec.shape, torch::TensorOptions().dtype(torch::kFloat32).device(torch::kMeta));
  tensors["logit_scale"] = torch::tensor(4.6052f);
  const auto model = models::ClipModel::from_tensors(config, tensors, manifest.checkpoint);
  EXPECT_EQ(model.parameter_count(), io::read_json_file(path).at("num_parameters").get<int64_t>());
  EXPECT_NEAR(model.logit_scale(), 100.0, 0.01);
}

INSTANTIATE_TEST_SUITE_P(Clip, RealClipCheckpoint,
                         testing::Values("openai__clip-vit-base-patch16.json", "openai__clip-vit-large-patch14-336.json"));

TEST(ClipWeights, SafetensorsRoundTripOfRandomWeights) {
  // A random checkpoint with the fixture's shapes loads through ClipModel::load.
  const auto config = fixture_config();
  const std::string dir = testing::TempDir() + "/random_clip";
  std::filesystem::create_directories(dir);
  const auto specs = models::clip_parameters(config);
  runtime::TensorMap weights = models::random_weights(specs, 3);
  std::vector<io::TensorView> views;
  for (const auto& spec : specs) views.push_back(runtime::view_of(spec.name, weights.at(spec.name)));
  io::write_safetensors(dir + "/model.safetensors", views, {{"format", "pt"}});
  std::ofstream(dir + "/config.json") << config.to_json().dump(2);
  const auto model = models::ClipModel::load(dir);
  EXPECT_EQ(model.parameter_count(), fixture_model().parameter_count());
  const auto emb = model.image_embeds(torch::zeros({1, 3, 56, 56}));
  EXPECT_EQ(emb.sizes().vec(), (std::vector<int64_t>{1, 32}));
}
