#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "pnpovss/cli/commands.h"
#include "pnpovss/error.h"
#include "pnpovss/hub/model_location.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/models/blip_itm.h"
#include "pnpovss/models/blip_preprocess.h"
#include "pnpovss/text/wordpiece.h"
#include "pnpovss/util/failure.h"

namespace pnpovss::cli {
namespace {

struct MatchOptions {
  std::string model = kDefaultModel;
  std::vector<std::string> images;
  std::vector<std::string> texts;
  int size = 0;
  std::string first_token = "enc";
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int run_match(const MatchOptions& o) {
  for (const auto& t : o.texts)
    if (t.find_first_not_of(" \t\n") == std::string::npos) throw Error("--text must not be empty");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string dir = hub::resolve_model_dir(o.model);
  const auto model = models::BlipItm::load(dir);
  const auto tokenizer = text::WordPieceTokenizer::from_dir(dir);
  auto pre = models::ImagePreprocessConfig::from_file(dir + "/preprocessor_config.json");
  const int size = o.size > 0 ? o.size : pre.height;
  const auto encoded = tokenizer.encode_batch(o.texts);
  torch::Tensor ids = torch::tensor(encoded.ids, torch::kInt64).view({encoded.rows, encoded.cols});
  torch::Tensor mask = torch::tensor(encoded.mask, torch::kInt64).view({encoded.rows, encoded.cols});
  // The original BLIP ITM replaces [CLS] by [ENC]; the checkpoints were fine-tuned that way.
  if (o.first_token == "enc" && model.config().enc_token_id >= 0) ids.select(1, 0).fill_(model.config().enc_token_id);
  std::printf("model %s (loaded in %.2f s), input %dx%d, first token %s\n", dir.c_str(), seconds_since(t0), size,
              size, o.first_token == "enc" ? "[ENC]" : "[CLS]");
  int failures = 0;
  for (const auto& path : o.images) {
    try {
      const auto start = std::chrono::steady_clock::now();
      Image image = image::decode_image_file(path);
      torch::Tensor pixels = torch::tensor(models::preprocess_to_chw(image, size, size, pre)).view({1, 3, size, size});
      torch::Tensor embeds = model.encode_image(pixels, PositionResize::SizeBased);
      torch::Tensor batch = embeds.expand({ids.size(0), embeds.size(1), embeds.size(2)});
      torch::Tensor logits = model.itm_logits(ids, mask, batch);
      torch::Tensor probs = torch::softmax(logits, -1);
      std::printf("%s (%dx%d, %.2f s)\n", path.c_str(), image.width, image.height, seconds_since(start));
      for (size_t i = 0; i < o.texts.size(); ++i)
        std::printf("  itm match %.4f  (logits %+.4f %+.4f)  \"%s\"\n", probs[i][1].item<float>(),
                    logits[i][0].item<float>(), logits[i][1].item<float>(), o.texts[i].c_str());
    } catch (const std::exception&) {  // report it, go on with the next image
      std::fprintf(stderr, "error: %s\n", util::current_failure().message.c_str());
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

Command add_match_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "match",
      "Image-text matching score: the probability that each text describes each image (BLIP ITM head).\n"
      "Example: pnp-ovss match photo.jpg --text \"two cats on a couch\" --text \"a red car\"");
  auto o = std::make_shared<MatchOptions>();
  cmd->add_option("IMAGE", o->images, "image files (JPEG, PNG, BMP)")->required();
  cmd->add_option("-t,--text", o->texts, "text to match (repeat for several)")->required();
  cmd->add_option("-m,--model", o->model, "model directory, or hub id org/name[@revision] (downloaded into the Hugging Face cache once)")
      ->capture_default_str();
  cmd->add_option("-s,--size", o->size, "square input size in pixels, a multiple of 16 (default: the model's)")
      ->check(CLI::Range(16, 4096));
  cmd->add_option("--first-token", o->first_token, "first text token: enc (original BLIP ITM) or cls (transformers)")
      ->check(CLI::IsMember({"enc", "cls"}))
      ->capture_default_str();
  return [o]() { return run_match(*o); };
}

}  // namespace pnpovss::cli
