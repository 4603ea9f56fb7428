#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/safetensors.h"
#include "pnpovss/text/unicode.h"
#include "pnpovss/text/wordpiece.h"

using pnpovss::Error;
using pnpovss::text::WordPieceTokenizer;
namespace unicode = pnpovss::text::unicode;

namespace {

const std::string kFixture = std::string(PNPOVSS_TEST_DATA) + "/blip_itm";

const WordPieceTokenizer& fixture_tokenizer() {
  static const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_dir(kFixture);
  return tokenizer;
}

std::vector<int64_t> int64_tensor(const pnpovss::io::SafetensorsFile& file, const std::string& name) {
  const auto& view = file.at(name);
  EXPECT_EQ(view.dtype, pnpovss::io::DType::I64) << name;
  std::vector<int64_t> values(static_cast<size_t>(view.numel()));
  std::memcpy(values.data(), view.data, values.size() * sizeof(int64_t));
  return values;
}

// A scratch folder holding a tokenizer made of the given vocabulary lines.
std::string write_vocab_dir(const std::string& name, const std::string& vocab_text) {
  const auto dir = std::filesystem::path(testing::TempDir()) / ("pnpovss_wordpiece_" + name);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "vocab.txt", std::ios::binary) << vocab_text;
  return dir.string();
}

std::u32string u32(const std::string& utf8) { return unicode::decode_utf8(utf8, "test string"); }

}  // namespace

TEST(WordPiece, LoadsFixtureVocabularyAndConfig) {
  const auto& tok = fixture_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 30522u);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 100);
  EXPECT_EQ(tok.cls_id(), 101);
  EXPECT_EQ(tok.sep_id(), 102);
  EXPECT_EQ(tok.mask_id(), 103);
  EXPECT_EQ(tok.model_max_length(), 512);
  EXPECT_EQ(tok.token_id("hello"), 7592);
  EXPECT_EQ(tok.token(7592), "hello");
  EXPECT_THROW(tok.token_id("no-such-token-here"), Error);
  EXPECT_THROW(tok.token(30522), Error);
  EXPECT_THROW(tok.token(-1), Error);
}

TEST(WordPiece, MatchesEveryReferenceRecord) {
  const auto reference = pnpovss::io::read_json_file(kFixture + "/reference.json");
  const auto& records = reference.at("tokenization").at("records");
  ASSERT_FALSE(records.empty());
  const auto& tok = fixture_tokenizer();
  size_t exact = 0;
  for (const auto& record : records) {
    const std::string text = record.at("text").get<std::string>();
    const auto ids = record.at("input_ids").get<std::vector<int64_t>>();
    auto tokens = record.at("tokens").get<std::vector<std::string>>();
    ASSERT_GE(tokens.size(), 2u);
    const std::vector<std::string> pieces(tokens.begin() + 1, tokens.end() - 1);
    EXPECT_EQ(tok.tokenize(text), pieces) << "text: " << text;
    EXPECT_EQ(tok.encode(text), ids) << "text: " << text;
    if (tok.encode(text) == ids) ++exact;
  }
  std::printf("tokenization: %zu of %zu reference records match exactly\n", exact, records.size());
  EXPECT_EQ(exact, records.size());
}

TEST(WordPiece, BatchPaddingMatchesReferenceTensors) {
  const auto reference = pnpovss::io::read_json_file(kFixture + "/reference.json");
  const auto prompts = reference.at("prompts").get<std::vector<std::string>>();
  const auto tensors = pnpovss::io::SafetensorsFile::open(kFixture + "/reference.safetensors");
  const auto batch = fixture_tokenizer().encode_batch(prompts);
  const auto& shape = tensors.at("input_ids").shape;
  ASSERT_EQ(shape.size(), 2u);
  EXPECT_EQ(batch.rows, shape[0]);
  EXPECT_EQ(batch.cols, shape[1]);
  EXPECT_EQ(batch.ids, int64_tensor(tensors, "input_ids"));
  EXPECT_EQ(batch.mask, int64_tensor(tensors, "attention_mask"));

  const auto empty = fixture_tokenizer().encode_batch({});
  EXPECT_EQ(empty.rows, 0);
  EXPECT_EQ(empty.cols, 0);
  EXPECT_TRUE(empty.ids.empty());
}

TEST(WordPiece, SpecialTokensSplitEvenInsideWords) {
  const auto& tok = fixture_tokenizer();
  // Hugging Face splits at added tokens before any other step; a lower-case spelling is no
  // special token.
  EXPECT_EQ(tok.tokenize("foo[MASK]bar"), (std::vector<std::string>{"foo", "[MASK]", "bar"}));
  EXPECT_EQ(tok.tokenize("[mask]"), (std::vector<std::string>{"[", "mask", "]"}));
  EXPECT_EQ(tok.tokenize("[CLS][SEP]"), (std::vector<std::string>{"[CLS]", "[SEP]"}));
}

TEST(WordPiece, NormalizesLikePython) {
  const auto& tok = fixture_tokenizer();
  // Decomposed input is composed (NFC) and then stripped of its accents.
  EXPECT_EQ(tok.tokenize("Cafe\xCC\x81"), (std::vector<std::string>{"cafe"}));
  // Control and format characters vanish; NUL and U+FFFD too; Zs becomes a space.
  EXPECT_EQ(tok.tokenize("a\xE2\x80\x8B" "b\x01" "c\xEF\xBF\xBD" "d"), tok.tokenize("abcd"));
  EXPECT_EQ(tok.tokenize(std::string("cat\0dog", 7)), tok.tokenize("catdog"));
  EXPECT_EQ(tok.tokenize("cat\xC2\xA0" "dog\xE3\x80\x80" "tree"), (std::vector<std::string>{"cat", "dog", "tree"}));
  // Line and paragraph separators are kept by cleaning but split words like str.split().
  EXPECT_EQ(tok.tokenize("cat\xE2\x80\xA8" "dog"), (std::vector<std::string>{"cat", "dog"}));
  // ASCII symbols count as punctuation; other symbols only when Unicode says so.
  EXPECT_EQ(tok.tokenize("a$b^c"), (std::vector<std::string>{"a", "$", "b", "^", "c"}));
  // Words over 100 characters become [UNK].
  EXPECT_EQ(tok.tokenize(std::string(101, 'a')), (std::vector<std::string>{"[UNK]"}));
}

TEST(WordPiece, RejectsInvalidUtf8Text) {
  const auto& tok = fixture_tokenizer();
  for (const std::string& bad : {std::string("abc\xFF"), std::string("\xC0\xAF"), std::string("\xED\xA0\x80"),
                                std::string("\xE2\x82"), std::string("\xF4\x90\x80\x80")}) {
    EXPECT_THROW(tok.tokenize(bad), Error);
    EXPECT_THROW(tok.encode(bad), Error);
  }
}

TEST(WordPiece, ReportsBadVocabularies) {
  try {
    WordPieceTokenizer::from_dir(std::string(PNPOVSS_TEST_DATA) + "/no-such-model");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab.txt"), std::string::npos) << e.what();
  }
  EXPECT_THROW(WordPieceTokenizer::from_dir(write_vocab_dir("empty", "")), Error);
  EXPECT_THROW(WordPieceTokenizer::from_dir(write_vocab_dir("dup", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\na\n")),
               Error);
  EXPECT_THROW(WordPieceTokenizer::from_dir(write_vocab_dir("utf8", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n\xFF\n")),
               Error);
  EXPECT_THROW(WordPieceTokenizer::from_dir(write_vocab_dir("nounk", "[PAD]\n[CLS]\n[SEP]\n[MASK]\na\n")), Error);

  // Windows line ends are line ends, as in Python's text mode.
  const auto tok =
      WordPieceTokenizer::from_dir(write_vocab_dir("crlf", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nab\r\n##c\r\n"));
  EXPECT_EQ(tok.vocab_size(), 7u);
  EXPECT_EQ(tok.encode("ABC abd"), (std::vector<int64_t>{2, 5, 6, 1, 3}));
}

TEST(Unicode, NormalizationMatchesPython) {
  // Expected values from Python 3.11 unicodedata.normalize.
  EXPECT_EQ(unicode::nfd(u32("\xC3\x85")), u32("A\xCC\x8A"));                   // Å
  EXPECT_EQ(unicode::nfc(u32("A\xCC\x8A")), u32("\xC3\x85"));
  EXPECT_EQ(unicode::nfc(u32("\xE2\x84\xAB")), u32("\xC3\x85"));                // Angstrom sign
  EXPECT_EQ(unicode::nfd(u32("\xEA\xB0\x81")), u32("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"));  // 각
  EXPECT_EQ(unicode::nfc(u32("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8")), u32("\xEA\xB0\x81"));
  // Marks are reordered by combining class: dot below (220) before acute (230).
  EXPECT_EQ(unicode::nfd(u32("a\xCC\x81\xCC\xA3")), u32("a\xCC\xA3\xCC\x81"));
  EXPECT_EQ(unicode::nfc(u32("a\xCC\x81\xCC\xA3")), u32("\xE1\xBA\xA1\xCC\x81"));  // ạ + acute
  std::u32string lowered;
  unicode::append_lower(U'\u0130', lowered);  // İ lowers to i + combining dot above
  EXPECT_EQ(lowered, u32("i\xCC\x87"));
}
