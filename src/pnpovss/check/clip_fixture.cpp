#include "pnpovss/check/clip_fixture.h"

#include <torch/torch.h>

#include <map>
#include <optional>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/models/clip_model.h"
#include "pnpovss/text/clip_tokenizer.h"

namespace pnpovss::check {
namespace {

bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

TensorCheck skipped(const std::string& name, const std::string& why) {
  TensorCheck c;
  c.name = name;
  c.skipped = true;
  c.note = why;
  return c;
}

// ---- inputs ------------------------------------------------------------------------------

TensorCheck check_tokenization_records(const std::string& name, const nlohmann::ordered_json& records,
                                       const text::ClipTokenizer& tok) {
  TensorCheck c;
  c.name = name;
  c.note = tok.cleaning() == text::ClipTokenizer::Cleaning::kFtfy ? "exact ids and tokens, fix_text cleaning"
                                                                  : "exact ids and tokens, BasicTokenizer cleaning";
  for (const auto& record : records) {
    const std::string text = record.value("text", std::string());
    const auto expected_ids = record.value("input_ids", std::vector<int64_t>());
    const auto expected_tokens = record.value("tokens", std::vector<std::string>());
    ++c.compared;
    std::vector<int64_t> ids;
    std::vector<std::string> tokens;
    try {
      ids = tok.encode(text);
      tokens = tok.tokenize(text);
    } catch (const Error&) {
      ids.clear();  // counted as a mismatch below
    }
    // The recorded tokens include the start and end tokens.
    if (!tokens.empty() || !ids.empty()) {
      tokens.insert(tokens.begin(), tok.bpe().token(tok.bos_id()));
      tokens.push_back(tok.bpe().token(tok.eos_id()));
    }
    const bool tokens_ok = expected_tokens.empty() || tokens == expected_tokens;
    if (ids != expected_ids || !tokens_ok) {
      if (c.mismatches == 0) c.note += ", first mismatch: \"" + text + "\"";
      ++c.mismatches;
      c.max_abs_error = 1;
    }
  }
  c.note += ", " + std::to_string(c.compared) + " records";
  c.passed = c.mismatches == 0 && c.compared > 0;
  return c;
}

// The fixture's images in the order reference.json lists them (files.images).
std::vector<std::string> image_files(const Fixture& fx) {
  std::vector<std::string> files;
  const auto& ref = fx.reference();
  if (ref.contains("files") && ref["files"].contains("images") && ref["files"]["images"].is_object())
    for (const auto& item : ref["files"]["images"].items()) files.push_back(item.key());
  return files;
}

TensorCheck check_pixels(const Fixture& fx, const std::string& name) {
  const torch::Tensor ref = fx.tensor(name);
  const auto files = image_files(fx);
  if (ref.dim() != 4 || static_cast<size_t>(ref.size(0)) > files.size())
    return skipped(name, "reference.json lists fewer images than the tensor holds");
  const auto config = models::ClipPreprocessConfig::from_dir(fx.dir());
  std::vector<torch::Tensor> images;
  for (int64_t b = 0; b < ref.size(0); ++b)
    images.push_back(models::clip_pixel_values(image::decode_image_file(fx.dir() + "/" + files[b]), config));
  return fx.compare(name, torch::stack(images), fx.preprocessing_tolerance(name));
}

// The prompts padded to the reference width, as tok(prompts, padding='max_length').
std::optional<text::ClipTokenizer::Encoded> encode_prompts(const Fixture& fx, const text::ClipTokenizer& tok) {
  const auto& ref = fx.reference();
  if (!fx.has("input_ids") || !ref.contains("class_prompts")) return std::nullopt;
  auto enc = tok.encode_batch(ref["class_prompts"].get<std::vector<std::string>>());
  const int64_t width = fx.tensor("input_ids").size(-1);
  if (enc.cols >= width) return enc;
  text::ClipTokenizer::Encoded padded;
  padded.rows = enc.rows;
  padded.cols = width;
  padded.ids.assign(static_cast<size_t>(enc.rows * width), tok.pad_id());
  padded.mask.assign(static_cast<size_t>(enc.rows * width), 0);
  for (int64_t r = 0; r < enc.rows; ++r)
    for (int64_t j = 0; j < enc.cols; ++j) {
      padded.ids[static_cast<size_t>(r * width + j)] = enc.ids[static_cast<size_t>(r * enc.cols + j)];
      padded.mask[static_cast<size_t>(r * width + j)] = enc.mask[static_cast<size_t>(r * enc.cols + j)];
    }
  return padded;
}

torch::Tensor as_tensor(const std::vector<int64_t>& values, int64_t rows, int64_t cols) {
  return torch::tensor(values, torch::kInt64).view({rows, cols});
}

// ---- model outputs -----------------------------------------------------------------------

class ClipChecker {
 public:
  explicit ClipChecker(const Fixture& fx) : fx_(fx), model_(models::ClipModel::load(fx.dir())) {}

  // nullopt for the inputs, which check_clip_inputs covers.
  std::optional<TensorCheck> check(const std::string& name) {
    for (const char* input : {"pixel_values", "input_ids", "attention_mask"})
      if (name == input) return std::nullopt;
    const bool nomask = ends_with(name, "_nomask");
    const std::string base = nomask ? name.substr(0, name.size() - 7) : name;
    const Outputs& out = outputs(nomask);
    static const std::map<std::string, torch::Tensor Outputs::*> kRules = {
        {"vision_last_hidden_state", &Outputs::vision_last},
        {"vision_pooler_output", &Outputs::vision_pooled},
        {"text_last_hidden_state", &Outputs::text_last},
        {"text_pooler_output", &Outputs::text_pooled},
        {"image_embeds", &Outputs::image_embeds},
        {"text_embeds", &Outputs::text_embeds},
        {"logits_per_image", &Outputs::logits_per_image},
        {"logits_per_text", &Outputs::logits_per_text},
    };
    auto rule = kRules.find(base);
    if (rule == kRules.end()) return skipped(name, "no rule computes this tensor");
    return fx_.compare(name, out.*(rule->second));
  }

 private:
  struct Outputs {
    torch::Tensor vision_last, vision_pooled, text_last, text_pooled, image_embeds, text_embeds, logits_per_image,
        logits_per_text;
  };
  const Fixture& fx_;
  models::ClipModel model_;
  std::map<bool, Outputs> cache_;

  const Outputs& outputs(bool nomask) {
    auto it = cache_.find(nomask);
    if (it != cache_.end()) return it->second;
    const torch::Tensor pixels = fx_.tensor("pixel_values").to(torch::kFloat32);
    const torch::Tensor ids = fx_.tensor("input_ids").to(torch::kInt64);
    const torch::Tensor mask = nomask ? torch::Tensor() : fx_.tensor("attention_mask").to(torch::kInt64);
    Outputs o;
    auto vision = model_.encode_image(pixels);
    auto text = model_.encode_text(ids, mask);
    o.vision_last = vision.last_hidden_state;
    o.vision_pooled = vision.pooled;
    o.text_last = text.last_hidden_state;
    o.text_pooled = text.pooled;
    o.image_embeds = model_.image_embeds(pixels);
    o.text_embeds = model_.text_embeds(ids, mask);
    o.logits_per_image = model_.logits_per_image(o.image_embeds, o.text_embeds);
    o.logits_per_text = o.logits_per_image.t();
    return cache_.emplace(nomask, std::move(o)).first->second;
  }
};

}  // namespace

bool is_clip_fixture(const Fixture& fixture) {
  if (fixture.reference().value("model", std::string()) == "CLIPModel") return true;
  const std::string config = fixture.dir() + "/config.json";
  return io::file_exists(config) && models::is_clip_config(io::read_json_file(config));
}

std::vector<TensorCheck> check_clip_inputs(const Fixture& fx) {
  std::vector<TensorCheck> checks;
  const auto tok = text::ClipTokenizer::from_dir(fx.dir());
  const auto& ref = fx.reference();
  // The records of the reference run with ftfy installed are the behaviour the tokenizer claims
  // (the cleaning of CLIP's authors). A fixture without them has only the records of the run
  // without ftfy, which the tokenizer's BasicTokenizer cleaning reproduces.
  if (ref.contains("tokenization_with_ftfy") && ref["tokenization_with_ftfy"].contains("records")) {
    checks.push_back(check_tokenization_records("tokenization_with_ftfy", ref["tokenization_with_ftfy"]["records"], tok));
  } else if (ref.contains("tokenization") && ref["tokenization"].contains("records")) {
    const auto basic = text::ClipTokenizer::from_dir(fx.dir(), text::ClipTokenizer::Cleaning::kBasicTokenizer);
    checks.push_back(check_tokenization_records("tokenization_without_ftfy", ref["tokenization"]["records"], basic));
  }
  if (auto enc = encode_prompts(fx, tok)) {
    checks.push_back(fx.compare("input_ids", as_tensor(enc->ids, enc->rows, enc->cols)));
    if (fx.has("attention_mask"))
      checks.push_back(fx.compare("attention_mask", as_tensor(enc->mask, enc->rows, enc->cols)));
  }
  if (fx.has("pixel_values")) checks.push_back(check_pixels(fx, "pixel_values"));
  return checks;
}

std::vector<TensorCheck> check_clip_fixture(const Fixture& fixture) {
  std::vector<TensorCheck> checks;
  ClipChecker checker(fixture);
  for (const auto& name : fixture.tensor_names())
    if (auto c = checker.check(name)) checks.push_back(*c);
  return checks;
}

}  // namespace pnpovss::check
