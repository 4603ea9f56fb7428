#include "pnpovss/segment/prompt.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "pnpovss/error.h"

namespace pnpovss::segment {
namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string ascii_lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  return s;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

class WordPiecePrompt : public PromptTokenizer {
 public:
  explicit WordPiecePrompt(std::shared_ptr<const text::WordPieceTokenizer> tok) : tok_(std::move(tok)) {}
  std::vector<std::string> tokenize(const std::string& text) const override { return tok_->tokenize(text); }
  std::vector<int64_t> encode(const std::string& text) const override { return tok_->encode(text); }
  const std::string& token(int64_t id) const override { return tok_->token(id); }
  // "[CLS]", "[SEP]", "[PAD]" or "[MASK]" inside a name would end or pad the prompt early.
  bool is_special(const std::string& piece) const override {
    const auto& o = tok_->options();
    return piece == o.cls_token || piece == o.sep_token || piece == o.pad_token || piece == o.mask_token;
  }

 private:
  std::shared_ptr<const text::WordPieceTokenizer> tok_;
};

class RobertaPrompt : public PromptTokenizer {
 public:
  explicit RobertaPrompt(text::RobertaTokenizer tok) : tok_(std::move(tok)) {}
  std::vector<std::string> tokenize(const std::string& text) const override { return tok_.tokenize(text); }
  std::vector<int64_t> encode(const std::string& text) const override { return tok_.encode(text); }
  const std::string& token(int64_t id) const override { return tok_.token(id); }
  bool is_special(const std::string& piece) const override { return tok_.is_special(piece); }

 private:
  text::RobertaTokenizer tok_;
};

// The tokens of `name` as it stands in the prompt, after a space.
std::vector<std::string> class_pieces(const PromptTokenizer& tok, const std::string& name, size_t index) {
  const std::string where = "class " + std::to_string(index + 1) + " ('" + name + "')";
  std::vector<std::string> pieces = tok.tokenize(" " + name);
  if (pieces.empty())
    throw InvalidArgument(where + " has no wordpieces (only whitespace, control or ignored characters): rename it");
  for (const auto& p : pieces)
    if (tok.is_special(p)) throw InvalidArgument(where + " contains the special token " + p + ": remove it from the name");
  return pieces;
}

void check_unique(const std::vector<std::string>& names, const std::vector<std::vector<std::string>>& pieces) {
  std::map<std::string, size_t> seen_names;
  std::map<std::vector<std::string>, size_t> seen_pieces;
  for (size_t k = 0; k < names.size(); ++k) {
    auto [it, fresh] = seen_names.emplace(ascii_lower(names[k]), k);
    if (!fresh)
      throw InvalidArgument("classes " + std::to_string(it->second + 1) + " and " + std::to_string(k + 1) + " are both '" +
                  names[k] + "' (names are compared case-insensitively): list each class once");
    auto [pit, pfresh] = seen_pieces.emplace(pieces[k], k);
    if (!pfresh)
      throw InvalidArgument("classes " + std::to_string(pit->second + 1) + " ('" + names[pit->second] + "') and " +
                  std::to_string(k + 1) + " ('" + names[k] +
                  "') give the same wordpieces, so the model cannot tell them apart: rename one");
  }
}

}  // namespace

std::string styled_class_name(const std::string& name, ClassNameStyle style) {
  std::string out;
  bool pending_space = false;
  for (char c : name) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space && style == ClassNameStyle::Natural) out += ' ';
    pending_space = false;
    if (style == ClassNameStyle::Fused && c == '-') continue;
    out += c;
  }
  return out;
}

std::unique_ptr<PromptTokenizer> prompt_tokenizer(text::WordPieceTokenizer tokenizer) {
  return std::make_unique<WordPiecePrompt>(std::make_shared<const text::WordPieceTokenizer>(std::move(tokenizer)));
}

std::unique_ptr<PromptTokenizer> prompt_tokenizer(text::RobertaTokenizer tokenizer) {
  return std::make_unique<RobertaPrompt>(std::move(tokenizer));
}

std::unique_ptr<PromptTokenizer> borrowed_prompt_tokenizer(const text::WordPieceTokenizer& tokenizer) {
  // A shared_ptr that does not own: the caller keeps the tokenizer alive.
  return std::make_unique<WordPiecePrompt>(
      std::shared_ptr<const text::WordPieceTokenizer>(std::shared_ptr<void>(), &tokenizer));
}

Prompt build_prompt(const text::WordPieceTokenizer& tok, const std::vector<std::string>& classes,
                    ClassNameStyle style, FirstToken first_token, int64_t enc_token_id) {
  return build_prompt(*borrowed_prompt_tokenizer(tok), classes, style, first_token, enc_token_id);
}

Prompt build_prompt(const PromptTokenizer& tok, const std::vector<std::string>& classes, ClassNameStyle style,
                    FirstToken first_token, int64_t enc_token_id) {
  if (classes.empty()) throw InvalidArgument("no classes given: name at least one class to segment");
  Prompt prompt;
  std::vector<std::vector<std::string>> pieces;
  for (size_t k = 0; k < classes.size(); ++k) {
    std::string name = styled_class_name(classes[k], style);
    if (name.empty())
      throw InvalidArgument("class " + std::to_string(k + 1) + " has an empty name ('" + classes[k] + "'): remove it or name it");
    pieces.push_back(class_pieces(tok, name, k));
    prompt.class_names.push_back(std::move(name));
  }
  check_unique(prompt.class_names, pieces);

  prompt.text = kPromptPrefix + join(prompt.class_names, " ");
  const std::vector<std::string> prompt_pieces = tok.tokenize(prompt.text);
  const int64_t count = static_cast<int64_t>(prompt_pieces.size()) + 2;
  if (count > kMaxPromptTokens)
    throw InvalidArgument("the prompt of " + std::to_string(classes.size()) + " classes has " + std::to_string(count) +
                " tokens, more than the text encoder's " + std::to_string(kMaxPromptTokens) +
                ": use fewer classes or shorter names");

  // Both tokenizers split on whitespace first (BPE keeps the space before a word with it), so
  // the prompt's pieces are the prefix's followed by each " name"'s; the check guards against
  // a tokenizer or a name for which that is not so.
  std::string prefix = kPromptPrefix;
  prefix.pop_back();  // the space belongs to the first name
  std::vector<std::string> expected = tok.tokenize(prefix);
  int64_t position = 1 + static_cast<int64_t>(expected.size());
  for (const auto& p : pieces) {
    prompt.spans.push_back({position, position + static_cast<int64_t>(p.size())});
    position += static_cast<int64_t>(p.size());
    expected.insert(expected.end(), p.begin(), p.end());
  }
  if (expected != prompt_pieces)
    throw Error("the prompt '" + prompt.text +
                "' does not tokenize into the pieces of its class names; rename the classes so that each "
                "name's tokens stand alone");

  prompt.tokenizer_ids = tok.encode(prompt.text);
  if (prompt.tokenizer_ids.size() != prompt_pieces.size() + 2)
    throw Error("the tokenizer does not put exactly one token before and after the prompt '" + prompt.text + "'");
  for (int64_t id : prompt.tokenizer_ids) prompt.tokens.push_back(tok.token(id));
  prompt.input_ids = prompt.tokenizer_ids;
  if (first_token == FirstToken::Enc) prompt.input_ids.front() = enc_token_id;
  prompt.attention_mask.assign(prompt.input_ids.size(), 1);
  return prompt;
}

}  // namespace pnpovss::segment
