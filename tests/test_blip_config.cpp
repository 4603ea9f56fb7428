#include <gtest/gtest.h>

#include "pnpovss/error.h"
#include "pnpovss/models/blip_config.h"

using pnpovss::Error;
using pnpovss::models::BlipConfig;

TEST(BlipConfig, ReadsFixtureConfigAndAppliesDefaults) {
  auto c = BlipConfig::from_file(std::string(PNPOVSS_TEST_DATA) + "/blip_itm/config.json");
  EXPECT_EQ(c.vision.hidden_size, 64);
  EXPECT_EQ(c.vision.image_size, 64);
  EXPECT_EQ(c.vision.patch_size, 16);  // default
  EXPECT_DOUBLE_EQ(c.vision.layer_norm_eps, 1e-5);
  EXPECT_EQ(c.text.hidden_size, 48);
  EXPECT_EQ(c.text.encoder_hidden_size, 64);  // forced to the vision width
  EXPECT_EQ(c.text.vocab_size, 30524);
  EXPECT_DOUBLE_EQ(c.text.layer_norm_eps, 1e-12);
  EXPECT_EQ(c.image_text_hidden_size, 32);
}

TEST(BlipConfig, RejectsOtherModelsAndInconsistentSizes) {
  EXPECT_THROW(BlipConfig::from_json(nlohmann::json{{"model_type", "clip"}}, "t"), Error);
  EXPECT_THROW(BlipConfig::from_json(nlohmann::json::array(), "t"), Error);
  EXPECT_THROW(BlipConfig::from_json({{"model_type", "blip"}, {"vision_config", {{"hidden_size", 100}, {"num_attention_heads", 3}}}}, "t"), Error);
  EXPECT_THROW(BlipConfig::from_json({{"model_type", "blip"}, {"vision_config", {{"image_size", 40}}}}, "t"), Error);
  EXPECT_THROW(BlipConfig::from_json({{"model_type", "blip"}, {"text_config", {{"hidden_act", "relu"}}}}, "t"), Error);
  EXPECT_THROW(BlipConfig::from_json({{"model_type", "blip"}, {"text_config", {{"hidden_size", "big"}}}}, "t"), Error);
}
