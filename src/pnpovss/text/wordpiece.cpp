#include "pnpovss/text/wordpiece.h"

#include <algorithm>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/text/unicode.h"

namespace pnpovss::text {

namespace {

// Python's readlines() in text mode ends a line at "\n", "\r" or "\r\n" (universal newlines),
// and load_vocab keeps everything else of the line, including spaces.
std::vector<std::string> split_vocab_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find_first_of("\r\n", start);
    if (end == std::string::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
    if (text[end] == '\r' && start < text.size() && text[start] == '\n') ++start;
  }
  return lines;
}

std::vector<std::string> read_vocab(const std::string& path) {
  if (!io::file_exists(path)) {
    throw Error("tokenizer vocabulary '" + path +
                "' not found: the model folder needs the vocab.txt of its BERT tokenizer");
  }
  std::string text = io::read_text_file(path);
  // A UTF-8 byte order mark is not part of the first token.
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
  if (!unicode::is_valid_utf8(text)) throw Error("tokenizer vocabulary '" + path + "' is not valid UTF-8");
  std::vector<std::string> vocab = split_vocab_lines(text);
  if (vocab.empty()) throw Error("tokenizer vocabulary '" + path + "' is empty");
  return vocab;
}

// A special token is a plain string or a serialized AddedToken {"content": ...}.
bool read_token_field(const nlohmann::json& obj, const char* key, const std::string& where,
                      std::string& out) {
  if (!obj.is_object()) return false;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  if (it->is_string()) {
    out = it->get<std::string>();
    return true;
  }
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    out = (*it)["content"].get<std::string>();
    return true;
  }
  throw Error(where + ": field '" + key + "' must be a string or an object with \"content\"");
}

void read_token_list(const nlohmann::json& obj, const char* key, const std::string& where,
                     std::vector<std::string>& out) {
  if (!obj.is_object()) return;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  if (!it->is_array()) throw Error(where + ": field '" + key + "' must be a list");
  for (const auto& item : *it) {
    nlohmann::json wrapper = {{"token", item}};
    std::string token;
    if (!read_token_field(wrapper, "token", where + " (" + key + ")", token)) {
      throw Error(where + ": field '" + key + "' holds a null entry");
    }
    out.push_back(token);
  }
}

void read_special_tokens(const nlohmann::json& obj, const std::string& where,
                         WordPieceTokenizer::Options& options) {
  read_token_field(obj, "unk_token", where, options.unk_token);
  read_token_field(obj, "sep_token", where, options.sep_token);
  read_token_field(obj, "pad_token", where, options.pad_token);
  read_token_field(obj, "cls_token", where, options.cls_token);
  read_token_field(obj, "mask_token", where, options.mask_token);
  read_token_list(obj, "additional_special_tokens", where, options.extra_special_tokens);
}

// Hugging Face stores "no limit" as a huge float (1e30) or leaves the field out.
int64_t read_max_length(const nlohmann::json& config, const std::string& where) {
  constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();
  auto it = config.find("model_max_length");
  if (it == config.end() || it->is_null()) return kUnlimited;
  if (it->is_number_integer() || it->is_number_unsigned()) {
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(kUnlimited)) return kUnlimited;
    const int64_t value = it->get<int64_t>();
    if (value <= 0) throw Error(where + ": field 'model_max_length' must be positive");
    return value;
  }
  if (it->is_number_float()) {
    const double value = it->get<double>();
    if (!(value > 0)) throw Error(where + ": field 'model_max_length' must be positive");
    return value >= 9.2e18 ? kUnlimited : static_cast<int64_t>(value);
  }
  throw Error(where + ": field 'model_max_length' must be a number");
}

void read_tokenizer_config(const std::string& path, WordPieceTokenizer::Options& options) {
  const nlohmann::json config = io::read_json_file(path);
  if (!config.is_object()) throw Error("'" + path + "' must hold a JSON object");
  options.do_lower_case = io::json_bool(config, "do_lower_case", options.do_lower_case, path);
  options.do_basic_tokenize = io::json_bool(config, "do_basic_tokenize", options.do_basic_tokenize, path);
  options.tokenize_chinese_chars =
      io::json_bool(config, "tokenize_chinese_chars", options.tokenize_chinese_chars, path);
  auto accents = config.find("strip_accents");
  if (accents != config.end() && !accents->is_null()) {
    if (!accents->is_boolean()) throw Error(path + ": field 'strip_accents' must be true, false or null");
    options.strip_accents = accents->get<bool>() ? 1 : 0;
  }
  read_token_list(config, "never_split", path, options.never_split);
  read_special_tokens(config, path, options);
  options.model_max_length = read_max_length(config, path);
  auto added = config.find("added_tokens_decoder");
  if (added != config.end() && added->is_object()) {
    for (const auto& [id, entry] : added->items()) {
      nlohmann::json wrapper = {{"token", entry}};
      std::string token;
      if (read_token_field(wrapper, "token", path + " (added_tokens_decoder " + id + ")", token)) {
        options.extra_special_tokens.push_back(token);
      }
    }
  }
}

bool is_ascii_punctuation(char32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

// BasicTokenizer._is_punctuation: ASCII non-alphanumerics count even where Unicode calls
// them symbols ("$", "^", "`").
bool is_punctuation(char32_t c) { return is_ascii_punctuation(c) || unicode::is_punctuation_category(c); }

// BasicTokenizer._is_whitespace.
bool is_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || unicode::is_space_separator(c);
}

// BasicTokenizer._is_control: tab, newline and carriage return are whitespace instead.
bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return unicode::is_other(c);
}

// BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks only (not kana or hangul).
bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Python's str.split() with no argument.
std::vector<std::u32string> split_whitespace(const std::u32string& text) {
  std::vector<std::u32string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && unicode::is_python_space(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && !unicode::is_python_space(text[i])) ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

std::u32string clean_text(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    out.push_back(is_whitespace(c) ? U' ' : c);
  }
  return out;
}

std::u32string space_around_cjk(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (is_cjk(c)) {
      out.push_back(U' ');
      out.push_back(c);
      out.push_back(U' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::u32string lower(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) unicode::append_lower(c, out);
  return out;
}

std::u32string strip_accents(const std::u32string& text) {
  std::u32string out;
  for (char32_t c : unicode::nfd(text)) {
    if (!unicode::is_nonspacing_mark(c)) out.push_back(c);
  }
  return out;
}

void split_on_punctuation(const std::u32string& word, std::vector<std::u32string>& out) {
  std::u32string current;
  for (char32_t c : word) {
    if (is_punctuation(c)) {
      if (!current.empty()) out.push_back(std::move(current));
      current.clear();
      out.push_back(std::u32string(1, c));
    } else {
      current.push_back(c);
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
}

bool listed(const std::vector<std::u32string>& list, const std::u32string& word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

}  // namespace

WordPieceTokenizer WordPieceTokenizer::from_dir(const std::string& model_dir) {
  const std::string vocab_path = model_dir + "/vocab.txt";
  std::vector<std::string> vocab = read_vocab(vocab_path);
  Options options;
  options.model_max_length = std::numeric_limits<int64_t>::max();
  const std::string config_path = model_dir + "/tokenizer_config.json";
  if (io::file_exists(config_path)) read_tokenizer_config(config_path, options);
  // Hugging Face lets special_tokens_map.json override the tokenizer config.
  const std::string map_path = model_dir + "/special_tokens_map.json";
  if (io::file_exists(map_path)) {
    const nlohmann::json map = io::read_json_file(map_path);
    if (!map.is_object()) throw Error("'" + map_path + "' must hold a JSON object");
    read_special_tokens(map, map_path, options);
  }
  return WordPieceTokenizer(std::move(vocab), std::move(options), vocab_path);
}

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, Options options,
                                       const std::string& origin)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  if (vocab_.empty()) throw Error("tokenizer vocabulary " + origin + " is empty");
  index_.reserve(vocab_.size());
  for (size_t i = 0; i < vocab_.size(); ++i) {
    if (!unicode::is_valid_utf8(vocab_[i])) {
      throw Error("tokenizer vocabulary " + origin + ": token " + std::to_string(i) + " is not valid UTF-8");
    }
    if (!index_.emplace(vocab_[i], static_cast<int64_t>(i)).second) {
      throw Error("tokenizer vocabulary " + origin + ": token '" + vocab_[i] + "' appears twice (ids " +
                  std::to_string(index_.at(vocab_[i])) + " and " + std::to_string(i) +
                  "); the file is damaged or not a WordPiece vocabulary");
    }
  }
  const auto special_id = [&](const std::string& token, const char* role) {
    auto it = index_.find(token);
    if (it == index_.end()) {
      throw Error("tokenizer vocabulary " + origin + " lacks the " + role + " token '" + token +
                  "' named by the tokenizer config");
    }
    return it->second;
  };
  unk_id_ = special_id(options_.unk_token, "unknown");
  sep_id_ = special_id(options_.sep_token, "separator");
  pad_id_ = special_id(options_.pad_token, "padding");
  cls_id_ = special_id(options_.cls_token, "classifier");
  mask_id_ = special_id(options_.mask_token, "mask");
  std::vector<std::string> specials = {options_.unk_token, options_.sep_token, options_.pad_token,
                                       options_.cls_token, options_.mask_token};
  for (const std::string& extra : options_.extra_special_tokens) {
    special_id(extra, "special");
    specials.push_back(extra);
  }
  for (const std::string& token : specials) {
    if (token.empty()) continue;
    std::u32string decoded = unicode::decode_utf8(token, "special token");
    if (!listed(special_tokens_, decoded)) special_tokens_.push_back(std::move(decoded));
  }
  // At one position the longest special token wins, like the added-token trie of Hugging Face.
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(),
                   [](const std::u32string& a, const std::u32string& b) { return a.size() > b.size(); });
  for (const std::string& token : options_.never_split) {
    never_split_.push_back(unicode::decode_utf8(token, "never_split token"));
  }
}

size_t WordPieceTokenizer::special_at(const std::u32string& text, size_t pos) const {
  for (const std::u32string& token : special_tokens_) {
    if (text.compare(pos, token.size(), token) == 0) return token.size();
  }
  return 0;
}

std::vector<std::u32string> WordPieceTokenizer::basic_tokenize(const std::u32string& text) const {
  std::u32string prepared = clean_text(text);
  if (options_.tokenize_chinese_chars) prepared = space_around_cjk(prepared);
  prepared = unicode::nfc(prepared);
  const bool strip = options_.do_lower_case ? options_.strip_accents != 0 : options_.strip_accents == 1;
  std::vector<std::u32string> pieces;
  for (std::u32string& word : split_whitespace(prepared)) {
    if (listed(special_tokens_, word) || listed(never_split_, word)) {
      pieces.push_back(std::move(word));
      continue;
    }
    if (options_.do_lower_case) word = lower(word);
    if (strip) word = strip_accents(word);
    split_on_punctuation(word, pieces);
  }
  // The reference re-splits the joined pieces on whitespace; lower-casing or NFD never create
  // whitespace, but an empty piece (a word that was only accents) must disappear.
  std::vector<std::u32string> out;
  for (const std::u32string& piece : pieces) {
    for (std::u32string& word : split_whitespace(piece)) out.push_back(std::move(word));
  }
  return out;
}

void WordPieceTokenizer::wordpiece(const std::u32string& word, std::vector<std::string>& out) const {
  if (word.size() > options_.max_input_chars_per_word) {
    out.push_back(options_.unk_token);
    return;
  }
  // Byte offset of each character, so that candidate pieces are substrings of one encoding.
  const std::string bytes = unicode::encode_utf8(word);
  std::vector<size_t> offset(word.size() + 1, 0);
  for (size_t i = 0; i < word.size(); ++i) {
    const char32_t c = word[i];
    offset[i + 1] = offset[i] + (c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4);
  }
  std::vector<std::string> pieces;
  size_t start = 0;
  std::string candidate;
  while (start < word.size()) {
    size_t end = word.size();
    bool found = false;
    while (start < end) {
      candidate = start > 0 ? "##" : "";
      candidate.append(bytes, offset[start], offset[end] - offset[start]);
      if (index_.count(candidate) != 0) {
        found = true;
        break;
      }
      --end;
    }
    if (!found) {
      out.push_back(options_.unk_token);
      return;
    }
    pieces.push_back(candidate);
    start = end;
  }
  for (std::string& piece : pieces) out.push_back(std::move(piece));
}

std::vector<std::string> WordPieceTokenizer::tokenize(const std::string& text) const {
  const std::u32string decoded = unicode::decode_utf8(text, "text to tokenize");
  // PreTrainedTokenizer.tokenize: lower-case character by character except inside special
  // tokens (so "[MASK]" survives), then split the text at special tokens.
  std::vector<std::pair<std::u32string, bool>> segments;  // (text, is special)
  std::u32string current;
  size_t pos = 0;
  while (pos < decoded.size()) {
    const size_t len = special_at(decoded, pos);
    if (len > 0) {
      if (!current.empty()) segments.emplace_back(std::move(current), false);
      current.clear();
      segments.emplace_back(decoded.substr(pos, len), true);
      pos += len;
      continue;
    }
    if (options_.do_lower_case) {
      unicode::append_lower(decoded[pos], current);
    } else {
      current.push_back(decoded[pos]);
    }
    ++pos;
  }
  if (!current.empty()) segments.emplace_back(std::move(current), false);

  std::vector<std::string> out;
  for (const auto& [segment, special] : segments) {
    if (special) {
      out.push_back(unicode::encode_utf8(segment));
      continue;
    }
    const std::vector<std::u32string> words =
        options_.do_basic_tokenize ? basic_tokenize(segment) : split_whitespace(segment);
    for (const std::u32string& word : words) {
      // BertTokenizer._tokenize passes never_split words through without WordPiece.
      if (options_.do_basic_tokenize && listed(never_split_, word)) {
        out.push_back(unicode::encode_utf8(word));
      } else {
        wordpiece(word, out);
      }
    }
  }
  return out;
}

std::vector<int64_t> WordPieceTokenizer::encode(const std::string& text) const {
  const std::vector<std::string> pieces = tokenize(text);
  std::vector<int64_t> ids;
  ids.reserve(pieces.size() + 2);
  ids.push_back(cls_id_);
  for (const std::string& piece : pieces) {
    auto it = index_.find(piece);
    ids.push_back(it == index_.end() ? unk_id_ : it->second);
  }
  ids.push_back(sep_id_);
  return ids;
}

WordPieceTokenizer::Encoded WordPieceTokenizer::encode_batch(const std::vector<std::string>& texts) const {
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(texts.size());
  size_t longest = 0;
  for (const std::string& text : texts) {
    rows.push_back(encode(text));
    longest = std::max(longest, rows.back().size());
  }
  Encoded batch;
  batch.rows = static_cast<int64_t>(rows.size());
  batch.cols = static_cast<int64_t>(longest);
  batch.ids.assign(rows.size() * longest, pad_id_);
  batch.mask.assign(rows.size() * longest, 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    std::copy(rows[r].begin(), rows[r].end(), batch.ids.begin() + static_cast<std::ptrdiff_t>(r * longest));
    std::fill_n(batch.mask.begin() + static_cast<std::ptrdiff_t>(r * longest), rows[r].size(), 1);
  }
  return batch;
}

int64_t WordPieceTokenizer::token_id(const std::string& token) const {
  auto it = index_.find(token);
  if (it == index_.end()) throw Error("token '" + token + "' is not in the tokenizer vocabulary");
  return it->second;
}

const std::string& WordPieceTokenizer::token(int64_t id) const {
  if (id < 0 || static_cast<uint64_t>(id) >= vocab_.size()) {
    throw Error("token id " + std::to_string(id) + " is outside the tokenizer vocabulary (size " +
                std::to_string(vocab_.size()) + ")");
  }
  return vocab_[static_cast<size_t>(id)];
}

}  // namespace pnpovss::text
