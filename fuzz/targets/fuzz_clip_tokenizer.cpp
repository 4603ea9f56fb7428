// CLIP's tokenizer: vocab.json and merges.txt (byte-level BPE, text/byte_bpe), tokenizer_config.json and
// special_tokens_map.json, read from a model folder by from_dir (so written to a scratch
// folder), then the tokenization of arbitrary text. Input: vocab.json, NUL, merges.txt, NUL,
// the text, NUL, tokenizer_config.json, NUL, special_tokens_map.json (a missing part is a
// missing file).
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "pnpovss/text/clip_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pnpovss;
  const std::vector<std::string> parts = fuzz::split_parts(data, size, 5);
  const fuzz::ScratchDir& dir = fuzz::ScratchDir::get();
  dir.reset();
  dir.write("vocab.json", parts[0]);
  if (parts.size() > 1) dir.write("merges.txt", parts[1]);
  const std::string text = parts.size() > 2 ? parts[2] : std::string();
  if (parts.size() > 3) dir.write("tokenizer_config.json", parts[3]);
  if (parts.size() > 4) dir.write("special_tokens_map.json", parts[4]);
  fuzz::accepts([&] {
    const text::ClipTokenizer tokenizer = text::ClipTokenizer::from_dir(dir.path());
    for (const std::string& sample : {text, std::string("a photo of a Cat's <|startoftext|>  don't 中文 123 \xf0\x9f\x90\x88 !!")}) {
      fuzz::accepts([&] {
        const std::vector<std::string> tokens = tokenizer.tokenize(sample);
        const std::vector<int64_t> ids = tokenizer.encode(sample);
        fuzz::expect(ids.size() >= 2, "encode() lacks the start and end tokens");
        fuzz::expect(ids.size() <= tokens.size() + 2, "encode() gives more ids than tokens");
        fuzz::expect(static_cast<int64_t>(ids.size()) <= tokenizer.model_max_length(), "encode() ignores model_max_length");
        for (int64_t id : ids) tokenizer.bpe().token(id);
        const auto batch = tokenizer.encode_batch({sample, "x", ""});
        fuzz::expect(batch.ids.size() == static_cast<size_t>(batch.rows * batch.cols), "a ragged batch");
      });
    }
  });
  return 0;
}
