// Parity of the BLIP ITM runtime with the reference implementation, tensor by tensor.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "pnpovss/check/blip_fixture.h"
#include "pnpovss/error.h"
#include "pnpovss/models/blip_itm.h"

using namespace pnpovss;

namespace {
const std::string kFixture = std::string(PNPOVSS_TEST_DATA) + "/blip_itm";
}

TEST(BlipParity, EveryModelTensorWithinItsTolerance) {
  check::Fixture fixture(kFixture);
  ASSERT_TRUE(check::is_blip_itm_fixture(fixture));
  auto checks = check::check_blip_itm_fixture(fixture);
  // Every tensor but the 6 inputs (pixel_values x2, input_ids, attention_mask, input_ids_enc) is compared.
  EXPECT_EQ(checks.size(), fixture.tensor_names().size() - 5);
  for (const auto& c : checks) {
    std::cout << check::format_check(c) << "\n";
    EXPECT_TRUE(c.passed && !c.skipped) << check::format_check(c);
  }
}

TEST(BlipParity, PlainItmEqualsTheCapturePath) {
  check::Fixture fixture(kFixture);
  auto model = models::BlipItm::load(kFixture);
  auto pixels = fixture.tensor("pixel_values");
  auto ids = fixture.tensor("input_ids");
  auto mask = fixture.tensor("attention_mask");
  auto image = model.encode_image(pixels);
  auto plain = model.itm_logits(ids, mask, image);
  auto capture = model.itm_attention_gradients(ids, mask, image, {1});
  EXPECT_TRUE(torch::allclose(plain, capture.itm_logits, 1e-6, 1e-6));
  // Parameters never require gradients.
  EXPECT_FALSE(plain.requires_grad());
}

TEST(BlipParity, CaptureOfOneLayerEqualsCaptureOfAll) {
  check::Fixture fixture(kFixture);
  auto model = models::BlipItm::load(kFixture);
  auto image = model.encode_image(fixture.tensor("pixel_values"));
  auto ids = fixture.tensor("input_ids");
  auto mask = fixture.tensor("attention_mask");
  auto one = model.itm_attention_gradients(ids, mask, image, {1});
  auto all = model.itm_attention_gradients(ids, mask, image, {0, 1, 2});
  EXPECT_TRUE(torch::allclose(one.grads[0], all.grads[1], 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(one.probs[0], all.probs[1]));
}

TEST(BlipParity, RejectsBadInputs) {
  auto model = models::BlipItm::load(kFixture);
  auto pixels = torch::zeros({1, 3, 64, 64});
  auto image = model.encode_image(pixels);
  auto ids = torch::tensor({{101, 2000, 102}}, torch::kInt64);
  auto mask = torch::ones_like(ids);
  EXPECT_THROW(model.encode_image(torch::zeros({1, 3, 60, 64})), Error);
  EXPECT_THROW(model.encode_image(torch::zeros({3, 64, 64})), Error);
  EXPECT_THROW(model.itm_attention_gradients(ids, mask, image, {3}), Error);
  EXPECT_THROW(model.itm_attention_gradients(ids, mask, image, {}), Error);
  EXPECT_THROW(model.itm_logits(torch::tensor({{101, 40000, 102}}, torch::kInt64), mask, image), Error);
  EXPECT_THROW(model.itm_logits(torch::zeros({1, 600}, torch::kInt64), torch::ones({1, 600}, torch::kInt64), image), Error);
  EXPECT_THROW(models::BlipItm::load(std::string(PNPOVSS_TEST_DATA) + "/nonexistent"), Error);
}

TEST(BlipParity, FullBackwardGivesTheSameAttentionGradients) {
  check::Fixture fixture(kFixture);
  auto model = models::BlipItm::load(kFixture);
  auto ids = fixture.tensor("input_ids");
  auto mask = fixture.tensor("attention_mask");
  auto pruned = model.itm_attention_gradients(ids, mask, model.encode_image(fixture.tensor("pixel_values")), {1, 2});
  model.set_full_backward(true);
  auto full = model.itm_attention_gradients(ids, mask, model.encode_image(fixture.tensor("pixel_values")), {1, 2});
  model.set_full_backward(false);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(torch::allclose(full.probs[i], pruned.probs[i], 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(full.grads[i], pruned.grads[i], 1e-4, 1e-6));
  }
}

// The position table resized for a grid is kept between passes: a pass at another size, and the
// first size again, give what a fresh model gives, in both resize modes.
TEST(BlipParity, KeptPositionTablesMatchFreshOnes) {
  torch::manual_seed(11);
  const torch::Tensor small = torch::randn({1, 3, 48, 48}), large = torch::randn({1, 3, 80, 64});
  for (PositionResize resize : {PositionResize::SizeBased, PositionResize::HuggingFace}) {
    const auto model = models::BlipItm::load(kFixture);
    const torch::Tensor first = model.encode_image(small, resize);
    const torch::Tensor other = model.encode_image(large, resize);
    EXPECT_TRUE(torch::equal(model.encode_image(small, resize), first));
    const auto fresh = models::BlipItm::load(kFixture);
    EXPECT_TRUE(torch::equal(fresh.encode_image(large, resize), other));
  }
}
