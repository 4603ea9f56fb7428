// CLIP's tokenizer with the cleaning the model's authors use: the behaviour of Hugging Face's slow
// CLIPTokenizer (transformers v4.43.4) with the `ftfy` package installed, the fixtures'
// "tokenization_with_ftfy" records. The text is cleaned with ftfy.fix_text (see text/text_fix.h
// for the steps done and the one left out, mojibake repair), runs of whitespace become one space,
// the ends are trimmed and the text is lower-cased (NFC, no per-character splitting of CJK
// ideographs); then the CLIP pre-tokenizer pattern
//   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (case-insensitive) splits it into words, and byte-level BPE with "</w>" encodes each word. CJK
// ideographs are letters, so "中文" is one word and BPE may merge across its characters.
//
// Cleaning::kBasicTokenizer instead follows Hugging Face's slow tokenizer when ftfy is NOT
// installed: BasicTokenizer(strip_accents=False, do_split_on_punc=False) drops every control and
// format character (Unicode category C*) and U+FFFD, unifies whitespace, puts spaces around each
// CJK ideograph (so "中文" is two words), applies NFC and lower-cases, and nothing of fix_text
// (HTML references, ligatures, full-width forms and curly quotes stay as written). Hugging Face's
// fast tokenizer applies NFC, whitespace collapsing and lower case only: it agrees with kFtfy on
// text that fix_text leaves unchanged. openai/CLIP's own tokenizer cleans as kFtfy does and then
// also runs Python's html.unescape twice, which decodes character references even in text with
// a '<' and legacy ones without ';' ("&amp" -> "&"); that extra decoding is not done here (the
// reference fixtures are Hugging Face's). Plain Latin text, digits, punctuation and emoji
// without joiners tokenize the same all four ways.
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
  // How text is cleaned before the pre-tokenizer pattern (see above); kFtfy is what CLIP's
  // authors and the fixtures' "tokenization_with_ftfy" records do.
  enum class Cleaning { kFtfy, kBasicTokenizer };

  // A batch of encodings padded to the longest one; row-major [rows, cols].
  struct Encoded {
    std::vector<int64_t> ids, mask;
    int64_t rows = 0, cols = 0;
  };

  // Reads vocab.json and merges.txt (required) and, when present, tokenizer_config.json and
  // special_tokens_map.json (special tokens, model_max_length) from `dir`. Throws
  // pnpovss::Error naming the file when one is missing or malformed or lacks a special token.
  static ClipTokenizer from_dir(const std::string& dir, Cleaning cleaning = Cleaning::kFtfy);
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
  ClipTokenizer(ByteBpe bpe, int64_t model_max_length, const SpecialTokens& specials,
                Cleaning cleaning = Cleaning::kFtfy);
  Cleaning cleaning() const { return cleaning_; }

 private:
  ByteBpe bpe_;
  int64_t model_max_length_ = 77;
  SpecialTokens specials_;
  Cleaning cleaning_ = Cleaning::kFtfy;
  int64_t bos_id_ = 0, eos_id_ = 0, pad_id_ = 0, unk_id_ = 0;
};

}  // namespace pnpovss::text
