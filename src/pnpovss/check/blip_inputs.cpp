// The model-free part of the BLIP fixture protocol: tokenization and image preprocessing.
#include <torch/torch.h>

#include "pnpovss/check/blip_fixture.h"
#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/models/blip_config.h"
#include "pnpovss/models/blip_preprocess.h"
#include "pnpovss/text/wordpiece.h"

namespace pnpovss::check {
namespace {

TensorCheck check_tokenization_records(const Fixture& fx, const text::WordPieceTokenizer& tok) {
  TensorCheck c;
  c.name = "tokenization";
  c.note = "exact";
  const auto& records = fx.reference()["tokenization"]["records"];
  for (const auto& record : records) {
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
std::vector<std::string> image_files(const Fixture& fx) {
  std::vector<std::string> files;
  const auto& ref = fx.reference();
  if (ref.contains("files") && ref["files"].contains("images"))
    for (const auto& item : ref["files"]["images"].items()) files.push_back(item.key());
  return files;
}

TensorCheck check_pixels(const Fixture& fx, const std::string& name, const models::ImagePreprocessConfig& config) {
  const torch::Tensor ref = fx.tensor(name);
  const auto files = image_files(fx);
  if (ref.dim() != 4 || static_cast<size_t>(ref.size(0)) > files.size()) {
    TensorCheck c;
    c.name = name;
    c.skipped = true;
    c.note = "reference.json lists fewer images than the tensor holds";
    return c;
  }
  const int height = static_cast<int>(ref.size(2)), width = static_cast<int>(ref.size(3));
  std::vector<torch::Tensor> images;
  for (int64_t b = 0; b < ref.size(0); ++b) {
    Image image = image::decode_image_file(fx.dir() + "/" + files[b]);
    std::vector<float> chw = models::preprocess_to_chw(image, height, width, config);
    images.push_back(torch::tensor(chw).view({3, height, width}));
  }
  return fx.compare(name, torch::stack(images), fx.preprocessing_tolerance(name));
}

}  // namespace

std::vector<TensorCheck> check_blip_inputs(const Fixture& fx) {
  std::vector<TensorCheck> checks;
  const auto tok = text::WordPieceTokenizer::from_dir(fx.dir());
  const auto& ref = fx.reference();
  if (ref.contains("tokenization")) checks.push_back(check_tokenization_records(fx, tok));
  if (fx.has("input_ids") && ref.contains("prompts")) {
    const auto prompts = ref["prompts"].get<std::vector<std::string>>();
    const auto enc = tok.encode_batch(prompts);
    torch::Tensor ids = as_tensor(enc.ids, enc.rows, enc.cols);
    checks.push_back(fx.compare("input_ids", ids));
    if (fx.has("attention_mask")) checks.push_back(fx.compare("attention_mask", as_tensor(enc.mask, enc.rows, enc.cols)));
    if (fx.has("input_ids_enc")) {
      const auto config = models::BlipConfig::from_file(fx.dir() + "/config.json");
      torch::Tensor with_enc = ids.clone();
      with_enc.select(1, 0).fill_(config.enc_token_id);
      checks.push_back(fx.compare("input_ids_enc", with_enc));
    }
  }
  const auto pre = models::ImagePreprocessConfig::from_file(fx.dir() + "/preprocessor_config.json");
  for (const char* name : {"pixel_values", "pixel_values_large"})
    if (fx.has(name)) checks.push_back(check_pixels(fx, name, pre));
  return checks;
}

}  // namespace pnpovss::check
