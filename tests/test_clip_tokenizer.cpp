// CLIP's tokenizer, the byte-level BPE core, the Unicode classes behind its pre-tokenizer, and
// the CLIP image-processor geometry. Expected values come from the reference fixture
// (tests/data/clip, produced by transformers' CLIPTokenizer and CLIPImageProcessor) or are
// worked out by hand from the reference algorithms.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/image/crop.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/safetensors.h"
#include "pnpovss/models/clip_config.h"
#include "pnpovss/models/clip_preprocess.h"
#include "pnpovss/text/byte_bpe.h"
#include "pnpovss/text/clip_tokenizer.h"
#include "pnpovss/text/text_fix.h"
#include "pnpovss/text/unicode.h"
#include "pnpovss/text/unicode_classes.h"

using pnpovss::Error;
using pnpovss::text::ByteBpe;
using pnpovss::text::ClipTokenizer;
namespace unicode = pnpovss::text::unicode;
namespace io = pnpovss::io;
namespace image = pnpovss::image;
using pnpovss::Image;
namespace models = pnpovss::models;

namespace {

const std::string kFixture = std::string(PNPOVSS_TEST_DATA) + "/clip";

const ClipTokenizer& fixture_tokenizer() {
  static const ClipTokenizer tokenizer = ClipTokenizer::from_dir(kFixture);
  return tokenizer;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A scratch folder with the given files.
std::string write_dir(const std::string& name, const std::vector<std::pair<std::string, std::string>>& files) {
  const auto dir = std::filesystem::path(testing::TempDir()) / ("pnpovss_clip_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const auto& [file, text] : files) std::ofstream(dir / file, std::ios::binary) << text;
  return dir.string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::u32string u32(const std::string& utf8) { return unicode::decode_utf8(utf8, "test string"); }

// A record's tokens without the start and end tokens.
std::vector<std::string> inner_tokens(const nlohmann::json& record) {
  const auto tokens = record.at("tokens").get<std::vector<std::string>>();
  if (tokens.size() < 2) return {};
  return std::vector<std::string>(tokens.begin() + 1, tokens.end() - 1);
}

// Every record's ids and tokens exactly.
void expect_records(const ClipTokenizer& tok, const nlohmann::json& records) {
  for (const auto& record : records) {
    const std::string text = record.at("text").get<std::string>();
    EXPECT_EQ(tok.encode(text), record.at("input_ids").get<std::vector<int64_t>>()) << text;
    ASSERT_GE(record.at("tokens").size(), 2u) << text;
    EXPECT_EQ(tok.tokenize(text), inner_tokens(record)) << text;
  }
}

// A tiny BPE: byte symbols of "a".."e", one "</w>" variant each, and a few merges.
ByteBpe tiny_bpe(std::string end_of_word, std::vector<std::pair<std::string, std::string>> merges) {
  std::unordered_map<std::string, int64_t> vocab;
  int64_t next = 0;
  for (const char* s : {"a", "b", "c", "d", "e"}) {
    vocab[s] = next++;
    vocab[std::string(s) + end_of_word] = next++;
  }
  for (const auto& [x, y] : merges) vocab.emplace(x + y, next++);
  return ByteBpe(vocab, merges, std::move(end_of_word), "tiny");
}

}  // namespace

// ---- byte map and BPE core ---------------------------------------------------------------

TEST(ByteBpe, ByteSymbolsFollowGpt2Map) {
  const auto& symbols = pnpovss::text::byte_symbols();
  EXPECT_EQ(symbols['a'], "a");
  EXPECT_EQ(symbols['!'], "!");
  EXPECT_EQ(symbols[0xA9], "\xC2\xA9");  // printable Latin-1 stands for itself
  // The 33 bytes 0..32 take U+0100..U+0120, so space is U+0120; the 34 bytes 127..160 take
  // U+0121..U+0142, and 173 (soft hyphen) U+0143.
  EXPECT_EQ(symbols[0], "\xC4\x80");
  EXPECT_EQ(symbols[' '], "\xC4\xA0");
  EXPECT_EQ(symbols[127], "\xC4\xA1");
  EXPECT_EQ(symbols[173], "\xC5\x83");
  EXPECT_EQ(std::set<std::string>(symbols.begin(), symbols.end()).size(), 256u);
}

TEST(ByteBpe, MergesLowestRankFirstAndLeftToRight) {
  // "a a" merges every non-overlapping pair left to right: a a a -> aa a.
  ByteBpe plain = tiny_bpe("", {{"a", "a"}});
  EXPECT_EQ(plain.encode_word("aaa"), (std::vector<std::string>{"aa", "a"}));
  // With "</w>" the last symbol carries the marker and only merges with pairs that include it.
  ByteBpe clip = tiny_bpe("</w>", {{"a", "a"}, {"b", "c</w>"}, {"a", "bc</w>"}});
  EXPECT_EQ(clip.encode_word("aaa"), (std::vector<std::string>{"aa", "a</w>"}));
  EXPECT_EQ(clip.encode_word("abc"), (std::vector<std::string>{"abc</w>"}));
  EXPECT_EQ(clip.encode_word("c"), (std::vector<std::string>{"c</w>"}));
  EXPECT_TRUE(clip.encode_word("").empty());
  // Rank decides, not position: "b c" (rank 0) before "a b" (rank 1).
  ByteBpe ranked = tiny_bpe("", {{"b", "c"}, {"a", "b"}});
  EXPECT_EQ(ranked.encode_word("abc"), (std::vector<std::string>{"a", "bc"}));
}

TEST(ByteBpe, DuplicateMergeKeepsItsLaterRank) {
  // dict(zip(merges, range(n))): the second "a b" (rank 2) loses to "b c" (rank 1).
  ByteBpe bpe = tiny_bpe("", {{"a", "b"}, {"b", "c"}, {"a", "b"}});
  EXPECT_EQ(bpe.encode_word("abc"), (std::vector<std::string>{"a", "bc"}));
}

TEST(ByteBpe, VocabularyLookups) {
  ByteBpe bpe = tiny_bpe("</w>", {});
  EXPECT_EQ(bpe.vocab_size(), 10u);
  EXPECT_EQ(bpe.id("a</w>"), 1);
  EXPECT_EQ(bpe.token(1), "a</w>");
  EXPECT_TRUE(bpe.contains("e"));
  EXPECT_FALSE(bpe.contains("z"));
  EXPECT_NE(error_of([&] { bpe.id("z"); }).find("'z' is not in the vocabulary"), std::string::npos);
  EXPECT_THROW(bpe.token(10), Error);
  EXPECT_THROW(bpe.token(-1), Error);
}

TEST(ByteBpe, EncodingIsSafeFromManyThreads) {
  const ClipTokenizer& tok = fixture_tokenizer();
  const auto expected = tok.bpe().encode_word("supercalifragilisticexpialidocious");
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string word = "word" + std::to_string(i % 50) + "x";
        tok.bpe().encode_word(word);
        ok[t] += tok.bpe().encode_word("supercalifragilisticexpialidocious") == expected;
      }
    });
  for (auto& th : threads) th.join();
  for (int n : ok) EXPECT_EQ(n, 200);
}

TEST(ByteBpe, FilesParseWithVersionLineAndBlankLines) {
  const std::string dir = write_dir("files", {{"vocab.json", R"({"a": 0, "b": 1, "ab": 2, "b</w>": 3, "ab</w>": 4})"},
                                              {"merges.txt", "#version: 0.2\n\na b</w>\r\n\n"}});
  ByteBpe bpe = ByteBpe::from_files(dir + "/vocab.json", dir + "/merges.txt", "</w>");
  EXPECT_EQ(bpe.merge_count(), 1u);
  EXPECT_EQ(bpe.encode_word("ab"), (std::vector<std::string>{"ab</w>"}));
}

TEST(ByteBpe, BadFilesNameTheFile) {
  const std::string good_vocab = R"({"a": 0, "b": 1})";
  auto load = [](const std::string& dir) { ByteBpe::from_files(dir + "/vocab.json", dir + "/merges.txt", ""); };
  const std::string no_vocab = write_dir("no_vocab", {{"merges.txt", "a b\n"}});
  EXPECT_NE(error_of([&] { load(no_vocab); }).find("vocab.json' not found"), std::string::npos);
  const std::string no_merges = write_dir("no_merges", {{"vocab.json", good_vocab}});
  EXPECT_NE(error_of([&] { load(no_merges); }).find("merges.txt' not found"), std::string::npos);
  const std::string corrupt = write_dir("corrupt_vocab", {{"vocab.json", "{\"a\": 0,"}, {"merges.txt", "a b\n"}});
  EXPECT_NE(error_of([&] { load(corrupt); }).find("is not valid JSON"), std::string::npos);
  const std::string list = write_dir("list_vocab", {{"vocab.json", "[1, 2]"}, {"merges.txt", "a b\n"}});
  EXPECT_NE(error_of([&] { load(list); }).find("token -> id"), std::string::npos);
  const std::string text_id = write_dir("text_id", {{"vocab.json", R"({"a": "0"})"}, {"merges.txt", "a b\n"}});
  EXPECT_NE(error_of([&] { load(text_id); }).find("id of token 'a' is not an integer"), std::string::npos);
  const std::string twice = write_dir("twice", {{"vocab.json", R"({"a": 0, "b": 0})"}, {"merges.txt", "a b\n"}});
  EXPECT_NE(error_of([&] { load(twice); }).find("id 0 is given to both"), std::string::npos);
  const std::string bad_line = write_dir("bad_line", {{"vocab.json", good_vocab}, {"merges.txt", "#version\na b\nab\n"}});
  const std::string msg = error_of([&] { load(bad_line); });
  EXPECT_NE(msg.find("merges.txt': line 3 is not two symbols"), std::string::npos) << msg;
  const std::string empty = write_dir("empty_merges", {{"vocab.json", good_vocab}, {"merges.txt", "#version: 0.2\n"}});
  EXPECT_NE(error_of([&] { load(empty); }).find("holds no merges"), std::string::npos);
  const std::string binary = write_dir("binary_merges", {{"vocab.json", good_vocab}, {"merges.txt", "a \xff\n"}});
  EXPECT_NE(error_of([&] { load(binary); }).find("not valid UTF-8"), std::string::npos);
}

// ---- Unicode classes ---------------------------------------------------------------------

TEST(UnicodeClasses, LettersNumbersAndSpaces) {
  EXPECT_TRUE(unicode::is_letter(U'a'));
  EXPECT_TRUE(unicode::is_letter(U'\u00e9'));
  EXPECT_TRUE(unicode::is_letter(U'\u4e2d'));  // CJK (Lo)
  EXPECT_TRUE(unicode::is_letter(U'\u02b0'));  // modifier letter (Lm)
  EXPECT_FALSE(unicode::is_letter(U'1'));
  EXPECT_FALSE(unicode::is_letter(U'\u0301'));  // combining mark (Mn)
  EXPECT_TRUE(unicode::is_number(U'7'));
  EXPECT_TRUE(unicode::is_number(U'\u00b2'));  // superscript two (No)
  EXPECT_TRUE(unicode::is_number(U'\u2163'));  // Roman numeral four (Nl)
  EXPECT_FALSE(unicode::is_number(U'x'));
  EXPECT_TRUE(unicode::is_regex_space(U' '));
  EXPECT_TRUE(unicode::is_regex_space(U'\u3000'));
  EXPECT_FALSE(unicode::is_regex_space(U'\x1c'));  // str.isspace() but not White_Space
  EXPECT_FALSE(unicode::is_regex_space(U'a'));
}

TEST(UnicodeClasses, PythonLowerAppliesFinalSigma) {
  // Python 3.11: 'ΟΔΟΣ'.lower() == 'οδος', 'ΣΑ' -> 'σα', 'Σ' -> 'σ', 'ΑΣ.' -> 'ας.',
  // "ΑΣ'Β" -> "ασ'β" (the apostrophe is case-ignorable), 'ὈΔΥΣΣΕΎΣ' -> 'ὀδυσσεύς'.
  EXPECT_EQ(unicode::python_lower(u32("ΟΔΟΣ")), u32("οδος"));
  EXPECT_EQ(unicode::python_lower(u32("ΣΑ")), u32("σα"));
  EXPECT_EQ(unicode::python_lower(u32("Σ")), u32("σ"));
  EXPECT_EQ(unicode::python_lower(u32("ΑΣ.")), u32("ας."));
  EXPECT_EQ(unicode::python_lower(u32("ΑΣ'Β")), u32("ασ'β"));
  EXPECT_EQ(unicode::python_lower(u32("ὈΔΥΣΣΕΎΣ")), u32("ὀδυσσεύς"));
  EXPECT_EQ(unicode::python_lower(u32("MiXeD")), u32("mixed"));
}

// ---- CLIP tokenizer ----------------------------------------------------------------------

TEST(ClipTokenizer, LoadsFixtureFiles) {
  const auto& tok = fixture_tokenizer();
  EXPECT_EQ(tok.bpe().vocab_size(), 49408u);
  EXPECT_EQ(tok.bpe().merge_count(), 48894u);
  EXPECT_EQ(tok.bos_id(), 49406);
  EXPECT_EQ(tok.eos_id(), 49407);
  EXPECT_EQ(tok.pad_id(), 49407);
  EXPECT_EQ(tok.model_max_length(), 77);
}

TEST(ClipTokenizer, EveryFtfyRecordExactly) {
  // The records of the reference with ftfy installed: the behaviour the tokenizer claims.
  const auto reference = io::read_json_file(kFixture + "/reference.json");
  const auto& records = reference.at("tokenization_with_ftfy").at("records");
  ASSERT_GE(records.size(), 20u);
  expect_records(fixture_tokenizer(), records);
}

TEST(ClipTokenizer, NoFtfyRecordsMatchExceptCjk) {
  // The reference without ftfy spaces out CJK ideographs; on every other record both references
  // agree, and so does the tokenizer. On the CJK record it gives the ftfy record.
  const auto reference = io::read_json_file(kFixture + "/reference.json");
  const auto& records = reference.at("tokenization").at("records");
  const auto& ftfy_records = reference.at("tokenization_with_ftfy").at("records");
  ASSERT_GE(records.size(), 20u);
  ASSERT_EQ(records.size(), ftfy_records.size());
  const auto& tok = fixture_tokenizer();
  std::vector<std::string> differing;
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string text = records[i].at("text").get<std::string>();
    ASSERT_EQ(text, ftfy_records[i].at("text").get<std::string>());
    const auto ids = records[i].at("input_ids").get<std::vector<int64_t>>();
    const auto ftfy_ids = ftfy_records[i].at("input_ids").get<std::vector<int64_t>>();
    if (ids == ftfy_ids) {
      EXPECT_EQ(tok.encode(text), ids) << text;
      EXPECT_EQ(tok.tokenize(text), inner_tokens(records[i])) << text;
      continue;
    }
    differing.push_back(text);
    EXPECT_NE(text.find("\xE4\xB8\xAD"), std::string::npos) << text;  // contains 中
    EXPECT_EQ(tok.encode(text), ftfy_ids) << text;
    EXPECT_EQ(tok.tokenize(text), inner_tokens(ftfy_records[i])) << text;
  }
  EXPECT_EQ(differing, (std::vector<std::string>{"中文 字符 and 日本語"}));
  EXPECT_EQ(differing, reference.at("tokenization_with_ftfy").at("strings_differing_from_no_ftfy").get<std::vector<std::string>>());
}

TEST(ClipTokenizer, BasicTokenizerCleaningMatchesEveryNoFtfyRecord) {
  const auto reference = io::read_json_file(kFixture + "/reference.json");
  const auto& records = reference.at("tokenization").at("records");
  ASSERT_GE(records.size(), 20u);
  const auto basic = ClipTokenizer::from_dir(kFixture, ClipTokenizer::Cleaning::kBasicTokenizer);
  EXPECT_EQ(basic.cleaning(), ClipTokenizer::Cleaning::kBasicTokenizer);
  EXPECT_EQ(fixture_tokenizer().cleaning(), ClipTokenizer::Cleaning::kFtfy);
  expect_records(basic, records);
}

TEST(ClipTokenizer, ClassPromptsMatchReferenceInputIds) {
  const auto reference = io::read_json_file(kFixture + "/reference.json");
  const auto prompts = reference.at("class_prompts").get<std::vector<std::string>>();
  const auto file = io::SafetensorsFile::open(kFixture + "/reference.safetensors");
  const auto& view = file.at("input_ids");
  ASSERT_EQ(view.shape.size(), 2u);
  const auto width = static_cast<size_t>(view.shape[1]);
  std::vector<int64_t> ref(static_cast<size_t>(view.numel()));
  std::memcpy(ref.data(), view.data, ref.size() * sizeof(int64_t));
  const auto enc = fixture_tokenizer().encode_batch(prompts);
  ASSERT_EQ(enc.rows, static_cast<int64_t>(prompts.size()));
  for (int64_t r = 0; r < enc.rows; ++r)
    for (size_t j = 0; j < width; ++j) {
      // The reference pads to 77 with the pad id; encode_batch pads to the longest prompt.
      const int64_t got = j < static_cast<size_t>(enc.cols) ? enc.ids[r * enc.cols + j] : fixture_tokenizer().pad_id();
      EXPECT_EQ(got, ref[r * width + j]) << prompts[r] << " @" << j;
    }
}

TEST(ClipTokenizer, SpecialTokensAreSplitBeforeThePattern) {
  const auto& tok = fixture_tokenizer();
  // Without the split, the pattern would read "'<|" as one punctuation run.
  EXPECT_EQ(tok.tokenize("'<|endoftext|>"), (std::vector<std::string>{"'</w>", "<|endoftext|>"}));
  // An upper-case literal is not split out but becomes special after lower-casing.
  EXPECT_EQ(tok.tokenize("x <|ENDOFTEXT|>"), (std::vector<std::string>{"x</w>", "<|endoftext|>"}));
}

TEST(ClipTokenizer, TruncatesKeepingTheEndToken) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "cat ";
  const auto ids = fixture_tokenizer().encode(text);
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids.front(), 49406);
  EXPECT_EQ(ids[1], 2368);  // "cat</w>"
  EXPECT_EQ(ids[75], 2368);
  EXPECT_EQ(ids.back(), 49407);
}

TEST(ClipTokenizer, BatchPadsWithPadIdAndMask) {
  const auto enc = fixture_tokenizer().encode_batch({"a potted plant", "tv monitor"});
  ASSERT_EQ(enc.rows, 2);
  ASSERT_EQ(enc.cols, 5);
  EXPECT_EQ(enc.ids, (std::vector<int64_t>{49406, 320, 48581, 3912, 49407, 49406, 1583, 10198, 49407, 49407}));
  EXPECT_EQ(enc.mask, (std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 1, 1, 0}));
  const auto none = fixture_tokenizer().encode_batch({});
  EXPECT_EQ(none.rows, 0);
  EXPECT_TRUE(none.ids.empty());
}

TEST(ClipTokenizer, ControlCharactersAndNonUtf8) {
  const auto& tok = fixture_tokenizer();
  EXPECT_EQ(tok.tokenize(std::string("a\x01 b\tc", 7)), tok.tokenize("a b c"));
  EXPECT_NE(error_of([&] { tok.encode("bad \xff byte"); }).find("UTF-8"), std::string::npos);
}

// ---- text cleaning (text::fix_text), as CLIP's authors run it -----------------------------
// Expected tokens come from the fixture vocabulary: the cleaned text is what the fixture's
// records (or plain words of the vocabulary) already spell.

using Tokens = std::vector<std::string>;

TEST(ClipCleaning, CjkIsOneWord) {
  // "中文" is one letter run; BPE merges across the two ideographs' bytes (ä¸ Ń æĸ ĩ</w>, as the
  // ftfy record), where the BasicTokenizer cleaning ends a word after each ideograph.
  EXPECT_EQ(fixture_tokenizer().tokenize("中文"), (Tokens{"ä¸", "Ń", "æĸ", "ĩ</w>"}));
  EXPECT_EQ(fixture_tokenizer().encode("中文"), (std::vector<int64_t>{49406, 19759, 255, 29032, 485, 49407}));
  const auto basic = ClipTokenizer::from_dir(kFixture, ClipTokenizer::Cleaning::kBasicTokenizer);
  EXPECT_EQ(basic.tokenize("中文"), (Tokens{"ä¸", "Ń</w>", "æĸ", "ĩ</w>"}));
}

TEST(ClipCleaning, LatinLigaturesBecomeLetters) {
  const auto& tok = fixture_tokenizer();
  EXPECT_EQ(tok.encode("\xEF\xAC\x81re hydrant"), (std::vector<int64_t>{49406, 1769, 8031, 773, 49407}));  // ﬁ
  EXPECT_EQ(tok.tokenize("\xEF\xAC\x81re hydrant"), tok.tokenize("fire hydrant"));
  EXPECT_EQ(tok.tokenize("\xEF\xAC\x82ower"), (Tokens{"flower</w>"}));     // ﬂ
  EXPECT_EQ(tok.tokenize("o\xEF\xAC\x83" "ce"), (Tokens{"office</w>"}));  // ﬃ
  EXPECT_EQ(tok.tokenize("\xEF\xAC\x86op"), (Tokens{"stop</w>"}));        // ﬆ
  EXPECT_EQ(tok.tokenize("\xC4\xB3s"), (Tokens{"ij", "s</w>"}));         // ĳ -> ij
  // U+FB05 gives LONG S + t (one level of its decomposition), not "st".
  EXPECT_EQ(pnpovss::text::fix_text(U"\uFB05"), U"\u017Ft");
  // The BasicTokenizer cleaning keeps the ligature: its bytes, not "fire".
  const auto basic = ClipTokenizer::from_dir(kFixture, ClipTokenizer::Cleaning::kBasicTokenizer);
  EXPECT_NE(basic.tokenize("\xEF\xAC\x81re"), (Tokens{"fire</w>"}));
}

TEST(ClipCleaning, CurlyQuotesBecomeStraight) {
  const auto& tok = fixture_tokenizer();
  // “cat” as the fixture's "\"double\"": " cat ".
  EXPECT_EQ(tok.encode("\xE2\x80\x9C" "cat\xE2\x80\x9D"), (std::vector<int64_t>{49406, 257, 2368, 257, 49407}));
  EXPECT_EQ(tok.tokenize("\xE2\x80\x9C" "cat\xE2\x80\x9D"), tok.tokenize("\"cat\""));
  // ’ and ʼ become ', so the contraction splits as in "don't".
  EXPECT_EQ(tok.tokenize("don\xE2\x80\x99t"), (Tokens{"don</w>", "'t</w>"}));
  EXPECT_EQ(tok.tokenize("don\xCA\xBCt"), (Tokens{"don</w>", "'t</w>"}));
  EXPECT_EQ(pnpovss::text::fix_text(U"\u2018\u2019\u201A\u201B\u02BC\u201C\u201D\u201E\u201F"), U"'''''\"\"\"\"");
}

TEST(ClipCleaning, FullAndHalfWidthFormsBecomeNormalWidth) {
  const auto& tok = fixture_tokenizer();
  EXPECT_EQ(tok.encode("\xEF\xBD\x83\xEF\xBD\x81\xEF\xBD\x94"), (std::vector<int64_t>{49406, 2368, 49407}));  // ｃａｔ
  // Full-width capitals and the ideographic space: "CAT DOG".
  EXPECT_EQ(tok.tokenize("\xEF\xBC\xA3\xEF\xBC\xA1\xEF\xBC\xB4\xE3\x80\x80\xEF\xBC\xA4\xEF\xBC\xAF\xEF\xBC\xA7"),
            (Tokens{"cat</w>", "dog</w>"}));
  // Half-width ｶ and the half-width voiced mark become カ and a combining mark, which NFC joins
  // into ガ (bytes E3 82 AC: "ãĤ" "¬</w>").
  EXPECT_EQ(tok.tokenize("\xEF\xBD\xB6\xEF\xBE\x9E"), (Tokens{"ãĤ", "¬</w>"}));
  EXPECT_EQ(tok.tokenize("\xEF\xBD\xB6\xEF\xBE\x9E"), tok.tokenize("\xE3\x82\xAC"));
  // A full-width special token is the special token once normalised.
  EXPECT_EQ(tok.tokenize("x \xEF\xBC\x9C|endoftext|\xEF\xBC\x9E"), (Tokens{"x</w>", "<|endoftext|>"}));
  // U+FFE3 FULLWIDTH MACRON's NFKC form is two code points.
  EXPECT_EQ(pnpovss::text::fix_text(U"\uFFE3"), U" \u0304");
}

TEST(ClipCleaning, HtmlReferencesUnlessTheTextHasALessThanSign) {
  const auto& tok = fixture_tokenizer();
  // As the fixture's "dining table, potted plant & tv monitor.".
  EXPECT_EQ(tok.encode("potted plant &amp; tv monitor"),
            (std::vector<int64_t>{49406, 48581, 3912, 261, 1583, 10198, 49407}));
  EXPECT_EQ(tok.tokenize("&#102;ire &#x66;ire &#X66;ire"), (Tokens{"fire</w>", "fire</w>", "fire</w>"}));
  // Repeated until nothing changes: &amp;lt; -> &lt; -> <.
  EXPECT_EQ(tok.tokenize("&amp;lt;"), (Tokens{"<</w>"}));
  EXPECT_EQ(tok.tokenize("&amp;amp;"), (Tokens{"&</w>"}));
  // The all-caps spelling of a lower-case name: &NTILDE; is Ñ, lower-cased ñ (bytes C3 B1).
  EXPECT_EQ(tok.tokenize("&NTILDE;"), (Tokens{"Ã", "±</w>"}));
  EXPECT_EQ(tok.tokenize("&NTILDE;"), tok.tokenize("\xC3\xB1"));
  // With a '<' the text is taken for HTML and references stay: & amp ; as three words.
  EXPECT_EQ(tok.encode("a &amp; b <"), (std::vector<int64_t>{49406, 320, 261, 6259, 282, 321, 283, 49407}));
  // Line by line: lines before the first '<' are decoded, that line and later ones are not.
  EXPECT_EQ(tok.tokenize("x &amp;\ny < z\n&amp;"),
            (Tokens{"x</w>", "&</w>", "y</w>", "<</w>", "z</w>", "&</w>", "amp</w>", ";</w>"}));
  // The special tokens are split out first, so their '<' does not count.
  EXPECT_EQ(tok.tokenize("cat &amp; dog<|endoftext|>"), (Tokens{"cat</w>", "&</w>", "dog</w>", "<|endoftext|>"}));
  // A reference that would give ';' stays as written: "&#" 5 9 ";".
  EXPECT_EQ(tok.tokenize("&#59;"), (Tokens{"&", "#</w>", "5</w>", "9</w>", ";</w>"}));
  using pnpovss::text::fix_text;
  // Unknown names, no ';', only partly digits, no digits, names over 24 characters: as written.
  EXPECT_EQ(fix_text(U"&notaname; &amp &#12ab; &#x; &#; &abcdefghijklmnopqrstuvwxy;"),
            U"&notaname; &amp &#12ab; &#x; &#; &abcdefghijklmnopqrstuvwxy;");
  // Numeric references as HTML5 reads them.
  EXPECT_EQ(fix_text(U"&#0;"), U"\uFFFD");
  EXPECT_EQ(fix_text(U"&#128;&#x9D;"), U"\u20AC\u009D");  // Windows-1252; its undefined byte stays
  EXPECT_EQ(fix_text(U"&#xD800;&#1114112;&#99999999999999999999;"), U"\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(fix_text(U"a&#1;&#x7F;&#xFFFE;&#xFDD0;b"), U"ab");
  EXPECT_EQ(fix_text(U"&#x1F642;&NotEqualTilde;"), U"\U0001F642\u2242\u0338");
}

TEST(ClipCleaning, C1ControlsAreReadAsWindows1252) {
  const auto& tok = fixture_tokenizer();
  // U+0093 and U+0094 are the bytes of “ and ” in Windows-1252, which then become straight.
  EXPECT_EQ(tok.tokenize("\xC2\x93" "cat\xC2\x94"), tok.tokenize("\"cat\""));
  // U+0085 is an ellipsis here (not a line break: that step comes later): wait</w> âĢ¦</w>.
  EXPECT_EQ(tok.encode("wait\xC2\x85"), (std::vector<int64_t>{49406, 1885, 959, 49407}));
  EXPECT_EQ(tok.tokenize("wait\xC2\x85"), tok.tokenize("wait\xE2\x80\xA6"));
  EXPECT_EQ(pnpovss::text::fix_text(U"\u0080\u0081\u008D\u008F\u0090\u009D\u009F"),
            U"\u20AC\u0081\u008D\u008F\u0090\u009D\u0178");
}

TEST(ClipCleaning, TerminalEscapesAndControlsAreRemoved) {
  const auto& tok = fixture_tokenizer();
  EXPECT_EQ(tok.encode("\x1b[1;31mcat\x1b[0m"), (std::vector<int64_t>{49406, 2368, 49407}));
  EXPECT_EQ(tok.tokenize("\xEF\xBB\xBF" "ca\x7ft"), (Tokens{"cat</w>"}));  // BOM and DEL
  EXPECT_EQ(tok.tokenize(std::string("c\0a\x0bt", 5)), (Tokens{"cat</w>"}));
  using pnpovss::text::fix_text;
  // Parameters are any decimal digits (here ARABIC-INDIC ONE, TWO).
  EXPECT_EQ(fix_text(U"\x1b[\u0661\u0662mx"), U"x");
  // One left-to-right pass per round: the ESC that a removal brings next to "[1m" is then
  // removed as a control, so "[1m" stays.
  EXPECT_EQ(fix_text(U"\x1b\x1b[1m[1mx"), U"[1mx");
  // Without the final letter it is no escape; ESC alone still goes as a control.
  EXPECT_EQ(fix_text(U"\x1b[12"), U"[12");
  // U+FFFD and format characters stay: the replacement character is a word of its own.
  EXPECT_EQ(tok.tokenize("cat \xEF\xBF\xBD"), (Tokens{"cat</w>", "ï¿½</w>"}));
  EXPECT_EQ(fix_text(U"a\u200Db\u00ADc\u200Bd"), U"a\u200Db\u00ADc\u200Bd");
  const auto basic = ClipTokenizer::from_dir(kFixture, ClipTokenizer::Cleaning::kBasicTokenizer);
  EXPECT_EQ(basic.tokenize("cat \xEF\xBF\xBD"), (Tokens{"cat</w>"}));
}

TEST(ClipCleaning, LineBreaksAndNfc) {
  const auto& tok = fixture_tokenizer();
  using pnpovss::text::fix_text;
  EXPECT_EQ(fix_text(U"a\r\nb\rc\u2028d\u2029e\r\r\nf"), U"a\nb\nc\nd\ne\n\nf");
  EXPECT_EQ(tok.tokenize("a\r\nb\rc\xE2\x80\xA8" "d"), (Tokens{"a</w>", "b</w>", "c</w>", "d</w>"}));
  // e + COMBINING ACUTE is é, as the fixture's "CAFÉ": cafÃ©</w>.
  EXPECT_EQ(tok.encode("cafe\xCC\x81"), (std::vector<int64_t>{49406, 15304, 49407}));
  EXPECT_EQ(fix_text(U""), U"");
}

TEST(ClipTokenizer, MissingOrBrokenFilesAreNamed) {
  const std::string vocab = read_file(kFixture + "/vocab.json");
  const std::string merges = read_file(kFixture + "/merges.txt");
  const std::string no_merges = write_dir("tok_no_merges", {{"vocab.json", vocab}});
  EXPECT_NE(error_of([&] { ClipTokenizer::from_dir(no_merges); }).find("merges.txt' not found"), std::string::npos);
  const std::string no_vocab = write_dir("tok_no_vocab", {{"merges.txt", merges}});
  EXPECT_NE(error_of([&] { ClipTokenizer::from_dir(no_vocab); }).find("vocab.json' not found"), std::string::npos);
  const std::string truncated = write_dir("tok_truncated", {{"vocab.json", vocab.substr(0, 1000)}, {"merges.txt", merges}});
  EXPECT_NE(error_of([&] { ClipTokenizer::from_dir(truncated); }).find("vocab.json' is not valid JSON"), std::string::npos);
  const std::string bad_special = write_dir(
      "tok_bad_special", {{"vocab.json", vocab}, {"merges.txt", merges}, {"special_tokens_map.json", R"({"eos_token": "<eos>"})"}});
  EXPECT_NE(error_of([&] { ClipTokenizer::from_dir(bad_special); }).find("lacks the end token '<eos>'"), std::string::npos);
  const std::string bad_length = write_dir(
      "tok_bad_length", {{"vocab.json", vocab}, {"merges.txt", merges}, {"tokenizer_config.json", R"({"model_max_length": "77"})"}});
  EXPECT_NE(error_of([&] { ClipTokenizer::from_dir(bad_length); }).find("model_max_length"), std::string::npos);
}

// ---- image geometry and preprocessing config ---------------------------------------------

TEST(ClipCrop, ShortestEdgeSize) {
  EXPECT_EQ(image::shortest_edge_size(160, 120, 56), std::make_pair(74, 56));  // int(56*160/120) = 74
  EXPECT_EQ(image::shortest_edge_size(120, 160, 56), std::make_pair(56, 74));
  EXPECT_EQ(image::shortest_edge_size(100, 100, 56), std::make_pair(56, 56));
  EXPECT_EQ(image::shortest_edge_size(3, 7, 2), std::make_pair(2, 4));  // 4.67 truncated
  EXPECT_EQ(image::shortest_edge_size(45, 61, 56), std::make_pair(56, 75));  // 75.91 truncated
  EXPECT_THROW(image::shortest_edge_size(0, 7, 2), Error);
  EXPECT_THROW(image::shortest_edge_size(3, 7, 0), Error);
}

namespace {
// An image whose pixel (x, y) is (x, y, 7) (plus 1, so that padding zeros stand out).
Image coordinate_image(int w, int h) {
  Image im;
  im.width = w;
  im.height = h;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) im.rgb.insert(im.rgb.end(), {uint8_t(x + 1), uint8_t(y + 1), 7});
  return im;
}
const uint8_t* pixel(const Image& im, int x, int y) { return &im.rgb[(static_cast<size_t>(y) * im.width + x) * 3]; }
}  // namespace

TEST(ClipCrop, CentreCropOfALargerImage) {
  // 5x4 to 3x2: left = (5-3)//2 = 1, top = (4-2)//2 = 1.
  Image out = image::center_crop(coordinate_image(5, 4), 3, 2);
  ASSERT_EQ(out.width, 3);
  ASSERT_EQ(out.height, 2);
  EXPECT_EQ(pixel(out, 0, 0)[0], 2);
  EXPECT_EQ(pixel(out, 0, 0)[1], 2);
  EXPECT_EQ(pixel(out, 2, 1)[0], 4);
  EXPECT_EQ(pixel(out, 2, 1)[1], 3);
}

TEST(ClipCrop, SmallerImageIsZeroPaddedWithTheLargerShareBefore) {
  // 2x3 to 5x6: pads ceil(3/2) = 2 columns before and ceil(3/2) = 2 rows before.
  Image out = image::center_crop(coordinate_image(2, 3), 5, 6);
  ASSERT_EQ(out.width, 5);
  ASSERT_EQ(out.height, 6);
  EXPECT_EQ(pixel(out, 1, 1)[2], 0);
  EXPECT_EQ(pixel(out, 2, 2)[0], 1);
  EXPECT_EQ(pixel(out, 2, 2)[1], 1);
  EXPECT_EQ(pixel(out, 3, 4)[0], 2);
  EXPECT_EQ(pixel(out, 3, 4)[1], 3);
  EXPECT_EQ(pixel(out, 4, 4)[2], 0);
  EXPECT_EQ(pixel(out, 2, 5)[2], 0);
  // Mixed: 7x2 to 4x5: columns cropped from left = 1, rows padded 2 before.
  Image mixed = image::center_crop(coordinate_image(7, 2), 4, 5);
  EXPECT_EQ(pixel(mixed, 0, 2)[0], 2);
  EXPECT_EQ(pixel(mixed, 0, 2)[1], 1);
  EXPECT_EQ(pixel(mixed, 3, 3)[0], 5);
  EXPECT_EQ(pixel(mixed, 0, 1)[2], 0);
  EXPECT_EQ(pixel(mixed, 0, 4)[2], 0);
  EXPECT_THROW(image::center_crop(coordinate_image(2, 2), 0, 3), Error);
  EXPECT_THROW(image::center_crop(Image(), 2, 2), Error);
}

TEST(ClipPreprocess, ReadsFixtureConfigAndRejectsBadOnes) {
  const auto config = models::ClipPreprocessConfig::from_dir(kFixture);
  EXPECT_EQ(config.shortest_edge, 56);
  EXPECT_EQ(config.crop_width, 56);
  EXPECT_EQ(config.crop_height, 56);
  EXPECT_TRUE(config.do_center_crop);
  const std::string square = write_dir("pre_square", {{"preprocessor_config.json", R"({"size": 224, "crop_size": 200})"}});
  const auto sq = models::ClipPreprocessConfig::from_dir(square);
  EXPECT_EQ(sq.shortest_edge, 224);
  EXPECT_EQ(sq.crop_height, 200);
  EXPECT_EQ(sq.crop_width, 200);
  const std::string nearest = write_dir("pre_nearest", {{"preprocessor_config.json", R"({"resample": 0})"}});
  EXPECT_NE(error_of([&] { models::ClipPreprocessConfig::from_dir(nearest); }).find("only bicubic"), std::string::npos);
  const std::string crop = write_dir("pre_crop", {{"preprocessor_config.json", R"({"crop_size": {"height": 0, "width": 3}})"}});
  EXPECT_NE(error_of([&] { models::ClipPreprocessConfig::from_dir(crop); }).find("crop_size.height"), std::string::npos);
  // No file: the CLIPImageProcessor defaults.
  const auto defaults = models::ClipPreprocessConfig::from_dir(write_dir("pre_none", {}));
  EXPECT_EQ(defaults.shortest_edge, 224);
  EXPECT_EQ(defaults.crop_height, 224);
}

TEST(ClipPreprocess, OutputHasTheCropSize) {
  const auto config = models::ClipPreprocessConfig::from_dir(kFixture);
  const auto planes = models::clip_preprocess(coordinate_image(30, 20), config);
  EXPECT_EQ(planes.width, 56);
  EXPECT_EQ(planes.height, 56);
  EXPECT_EQ(planes.data.size(), 3u * 56 * 56);
  EXPECT_THROW(models::clip_preprocess(Image(), config), Error);
}

// ---- config ------------------------------------------------------------------------------

TEST(ClipConfig, FixtureConfigAndDefaults) {
  const auto c = models::ClipConfig::from_file(kFixture + "/config.json");
  EXPECT_EQ(c.projection_dim, 32);
  EXPECT_EQ(c.text.hidden_size, 48);
  EXPECT_EQ(c.text.vocab_size, 49408);  // default
  EXPECT_EQ(c.text.max_position_embeddings, 77);
  EXPECT_EQ(c.text.eos_token_id, 2);
  EXPECT_EQ(c.vision.image_size, 56);
  EXPECT_EQ(c.vision.patch_size, 14);
  EXPECT_EQ(c.vision.num_positions(), 17);
  EXPECT_EQ(c.text.hidden_act, "quick_gelu");
  EXPECT_DOUBLE_EQ(c.vision.layer_norm_eps, 1e-5);
  // Round trip.
  const auto again = models::ClipConfig::from_json(c.to_json(), "round trip");
  EXPECT_EQ(again.to_json(), c.to_json());
}

TEST(ClipConfig, RejectsWrongModelsAndSizes) {
  EXPECT_NE(error_of([] { models::ClipConfig::from_json({{"model_type", "blip"}}, "cfg"); }).find("expected 'clip'"),
            std::string::npos);
  nlohmann::json heads = {{"model_type", "clip"}, {"vision_config", {{"hidden_size", 50}, {"num_attention_heads", 4}}}};
  EXPECT_NE(error_of([&] { models::ClipConfig::from_json(heads, "cfg"); }).find("not a multiple"), std::string::npos);
  nlohmann::json act = {{"model_type", "clip"}, {"text_config", {{"hidden_act", "relu"}}}};
  EXPECT_NE(error_of([&] { models::ClipConfig::from_json(act, "cfg"); }).find("hidden_act 'relu'"), std::string::npos);
  // Old configs keep tower settings in *_config_dict, which win.
  nlohmann::json legacy = {{"model_type", "clip"},
                           {"text_config", {{"hidden_size", 64}}},
                           {"text_config_dict", {{"hidden_size", 128}}}};
  EXPECT_EQ(models::ClipConfig::from_json(legacy, "cfg").text.hidden_size, 128);
  EXPECT_TRUE(models::is_clip_config({{"architectures", {"CLIPModel"}}}));
  EXPECT_FALSE(models::is_clip_config({{"model_type", "blip"}}));
}
