// CLIP's tokenizer with the exact behaviour of Hugging Face's slow CLIPTokenizer
// (transformers v4.43.4) when the `ftfy` package is NOT installed, the setup the reference
// fixtures record: BasicTokenizer(strip_accents=False, do_split_on_punc=False) cleans the text
// (control characters dropped, whitespace unified, spaces around CJK ideographs, NFC, lower
// case), then the CLIP pre-tokenizer pattern
//   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (case-insensitive) splits it into words, and byte-level BPE with "</w>" encodes each word.
//
// With ftfy installed, Hugging Face (and openai/CLIP) instead run ftfy.fix_text, collapse
// whitespace and lower-case: no spaces are put around CJK ideographs, so BPE may merge across
// them ("中文" can become one token instead of two), and ftfy repairs mojibake and some
// compatibility characters. Latin text, digits, punctuation and emoji tokenize the same on both
// paths.
//
// Thread safety: a ClipTokenizer is immutable (the BPE cache is locked); methods may run
// concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pnpovss/text/byte_bpe.h"

namespace pnpovss::text {

class ClipTokenizer {
 public:
  // A batch of encodings padded to the longest one; row-major [rows, cols].
  struct Encoded {
    std::vector<int64_t> ids, mask;
    int64_t rows = 0, cols = 0;
  };

  // Reads vocab.json and merges.txt (required) and, when present, tokenizer_config.json and
  // special_tokens_map.json (special tokens, model_max_length) from `dir`. Throws
  // pnpovss::Error naming the file when one is missing or malformed or lacks a special token.
  static ClipTokenizer from_dir(const std::string& dir);
  ClipTokenizer(ByteBpe bpe, int64_t model_max_length);

  // BPE tokens of `text` without the start and end tokens. Throws pnpovss::Error when the text
  // is not UTF-8.
  std::vector<std::string> tokenize(const std::string& text) const;
  // <|startoftext|> ids(text) <|endoftext|>, truncated to model_max_length keeping the end token
  // (as tokenizer(text, truncation=True)["input_ids"]).
  std::vector<int64_t> encode(const std::string& text) const;
  // encode() of each text, padded with the pad id (mask 0) to the longest (padding='longest').
  Encoded encode_batch(const std::vector<std::string>& texts) const;

  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t model_max_length() const { return model_max_length_; }
  const ByteBpe& bpe() const { return bpe_; }

  // Tokens of the start/end/pad/unknown roles; defaults are CLIP's.
  struct SpecialTokens {
    std::string bos = "<|startoftext|>", eos = "<|endoftext|>", pad = "<|endoftext|>", unk = "<|endoftext|>";
  };
  ClipTokenizer(ByteBpe bpe, int64_t model_max_length, const SpecialTokens& specials);

 private:
  ByteBpe bpe_;
  int64_t model_max_length_ = 77;
  SpecialTokens specials_;
  int64_t bos_id_ = 0, eos_id_ = 0, pad_id_ = 0, unk_id_ = 0;
};

}  // namespace pnpovss::text
