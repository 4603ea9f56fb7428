#include "pnpovss/text/text_fix.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>

#include "pnpovss/text/unicode.h"

namespace pnpovss::text {

namespace {

struct HtmlEntity {
  const char* name;  // without '&' and ';'
  uint8_t count;
  char32_t value[3];
};
struct CodePointRange {
  char32_t first, last;
};

#include "pnpovss/text/text_fix_tables.inc"

// Windows-1252 for the bytes 0x80..0x9F; the five bytes it leaves undefined keep their Latin-1
// meaning (the C1 control itself). Both the C1 repair and numeric references use it.
constexpr char32_t kWindows1252High[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

// The Latin ligatures and digraphs that are replaced, each by its compatibility decomposition
// taken one level deep (so U+FB05 gives LONG S + t, as the reference does, not "st").
struct Ligature {
  char32_t cp;
  char32_t letters[3];
};
constexpr Ligature kLigatures[] = {
    {0x0132, {U'I', U'J'}},         {0x0133, {U'i', U'j'}},         {0x0149, {0x02BC, U'n'}},
    {0x01C4, {U'D', 0x017D}},       {0x01C5, {U'D', 0x017E}},       {0x01C6, {U'd', 0x017E}},
    {0x01C7, {U'L', U'J'}},         {0x01C8, {U'L', U'j'}},         {0x01C9, {U'l', U'j'}},
    {0x01CA, {U'N', U'J'}},         {0x01CB, {U'N', U'j'}},         {0x01CC, {U'n', U'j'}},
    {0x01F1, {U'D', U'Z'}},         {0x01F2, {U'D', U'z'}},         {0x01F3, {U'd', U'z'}},
    {0xFB00, {U'f', U'f'}},         {0xFB01, {U'f', U'i'}},         {0xFB02, {U'f', U'l'}},
    {0xFB03, {U'f', U'f', U'i'}},   {0xFB04, {U'f', U'f', U'l'}},   {0xFB05, {0x017F, U't'}},
    {0xFB06, {U's', U't'}},
};

// Texts longer than this are fixed in pieces of this many code points, as the reference does
// to bound its work.
constexpr size_t kMaxSegment = 1000000;

bool is_ascii_alnum(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_ascii_letter(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
int hex_value(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a') + 10;
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A') + 10;
  return -1;
}

bool is_decimal_digit(char32_t c) {
  auto it = std::upper_bound(std::begin(kDecimalDigitRanges), std::end(kDecimalDigitRanges), c,
                             [](char32_t v, const CodePointRange& r) { return v < r.first; });
  if (it == std::begin(kDecimalDigitRanges)) return false;
  --it;
  return c <= it->last;
}

const HtmlEntity* find_entity(const std::string& name) {
  auto it = std::lower_bound(std::begin(kHtmlEntities), std::end(kHtmlEntities), name,
                             [](const HtmlEntity& e, const std::string& v) { return std::strcmp(e.name, v.c_str()) < 0; });
  if (it == std::end(kHtmlEntities) || name != it->name) return nullptr;
  return it;
}

// Python's html.unescape of a numeric reference whose number is `value` (saturated above
// U+10FFFF): the HTML5 rules for invalid references.
std::u32string numeric_reference(uint32_t value) {
  if (value == 0) return U"\uFFFD";
  if (value == 0x0D) return U"\r";
  if (value >= 0x80 && value <= 0x9F) return std::u32string(1, kWindows1252High[value - 0x80]);
  if ((value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) return U"\uFFFD";
  const bool invalid = (value >= 0x01 && value <= 0x08) || value == 0x0B || (value >= 0x0E && value <= 0x1F) ||
                       value == 0x7F || (value >= 0xFDD0 && value <= 0xFDEF) || (value & 0xFFFE) == 0xFFFE;
  if (invalid) return U"";
  return std::u32string(1, static_cast<char32_t>(value));
}

// The replacement of the reference "&" [#] body ";" (body: 1..24 ASCII letters and digits), or
// false when it stays as written.
bool resolve_reference(bool numeric, const std::u32string& body, std::u32string& out) {
  if (!numeric) {
    const HtmlEntity* entity = find_entity(std::string(body.begin(), body.end()));
    if (entity == nullptr) return false;
    out.assign(entity->value, entity->count);
    return true;
  }
  // Only a reference that is digits (or x and hex digits) up to the ';' is read; one that would
  // be read only in part, leaving the ';' behind, stays whole.
  const bool hex = body[0] == 'x' || body[0] == 'X';
  const size_t first = hex ? 1 : 0;
  if (first == body.size()) return false;
  uint32_t value = 0;
  for (size_t i = first; i < body.size(); ++i) {
    const int digit = hex ? hex_value(body[i]) : (body[i] >= '0' && body[i] <= '9' ? static_cast<int>(body[i] - '0') : -1);
    if (digit < 0) return false;
    if (value <= 0x10FFFF) value = value * (hex ? 16 : 10) + static_cast<uint32_t>(digit);
  }
  std::u32string replacement = numeric_reference(value);
  if (replacement == U";") return false;
  out = std::move(replacement);
  return true;
}

std::u32string unescape_html(const std::u32string& text) {
  if (text.find(U'&') == std::u32string::npos) return text;
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != U'&') {
      out.push_back(text[i++]);
      continue;
    }
    const bool numeric = i + 1 < text.size() && text[i + 1] == U'#';
    const size_t body = i + 1 + (numeric ? 1 : 0);
    size_t end = body;
    while (end < text.size() && is_ascii_alnum(text[end])) ++end;
    const size_t length = end - body;
    if (length < 1 || length > 24 || end == text.size() || text[end] != U';') {
      out.push_back(text[i++]);
      continue;
    }
    std::u32string replacement;
    if (resolve_reference(numeric, text.substr(body, length), replacement)) {
      out += replacement;
    } else {
      out.append(text, i, end + 1 - i);
    }
    i = end + 1;
  }
  return out;
}

std::u32string fix_c1_controls(const std::u32string& text) {
  std::u32string out = text;
  for (char32_t& c : out)
    if (c >= 0x80 && c <= 0x9F) c = kWindows1252High[c - 0x80];
  return out;
}

std::u32string fix_ligatures(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    auto it = std::lower_bound(std::begin(kLigatures), std::end(kLigatures), c,
                               [](const Ligature& l, char32_t v) { return l.cp < v; });
    if (it == std::end(kLigatures) || it->cp != c) {
      out.push_back(c);
      continue;
    }
    for (char32_t letter : it->letters)
      if (letter != 0) out.push_back(letter);
  }
  return out;
}

std::u32string fix_width(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0x3000) {
      out.push_back(U' ');
    } else if (c >= kWidthFirst && c <= kWidthLast && kWidthForms[c - kWidthFirst][0] != 0) {
      out.push_back(kWidthForms[c - kWidthFirst][0]);
      if (kWidthForms[c - kWidthFirst][1] != 0) out.push_back(kWidthForms[c - kWidthFirst][1]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::u32string uncurl_quotes(const std::u32string& text) {
  std::u32string out = text;
  for (char32_t& c : out) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) {
      c = U'\'';
    } else if (c >= 0x201C && c <= 0x201F) {
      c = U'"';
    }
  }
  return out;
}

std::u32string fix_line_breaks(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == U'\r' && i + 1 < text.size() && text[i + 1] == U'\n') {
      out.push_back(U'\n');
      ++i;
    } else if (c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x0085) {
      out.push_back(U'\n');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// One left-to-right pass, as a regular-expression substitution does: an ESC that a removal
// brings next to "[...m" is not an escape in this pass (and the control step then drops it).
std::u32string remove_terminal_escapes(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == 0x1B && i + 1 < text.size() && text[i + 1] == U'[') {
      size_t j = i + 2;
      while (j < text.size() && (text[j] == U';' || is_decimal_digit(text[j]))) ++j;
      if (j < text.size() && is_ascii_letter(text[j])) {
        i = j + 1;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

bool is_removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

std::u32string remove_control_chars(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text)
    if (!is_removed_control(c)) out.push_back(c);
  return out;
}

// The steps in order until nothing changes, as the reference does. After the first round only
// character references that the round itself formed (as in "&amp;lt;") are left to change, and
// decoding them shortens the text, so the loop ends.
std::u32string fix_segment(std::u32string text, bool unescape) {
  while (true) {
    const std::u32string before = text;
    if (unescape) text = unescape_html(text);
    text = fix_c1_controls(text);
    text = fix_ligatures(text);
    text = fix_width(text);
    text = uncurl_quotes(text);
    text = fix_line_breaks(text);
    text = remove_terminal_escapes(text);
    text = remove_control_chars(text);
    text = unicode::nfc(text);
    if (text == before) return text;
  }
}

}  // namespace

std::u32string fix_text(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  // Once a line holds '<', the text is taken for HTML from there on: its character references
  // are markup, not text to decode.
  bool unescape = true;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t newline = text.find(U'\n', pos);
    size_t end = newline == std::u32string::npos ? text.size() : newline + 1;
    end = std::min(end, pos + kMaxSegment);
    const std::u32string segment = text.substr(pos, end - pos);
    if (unescape && segment.find(U'<') != std::u32string::npos) unescape = false;
    out += fix_segment(segment, unescape);
    pos = end;
  }
  return out;
}

}  // namespace pnpovss::text
