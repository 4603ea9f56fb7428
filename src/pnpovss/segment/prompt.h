// The text side of the method (docs/method.md §2): the prompt
// "A picture of <class 1> <class 2> ...", its tokens, and the token span of every class, for
// any tokenizer behind PromptTokenizer (BERT WordPiece for BLIP, RoBERTa byte-level BPE for
// BridgeTower).
//
// Shapes: T text tokens (first token, "a picture of", the class tokens, last token); K classes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pnpovss/settings.h"
#include "pnpovss/text/roberta_tokenizer.h"
#include "pnpovss/text/wordpiece.h"

namespace pnpovss::segment {

// Tokens in one prompt. BLIP's text encoder has 512 positions (BridgeTower's 514 minus the two
// below RoBERTa's first position).
constexpr int64_t kMaxPromptTokens = 512;
constexpr const char* kPromptPrefix = "A picture of ";

// What the prompt needs from a tokenizer. Implementations exist for WordPiece (BLIP) and
// RoBERTa (BridgeTower); each is immutable and may be used concurrently.
class PromptTokenizer {
 public:
  virtual ~PromptTokenizer() = default;
  // Tokens of `text` without the tokens that encode() puts around it.
  virtual std::vector<std::string> tokenize(const std::string& text) const = 0;
  // Ids of `text` with the first and last tokens ([CLS] ... [SEP], <s> ... </s>).
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  virtual const std::string& token(int64_t id) const = 0;
  // A token that would end, pad or mask the prompt if it stood inside a class name.
  virtual bool is_special(const std::string& token) const = 0;
};

// Adapters. The borrowing ones keep a reference: the tokenizer must outlive them.
std::unique_ptr<PromptTokenizer> prompt_tokenizer(text::WordPieceTokenizer tokenizer);
std::unique_ptr<PromptTokenizer> prompt_tokenizer(text::RobertaTokenizer tokenizer);
std::unique_ptr<PromptTokenizer> borrowed_prompt_tokenizer(const text::WordPieceTokenizer& tokenizer);

// Positions [begin, end) of one class's wordpieces in the input ids (position 0 is the first
// token, so GradCAM token row r, which drops it, is position r + 1).
struct ClassSpan {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

struct Prompt {
  std::string text;                      // "A picture of cat potted plant"
  std::vector<std::string> class_names;  // the names as written into the text (style applied)
  std::vector<std::string> tokens;       // T tokens, "[CLS]" (or "<s>") first as the tokenizer writes it
  std::vector<int64_t> tokenizer_ids;    // T ids as the tokenizer gives them ([CLS] or <s> first)
  std::vector<int64_t> input_ids;        // T ids fed to the model ([ENC] or [CLS] first)
  std::vector<int64_t> attention_mask;   // T ones (a single prompt has no padding)
  std::vector<ClassSpan> spans;          // K spans, in class order, contiguous
};

// The name as it goes into the prompt: surrounding whitespace trimmed and inner runs of
// whitespace made single; ClassNameStyle::Fused also removes spaces and hyphens.
std::string styled_class_name(const std::string& name, ClassNameStyle style);

// Builds the prompt of `classes` (in the given order). `enc_token_id` replaces the first token
// when `first_token` is FirstToken::Enc. A class's span is found by tokenizing its name as it
// follows a space in the prompt (" cat": WordPiece gives "cat", byte-level BPE "Ġcat"); the
// prefix's tokens followed by every name's must equal the tokens of the whole prompt. Throws
// pnpovss::InvalidArgument for an empty class list, an empty or blank name, duplicate names
// (case-insensitive, after styling), a name without tokens or containing a special token, a
// prompt whose tokens do not line up with the names' own tokenization, or more than
// kMaxPromptTokens tokens.
Prompt build_prompt(const PromptTokenizer& tokenizer, const std::vector<std::string>& classes, ClassNameStyle style,
                    FirstToken first_token, int64_t enc_token_id);
Prompt build_prompt(const text::WordPieceTokenizer& tokenizer, const std::vector<std::string>& classes,
                    ClassNameStyle style, FirstToken first_token, int64_t enc_token_id);

}  // namespace pnpovss::segment
