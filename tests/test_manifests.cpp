// Every key and shape of the real BLIP checkpoints maps onto the model built from their
// configs, loading reports missing, unexpected and misshapen keys by name, and memory-mapped
// weights leave memory once dropped.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <map>

#include "pnpovss/error.h"
#include "pnpovss/io/checkpoint.h"
#include "pnpovss/models/blip_itm.h"
#include "pnpovss/models/random_checkpoint.h"
#include "pnpovss/runtime/tensor_bridge.h"
#include "resident_memory.h"

using namespace pnpovss;

namespace {

const std::string kData = PNPOVSS_TEST_DATA;

class RealCheckpoint : public testing::TestWithParam<std::string> {};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

runtime::TensorMap fixture_weights() {
  static io::Checkpoint checkpoint = io::Checkpoint::open_dir(kData + "/blip_itm");
  runtime::TensorMap tensors;
  for (const auto& [name, t] : runtime::load_float_tensors(checkpoint)) tensors[name] = t.clone();
  return tensors;
}

models::BlipConfig fixture_config() { return models::BlipConfig::from_file(kData + "/blip_itm/config.json"); }

}  // namespace

TEST_P(RealCheckpoint, EveryKeyAndShapeMapsOntoTheModel) {
  const auto manifest = models::read_manifest(kData + "/manifests/" + GetParam());
  const auto config = models::BlipConfig::from_json(manifest.config, GetParam());
  std::map<std::string, std::vector<int64_t>> expected;
  for (const auto& spec : models::blip_itm_parameters(config)) expected[spec.name] = spec.shape;
  std::map<std::string, std::vector<int64_t>> real;
  for (const auto& spec : manifest.parameters) real[spec.name] = spec.shape;
  EXPECT_EQ(expected, real);

  // Load random weights of exactly the manifest's keys and shapes through the strict loader.
  auto model = models::BlipItm::from_tensors(config, models::random_weights(manifest.parameters, 1), manifest.checkpoint);
  EXPECT_EQ(model.parameter_count(), [&] {
    int64_t n = 0;
    for (const auto& spec : manifest.parameters) n += torch::empty(spec.shape, torch::kMeta).numel();
    return n;
  }());
}

INSTANTIATE_TEST_SUITE_P(Blip, RealCheckpoint,
                         testing::Values("Salesforce__blip-itm-large-flickr.json", "Salesforce__blip-itm-large-coco.json",
                                         "Salesforce__blip-itm-base-coco.json"));

TEST(WeightLoading, MissingKeyIsNamedWithItsShape) {
  auto tensors = fixture_weights();
  tensors.erase("itm_head.weight");
  const std::string msg = error_of([&] { models::BlipItm::from_tensors(fixture_config(), tensors, "ckpt"); });
  EXPECT_NE(msg.find("missing weight 'itm_head.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2, 48]"), std::string::npos) << msg;
}

TEST(WeightLoading, WrongShapeNamesBothShapes) {
  auto tensors = fixture_weights();
  tensors["text_proj.weight"] = torch::zeros({31, 48});
  const std::string msg = error_of([&] { models::BlipItm::from_tensors(fixture_config(), tensors, "ckpt"); });
  EXPECT_NE(msg.find("'text_proj.weight' has shape [31, 48], expected [32, 48]"), std::string::npos) << msg;
}

TEST(WeightLoading, UnexpectedKeyIsNamedButPositionIdsBuffersAreIgnored) {
  auto tensors = fixture_weights();
  tensors["text_encoder.embeddings.position_ids"] = torch::zeros({1, 512});
  EXPECT_NO_THROW(models::BlipItm::from_tensors(fixture_config(), tensors, "ckpt"));
  tensors["text_encoder.pooler.dense.weight"] = torch::zeros({48, 48});
  const std::string msg = error_of([&] { models::BlipItm::from_tensors(fixture_config(), tensors, "ckpt"); });
  EXPECT_NE(msg.find("unexpected weight 'text_encoder.pooler.dense.weight'"), std::string::npos) << msg;
}

TEST(WeightLoading, RandomCheckpointRoundTripsThroughSafetensors) {
  auto config = fixture_config();
  const std::string dir = testing::TempDir() + "/random_blip";
  models::write_random_blip_checkpoint(config, dir, 7);
  auto model = models::BlipItm::load(dir);
  EXPECT_EQ(model.parameter_count(), models::BlipItm::load(kData + "/blip_itm").parameter_count());
}

// A model moved to bf16 or a GPU drops its memory-mapped float32 weights one by one; their pages
// must leave resident memory then, or loading holds both copies (BridgeTower in bf16: 5.0 GiB
// peak instead of 1.9).
TEST(MappedWeights, ADroppedTensorLeavesResidentMemoryAndItsNeighbourStaysIntact) {
  const torch::Tensor big_values = torch::arange(1 << 20, torch::kFloat32);  // 4 MiB
  const torch::Tensor small_values = torch::arange(1000, torch::kFloat32) * 0.5;
  const std::string path = testing::TempDir() + "/mapped_weights.safetensors";
  io::write_safetensors(path, {runtime::view_of("big", big_values), runtime::view_of("small", small_values)}, {});
  const auto file = io::SafetensorsFile::open(path);
  torch::Tensor big = runtime::to_tensor(file.at("big"), file.file());
  const torch::Tensor small = runtime::to_tensor(file.at("small"), file.file());
  ASSERT_TRUE(torch::equal(big, big_values));  // reads every page
  const void* mapping = file.file()->data();
  ASSERT_GE(resident_kib(mapping), 4000);
  big = torch::Tensor();
  EXPECT_LE(resident_kib(mapping), 16) << "the dropped tensor's pages are still resident";
  EXPECT_TRUE(torch::equal(small, small_values));
}
