// The text side of the method (shared/docs/method.md section 2): the prompt
// "A picture of <class 1> <class 2> ...", its tokens, and the wordpiece span of every class.
//
// Shapes: T text tokens ([CLS]/[ENC], "a picture of", the class wordpieces, [SEP]); K classes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pnpovss/segment/settings.h"
#include "pnpovss/text/wordpiece.h"

namespace pnpovss::segment {

// Tokens in one prompt. BLIP's text encoder has 512 positions.
constexpr int64_t kMaxPromptTokens = 512;
constexpr const char* kPromptPrefix = "A picture of ";

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
  std::vector<std::string> tokens;       // T tokens, "[CLS]" first as the tokenizer writes it
  std::vector<int64_t> tokenizer_ids;    // T ids as the tokenizer gives them ([CLS] first)
  std::vector<int64_t> input_ids;        // T ids fed to the model ([ENC] or [CLS] first)
  std::vector<int64_t> attention_mask;   // T ones (a single prompt has no padding)
  std::vector<ClassSpan> spans;          // K spans, in class order, contiguous
};

// The name as it goes into the prompt: surrounding whitespace trimmed and inner runs of
// whitespace made single; ClassNameStyle::Fused also removes spaces and hyphens.
std::string styled_class_name(const std::string& name, ClassNameStyle style);

// Builds the prompt of `classes` (in the given order). `enc_token_id` replaces the first token
// when `first_token` is FirstToken::Enc. Throws pnpovss::Error for an empty class list, an
// empty or blank name, duplicate names (case-insensitive, after styling), a name without
// wordpieces or containing a special token, a prompt whose pieces do not line up with the
// names' own tokenization, or more than kMaxPromptTokens tokens.
Prompt build_prompt(const text::WordPieceTokenizer& tokenizer, const std::vector<std::string>& classes,
                    ClassNameStyle style, FirstToken first_token, int64_t enc_token_id);

}  // namespace pnpovss::segment
