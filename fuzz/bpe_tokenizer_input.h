// What the two byte-level BPE tokenizer targets (CLIP's, RoBERTa's) share: the model folder
// their from_dir reads, written from one input, and the tokenization of arbitrary text.
// Input: vocab.json, NUL, merges.txt, NUL, the text, NUL, tokenizer_config.json, NUL,
// special_tokens_map.json (a missing part is a missing file).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common.h"

namespace pnpovss::fuzz {

// Loads a tokenizer with `load(folder)` from the files of the input, then tokenizes the input's
// text and `fixed_text` with `check(tokenizer, text)`, each inside accepts().
template <typename Load, typename Check>
void fuzz_bpe_tokenizer(const uint8_t* data, size_t size, const std::string& fixed_text, Load&& load, Check&& check) {
  const std::vector<std::string> parts = split_parts(data, size, 5);
  const ScratchDir& dir = ScratchDir::get();
  dir.reset();
  dir.write("vocab.json", parts[0]);
  if (parts.size() > 1) dir.write("merges.txt", parts[1]);
  const std::string text = parts.size() > 2 ? parts[2] : std::string();
  if (parts.size() > 3) dir.write("tokenizer_config.json", parts[3]);
  if (parts.size() > 4) dir.write("special_tokens_map.json", parts[4]);
  accepts([&] {
    const auto tokenizer = load(dir.path());
    for (const std::string& sample : {text, fixed_text}) accepts([&] { check(tokenizer, sample); });
  });
}

}  // namespace pnpovss::fuzz
