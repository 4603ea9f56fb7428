// Parity of the BridgeTower ITM runtime with the reference implementation, tensor by tensor, and
// the properties of the pruned backward pass.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "pnpovss/check/bridgetower_fixture.h"
#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/models/bridgetower_itm.h"

using namespace pnpovss;

namespace {

const std::string kFixture = std::string(PNPOVSS_TEST_DATA) + "/bridgetower_itm";

struct Inputs {
  torch::Tensor pixels, ids, mask;
};

Inputs fixture_inputs() {
  check::Fixture fixture(kFixture);
  return {fixture.tensor("pixel_values"), fixture.tensor("input_ids"), fixture.tensor("attention_mask")};
}

}  // namespace

TEST(BridgeTowerParity, EveryModelTensorWithinItsTolerance) {
  check::Fixture fixture(kFixture);
  ASSERT_TRUE(check::is_bridgetower_itm_fixture(fixture));
  const auto checks = check::check_bridgetower_itm_fixture(fixture);
  // Every tensor but the 6 inputs (pixel_values, pixel_mask, their default-call versions,
  // input_ids, attention_mask) is compared.
  EXPECT_EQ(checks.size(), fixture.tensor_names().size() - 6);
  for (const auto& c : checks) {
    std::cout << check::format_check(c) << "\n";
    EXPECT_TRUE(c.passed && !c.skipped) << check::format_check(c);
  }
}

TEST(BridgeTowerParity, PlainForwardEqualsTheCapturePath) {
  const auto model = models::BridgeTowerItm::load(kFixture);
  const Inputs in = fixture_inputs();
  const auto plain = model.forward(in.pixels, in.ids, in.mask);
  const auto capture = model.itm_attention_gradients(in.pixels, in.ids, in.mask, {1});
  EXPECT_TRUE(torch::allclose(plain.itm_logits, capture.itm_logits, 1e-6, 1e-6));
  EXPECT_FALSE(plain.itm_logits.requires_grad());  // parameters never require gradients
  EXPECT_FALSE(capture.itm_logits.requires_grad());
}

TEST(BridgeTowerParity, CaptureOfOneLayerEqualsCaptureOfAll) {
  const auto model = models::BridgeTowerItm::load(kFixture);
  const Inputs in = fixture_inputs();
  const auto one = model.itm_attention_gradients(in.pixels, in.ids, in.mask, {1});
  const auto all = model.itm_attention_gradients(in.pixels, in.ids, in.mask, {0, 1});
  EXPECT_TRUE(torch::equal(one.probs[0], all.probs[1]));
  EXPECT_TRUE(torch::allclose(one.grads[0], all.grads[1], 1e-5, 1e-6));
}

TEST(BridgeTowerParity, RejectsBadInputs) {
  const auto model = models::BridgeTowerItm::load(kFixture);
  const auto pixels = torch::zeros({1, 3, 64, 64});
  const auto ids = torch::tensor({{0, 250, 2}}, torch::kInt64);
  const auto mask = torch::ones_like(ids);
  EXPECT_THROW(model.forward(torch::zeros({1, 3, 8, 64}), ids, mask), Error);    // below one patch
  EXPECT_THROW(model.forward(torch::zeros({3, 64, 64}), ids, mask), Error);      // no batch
  EXPECT_THROW(model.forward(torch::zeros({2, 3, 64, 64}), ids, mask), Error);   // batch mismatch
  EXPECT_THROW(model.forward(pixels, torch::tensor({{0, 60000, 2}}, torch::kInt64), mask), Error);
  EXPECT_THROW(model.forward(pixels, torch::ones({1, 513}, torch::kInt64), torch::ones({1, 513}, torch::kInt64)),
               Error);  // 514 positions, padding index 1: at most 512 tokens
  EXPECT_THROW(model.itm_attention_gradients(pixels, ids, mask, {2}), Error);  // 2 cross-modal layers
  EXPECT_THROW(model.itm_attention_gradients(pixels, ids, mask, {}), Error);
  EXPECT_THROW(models::BridgeTowerItm::load(std::string(PNPOVSS_TEST_DATA) + "/nonexistent"), Error);
}

TEST(BridgeTowerParity, AnotherGridResizesThePositionTable) {
  const auto model = models::BridgeTowerItm::load(kFixture);
  const auto same = model.positions_for_grid(4, 4);
  EXPECT_EQ(same.sizes(), (std::vector<int64_t>{17, 64}));
  const auto larger = model.positions_for_grid(6, 5);
  ASSERT_EQ(larger.sizes(), (std::vector<int64_t>{31, 64}));
  EXPECT_TRUE(torch::equal(larger[0], same[0]));  // class entry unchanged
  // A constant table stays constant under bicubic resizing: check the rule on the real table's
  // mean instead (interpolation weights sum to 1 per output entry).
  EXPECT_NEAR(larger.narrow(0, 1, 30).mean().item<double>(), same.narrow(0, 1, 16).mean().item<double>(), 0.05);
  const Inputs in = fixture_inputs();
  const auto big = torch::zeros({1, 3, 96, 80});
  const auto out = model.itm_attention_gradients(big, in.ids.narrow(0, 0, 1), in.mask.narrow(0, 0, 1), {0});
  EXPECT_EQ(out.probs[0].size(3), 1 + 6 * 5);
}

TEST(BridgeTowerConfig, DefaultsAndRejectedConfigs) {
  const auto config = models::BridgeTowerConfig::from_file(kFixture + "/config.json");
  EXPECT_EQ(config.vision.patch_size, 16);  // absent: BridgeTowerVisionConfig's default
  EXPECT_EQ(config.vision.num_heads(), 1);  // 64 / 64
  EXPECT_EQ(config.split_index(), 2);       // 3 text layers, 2 cross-modal layers
  EXPECT_EQ(config.text.max_position_embeddings, 514);
  const auto base = io::read_json_file(kFixture + "/config.json");
  auto rejected = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json j = base;
    j[key] = value;
    EXPECT_THROW(models::BridgeTowerConfig::from_json(j, "config"), Error) << key;
  };
  rejected("model_type", "blip");
  rejected("link_tower_type", "scaled_add");
  rejected("share_link_tower_layers", true);
  rejected("share_cross_modal_transformer_layers", false);
  rejected("hidden_size", 64);       // differs from the text width 48
  rejected("num_hidden_layers", 5);  // needs 4 text layers
  rejected("vision_config", {{"hidden_size", 48}});  // not whole 64-wide heads
}

TEST(BridgeTowerInputs, TokenizationAndPreprocessingMatchTheReference) {
  check::Fixture fixture(kFixture);
  const auto checks = check::check_bridgetower_inputs(fixture);
  // tokenization records, input_ids, attention_mask, pixel_values and pixel_mask of both calls
  EXPECT_EQ(checks.size(), 7u);
  for (const auto& c : checks) {
    std::cout << check::format_check(c) << "\n";
    EXPECT_TRUE(c.passed && !c.skipped) << check::format_check(c);
  }
}
