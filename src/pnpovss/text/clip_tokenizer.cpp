#include "pnpovss/text/clip_tokenizer.h"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/text/text_fix.h"
#include "pnpovss/text/unicode.h"
#include "pnpovss/text/unicode_classes.h"

namespace pnpovss::text {

namespace {

// The literal special tokens of CLIP's pre-tokenizer pattern (not the configured ones).
const std::u32string kStartLiteral = U"<|startoftext|>";
const std::u32string kEndLiteral = U"<|endoftext|>";

// ---- tokenizer files --------------------------------------------------------------------

// A special token is a plain string or a serialized AddedToken {"content": ...}.
void read_token(const nlohmann::json& obj, const char* key, const std::string& where, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  if (it->is_string()) {
    out = it->get<std::string>();
  } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    out = (*it)["content"].get<std::string>();
  } else {
    throw Error(where + ": field '" + key + "' must be a string or an object with \"content\"");
  }
}

void read_specials(const std::string& path, ClipTokenizer::SpecialTokens& specials, int64_t* max_length) {
  const nlohmann::json json = io::read_json_file(path);
  if (!json.is_object()) throw Error("'" + path + "' must hold a JSON object");
  read_token(json, "bos_token", path, specials.bos);
  read_token(json, "eos_token", path, specials.eos);
  read_token(json, "pad_token", path, specials.pad);
  read_token(json, "unk_token", path, specials.unk);
  if (max_length == nullptr) return;
  auto it = json.find("model_max_length");
  if (it == json.end() || it->is_null()) return;
  if (!it->is_number() || !(it->get<double>() >= 2))
    throw Error(path + ": field 'model_max_length' must be a number of at least 2");
  // Hugging Face writes "no limit" as 1e30.
  const double value = it->get<double>();
  *max_length = value >= 9.2e18 ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(value);
}

// ---- Cleaning::kBasicTokenizer: BasicTokenizer(strip_accents=False, do_split_on_punc=False) --

bool is_bert_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || unicode::is_space_separator(c);
}

bool is_bert_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return unicode::is_other(c);
}

// BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks only.
bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Clean (drop NUL, U+FFFD and controls; whitespace -> space), space out CJK ideographs, NFC,
// split on whitespace, lower-case each word, and join the words with single spaces.
std::u32string basic_clean(const std::u32string& text) {
  std::u32string cleaned;
  cleaned.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || is_bert_control(c)) continue;
    if (is_bert_whitespace(c)) {
      cleaned.push_back(U' ');
    } else if (is_cjk(c)) {
      cleaned += {U' ', c, U' '};
    } else {
      cleaned.push_back(c);
    }
  }
  const std::u32string normalized = unicode::nfc(cleaned);
  std::u32string out;
  size_t i = 0;
  while (i < normalized.size()) {
    while (i < normalized.size() && unicode::is_python_space(normalized[i])) ++i;
    const size_t start = i;
    while (i < normalized.size() && !unicode::is_python_space(normalized[i])) ++i;
    if (i == start) break;
    if (!out.empty()) out.push_back(U' ');
    out += unicode::python_lower(normalized.substr(start, i - start));
  }
  return out;
}

// ---- Cleaning::kFtfy: fix_text, then whitespace_clean and lower case ----------------------

// fix_text, runs of \s (the `regex` module's) replaced by one space, str.strip(), str.lower()
// of the whole text.
std::u32string ftfy_clean(const std::u32string& text) {
  const std::u32string fixed = fix_text(text);
  std::u32string collapsed;
  collapsed.reserve(fixed.size());
  bool in_space = false;
  for (char32_t c : fixed) {
    if (unicode::is_regex_space(c)) {
      if (!in_space) collapsed.push_back(U' ');
      in_space = true;
    } else {
      collapsed.push_back(c);
      in_space = false;
    }
  }
  size_t first = 0, last = collapsed.size();
  while (first < last && unicode::is_python_space(collapsed[first])) ++first;
  while (last > first && unicode::is_python_space(collapsed[last - 1])) --last;
  return unicode::python_lower(collapsed.substr(first, last - first));
}

// ---- the pre-tokenizer pattern (regex module, IGNORECASE) -----------------------------------

// Simple case folding where it can matter after lower-casing: U+017F LONG S folds to "s" and
// U+212A KELVIN SIGN to "k".
char32_t fold(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c == 0x17F) return U's';
  if (c == 0x212A) return U'k';
  return c;
}

bool matches_at(const std::u32string& text, size_t pos, const std::u32string& literal) {
  if (text.size() - pos < literal.size()) return false;
  for (size_t i = 0; i < literal.size(); ++i)
    if (fold(text[pos + i]) != literal[i]) return false;
  return true;
}

// Length of the pattern's match at `pos`, or 0 when the character there is whitespace.
size_t match_length(const std::u32string& text, size_t pos) {
  for (const std::u32string* literal : {&kStartLiteral, &kEndLiteral})
    if (matches_at(text, pos, *literal)) return literal->size();
  static const std::u32string kContractions[] = {U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};
  for (const auto& c : kContractions)
    if (matches_at(text, pos, c)) return c.size();
  const char32_t c = text[pos];
  size_t end = pos + 1;
  if (unicode::is_letter(c)) {
    while (end < text.size() && unicode::is_letter(text[end])) ++end;
    return end - pos;
  }
  if (unicode::is_number(c)) return 1;
  if (unicode::is_regex_space(c)) return 0;
  auto other = [](char32_t x) { return !unicode::is_regex_space(x) && !unicode::is_letter(x) && !unicode::is_number(x); };
  while (end < text.size() && other(text[end])) ++end;
  return end - pos;
}

}  // namespace

ClipTokenizer ClipTokenizer::from_dir(const std::string& dir, Cleaning cleaning) {
  ByteBpe bpe = ByteBpe::from_files(dir + "/vocab.json", dir + "/merges.txt", "</w>");
  SpecialTokens specials;
  // CLIP's context length; real checkpoints also state it in tokenizer_config.json.
  int64_t max_length = 77;
  const std::string config_path = dir + "/tokenizer_config.json";
  if (io::file_exists(config_path)) read_specials(config_path, specials, &max_length);
  // Hugging Face lets special_tokens_map.json override the tokenizer config.
  const std::string map_path = dir + "/special_tokens_map.json";
  if (io::file_exists(map_path)) read_specials(map_path, specials, nullptr);
  return ClipTokenizer(std::move(bpe), max_length, specials, cleaning);
}

ClipTokenizer::ClipTokenizer(ByteBpe bpe, int64_t model_max_length)
    : ClipTokenizer(std::move(bpe), model_max_length, SpecialTokens()) {}

ClipTokenizer::ClipTokenizer(ByteBpe bpe, int64_t model_max_length, const SpecialTokens& specials,
                             Cleaning cleaning)
    : bpe_(std::move(bpe)), model_max_length_(model_max_length), specials_(specials), cleaning_(cleaning) {
  if (model_max_length_ < 2) throw Error("model_max_length must be at least 2 (start and end tokens)");
  auto special_id = [&](const std::string& token, const char* role) {
    if (token.empty() || !bpe_.contains(token))
      throw Error("tokenizer vocabulary " + bpe_.origin() + " lacks the " + role + " token '" + token + "'");
    return bpe_.id(token);
  };
  bos_id_ = special_id(specials_.bos, "start");
  eos_id_ = special_id(specials_.eos, "end");
  pad_id_ = special_id(specials_.pad, "padding");
  unk_id_ = special_id(specials_.unk, "unknown");
}

std::vector<std::string> ClipTokenizer::tokenize(const std::string& text) const {
  const std::u32string decoded = unicode::decode_utf8(text, "text");
  // PreTrainedTokenizer.tokenize first splits out the special tokens (exact, longest first);
  // only the text between them goes through the cleaning and the pattern, each piece on its own
  // (so a '<' of one piece does not stop HTML references being decoded in another).
  std::vector<std::u32string> specials;
  for (const std::string* s : {&specials_.bos, &specials_.eos, &specials_.pad, &specials_.unk})
    specials.push_back(unicode::decode_utf8(*s, "special token"));
  std::stable_sort(specials.begin(), specials.end(),
                   [](const std::u32string& a, const std::u32string& b) { return a.size() > b.size(); });

  std::vector<std::string> out;
  auto encode_chunk = [&](const std::u32string& chunk) {
    const std::u32string clean = cleaning_ == Cleaning::kFtfy ? ftfy_clean(chunk) : basic_clean(chunk);
    size_t pos = 0;
    while (pos < clean.size()) {
      const size_t n = match_length(clean, pos);
      if (n == 0) {
        ++pos;
        continue;
      }
      const std::u32string word = clean.substr(pos, n);
      pos += n;
      // The reference bpe() cache holds the two literals, so they are never split.
      if (word == kStartLiteral || word == kEndLiteral) {
        out.push_back(unicode::encode_utf8(word));
        continue;
      }
      for (auto& token : bpe_.encode_word(unicode::encode_utf8(word))) out.push_back(std::move(token));
    }
  };
  size_t start = 0, pos = 0;
  while (pos < decoded.size()) {
    const std::u32string* hit = nullptr;
    for (const auto& s : specials)
      if (!s.empty() && decoded.compare(pos, s.size(), s) == 0) {
        hit = &s;
        break;
      }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    encode_chunk(decoded.substr(start, pos - start));
    out.push_back(unicode::encode_utf8(*hit));
    pos += hit->size();
    start = pos;
  }
  encode_chunk(decoded.substr(start));
  return out;
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& text) const {
  const std::vector<std::string> tokens = tokenize(text);
  std::vector<int64_t> ids;
  ids.reserve(tokens.size() + 2);
  ids.push_back(bos_id_);
  // Hugging Face maps a token missing from the vocabulary (possible only with inconsistent
  // files) to the unknown token.
  const size_t room = static_cast<size_t>(std::min<int64_t>(model_max_length_ - 2, std::numeric_limits<int32_t>::max()));
  for (size_t i = 0; i < tokens.size() && i < room; ++i)
    ids.push_back(bpe_.contains(tokens[i]) ? bpe_.id(tokens[i]) : unk_id_);
  ids.push_back(eos_id_);
  return ids;
}

ClipTokenizer::Encoded ClipTokenizer::encode_batch(const std::vector<std::string>& texts) const {
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(texts.size());
  size_t longest = 0;
  for (const auto& t : texts) {
    rows.push_back(encode(t));
    longest = std::max(longest, rows.back().size());
  }
  Encoded out;
  out.rows = static_cast<int64_t>(rows.size());
  out.cols = static_cast<int64_t>(longest);
  out.ids.assign(rows.size() * longest, pad_id_);
  out.mask.assign(rows.size() * longest, 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    std::copy(rows[r].begin(), rows[r].end(), out.ids.begin() + static_cast<std::ptrdiff_t>(r * longest));
    std::fill_n(out.mask.begin() + static_cast<std::ptrdiff_t>(r * longest), rows[r].size(), 1);
  }
  return out;
}

}  // namespace pnpovss::text
