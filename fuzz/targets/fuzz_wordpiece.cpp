// BERT's WordPiece tokenizer as a model folder gives it: vocab.txt, tokenizer_config.json and
// special_tokens_map.json (read from disk by from_dir, so written to a scratch folder), then
// the tokenization of arbitrary text. Input: vocab.txt, NUL, the text, NUL,
// tokenizer_config.json, NUL, special_tokens_map.json (a missing part is a missing file).
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "pnpovss/text/wordpiece.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pnpovss;
  const std::vector<std::string> parts = fuzz::split_parts(data, size, 4);
  const fuzz::ScratchDir& dir = fuzz::ScratchDir::get();
  dir.reset();
  dir.write("vocab.txt", parts[0]);
  const std::string text = parts.size() > 1 ? parts[1] : std::string();
  if (parts.size() > 2) dir.write("tokenizer_config.json", parts[2]);
  if (parts.size() > 3) dir.write("special_tokens_map.json", parts[3]);
  fuzz::accepts([&] {
    const text::WordPieceTokenizer tokenizer = text::WordPieceTokenizer::from_dir(dir.path());
    for (const std::string& sample : {text, std::string("a photo of a cat, [SEP] ##s [MASK] 中文 ÉCOLE.")}) {
      fuzz::accepts([&] {
        const std::vector<std::string> pieces = tokenizer.tokenize(sample);
        const std::vector<int64_t> ids = tokenizer.encode(sample);
        fuzz::expect(ids.size() == pieces.size() + 2, "encode() is not [CLS] + the pieces + [SEP]");
        for (int64_t id : ids) tokenizer.token(id);
        const auto batch = tokenizer.encode_batch({sample, "x", ""});
        fuzz::expect(batch.ids.size() == static_cast<size_t>(batch.rows * batch.cols), "a ragged batch");
      });
    }
    fuzz::accepts([&] { tokenizer.token(static_cast<int64_t>(tokenizer.vocab_size())); });
  });
  return 0;
}
