// Byte-level byte-pair encoding, the core shared by the CLIP and GPT-2/RoBERTa tokenizers:
// every byte of a pre-tokenized word becomes one printable symbol (the GPT-2 byte map), then
// adjacent symbols are merged by rank, lowest first, exactly as the reference Python bpe()
// functions do (openai/CLIP simple_tokenizer.py, transformers' CLIPTokenizer/RobertaTokenizer).
//
// Thread safety: a ByteBpe is immutable after construction except for an internal cache of
// encoded words, which is guarded by a mutex; all methods may run concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pnpovss::text {

// The GPT-2 byte -> printable-unicode map (bytes_to_unicode): the UTF-8 text of the symbol
// standing for each byte. Printable Latin-1 bytes stand for themselves; the other 68 bytes map
// to U+0100 and up, in byte order.
const std::array<std::string, 256>& byte_symbols();

class ByteBpe {
 public:
  // vocab.json (token -> id) and merges.txt (a first line starting with "#version" is skipped;
  // blank lines are ignored; every other line is two symbols separated by one space).
  // end_of_word: "" for GPT-2/RoBERTa, "</w>" for CLIP (appended to the last symbol of each word
  // before merging). Throws pnpovss::Error naming the file on missing or malformed input.
  static ByteBpe from_files(const std::string& vocab_json, const std::string& merges_txt, std::string end_of_word);
  // `merges` in rank order (first = merged first). `origin` names the source in messages.
  // Throws pnpovss::Error for duplicate ids, negative ids or tokens that are not UTF-8.
  ByteBpe(std::unordered_map<std::string, int64_t> vocab, std::vector<std::pair<std::string, std::string>> merges,
          std::string end_of_word, const std::string& origin);

  // BPE tokens of one pre-tokenized word given as raw UTF-8 bytes (each byte mapped through
  // byte_symbols(), then merged lowest rank first, as the reference bpe()). An empty word gives
  // no tokens.
  std::vector<std::string> encode_word(const std::string& word_utf8) const;

  int64_t id(const std::string& token) const;  // throws pnpovss::Error when absent
  bool contains(const std::string& token) const;
  const std::string& token(int64_t id) const;  // throws pnpovss::Error when out of range
  size_t vocab_size() const;                   // entries of vocab.json
  size_t merge_count() const;
  const std::string& end_of_word() const { return end_of_word_; }
  const std::string& origin() const { return origin_; }

 private:
  struct PairHash {
    size_t operator()(const std::pair<std::string, std::string>& p) const;
  };
  struct Cache;  // encoded words, behind a mutex

  std::vector<std::string> merge_symbols(std::vector<std::string> symbols) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<int64_t, std::string> tokens_;  // by id (vocab.json may leave ids out)
  std::unordered_map<std::pair<std::string, std::string>, size_t, PairHash> ranks_;
  std::string end_of_word_;
  std::string origin_;
  std::shared_ptr<Cache> cache_;
};

}  // namespace pnpovss::text
