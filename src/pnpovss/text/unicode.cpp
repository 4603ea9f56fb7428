#include "pnpovss/text/unicode.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "pnpovss/error.h"

namespace pnpovss::text::unicode {

namespace {

struct FlagRange {
  char32_t first, last;
  uint8_t flags;
};
struct LowerEntry {
  char32_t cp;
  uint8_t count;
  char32_t lower[2];
};
struct DecompEntry {
  char32_t cp;
  uint16_t offset;
  uint8_t count;
};
struct CombiningRange {
  char32_t first, last;
  uint8_t ccc;
};
struct CompositionEntry {
  char32_t first, second, composite;
};

#include "pnpovss/text/unicode_tables.inc"

// Bits of FlagRange::flags, as written by the generator.
constexpr uint8_t kOther = 1, kPunct = 2, kSpaceSep = 4, kNonspacingMark = 8, kPySpace = 16;

// Hangul syllables decompose and compose arithmetically (Unicode 3.12), not by table.
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint8_t flags_of(char32_t c) {
  auto it = std::upper_bound(std::begin(kFlagRanges), std::end(kFlagRanges), c,
                             [](char32_t v, const FlagRange& r) { return v < r.first; });
  if (it == std::begin(kFlagRanges)) return 0;
  --it;
  return c <= it->last ? it->flags : 0;
}

uint8_t combining_class(char32_t c) {
  auto it = std::upper_bound(std::begin(kCombiningRanges), std::end(kCombiningRanges), c,
                             [](char32_t v, const CombiningRange& r) { return v < r.first; });
  if (it == std::begin(kCombiningRanges)) return 0;
  --it;
  return c <= it->last ? it->ccc : 0;
}

void append_decomposition(char32_t c, std::u32string& out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    const char32_t s = c - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  auto it = std::lower_bound(std::begin(kDecompEntries), std::end(kDecompEntries), c,
                             [](const DecompEntry& e, char32_t v) { return e.cp < v; });
  if (it == std::end(kDecompEntries) || it->cp != c) {
    out.push_back(c);
    return;
  }
  out.append(kDecompData + it->offset, it->count);
}

// Returns 0 when the pair has no primary composite.
char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  auto it = std::lower_bound(std::begin(kCompositionEntries), std::end(kCompositionEntries),
                             std::make_pair(a, b), [](const CompositionEntry& e, const auto& v) {
                               return e.first != v.first ? e.first < v.first : e.second < v.second;
                             });
  if (it == std::end(kCompositionEntries) || it->first != a || it->second != b) return 0;
  return it->composite;
}

// Canonical ordering: each run of non-starters is stably sorted by combining class.
void reorder_marks(std::u32string& text) {
  size_t i = 0;
  while (i < text.size()) {
    if (combining_class(text[i]) == 0) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && combining_class(text[end]) != 0) ++end;
    if (end - i > 1) {
      std::stable_sort(text.begin() + static_cast<std::ptrdiff_t>(i),
                       text.begin() + static_cast<std::ptrdiff_t>(end),
                       [](char32_t x, char32_t y) { return combining_class(x) < combining_class(y); });
    }
    i = end;
  }
}

// Length of the UTF-8 sequence starting at `pos` and its code point; 0 when invalid.
size_t decode_one(const std::string& s, size_t pos, char32_t& cp) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(pos);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  size_t len;
  char32_t min_cp;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min_cp = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min_cp = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min_cp = 0x10000;
  } else {
    return 0;
  }
  if (pos + len > s.size()) return 0;
  for (size_t i = 1; i < len; ++i) {
    const unsigned char b = byte(pos + i);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace

std::u32string decode_utf8(const std::string& bytes, const std::string& what) {
  std::u32string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    char32_t cp = 0;
    const size_t len = decode_one(bytes, pos, cp);
    if (len == 0) {
      throw Error(what + " is not valid UTF-8 (bad byte sequence at byte " + std::to_string(pos) +
                  "); pass UTF-8 encoded text");
    }
    out.push_back(cp);
    pos += len;
  }
  return out;
}

bool is_valid_utf8(const std::string& bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    char32_t cp = 0;
    const size_t len = decode_one(bytes, pos, cp);
    if (len == 0) return false;
    pos += len;
  }
  return true;
}

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

bool is_other(char32_t c) { return (flags_of(c) & kOther) != 0; }
bool is_punctuation_category(char32_t c) { return (flags_of(c) & kPunct) != 0; }
bool is_space_separator(char32_t c) { return (flags_of(c) & kSpaceSep) != 0; }
bool is_nonspacing_mark(char32_t c) { return (flags_of(c) & kNonspacingMark) != 0; }
bool is_python_space(char32_t c) { return (flags_of(c) & kPySpace) != 0; }

void append_lower(char32_t c, std::u32string& out) {
  if (c < 0x80) {
    out.push_back(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    return;
  }
  auto it = std::lower_bound(std::begin(kLowerEntries), std::end(kLowerEntries), c,
                             [](const LowerEntry& e, char32_t v) { return e.cp < v; });
  if (it == std::end(kLowerEntries) || it->cp != c) {
    out.push_back(c);
    return;
  }
  out.append(it->lower, it->count);
}

std::u32string nfd(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) append_decomposition(c, out);
  reorder_marks(out);
  return out;
}

std::u32string nfc(const std::u32string& text) {
  const std::u32string decomposed = nfd(text);
  std::u32string out;
  out.reserve(decomposed.size());
  // A mark composes with the last starter unless a character in between has class 0 or a
  // class not lower than its own (the "blocked" rule of the Unicode composition algorithm).
  size_t starter = std::u32string::npos;
  uint8_t last_class = 0;
  for (char32_t c : decomposed) {
    const uint8_t cls = combining_class(c);
    if (starter != std::u32string::npos) {
      const bool adjacent = starter + 1 == out.size();
      const bool blocked = !adjacent && (last_class == 0 || last_class >= cls);
      if (!blocked) {
        const char32_t composite = compose_pair(out[starter], c);
        if (composite != 0) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (cls == 0) starter = out.size();
    last_class = cls;
    out.push_back(c);
  }
  return out;
}

const char* tables_version() { return kUnicodeVersion; }

}  // namespace pnpovss::text::unicode
