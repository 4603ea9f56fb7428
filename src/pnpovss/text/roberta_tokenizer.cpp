#include "pnpovss/text/roberta_tokenizer.h"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/text/unicode.h"
#include "pnpovss/text/unicode_classes.h"

namespace pnpovss::text {
namespace {

// ---- tokenizer files --------------------------------------------------------------------

// A special token is a plain string (role defaults kept) or a serialized AddedToken
// {"content": ..., "lstrip": ..., "rstrip": ...}.
void read_token(const nlohmann::json& obj, const char* key, const std::string& where,
                RobertaTokenizer::SpecialToken& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  if (it->is_string()) {
    out.content = it->get<std::string>();
  } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    out.content = (*it)["content"].get<std::string>();
    out.lstrip = io::json_bool(*it, "lstrip", out.lstrip, where + " (" + key + ")");
    out.rstrip = io::json_bool(*it, "rstrip", out.rstrip, where + " (" + key + ")");
  } else {
    throw Error(where + ": field '" + key + "' must be a string or an object with \"content\"");
  }
  if (out.content.empty()) throw Error(where + ": field '" + key + "' is empty");
}

void read_options(const std::string& path, RobertaTokenizer::Options& o, bool is_config) {
  const nlohmann::json json = io::read_json_file(path);
  if (!json.is_object()) throw Error("'" + path + "' must hold a JSON object");
  // RoBERTa's cls and sep tokens are its bos and eos tokens.
  read_token(json, "bos_token", path, o.bos);
  read_token(json, "eos_token", path, o.eos);
  read_token(json, "unk_token", path, o.unk);
  read_token(json, "pad_token", path, o.pad);
  read_token(json, "mask_token", path, o.mask);
  if (!is_config) return;
  o.add_prefix_space = io::json_bool(json, "add_prefix_space", o.add_prefix_space, path);
  auto it = json.find("model_max_length");
  if (it == json.end() || it->is_null()) return;
  if (!it->is_number() || !(it->get<double>() >= 2))
    throw Error(path + ": field 'model_max_length' must be a number of at least 2");
  // Hugging Face writes "no limit" as 1e30.
  const double value = it->get<double>();
  o.model_max_length = value >= 9.2e18 ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(value);
}

// ---- GPT-2 pre-tokenizer ------------------------------------------------------------------

bool is_space(char32_t c) { return unicode::is_regex_space(c); }
bool is_other(char32_t c) { return !is_space(c) && !unicode::is_letter(c) && !unicode::is_number(c); }

size_t run_of(const std::u32string& text, size_t pos, bool (*in_class)(char32_t)) {
  size_t end = pos;
  while (end < text.size() && in_class(text[end])) ++end;
  return end - pos;
}

bool letter(char32_t c) { return unicode::is_letter(c); }
bool number(char32_t c) { return unicode::is_number(c); }

// Length of the match of the pattern at `pos` (> 0 for any pos < size: \s+ or a class run
// always matches one character at least).
size_t match_length(const std::u32string& text, size_t pos) {
  const size_t n = text.size();
  const char32_t c = text[pos];
  // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
  if (c == U'\'' && pos + 1 < n) {
    const char32_t a = text[pos + 1];
    if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
    if (pos + 2 < n) {
      const char32_t b = text[pos + 2];
      if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return 3;
    }
  }
  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional literal space, then a run.
  const size_t lead = (c == U' ' && pos + 1 < n) ? 1 : 0;
  for (auto in_class : {letter, number, is_other}) {
    if (lead && in_class(text[pos + 1])) return 1 + run_of(text, pos + 1, in_class);
    if (in_class(c)) return run_of(text, pos, in_class);
  }
  // \s+(?!\S): the whitespace run, less its last character when a non-space follows it (that
  // character then starts the next word); \s+ takes a single character that cannot do so.
  const size_t spaces = run_of(text, pos, is_space);
  if (pos + spaces == n) return spaces;
  return spaces > 1 ? spaces - 1 : 1;
}

}  // namespace

std::vector<std::string> gpt2_pretokenize(const std::u32string& text) {
  std::vector<std::string> words;
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = match_length(text, pos);
    words.push_back(unicode::encode_utf8(text.substr(pos, len)));
    pos += len;
  }
  return words;
}

RobertaTokenizer RobertaTokenizer::from_dir(const std::string& dir) {
  ByteBpe bpe = ByteBpe::from_files(dir + "/vocab.json", dir + "/merges.txt", "");
  Options options;
  const std::string config_path = dir + "/tokenizer_config.json";
  if (io::file_exists(config_path)) read_options(config_path, options, true);
  // Hugging Face lets special_tokens_map.json override the tokenizer config.
  const std::string map_path = dir + "/special_tokens_map.json";
  if (io::file_exists(map_path)) read_options(map_path, options, false);
  return RobertaTokenizer(std::move(bpe), options);
}

RobertaTokenizer::RobertaTokenizer(ByteBpe bpe, Options options) : bpe_(std::move(bpe)), options_(std::move(options)) {
  auto special_id = [&](const SpecialToken& token, const char* role) {
    if (!bpe_.contains(token.content))
      throw Error("tokenizer vocabulary " + bpe_.origin() + " lacks the " + role + " token '" + token.content + "'");
    specials_.emplace_back(unicode::decode_utf8(token.content, "special token"), token);
    return bpe_.id(token.content);
  };
  bos_id_ = special_id(options_.bos, "start");
  eos_id_ = special_id(options_.eos, "end");
  unk_id_ = special_id(options_.unk, "unknown");
  pad_id_ = special_id(options_.pad, "padding");
  mask_id_ = special_id(options_.mask, "mask");
  std::stable_sort(specials_.begin(), specials_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

const RobertaTokenizer::SpecialToken* RobertaTokenizer::special_at(const std::u32string& text, size_t pos) const {
  for (const auto& [literal, token] : specials_)
    if (text.compare(pos, literal.size(), literal) == 0) return &token;
  return nullptr;
}

void RobertaTokenizer::tokenize_words(const std::u32string& text, std::vector<std::string>& out) const {
  for (const std::string& word : gpt2_pretokenize(text))
    for (auto& token : bpe_.encode_word(word)) out.push_back(std::move(token));
}

std::vector<std::string> RobertaTokenizer::tokenize(const std::string& text_utf8) const {
  std::u32string text = unicode::decode_utf8(text_utf8, "text");
  if (options_.add_prefix_space && !text.empty() && !unicode::is_python_space(text[0])) text.insert(0, 1, U' ');
  // PreTrainedTokenizer.tokenize: split out the special tokens (earliest, then longest match),
  // strip whitespace next to those with lstrip/rstrip (str.rstrip/lstrip), BPE the rest.
  struct Piece {
    std::u32string text;
    const SpecialToken* special = nullptr;
  };
  std::vector<Piece> pieces(1);
  for (size_t pos = 0; pos < text.size();) {
    if (const SpecialToken* s = special_at(text, pos)) {
      const size_t length = unicode::decode_utf8(s->content, "special token").size();
      pieces.push_back({U"", s});
      pieces.push_back({});
      pos += length;
    } else {
      pieces.back().text.push_back(text[pos++]);
    }
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (!pieces[i].special) continue;
    std::u32string& left = pieces[i - 1].text;
    std::u32string& right = pieces[i + 1].text;
    if (pieces[i].special->rstrip)
      right.erase(0, std::find_if(right.begin(), right.end(), [](char32_t c) { return !unicode::is_python_space(c); }) -
                         right.begin());
    if (pieces[i].special->lstrip)
      while (!left.empty() && unicode::is_python_space(left.back())) left.pop_back();
  }
  std::vector<std::string> out;
  for (const Piece& p : pieces) {
    if (p.special)
      out.push_back(p.special->content);
    else
      tokenize_words(p.text, out);
  }
  return out;
}

std::vector<int64_t> RobertaTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids{bos_id_};
  for (const auto& token : tokenize(text)) ids.push_back(token_id(token));
  ids.push_back(eos_id_);
  return ids;
}

RobertaTokenizer::Encoded RobertaTokenizer::encode_batch(const std::vector<std::string>& texts) const {
  std::vector<std::vector<int64_t>> rows;
  size_t cols = 0;
  for (const auto& t : texts) {
    rows.push_back(encode(t));
    cols = std::max(cols, rows.back().size());
  }
  Encoded e;
  e.rows = static_cast<int64_t>(rows.size());
  e.cols = static_cast<int64_t>(cols);
  for (const auto& r : rows) {
    for (size_t i = 0; i < cols; ++i) {
      e.ids.push_back(i < r.size() ? r[i] : pad_id_);
      e.mask.push_back(i < r.size() ? 1 : 0);
    }
  }
  return e;
}

int64_t RobertaTokenizer::token_id(const std::string& token) const {
  return bpe_.contains(token) ? bpe_.id(token) : unk_id_;
}

const std::string& RobertaTokenizer::token(int64_t id) const { return bpe_.token(id); }

bool RobertaTokenizer::is_special(const std::string& token) const {
  for (const SpecialToken* s : {&options_.bos, &options_.eos, &options_.unk, &options_.pad, &options_.mask})
    if (token == s->content) return true;
  return false;
}

}  // namespace pnpovss::text
