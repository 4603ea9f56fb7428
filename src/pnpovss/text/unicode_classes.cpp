#include "pnpovss/text/unicode_classes.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "pnpovss/text/unicode.h"

namespace pnpovss::text::unicode {

namespace {

struct ClassRange {
  char32_t first, last;
  uint8_t flags;
};

#include "pnpovss/text/unicode_class_tables.inc"

// Bits of ClassRange::flags, as written by the generator. kCased is only set for characters
// that are not case-ignorable, which is all the Final_Sigma rule needs.
constexpr uint8_t kLetter = 1, kNumber = 2, kCased = 4, kCaseIgnorable = 8;

uint8_t class_of(char32_t c) {
  auto it = std::upper_bound(std::begin(kClassRanges), std::end(kClassRanges), c,
                             [](char32_t v, const ClassRange& r) { return v < r.first; });
  if (it == std::begin(kClassRanges)) return 0;
  --it;
  return c <= it->last ? it->flags : 0;
}

constexpr char32_t kCapitalSigma = 0x3A3, kFinalSigma = 0x3C2;

// Python's Final_Sigma test for the capital sigma at `i` (unicodeobject.c handle_capital_sigma):
// skipping case-ignorable characters, a cased one must come before and none after.
bool is_final_sigma(const std::u32string& text, size_t i) {
  size_t j = i;
  while (j > 0 && (class_of(text[j - 1]) & kCaseIgnorable)) --j;
  if (j == 0 || !(class_of(text[j - 1]) & kCased)) return false;
  size_t k = i + 1;
  while (k < text.size() && (class_of(text[k]) & kCaseIgnorable)) ++k;
  return k == text.size() || !(class_of(text[k]) & kCased);
}

}  // namespace

bool is_letter(char32_t c) { return class_of(c) & kLetter; }
bool is_number(char32_t c) { return class_of(c) & kNumber; }
bool is_regex_space(char32_t c) { return is_python_space(c) && !(c >= 0x1C && c <= 0x1F); }

std::u32string python_lower(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == kCapitalSigma && is_final_sigma(text, i)) {
      out.push_back(kFinalSigma);
    } else {
      append_lower(text[i], out);
    }
  }
  return out;
}

}  // namespace pnpovss::text::unicode
