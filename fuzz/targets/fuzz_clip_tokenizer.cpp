// CLIP's tokenizer: vocab.json and merges.txt (byte-level BPE, text/byte_bpe), tokenizer_config.json and
// special_tokens_map.json, read from a model folder by from_dir (so written to a scratch
// folder), then the tokenization of arbitrary text (input layout: bpe_tokenizer_input.h).
#include <cstddef>
#include <cstdint>

#include "bpe_tokenizer_input.h"
#include "pnpovss/text/clip_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pnpovss;
  fuzz::fuzz_bpe_tokenizer(
      data, size, "a photo of a Cat's <|startoftext|>  don't 中文 123 \xf0\x9f\x90\x88 !!",
      [](const std::string& folder) { return text::ClipTokenizer::from_dir(folder); },
      [](const text::ClipTokenizer& tokenizer, const std::string& sample) {
        const std::vector<std::string> tokens = tokenizer.tokenize(sample);
        const std::vector<int64_t> ids = tokenizer.encode(sample);
        fuzz::expect(ids.size() >= 2, "encode() lacks the start and end tokens");
        fuzz::expect(ids.size() <= tokens.size() + 2, "encode() gives more ids than tokens");
        fuzz::expect(static_cast<int64_t>(ids.size()) <= tokenizer.model_max_length(), "encode() ignores model_max_length");
        for (int64_t id : ids) tokenizer.bpe().token(id);
        const auto batch = tokenizer.encode_batch({sample, "x", ""});
        fuzz::expect(batch.ids.size() == static_cast<size_t>(batch.rows * batch.cols), "a ragged batch");
      });
  return 0;
}
