// The model-free part of the BridgeTower fixture protocol: tokenization and image preprocessing.
#include <torch/torch.h>

#include "pnpovss/check/bridgetower_fixture.h"
#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/models/bridgetower_preprocess.h"
#include "pnpovss/text/roberta_tokenizer.h"

namespace pnpovss::check {
namespace {

TensorCheck check_tokenization_records(const Fixture& fx, const text::RobertaTokenizer& tok) {
  TensorCheck c;
  c.name = "tokenization";
  c.note = "exact";
  for (const auto& record : fx.reference()["tokenization"]["records"]) {
    const std::string text = record.value("text", std::string());
    const auto expected = record.value("input_ids", std::vector<int64_t>());
    ++c.compared;
    std::vector<int64_t> got;
    try {
      got = tok.encode(text);
    } catch (const Error&) {
      got.clear();  // counted as a mismatch below
    }
    if (got != expected) {
      if (c.mismatches == 0) c.note += ", first mismatch: \"" + text + "\"";
      ++c.mismatches;
      c.max_abs_error = 1;
    }
  }
  c.note += ", " + std::to_string(c.compared) + " records";
  c.passed = c.mismatches == 0 && c.compared > 0;
  return c;
}

torch::Tensor as_tensor(const std::vector<int64_t>& values, int64_t rows, int64_t cols) {
  return torch::tensor(values, torch::kInt64).view({rows, cols});
}

// The fixture's images in the order reference.json lists them (files.images).
std::vector<Image> fixture_images(const Fixture& fx) {
  std::vector<Image> images;
  const auto& ref = fx.reference();
  if (ref.contains("files") && ref["files"].contains("images"))
    for (const auto& item : ref["files"]["images"].items())
      images.push_back(image::decode_image_file(fx.dir() + "/" + item.key()));
  return images;
}

// pixel_values[suffix] within the preprocessing tolerance and pixel_mask[suffix] exactly.
void check_pixels(const Fixture& fx, const std::string& suffix, bool center_crop, std::vector<TensorCheck>& checks) {
  const std::string values = "pixel_values" + suffix, mask = "pixel_mask" + suffix;
  if (!fx.has(values) && !fx.has(mask)) return;
  const auto images = fixture_images(fx);
  const auto config = models::BridgeTowerPreprocessConfig::from_file(fx.dir() + "/preprocessor_config.json");
  const models::BridgeTowerBatch batch = models::preprocess_bridgetower(images, config, center_crop);
  if (fx.has(values)) {
    torch::Tensor got = torch::tensor(batch.pixels).view({batch.batch, 3, batch.height, batch.width});
    checks.push_back(fx.compare(values, got, fx.preprocessing_tolerance(values)));
  }
  if (fx.has(mask)) checks.push_back(fx.compare(mask, as_tensor(batch.mask, batch.batch, batch.height * batch.width)
                                                         .view({batch.batch, batch.height, batch.width})));
}

}  // namespace

std::vector<TensorCheck> check_bridgetower_inputs(const Fixture& fx) {
  std::vector<TensorCheck> checks;
  const auto tok = text::RobertaTokenizer::from_dir(fx.dir());
  const auto& ref = fx.reference();
  if (ref.contains("tokenization")) checks.push_back(check_tokenization_records(fx, tok));
  if (fx.has("input_ids") && ref.contains("prompts")) {
    const auto enc = tok.encode_batch(ref["prompts"].get<std::vector<std::string>>());
    checks.push_back(fx.compare("input_ids", as_tensor(enc.ids, enc.rows, enc.cols)));
    if (fx.has("attention_mask")) checks.push_back(fx.compare("attention_mask", as_tensor(enc.mask, enc.rows, enc.cols)));
  }
  // What BridgeTowerProcessor does (centre crop), and the image processor's own default call.
  check_pixels(fx, "", true, checks);
  check_pixels(fx, "_default_call", false, checks);
  return checks;
}

}  // namespace pnpovss::check
