// The util layer's small pieces that every message and every resume check relies on: where two
// JSON documents differ (the refusals of eval run folders and tuning journals name the field),
// the file hashes (image records, hub downloads), base64 (images inside the server's JSON), one-line error messages, SettingError's
// wording with and without an origin, and the kind of a hub ETag.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/hub/etag.h"
#include "pnpovss/util/base64.h"
#include "pnpovss/util/hash.h"
#include "pnpovss/util/json_diff.h"

namespace pnpovss {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A file that is removed when the test ends.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& content)
      : path_((fs::temp_directory_path() / ("pnpovss_util_" + std::to_string(::getpid()) + "_" + name)).string()) {
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---- JSON differences ------------------------------------------------------------------------

TEST(JsonDifference, EqualDocumentsHaveNone) {
  const json a = {{"model", "m"}, {"settings", {{"layer", 8}, {"head", 10}}}, {"list", {1, 2, 3}}};
  EXPECT_EQ(util::first_difference(a, a), "");
  EXPECT_EQ(util::describe_difference(a, a), "");
  // Key order does not matter; values of equal numbers do not differ.
  EXPECT_EQ(util::first_difference(json::parse(R"({"a": 1, "b": 2})"), json::parse(R"({"b": 2, "a": 1})")), "");
}

TEST(JsonDifference, NestedKeysAreNamedAsDottedPaths) {
  const json there = {{"model", "m"}, {"settings", {{"attention_layer_1based", 8}, {"head", 10}}}};
  json now = there;
  now["settings"]["attention_layer_1based"] = 9;
  EXPECT_EQ(util::first_difference(there, now), "settings.attention_layer_1based");
  EXPECT_EQ(util::describe_difference(there, now), "settings.attention_layer_1based: 8 there, 9 now");
  // Deeper still, and strings are quoted as JSON.
  const json a = {{"run", {{"settings", {{"post_crf", {{"iterations", 10}}}}}}}, {"name", "x"}};
  json b = a;
  b["run"]["settings"]["post_crf"]["iterations"] = 5;
  EXPECT_EQ(util::first_difference(a, b), "run.settings.post_crf.iterations");
  b = a;
  b["name"] = "y";
  EXPECT_EQ(util::describe_difference(a, b), "name: \"x\" there, \"y\" now");
  // A list differs as a whole: the path stops at the list's key.
  EXPECT_EQ(util::describe_difference(json{{"stems", {"a", "b"}}}, json{{"stems", {"a", "c"}}}),
            "stems: [\"a\",\"b\"] there, [\"a\",\"c\"] now");
}

TEST(JsonDifference, AbsentKeysOnEitherSide) {
  const json there = {{"dataset", "voc20"}, {"settings", {{"layer", 8}}}};
  json now = there;
  now["settings"]["dtype"] = "bf16";  // only now
  EXPECT_EQ(util::first_difference(there, now), "settings.dtype");
  EXPECT_EQ(util::describe_difference(there, now), "settings.dtype: (absent) there, \"bf16\" now");
  now = there;
  now.erase("dataset");  // only there
  EXPECT_EQ(util::first_difference(there, now), "dataset");
  EXPECT_EQ(util::describe_difference(there, now), "dataset: \"voc20\" there, (absent) now");
  // A key present on both sides but of another type: named, with both values.
  now = there;
  now["settings"] = 3;
  EXPECT_EQ(util::first_difference(there, now), "settings");
  EXPECT_EQ(util::describe_difference(there, now), "settings: {\"layer\":8} there, 3 now");
  // A given path prefix is kept.
  EXPECT_EQ(util::first_difference(json{{"k", 1}}, json{{"k", 2}}, "run"), "run.k");
}

TEST(JsonDifference, DocumentsThatAreNotBothObjects) {
  EXPECT_EQ(util::first_difference(json::array({1}), json::array({2})), "(document)");
  EXPECT_EQ(util::first_difference(json{{"a", 1}}, json(5)), "(document)");
  EXPECT_EQ(util::describe_difference(json(1), json("1")), "the whole document differs");
  EXPECT_EQ(util::first_difference(json(7), json(7)), "");
}

TEST(JsonDifference, LongValuesAreCutTo80Characters) {
  const std::string long_there(200, 'a'), long_now(150, 'b');
  const std::string text = util::describe_difference(json{{"images", long_there}}, json{{"images", long_now}});
  // "\"aaa...": the dump with its quotes, cut to 77 characters and "..." (80 in all).
  const std::string cut_there = "\"" + std::string(76, 'a') + "...";
  const std::string cut_now = "\"" + std::string(76, 'b') + "...";
  ASSERT_EQ(cut_there.size(), 80u);
  EXPECT_EQ(text, "images: " + cut_there + " there, " + cut_now + " now");
  // A value of exactly 80 characters is not cut; one of 81 is.
  const std::string eighty(78, 'c');  // 78 + 2 quotes
  EXPECT_EQ(util::describe_difference(json{{"k", eighty}}, json{{"k", 1}}), "k: \"" + eighty + "\" there, 1 now");
  const std::string text81 = util::describe_difference(json{{"k", eighty + "c"}}, json{{"k", 1}});
  EXPECT_EQ(text81, "k: \"" + std::string(76, 'c') + "... there, 1 now");
}

// ---- file hashes -------------------------------------------------------------------------------

TEST(FileHash, KnownDigestsOfSmallFiles) {
  // `printf 'pnp-ovss\n' | sha256sum` and `| git hash-object --stdin`.
  const TempFile small("small.txt", "pnp-ovss\n");
  EXPECT_EQ(util::file_sha256(small.path()), "6af176b5bf7a5393b8e454ee7cea23b0050165185e77c080d8ef788d1722f8fd");
  EXPECT_EQ(util::file_git_blob_sha1(small.path()), "6861e3179c440c0d3c75e3d2fdc41f5bf242e269");
  // The empty file: the empty SHA-256, and git's empty blob.
  const TempFile empty("empty.txt", "");
  EXPECT_EQ(util::file_sha256(empty.path()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(util::file_git_blob_sha1(empty.path()), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
}

TEST(FileHash, FileLargerThanOneBlockAndWithEveryByte) {
  // Bytes 0..255 repeated 1000 times (256000 bytes, NUL and 0xFF included): `sha256sum`,
  // `git hash-object`.
  std::string content;
  for (int r = 0; r < 1000; ++r)
    for (int b = 0; b < 256; ++b) content.push_back(static_cast<char>(b));
  const TempFile big("big.bin", content);
  EXPECT_EQ(util::file_sha256(big.path()), "b57b64b198d5d59ce5a22a9b9f25e72a7d081476d432051aa923f3dbebb90934");
  EXPECT_EQ(util::file_git_blob_sha1(big.path()), "ed99543dba99b885850a5e5a6bf95545aaa9754c");
}

TEST(FileHash, MissingFileThrowsErrorNamingIt) {
  const std::string missing = (fs::temp_directory_path() / "pnpovss_util_no_such_file.bin").string();
  for (const auto& hash : {util::file_sha256, util::file_git_blob_sha1}) {
    try {
      hash(missing);
      ADD_FAILURE() << "no error for a missing file";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
    }
  }
}

// ---- errors ------------------------------------------------------------------------------------

TEST(ErrorText, OneLineEscapesControlCharacters) {
  EXPECT_EQ(Error::one_line("plain text, unchanged"), "plain text, unchanged");
  EXPECT_EQ(Error::one_line("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(Error::one_line(std::string("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(Error::one_line("\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
  // Bytes of UTF-8 text pass through (they are not control characters).
  EXPECT_EQ(Error::one_line("caf\xc3\xa9 \xe2\x80\x8b"), "caf\xc3\xa9 \xe2\x80\x8b");
  // The constructor applies it: what() is always one line.
  EXPECT_STREQ(Error("file 'x\ny'").what(), "file 'x\\ny'");
  EXPECT_STREQ(InvalidArgument("tab\there").what(), "tab\\there");
}

TEST(ErrorText, SettingErrorWithoutOrigin) {
  const SettingError e("layer", "9", "is out of range: the model has 3 text layers, choose 1..3");
  EXPECT_STREQ(e.what(), "layer 9 is out of range: the model has 3 text layers, choose 1..3");
  EXPECT_EQ(e.setting(), "layer");
  EXPECT_EQ(e.value(), "9");
  EXPECT_EQ(e.problem(), "is out of range: the model has 3 text layers, choose 1..3");
  EXPECT_EQ(e.origin(), "");
  // The caller gave the value: the front end names it its own way.
  EXPECT_EQ(e.message_naming("--layer 9"), "--layer 9 is out of range: the model has 3 text layers, choose 1..3");
  EXPECT_EQ(e.message_naming("layer=9"), "layer=9 is out of range: the model has 3 text layers, choose 1..3");
  // A SettingError is an InvalidArgument (Python's ValueError).
  const InvalidArgument* base = &e;
  EXPECT_NE(dynamic_cast<const SettingError*>(base), nullptr);
  // Without a value, no double space.
  EXPECT_STREQ(SettingError("device", "", "needs a GPU").what(), "device needs a GPU");
}

TEST(ErrorText, SettingErrorWithOrigin) {
  const SettingError plain("layer", "8", "is out of range: choose 1..3");
  const SettingError e = plain.from("the paper preset's");
  EXPECT_STREQ(e.what(), "layer 8 (the paper preset's) is out of range: choose 1..3");
  EXPECT_EQ(e.origin(), "the paper preset's");
  EXPECT_EQ(e.setting(), "layer");
  EXPECT_EQ(e.value(), "8");
  EXPECT_EQ(e.problem(), "is out of range: choose 1..3");
  // The user did not write the value: the message says where it came from, not the option.
  EXPECT_EQ(e.message_naming("--layer 8"), e.what());
  const SettingError direct("threshold", "1.5", "must be in [0, 1]", "from settings file 'best.json'");
  EXPECT_STREQ(direct.what(), "threshold 1.5 (from settings file 'best.json') must be in [0, 1]");
  // Control characters of an origin (a path) are escaped as in every message.
  EXPECT_STREQ(plain.from("from settings file 'a\nb.json'").what(),
               "layer 8 (from settings file 'a\\nb.json') is out of range: choose 1..3");
  EXPECT_EQ(SettingError("size", "70", "bad\nvalue").message_naming("--size 70"), "--size 70 bad\\nvalue");
}

// ---- hub ETags ---------------------------------------------------------------------------------

TEST(EtagKind, ByLengthAndLowerCaseHex) {
  const std::string sha256(64, 'a'), sha1(40, '0');
  EXPECT_EQ(hub::etag_kind(sha256), hub::EtagKind::Sha256);
  EXPECT_EQ(hub::etag_kind("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), hub::EtagKind::Sha256);
  EXPECT_EQ(hub::etag_kind(sha1), hub::EtagKind::GitSha1);
  // Neither length, upper case, a non-hex letter, quotes or a weak tag: opaque (not checked).
  EXPECT_EQ(hub::etag_kind(""), hub::EtagKind::Opaque);
  EXPECT_EQ(hub::etag_kind(std::string(63, 'a')), hub::EtagKind::Opaque);
  EXPECT_EQ(hub::etag_kind(std::string(65, 'a')), hub::EtagKind::Opaque);
  EXPECT_EQ(hub::etag_kind(std::string(41, 'a')), hub::EtagKind::Opaque);
  EXPECT_EQ(hub::etag_kind(std::string(64, 'A')), hub::EtagKind::Opaque);
  EXPECT_EQ(hub::etag_kind(std::string(39, 'a') + "g"), hub::EtagKind::Opaque);
  EXPECT_EQ(hub::etag_kind("\"" + sha1 + "\""), hub::EtagKind::Opaque);
  EXPECT_EQ(hub::etag_kind("W/\"" + sha256 + "\""), hub::EtagKind::Opaque);
}

// ---- base64 -----------------------------------------------------------------------------------

std::string decoded_text(const std::string& b64) {
  const std::vector<uint8_t> bytes = util::base64_decode(b64);
  return std::string(bytes.begin(), bytes.end());
}

std::string encoded_text(const std::string& text) {
  return util::base64_encode(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

TEST(Base64, MatchesRfc4648TestVectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},       {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, b64] : vectors) {
    EXPECT_EQ(encoded_text(plain), b64) << plain;
    EXPECT_EQ(decoded_text(b64), plain) << b64;
  }
}

TEST(Base64, RoundTripsEveryByteValue) {
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 256 * 3 + 1; ++i) bytes.push_back(static_cast<uint8_t>(i * 37 + 11));
  EXPECT_EQ(util::base64_decode(util::base64_encode(bytes)), bytes);
}

TEST(Base64, DecodingSkipsLineBreaksAndAcceptsMissingPadding) {
  EXPECT_EQ(decoded_text("Zm9v\nYmFy\r\n"), "foobar");
  EXPECT_EQ(decoded_text("Zm9vYg"), "foob");
  EXPECT_EQ(decoded_text("Zm9vYmE"), "fooba");
}

TEST(Base64, RefusesWhatNoEncoderWrites) {
  for (const std::string bad : {"Zm9v!", "Zg=a", "Z", "Zm9vY", "Zg==="}) {
    EXPECT_THROW(util::base64_decode(bad), InvalidArgument) << bad;
  }
  try {
    util::base64_decode("Zm9v*mFy");
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("character 5"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pnpovss
