#include "pnpovss/text/byte_bpe.h"

#include <limits>
#include <mutex>

#include <nlohmann/json.hpp>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/text/unicode.h"

namespace pnpovss::text {

namespace {

// GPT-2's bytes_to_unicode(): bytes that are printable Latin-1 characters stand for themselves,
// the others (controls, space, soft hyphen...) take U+0100, U+0101, ... in byte order, so that
// no BPE symbol is whitespace or a control character.
std::array<std::string, 256> make_byte_symbols() {
  auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
  std::array<std::string, 256> out;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const char32_t cp = printable(b) ? static_cast<char32_t>(b) : next++;
    out[static_cast<size_t>(b)] = unicode::encode_utf8(std::u32string(1, cp));
  }
  return out;
}

// Words encoded so far. Bounded: cleared when full, since a long-running process may see an
// unbounded number of distinct words.
constexpr size_t kCacheLimit = 65536;

std::unordered_map<std::string, int64_t> read_vocab_json(const std::string& path) {
  if (!io::file_exists(path))
    throw Error("tokenizer vocabulary '" + path + "' not found: the model folder needs its vocab.json");
  const nlohmann::json json = io::read_json_file(path);
  if (!json.is_object() || json.empty())
    throw Error("tokenizer vocabulary '" + path + "' must be a non-empty JSON object of token -> id");
  std::unordered_map<std::string, int64_t> vocab;
  vocab.reserve(json.size());
  for (const auto& [token, id] : json.items()) {
    if (!id.is_number_integer())
      throw Error("tokenizer vocabulary '" + path + "': the id of token '" + token + "' is not an integer");
    vocab.emplace(token, id.get<int64_t>());
  }
  return vocab;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

std::vector<std::pair<std::string, std::string>> read_merges_txt(const std::string& path) {
  if (!io::file_exists(path))
    throw Error("tokenizer merges '" + path + "' not found: the model folder needs its merges.txt");
  std::string text = io::read_text_file(path);
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
  if (!unicode::is_valid_utf8(text)) throw Error("tokenizer merges '" + path + "' is not valid UTF-8");
  std::vector<std::pair<std::string, std::string>> merges;
  const std::vector<std::string> lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (i == 0 && line.rfind("#version", 0) == 0) continue;
    const size_t a0 = line.find_first_not_of(" \t");
    const size_t a1 = line.find_first_of(" \t", a0);
    const size_t b0 = a1 == std::string::npos ? a1 : line.find_first_not_of(" \t", a1);
    const size_t b1 = b0 == std::string::npos ? b0 : line.find_first_of(" \t", b0);
    const bool trailing = b1 != std::string::npos && line.find_first_not_of(" \t", b1) != std::string::npos;
    if (b0 == std::string::npos || trailing)
      throw Error("tokenizer merges '" + path + "': line " + std::to_string(i + 1) +
                  " is not two symbols separated by a space: '" + line + "'");
    merges.emplace_back(line.substr(a0, a1 - a0), line.substr(b0, b1 == std::string::npos ? b1 : b1 - b0));
  }
  if (merges.empty()) throw Error("tokenizer merges '" + path + "' holds no merges");
  return merges;
}

}  // namespace

struct ByteBpe::Cache {
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<std::string>> words;
};

size_t ByteBpe::PairHash::operator()(const std::pair<std::string, std::string>& p) const {
  const size_t a = std::hash<std::string>()(p.first);
  return a ^ (std::hash<std::string>()(p.second) + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
}

const std::array<std::string, 256>& byte_symbols() {
  static const std::array<std::string, 256> symbols = make_byte_symbols();
  return symbols;
}

ByteBpe ByteBpe::from_files(const std::string& vocab_json, const std::string& merges_txt, std::string end_of_word) {
  return ByteBpe(read_vocab_json(vocab_json), read_merges_txt(merges_txt), std::move(end_of_word),
                 vocab_json + " and " + merges_txt);
}

ByteBpe::ByteBpe(std::unordered_map<std::string, int64_t> vocab, std::vector<std::pair<std::string, std::string>> merges,
                 std::string end_of_word, const std::string& origin)
    : vocab_(std::move(vocab)), end_of_word_(std::move(end_of_word)), origin_(origin), cache_(std::make_shared<Cache>()) {
  if (vocab_.empty()) throw Error("tokenizer vocabulary " + origin + " is empty");
  // Ids map to tokens in a hash map rather than a table indexed by id: a vocab.json of a few
  // bytes may name an id near 2^31, which such a table would have to hold.
  tokens_.reserve(vocab_.size());
  for (const auto& [token, id] : vocab_) {
    if (id < 0 || id >= std::numeric_limits<int32_t>::max())
      throw Error("tokenizer vocabulary " + origin + ": token '" + token + "' has the invalid id " + std::to_string(id));
    if (!unicode::is_valid_utf8(token))
      throw Error("tokenizer vocabulary " + origin + ": a token is not valid UTF-8");
    const auto [earlier, added] = tokens_.emplace(id, token);
    if (!added)
      throw Error("tokenizer vocabulary " + origin + ": id " + std::to_string(id) + " is given to both '" +
                  earlier->second + "' and '" + token + "'");
  }
  // A pair listed twice keeps its later rank, as dict(zip(merges, range(n))) does.
  ranks_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) ranks_[std::move(merges[r])] = r;
}

std::vector<std::string> ByteBpe::merge_symbols(std::vector<std::string> word) const {
  // The reference loop: find the adjacent pair of lowest rank, merge all its non-overlapping
  // occurrences left to right, repeat until no adjacent pair has a rank.
  while (word.size() > 1) {
    size_t best = std::numeric_limits<size_t>::max();
    size_t best_at = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks_.find({word[i], word[i + 1]});
      if (it != ranks_.end() && it->second < best) {
        best = it->second;
        best_at = i;
      }
    }
    if (best == std::numeric_limits<size_t>::max()) break;
    const std::string first = word[best_at], second = word[best_at + 1];
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(std::move(word[i]));
        ++i;
      }
    }
    word = std::move(merged);
  }
  return word;
}

std::vector<std::string> ByteBpe::encode_word(const std::string& word_utf8) const {
  if (word_utf8.empty()) return {};
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->words.find(word_utf8);
    if (it != cache_->words.end()) return it->second;
  }
  const auto& symbols = byte_symbols();
  std::vector<std::string> word;
  word.reserve(word_utf8.size());
  for (char c : word_utf8) word.push_back(symbols[static_cast<unsigned char>(c)]);
  word.back() += end_of_word_;
  std::vector<std::string> tokens = merge_symbols(std::move(word));
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->words.size() >= kCacheLimit) cache_->words.clear();
  cache_->words.emplace(word_utf8, tokens);
  return tokens;
}

int64_t ByteBpe::id(const std::string& token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) throw Error("token '" + token + "' is not in the vocabulary " + origin_);
  return it->second;
}

bool ByteBpe::contains(const std::string& token) const { return vocab_.count(token) != 0; }

const std::string& ByteBpe::token(int64_t id) const {
  const auto it = tokens_.find(id);
  if (it == tokens_.end()) throw Error("token id " + std::to_string(id) + " is not in the vocabulary " + origin_);
  return it->second;
}

size_t ByteBpe::vocab_size() const { return vocab_.size(); }
size_t ByteBpe::merge_count() const { return ranks_.size(); }

}  // namespace pnpovss::text
