// The text repair that CLIP's own tokenizer runs before anything else: ftfy.fix_text (ftfy 6.2)
// with its default settings, less its mojibake repair. CLIP was trained on text cleaned this way,
// so class names and prompts are cleaned the same way before they are tokenized.
//
// Done, in ftfy's order and repeated until the text stops changing, on each line ("\n"-ended
// segment, at most 1,000,000 code points) of the text:
//   1. HTML character references: &name; for the HTML5 names that end in ';' (and the all-caps
//      spelling of an all-lowercase name where that is not a name of its own, e.g. &NTILDE;),
//      &#NNN; and &#xHH; as Python's html.unescape reads them (&#0; -> U+FFFD, &#128;..&#159;
//      as Windows-1252, surrogates and values above U+10FFFF -> U+FFFD, noncharacters and most
//      controls -> nothing; a reference that would give ';' stays). Only when no line so far
//      has a '<': such text is taken for HTML, whose references must stay as written.
//   2. C1 controls U+0080..U+009F -> the Windows-1252 characters of those bytes (the 5 bytes
//      Windows-1252 leaves undefined stay as they are).
//   3. Latin ligatures and digraphs (ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ Ĳ ĳ ŉ Ǳ..ǳ Ǆ..ǆ Ǉ..ǉ Ǌ..ǌ) -> their letters.
//   4. Full-width and half-width forms U+FF01..U+FFEF -> their NFKC form (ｃａｔ -> cat,
//      ｶ -> カ), and U+3000 IDEOGRAPHIC SPACE -> ' '.
//   5. Curly quotes -> straight: U+2018..U+201B and U+02BC -> ', U+201C..U+201F -> ".
//   6. Line breaks "\r\n", "\r", U+2028, U+2029, U+0085 -> "\n".
//   7. ANSI terminal escapes ESC '[' (decimal digits | ';')* ASCII letter -> removed.
//   8. Controls U+0000..U+0008, U+000B, U+000E..U+001F, U+007F, U+206A..U+206F, U+FEFF,
//      U+FFF9..U+FFFC -> removed (other format characters such as U+200D ZERO WIDTH JOINER,
//      U+00AD SOFT HYPHEN and U+FFFD stay).
//   9. NFC.
//
// Left out:
//   - fix_encoding, the mojibake repair ("cafÃ©" -> "café", also restore_byte_a0,
//     replace_lossy_sequences and decode_inconsistent_utf8): it rests on ftfy's statistical
//     badness heuristic, not on a fixed rule, so it cannot be reproduced exactly without
//     reproducing that heuristic. Text that ftfy would judge to be mojibake is kept as written
//     (step 2 still maps C1 controls, which is also what fix_encoding does with them on its own).
//   - fix_surrogates: text here is strict UTF-8 (decoded with unicode::decode_utf8), which cannot
//     hold surrogates, so the step has nothing to do.
#pragma once

#include <string>

namespace pnpovss::text {

std::u32string fix_text(const std::u32string& text);

}  // namespace pnpovss::text
