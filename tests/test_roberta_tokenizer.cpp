// RoBERTa's tokenizer (BridgeTower): exact ids on the reference records, the GPT-2 pre-tokenizer
// on hand-made cases, special tokens written in the text, and bad tokenizer files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/text/roberta_tokenizer.h"

using namespace pnpovss;
using text::RobertaTokenizer;

namespace {

const std::string kDir = std::string(PNPOVSS_TEST_DATA) + "/bridgetower_itm";

const RobertaTokenizer& tokenizer() {
  static const RobertaTokenizer tok = RobertaTokenizer::from_dir(kDir);
  return tok;
}

std::vector<std::string> words(const std::u32string& text) { return text::gpt2_pretokenize(text); }

}  // namespace

TEST(RobertaTokenizer, ReferenceRecordsGiveTheExactIdsAndTokens) {
  const auto reference = io::read_json_file(kDir + "/reference.json");
  const auto& records = reference.at("tokenization").at("records");
  ASSERT_GE(records.size(), 20u);
  for (const auto& record : records) {
    const std::string text = record.at("text").get<std::string>();
    EXPECT_EQ(tokenizer().encode(text), record.at("input_ids").get<std::vector<int64_t>>()) << text;
    auto tokens = record.at("tokens").get<std::vector<std::string>>();
    tokens.erase(tokens.begin());  // <s>
    tokens.pop_back();             // </s>
    EXPECT_EQ(tokenizer().tokenize(text), tokens) << text;
  }
}

TEST(RobertaTokenizer, PromptsPadToTheLongest) {
  const auto enc = tokenizer().encode_batch({"a cat", "A picture of cat dog"});
  ASSERT_EQ(enc.rows, 2);
  ASSERT_EQ(enc.cols, 7);     // <s> A Ġpicture Ġof Ġcat Ġdog </s>
  EXPECT_EQ(enc.ids[4], 1);  // "a cat" is <s> a Ġcat </s>, then <pad>
  EXPECT_EQ(enc.mask[3], 1);
  EXPECT_EQ(enc.mask[4], 0);
  EXPECT_EQ(enc.ids[0], tokenizer().bos_id());
  EXPECT_EQ(enc.ids[3], tokenizer().eos_id());
}

TEST(Gpt2Pretokenizer, SpacesJoinTheFollowingWord) {
  using V = std::vector<std::string>;
  EXPECT_EQ(words(U"a picture of cat"), (V{"a", " picture", " of", " cat"}));
  // A run of spaces leaves its last space to the next word.
  EXPECT_EQ(words(U"a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(words(U"a  "), (V{"a", "  "}));
  // A tab is not a literal space: it stands alone.
  EXPECT_EQ(words(U"a\tb"), (V{"a", "\t", "b"}));
  EXPECT_EQ(words(U" \tb"), (V{" ", "\t", "b"}));
}

TEST(Gpt2Pretokenizer, ContractionsDigitsAndSymbols) {
  using V = std::vector<std::string>;
  EXPECT_EQ(words(U"don't we'll"), (V{"don", "'t", " we", "'ll"}));
  EXPECT_EQ(words(U"It'S"), (V{"It", "'", "S"}));  // case-sensitive contractions
  EXPECT_EQ(words(U"x2024 3.5"), (V{"x", "2024", " 3", ".", "5"}));
  EXPECT_EQ(words(U"a ?!b"), (V{"a", " ?!", "b"}));
  EXPECT_EQ(words(U"caf\u00e9 \u4e2d\u6587"), (V{"caf\xc3\xa9", " \xe4\xb8\xad\xe6\x96\x87"}));
  EXPECT_TRUE(words(U"").empty());
}

TEST(RobertaTokenizer, SpecialTokensInTheTextStayWhole) {
  using V = std::vector<std::string>;
  // <mask> swallows the space before it (lstrip); <s> does not.
  EXPECT_EQ(tokenizer().tokenize("a <mask> b"), (V{"a", "<mask>", "\xc4\xa0" "b"}));
  EXPECT_EQ(tokenizer().tokenize("a <s>b"), (V{"a", "\xc4\xa0", "<s>", "b"}));
  EXPECT_TRUE(tokenizer().is_special("</s>"));
  EXPECT_FALSE(tokenizer().is_special("cat"));
  EXPECT_EQ(tokenizer().encode("<mask>"), (std::vector<int64_t>{0, tokenizer().mask_id(), 2}));
}

TEST(RobertaTokenizer, PrefixSpaceOption) {
  auto options = tokenizer().options();
  options.add_prefix_space = true;
  RobertaTokenizer prefixed(text::ByteBpe::from_files(kDir + "/vocab.json", kDir + "/merges.txt", ""), options);
  EXPECT_EQ(prefixed.tokenize("cat"), (std::vector<std::string>{"\xc4\xa0" "cat"}));
  EXPECT_EQ(prefixed.tokenize(" cat"), (std::vector<std::string>{"\xc4\xa0" "cat"}));
}

// Found by fuzzing (fuzz_clip_tokenizer): a vocab.json of a few bytes naming an id near 2^31
// made the byte-level BPE allocate a table of 2^31 tokens (64 GB). Ids now index a hash map.
TEST(ByteBpe, AnIdNear2Pow31NeedsNoTableOfThatSize) {
  const std::string dir = testing::TempDir() + "/pnpovss_bpe_sparse_ids";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/vocab.json") << R"({"<s>": 0, "</s>": 2000000000, "a": 7})";
  std::ofstream(dir + "/merges.txt") << "#version: 0.2\na b\n";
  const text::ByteBpe bpe = text::ByteBpe::from_files(dir + "/vocab.json", dir + "/merges.txt", "");
  EXPECT_EQ(bpe.token(2000000000), "</s>");
  EXPECT_EQ(bpe.token(7), "a");
  EXPECT_THROW(bpe.token(1), Error);
  EXPECT_THROW(bpe.token(-1), Error);
  std::ofstream(dir + "/vocab.json") << R"({"<s>": 5, "</s>": 5})";
  EXPECT_THROW(text::ByteBpe::from_files(dir + "/vocab.json", dir + "/merges.txt", ""), Error);
  std::filesystem::remove_all(dir);
}

TEST(RobertaTokenizer, BadInputIsAnError) {
  EXPECT_THROW(tokenizer().tokenize("bad \xff utf-8"), Error);
  EXPECT_THROW(tokenizer().token(1 << 20), Error);
  EXPECT_THROW(RobertaTokenizer::from_dir(std::string(PNPOVSS_TEST_DATA) + "/nonexistent"), Error);
  auto options = tokenizer().options();
  options.mask.content = "[MASK]";  // not in the vocabulary
  EXPECT_THROW(RobertaTokenizer(text::ByteBpe::from_files(kDir + "/vocab.json", kDir + "/merges.txt", ""), options),
               Error);
}
