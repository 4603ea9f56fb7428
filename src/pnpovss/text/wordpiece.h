// BERT WordPiece tokenizer with the exact behaviour of Hugging Face's slow BertTokenizer
// (transformers v4.43.4): special-token splitting and lower-casing of PreTrainedTokenizer.tokenize,
// then BasicTokenizer (clean text, CJK splitting, NFC, whitespace split, lower case, accent
// stripping, punctuation split), then greedy longest-match-first WordPiece with "##".
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace pnpovss::text {

class WordPieceTokenizer {
 public:
  struct Options {
    bool do_lower_case = true;
    bool do_basic_tokenize = true;
    // -1: follow do_lower_case (Hugging Face's strip_accents=None); 0: never; 1: always.
    int strip_accents = -1;
    bool tokenize_chinese_chars = true;
    std::string unk_token = "[UNK]", sep_token = "[SEP]", pad_token = "[PAD]",
                cls_token = "[CLS]", mask_token = "[MASK]";
    // Further tokens kept whole wherever they occur (additional_special_tokens, added tokens);
    // each must be in the vocabulary.
    std::vector<std::string> extra_special_tokens;
    // BasicTokenizer's never_split: whitespace-separated words kept whole, without WordPiece.
    std::vector<std::string> never_split;
    int64_t model_max_length = 512;
    size_t max_input_chars_per_word = 100;
  };

  // A batch of encodings padded to the longest one; row-major [rows, cols].
  struct Encoded {
    std::vector<int64_t> ids, mask;
    int64_t rows = 0, cols = 0;
  };

  // Reads vocab.txt (required) and, when present, tokenizer_config.json and
  // special_tokens_map.json from `model_dir`. Throws pnpovss::Error naming the file when the
  // vocabulary is missing, empty, has duplicate tokens or is not UTF-8, or lacks a special token.
  static WordPieceTokenizer from_dir(const std::string& model_dir);
  // `vocab` lists the tokens in id order; `origin` names their source in messages.
  WordPieceTokenizer(std::vector<std::string> vocab, Options options, const std::string& origin);

  // Word pieces of `text` without [CLS]/[SEP]. Throws pnpovss::Error when text is not UTF-8.
  std::vector<std::string> tokenize(const std::string& text) const;
  // [CLS] ids(text) [SEP], as tokenizer(text)["input_ids"].
  std::vector<int64_t> encode(const std::string& text) const;
  // encode() of each text, padded with the pad id (mask 0) to the longest (padding='longest').
  Encoded encode_batch(const std::vector<std::string>& texts) const;

  // Id of a token; throws pnpovss::Error when it is not in the vocabulary.
  int64_t token_id(const std::string& token) const;
  // Token of an id; throws pnpovss::Error when out of range.
  const std::string& token(int64_t id) const;
  bool contains(const std::string& token) const { return index_.count(token) != 0; }

  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t mask_id() const { return mask_id_; }
  size_t vocab_size() const { return vocab_.size(); }
  int64_t model_max_length() const { return options_.model_max_length; }
  const Options& options() const { return options_; }

 private:
  std::vector<std::u32string> basic_tokenize(const std::u32string& text) const;
  void wordpiece(const std::u32string& word, std::vector<std::string>& out) const;
  // Length of the special token that starts at `pos`, or 0.
  size_t special_at(const std::u32string& text, size_t pos) const;

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int64_t> index_;
  Options options_;
  std::vector<std::u32string> special_tokens_;  // longest first
  std::vector<std::u32string> never_split_;
  int64_t cls_id_ = 0, sep_id_ = 0, pad_id_ = 0, unk_id_ = 0, mask_id_ = 0;
};

}  // namespace pnpovss::text
