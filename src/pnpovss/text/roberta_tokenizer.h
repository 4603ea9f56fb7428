// RoBERTa's tokenizer (GPT-2 byte-level BPE) with the exact behaviour of Hugging Face's slow
// RobertaTokenizer (transformers v4.43.4), the tokenizer of BridgeTower:
//   1. special tokens written in the text (<s>, </s>, <unk>, <pad>, <mask>) are kept whole; the
//      mask token also swallows the whitespace before it (AddedToken lstrip=True);
//   2. with add_prefix_space, a text that does not start with whitespace gets one space first;
//   3. the GPT-2 pre-tokenizer pattern, case-sensitive and without lower-casing,
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      splits the rest into words; a word keeps the single space before it, so "a cat" gives
//      "a" and " cat" (the BPE token "Ġcat");
//   4. byte-level BPE without an end-of-word marker encodes each word; a token missing from
//      the vocabulary becomes <unk>.
// encode() wraps the ids as <s> ... </s>.
//
// Thread safety: immutable (the BPE cache is locked); methods may run concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pnpovss/text/byte_bpe.h"

namespace pnpovss::text {

class RobertaTokenizer {
 public:
  // A batch of encodings padded to the longest one; row-major [rows, cols].
  struct Encoded {
    std::vector<int64_t> ids, mask;
    int64_t rows = 0, cols = 0;
  };
  // The tokens of each role (RobertaTokenizer's defaults) and whether the whitespace before or
  // after them is swallowed where they appear in a text.
  struct SpecialToken {
    std::string content;
    bool lstrip = false, rstrip = false;
  };
  struct Options {
    SpecialToken bos{"<s>"}, eos{"</s>"}, unk{"<unk>"}, pad{"<pad>"}, mask{"<mask>", true, false};
    bool add_prefix_space = false;
    int64_t model_max_length = 512;
  };

  // Reads vocab.json and merges.txt (required) and, when present, tokenizer_config.json and
  // special_tokens_map.json from `dir`. Throws pnpovss::Error naming the file when one is
  // missing or malformed, or when a special token is not in the vocabulary.
  static RobertaTokenizer from_dir(const std::string& dir);
  RobertaTokenizer(ByteBpe bpe, Options options);

  // BPE tokens of `text` without <s>/</s>. Throws pnpovss::Error when text is not UTF-8.
  std::vector<std::string> tokenize(const std::string& text) const;
  // <s> ids(text) </s>, as tokenizer(text)["input_ids"] (no truncation).
  std::vector<int64_t> encode(const std::string& text) const;
  // encode() of each text, padded with <pad> (mask 0) to the longest (padding='longest').
  Encoded encode_batch(const std::vector<std::string>& texts) const;

  // Id of a token: <unk>'s id when it is not in the vocabulary (as the reference).
  int64_t token_id(const std::string& token) const;
  // Token of an id; throws pnpovss::Error when out of range.
  const std::string& token(int64_t id) const;
  bool contains(const std::string& token) const { return bpe_.contains(token); }
  // One of the five special tokens.
  bool is_special(const std::string& token) const;

  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t mask_id() const { return mask_id_; }
  size_t vocab_size() const { return bpe_.vocab_size(); }
  int64_t model_max_length() const { return options_.model_max_length; }
  const Options& options() const { return options_; }

 private:
  const SpecialToken* special_at(const std::u32string& text, size_t pos) const;
  void tokenize_words(const std::u32string& text, std::vector<std::string>& out) const;

  ByteBpe bpe_;
  Options options_;
  std::vector<std::pair<std::u32string, SpecialToken>> specials_;  // decoded, longest first
  int64_t bos_id_ = 0, eos_id_ = 2, pad_id_ = 1, unk_id_ = 3, mask_id_ = 0;
};

// The pre-tokenizer alone: the words of `text` in order, each as UTF-8 (exposed for tests).
std::vector<std::string> gpt2_pretokenize(const std::u32string& text);

}  // namespace pnpovss::text
