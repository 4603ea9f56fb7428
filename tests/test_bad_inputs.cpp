// Every parser of untrusted input must reject malformed files with a pnpovss::Error whose
// message is one clean line: never a crash, an exception of another type, or (in the sanitizer
// build) a memory or undefined-behaviour report. The corpus lives in tests/data/bad/ and is
// written by tests/data/bad/make_corpus.py; each file there must have a rule in kCorpus below.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/eval/evaluation.h"
#include "pnpovss/eval/label_png.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/io/checkpoint.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/io/safetensors.h"
#include "pnpovss/models/blip_config.h"
#include "pnpovss/models/blip_preprocess.h"
#include "pnpovss/text/wordpiece.h"

namespace fs = std::filesystem;
using pnpovss::Error;

namespace {

const std::string kData = PNPOVSS_TEST_DATA;
const std::string kBad = kData + "/bad";
const std::string kFixture = kData + "/blip_itm";
// The shard name model.safetensors.index.json files of the corpus refer to.
const char* const kShard = "model-00001-of-00002.safetensors";

// Which loader a corpus file is fed to, and in which role.
enum class Parser {
  Safetensors,       // SafetensorsFile::open, and parse() on an exact-size heap copy
  Config,            // BlipConfig::from_file
  ShardIndex,        // Checkpoint::open_dir of a folder with this as model.safetensors.index.json
  Vocab,             // WordPieceTokenizer::from_dir of a folder with this as vocab.txt
  TokenizerConfig,   // ... with the fixture vocab.txt and this as tokenizer_config.json
  SpecialTokensMap,  // ... with the fixture vocab and config and this as special_tokens_map.json
  Preprocessor,      // ImagePreprocessConfig::from_file
  Image,             // decode_image_file, and decode_image_memory on an exact-size heap copy
  ImageSize,         // read_image_size (the server's check before decoding), then decode_image_memory,
                     // on an exact-size heap copy
  LabelPng,          // eval::decode_label_png on an exact-size heap copy
  RunJson,           // eval::merge_runs of a run folder with this as run.json
};

struct Rule {
  const char* file;
  Parser parser;
  // A part of the message that shows the file was refused for the reason its name gives, and
  // not for some other problem of the test setup.
  const char* reason;
};

// clang-format off
const Rule kCorpus[] = {
    {"safetensors_zero_bytes.safetensors", Parser::Safetensors, "8-byte header length is missing"},
    {"safetensors_shorter_than_length_field.safetensors", Parser::Safetensors, "8-byte header length is missing"},
    {"safetensors_header_len_exceeds_file.safetensors", Parser::Safetensors, "header length 4096 exceeds"},
    {"safetensors_header_len_2pow63.safetensors", Parser::Safetensors, "header length 9223372036854775808 exceeds"},
    {"safetensors_header_len_uint64_max.safetensors", Parser::Safetensors, "header length 18446744073709551615 exceeds"},
    {"safetensors_header_len_zero.safetensors", Parser::Safetensors, "not a valid JSON object"},
    {"safetensors_truncated_data.safetensors", Parser::Safetensors, "[0, 64] lie outside the data section of 20 bytes"},
    {"safetensors_overlapping_offsets.safetensors", Parser::Safetensors, "overlap"},
    {"safetensors_offsets_out_of_range.safetensors", Parser::Safetensors, "lie outside the data section"},
    {"safetensors_offsets_reversed.safetensors", Parser::Safetensors, "data_offsets [8, 0]"},
    {"safetensors_offsets_negative.safetensors", Parser::Safetensors, "data_offsets must be non-negative integers"},
    {"safetensors_offsets_not_a_pair.safetensors", Parser::Safetensors, "'data_offsets' must be an array [begin, end]"},
    {"safetensors_offsets_disagree_with_shape.safetensors", Parser::Safetensors, "needs 16 bytes but data_offsets span 8"},
    {"safetensors_unknown_dtype.safetensors", Parser::Safetensors, "unsupported dtype 'float32'"},
    {"safetensors_dtype_not_string.safetensors", Parser::Safetensors, "non-string 'dtype'"},
    {"safetensors_missing_shape.safetensors", Parser::Safetensors, "non-array 'shape'"},
    {"safetensors_shape_negative.safetensors", Parser::Safetensors, "shape entries must be non-negative integers"},
    {"safetensors_shape_non_integer.safetensors", Parser::Safetensors, "shape entries must be non-negative integers"},
    {"safetensors_shape_string_entry.safetensors", Parser::Safetensors, "shape entries must be non-negative integers"},
    {"safetensors_shape_entry_above_int64.safetensors", Parser::Safetensors, "shape entry too large"},
    {"safetensors_shape_product_overflows.safetensors", Parser::Safetensors, "size overflows"},
    {"safetensors_entry_not_object.safetensors", Parser::Safetensors, "header entry is not an object"},
    {"safetensors_header_not_json.safetensors", Parser::Safetensors, "not a valid JSON object"},
    {"safetensors_header_invalid_utf8.safetensors", Parser::Safetensors, "not a valid JSON object"},
    {"safetensors_header_json_array.safetensors", Parser::Safetensors, "not a valid JSON object"},
    {"safetensors_header_deeply_nested_arrays.safetensors", Parser::Safetensors, "not a valid JSON object"},
    {"safetensors_header_deeply_nested_objects.safetensors", Parser::Safetensors, "non-string 'dtype'"},
    {"safetensors_metadata_non_string_value.safetensors", Parser::Safetensors, "__metadata__ value of 'format' is not a string"},
    {"safetensors_metadata_not_object.safetensors", Parser::Safetensors, "__metadata__ must be an object"},
    {"safetensors_newline_in_tensor_name.safetensors", Parser::Safetensors, "tensor 'bad\\nname': unsupported dtype 'F7'"},

    {"config_invalid_json.json", Parser::Config, "is not valid JSON"},
    {"config_invalid_utf8.json", Parser::Config, "is not valid JSON"},
    {"config_not_object.json", Parser::Config, "config is not a JSON object"},
    {"config_model_type_clip.json", Parser::Config, "model_type 'clip' is not supported"},
    {"config_model_type_missing.json", Parser::Config, "model_type '' is not supported"},
    {"config_model_type_not_string.json", Parser::Config, "field 'model_type' must be a string"},
    {"config_architecture_captioning.json", Parser::Config, "architecture 'BlipForConditionalGeneration'"},
    {"config_hidden_size_string.json", Parser::Config, "field 'hidden_size' must be an integer"},
    {"config_hidden_size_fraction.json", Parser::Config, "field 'hidden_size' must be an integer"},
    {"config_layers_zero.json", Parser::Config, "vision num_hidden_layers must be positive"},
    {"config_heads_negative.json", Parser::Config, "text num_attention_heads must be positive"},
    {"config_hidden_not_divisible_by_heads.json", Parser::Config, "not a multiple of num_attention_heads 6"},
    {"config_patch_larger_than_image.json", Parser::Config, "must be a positive multiple of patch_size"},
    {"config_image_size_not_multiple_of_patch.json", Parser::Config, "must be a positive multiple of patch_size"},
    {"config_hidden_act_relu.json", Parser::Config, "hidden_act 'relu' is not supported"},
    {"config_size_beyond_uint64.json", Parser::Config, "field 'hidden_size' must be an integer"},
    {"config_size_uint64_max.json", Parser::Config, "'vocab_size' is too large"},
    {"config_image_size_int64_max.json", Parser::Config, "vision image_size 9223372036854775792 is too large"},
    {"config_vocab_size_huge.json", Parser::Config, "text vocab_size 1099511627776 is too large"},

    {"index_invalid_json.json", Parser::ShardIndex, "is not valid JSON"},
    {"index_not_object.json", Parser::ShardIndex, "missing 'weight_map' object"},
    {"index_missing_weight_map.json", Parser::ShardIndex, "missing 'weight_map' object"},
    {"index_weight_map_not_object.json", Parser::ShardIndex, "missing 'weight_map' object"},
    {"index_shard_name_not_string.json", Parser::ShardIndex, "'itm_head.weight' is not a file name"},
    {"index_shard_path_traversal.json", Parser::ShardIndex, "must be a plain file name"},
    {"index_shard_absolute_path.json", Parser::ShardIndex, "must be a plain file name"},
    {"index_shard_missing.json", Parser::ShardIndex, "model-00002-of-00002.safetensors': No such file"},
    {"index_tensor_not_in_shard.json", Parser::ShardIndex, "'no.such.tensor' is listed for"},

    {"vocab_empty.txt", Parser::Vocab, "is empty"},
    {"vocab_only_byte_order_mark.txt", Parser::Vocab, "is empty"},
    {"vocab_invalid_utf8.txt", Parser::Vocab, "is not valid UTF-8"},
    {"vocab_duplicate_tokens.txt", Parser::Vocab, "token 'cat' appears twice (ids 5 and 7)"},
    {"vocab_missing_unk.txt", Parser::Vocab, "lacks the unknown token '[UNK]'"},
    {"tokenizer_config_invalid_json.json", Parser::TokenizerConfig, "is not valid JSON"},
    {"tokenizer_config_not_object.json", Parser::TokenizerConfig, "must hold a JSON object"},
    {"tokenizer_config_lower_case_string.json", Parser::TokenizerConfig, "field 'do_lower_case' must be true or false"},
    {"tokenizer_config_unk_token_not_in_vocab.json", Parser::TokenizerConfig, "lacks the unknown token '<unk>'"},
    {"tokenizer_config_unk_token_number.json", Parser::TokenizerConfig, "field 'unk_token' must be a string"},
    {"tokenizer_config_max_length_negative.json", Parser::TokenizerConfig, "'model_max_length' must be positive"},
    {"tokenizer_config_never_split_not_list.json", Parser::TokenizerConfig, "field 'never_split' must be a list"},
    {"tokenizer_config_newline_in_token.json", Parser::TokenizerConfig, "lacks the classifier token '[CL\\nS]'"},
    {"special_tokens_map_not_object.json", Parser::SpecialTokensMap, "must hold a JSON object"},
    {"special_tokens_map_extra_token_not_in_vocab.json", Parser::SpecialTokensMap, "lacks the special token '[NOT_IN_VOCAB]'"},

    {"preprocessor_config_invalid_json.json", Parser::Preprocessor, "is not valid JSON"},
    {"preprocessor_config_not_object.json", Parser::Preprocessor, "must hold a JSON object"},
    {"preprocessor_config_size_zero.json", Parser::Preprocessor, "size.height must be a positive integer"},
    {"preprocessor_config_size_string.json", Parser::Preprocessor, "field 'size' must be an object or an integer"},
    {"preprocessor_config_size_huge.json", Parser::Preprocessor, "size.height must be a positive integer up to 65536"},
    {"preprocessor_config_size_only_height.json", Parser::Preprocessor, "needs both 'height' and 'width'"},
    {"preprocessor_config_std_zero.json", Parser::Preprocessor, "'image_std' must not contain 0"},
    {"preprocessor_config_mean_two_values.json", Parser::Preprocessor, "'image_mean' must be a number or a list of 3"},
    {"preprocessor_config_mean_overflows_float.json", Parser::Preprocessor, "'image_mean' must hold finite numbers"},
    {"preprocessor_config_rescale_not_number.json", Parser::Preprocessor, "field 'rescale_factor' must be a number"},
    {"preprocessor_config_resample_nearest.json", Parser::Preprocessor, "only bicubic (3)"},
    {"preprocessor_config_do_resize_string.json", Parser::Preprocessor, "field 'do_resize' must be true or false"},

    {"image_zero_bytes.png", Parser::Image, "is empty (0 bytes)"},
    {"image_text_file.png", Parser::Image, "cannot decode image"},
    {"image_png_truncated_in_idat.png", Parser::Image, "cannot decode image"},
    {"image_png_truncated_in_header.png", Parser::Image, "cannot decode image"},
    {"image_png_signature_only.png", Parser::Image, "cannot decode image"},
    {"image_png_corrupt_idat_bad_crc.png", Parser::Image, "cannot decode image"},
    {"image_png_unknown_critical_chunk.png", Parser::Image, "cannot decode image"},
    {"image_png_huge_dimensions.png", Parser::Image, "is too large (100000x100000 pixels"},
    {"image_png_zero_width.png", Parser::Image, "has no pixels (0x16)"},
    {"image_png_invalid_bit_depth.png", Parser::Image, "cannot decode image"},
    {"image_png_too_few_pixels.png", Parser::Image, "cannot decode image"},
    {"image_jpeg_1x1_corrupt_scan.jpg", Parser::Image, "scan 1: its compressed data holds an invalid Huffman code"},
    {"image_jpeg_huffman_table_overflow.jpg", Parser::Image, "more than 256 codes"},
    {"image_jpeg_zero_height.jpg", Parser::Image, "cannot decode image"},
    {"image_jpeg_soi_only.jpg", Parser::Image, "cannot decode image"},
    {"image_bmp_truncated_pixels.bmp", Parser::Image, "is truncated (its 16x16 BMP pixels need 822 bytes, the file has 154)"},
    {"image_bmp_headers_only.bmp", Parser::Image, "is truncated"},
    {"image_bmp_huge_dimensions.bmp", Parser::Image, "is too large (30000x30000 pixels"},
    {"image_bmp_width_above_limit.bmp", Parser::Image, "2000000x1"},
    {"image_bmp_height_int_min.bmp", Parser::Image, "is too large (16x2147483648 pixels"},
    {"image_bmp_zero_width.bmp", Parser::Image, "has no pixels"},
    {"image_bmp_bad_pixel_offset.bmp", Parser::Image, "cannot decode image"},
    {"image_gif_unsupported_format.gif", Parser::Image, "supported formats: JPEG, PNG, BMP"},

    // Found by fuzzing (fuzz/, docs/fuzzing.md).
    {"image_size_jpeg_huffman_table_overflow.jpg", Parser::ImageSize, "more than 256 codes"},
    {"image_png_idat_length_past_end.png", Parser::Image, "chunk 'IDAT' of 1744830615 bytes runs past the end"},
    {"image_png_tiny_data_huge_size.png", Parser::Image, "cannot hold 16384x16384 pixels"},
    {"image_png_empty_first_idat.png", Parser::Image, "an empty IDAT chunk before the image data"},
    {"image_bmp_pixel_bytes_overflow.bmp", Parser::Image, "has no pixels (-168892668x285868548)"},
    {"image_jpeg_fill_byte_before_soi_huffman_overflow.jpg", Parser::ImageSize, "more than 256 codes"},
    {"image_bmp_header_cut_short.bmp", Parser::ImageSize, "16x797 BMP pixels need 6620 bytes, the file has 29"},
    {"image_jpeg_scan_table_undefined.jpg", Parser::Image, "a scan uses a Huffman table that was never defined"},
    {"image_jpeg_progressive_invalid_code_shift.jpg", Parser::Image, "scan 2: its compressed data ends before its last block"},
    {"image_jpeg_scan_ends_at_marker.jpg", Parser::Image, "scan 1: its compressed data ends before its last block"},
    {"image_jpeg_restart_marker_missing.jpg", Parser::Image, "restart marker is missing"},
    {"image_jpeg_component_without_scan.jpg", Parser::Image, "component 2 of 3 has no scan"},
    {"image_jpeg_no_scan.jpg", Parser::Image, "it has no scan, so no image data"},
    {"image_jpeg_progressive_ac_before_dc.jpg", Parser::Image, "scan 1: it comes before the first DC scan"},
    {"label_png_tiny_data_huge_size.png", Parser::LabelPng, "cannot hold 524928x480 pixels"},
    {"run_json_not_object.json", Parser::RunJson, "run.json' is not a JSON object"},
    {"run_json_shard_index_string.json", Parser::RunJson, "shard \"0\"/2 is not k/N"},
    {"run_json_shard_count_huge_float.json", Parser::RunJson, "is not k/N with 0 <= k < N"},
    {"run_json_stems_not_strings.json", Parser::RunJson, "'stems' holds 1, not an image stem"},
    {"run_json_num_classes_negative.json", Parser::RunJson, "'num_scored_classes' is not a class count"},
    {"run_json_scored_classes_mismatch.json", Parser::RunJson, "'scored_classes' is not a list of 3 class names"},
};
// clang-format on

// Files of tests/data/bad that are not inputs.
const std::set<std::string> kNotCorpus = {"make_corpus.py"};

std::vector<uint8_t> read_bytes(const std::string& path) {
  const std::string text = pnpovss::io::read_text_file(path);
  return std::vector<uint8_t>(text.begin(), text.end());
}

// A fresh empty folder under the test temp dir, removed when the object goes away. The process
// id keeps test runs of several build folders at the same time apart.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name)
      : path_(fs::path(testing::TempDir()) / ("pnpovss_bad_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string str() const { return path_.string(); }
  void copy_in(const std::string& from, const std::string& as) const {
    fs::copy_file(from, path_ / as, fs::copy_options::overwrite_existing);
  }
  // Large fixture files are linked rather than copied.
  void link_in(const std::string& from, const std::string& as) const { fs::create_symlink(from, path_ / as); }

 private:
  fs::path path_;
};

// Runs the loader of `parser` on the bytes of `path` (a corpus file, or a valid file in the
// sanity test). Throws what the loader throws.
void run_parser(Parser parser, const std::string& path, const std::string& tag) {
  using namespace pnpovss;
  switch (parser) {
    case Parser::Safetensors: {
      io::SafetensorsFile::open(path);
      // The mapping is page-sized, so AddressSanitizer only sees a read past the end of the
      // data in a heap buffer of exactly the file's size.
      const std::vector<uint8_t> bytes = read_bytes(path);
      io::SafetensorsFile::parse(bytes.data(), bytes.size(), tag);
      return;
    }
    case Parser::Config:
      models::BlipConfig::from_file(path);
      return;
    case Parser::ShardIndex: {
      ScratchDir dir(tag);
      dir.link_in(kFixture + "/model.safetensors", kShard);
      dir.copy_in(path, "model.safetensors.index.json");
      io::Checkpoint::open_dir(dir.str());
      return;
    }
    case Parser::Vocab: {
      ScratchDir dir(tag);
      dir.copy_in(path, "vocab.txt");
      text::WordPieceTokenizer::from_dir(dir.str());
      return;
    }
    case Parser::TokenizerConfig: {
      ScratchDir dir(tag);
      dir.link_in(kFixture + "/vocab.txt", "vocab.txt");
      dir.copy_in(path, "tokenizer_config.json");
      text::WordPieceTokenizer::from_dir(dir.str());
      return;
    }
    case Parser::SpecialTokensMap: {
      ScratchDir dir(tag);
      dir.link_in(kFixture + "/vocab.txt", "vocab.txt");
      dir.copy_in(kFixture + "/tokenizer_config.json", "tokenizer_config.json");
      dir.copy_in(path, "special_tokens_map.json");
      text::WordPieceTokenizer::from_dir(dir.str());
      return;
    }
    case Parser::Preprocessor:
      models::ImagePreprocessConfig::from_file(path);
      return;
    case Parser::Image: {
      image::decode_image_file(path);
      const std::vector<uint8_t> bytes = read_bytes(path);
      image::decode_image_memory(bytes.data(), bytes.size(), tag);
      return;
    }
    case Parser::ImageSize: {
      const std::vector<uint8_t> bytes = read_bytes(path);
      image::read_image_size(bytes.data(), bytes.size(), tag);
      image::decode_image_memory(bytes.data(), bytes.size(), tag);
      return;
    }
    case Parser::LabelPng: {
      const std::vector<uint8_t> bytes = read_bytes(path);
      eval::decode_label_png(bytes.data(), bytes.size(), tag);
      return;
    }
    case Parser::RunJson: {
      ScratchDir dir(tag);
      dir.copy_in(path, "run.json");
      eval::merge_runs({dir.str()});
      return;
    }
  }
}

// Empty when `fn` throws a pnpovss::Error with a one-line message containing `reason`;
// otherwise what went wrong.
std::string expect_clean_error(const std::function<void()>& fn, const std::string& reason) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.empty()) return "the error message is empty";
    if (message.find('\n') != std::string::npos || message.find('\r') != std::string::npos)
      return "the error message spans several lines: " + message;
    if (message.find(reason) == std::string::npos)
      return "the error message lacks \"" + reason + "\": " + message;
    return "";
  } catch (const std::exception& e) {
    return std::string("threw a non-pnpovss exception: ") + e.what();
  } catch (...) {
    return "threw a non-exception object";
  }
  return "was accepted";
}

// Only the normal outcomes of a fuzzed input: success, or a pnpovss::Error with one line.
void expect_returns_or_error(const std::function<void()>& fn, const std::string& what) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_FALSE(message.empty()) << what;
    EXPECT_EQ(message.find('\n'), std::string::npos) << what << ": " << message;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": threw a non-pnpovss exception: " << e.what();
  }
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

// The loaders and folder layouts used below accept the valid fixture files, so a rejection in
// the corpus test is caused by the corpus file.
TEST(BadInputs, LoadersAcceptTheValidFixture) {
  const ScratchDir index_dir("valid_index_source");
  const std::string index = index_dir.str() + "/index.json";
  {
    std::ofstream out(index);
    out << R"({"metadata":{},"weight_map":{"itm_head.weight":")" << kShard << R"("}})";
  }
  // A run folder of one shard without images.
  const std::string run_json = index_dir.str() + "/run.json";
  {
    std::ofstream out(run_json);
    out << R"({"dataset":"voc20","protocol":"mmseg","scored_classes":["a","b"],"num_scored_classes":2,)"
        << R"("shard":{"index":0,"count":1},"stems":[]})";
  }
  const std::vector<std::pair<Parser, std::string>> valid = {
      {Parser::Safetensors, kFixture + "/model.safetensors"},
      {Parser::Config, kFixture + "/config.json"},
      {Parser::ShardIndex, index},
      {Parser::Vocab, kFixture + "/vocab.txt"},
      {Parser::TokenizerConfig, kFixture + "/tokenizer_config.json"},
      {Parser::SpecialTokensMap, kFixture + "/special_tokens_map.json"},
      {Parser::Preprocessor, kFixture + "/preprocessor_config.json"},
      {Parser::Image, kFixture + "/input.png"},
      {Parser::ImageSize, kFixture + "/input.png"},
      {Parser::LabelPng, kData + "/images/coco_000000039769_labels.png"},
      {Parser::RunJson, run_json},
  };
  for (const auto& [parser, path] : valid) {
    EXPECT_NO_THROW(run_parser(parser, path, "valid")) << path;
  }
}

TEST(BadInputs, EveryCorpusFileIsRejectedWithAOneLineError) {
  size_t checked = 0;
  for (const Rule& rule : kCorpus) {
    const std::string path = kBad + "/" + rule.file;
    ASSERT_TRUE(fs::is_regular_file(path)) << path << " is missing; run tests/data/bad/make_corpus.py";
    const std::string tag = fs::path(rule.file).stem().string();
    const std::string problem = expect_clean_error([&] { run_parser(rule.parser, path, tag); }, rule.reason);
    EXPECT_EQ(problem, "") << rule.file;
    ++checked;
  }
  EXPECT_GE(checked, 30u);
}

// A file added to the corpus without a rule (or a rule whose file was removed) fails here.
TEST(BadInputs, CorpusAndRulesMatch) {
  std::set<std::string> on_disk;
  for (const auto& entry : fs::directory_iterator(kBad)) {
    const std::string name = entry.path().filename().string();
    if (!kNotCorpus.count(name)) on_disk.insert(name);
  }
  std::set<std::string> ruled;
  for (const Rule& rule : kCorpus) EXPECT_TRUE(ruled.insert(rule.file).second) << "two rules for " << rule.file;
  for (const auto& name : on_disk) EXPECT_TRUE(ruled.count(name)) << "no rule in kCorpus for tests/data/bad/" << name;
  for (const auto& name : ruled) EXPECT_TRUE(on_disk.count(name)) << "rule for a missing file " << name;
  std::uintmax_t total = 0;
  for (const auto& name : on_disk) total += fs::file_size(kBad + "/" + name);
  EXPECT_LT(total, std::uintmax_t{1} << 20) << "keep the corpus small";
}

// The BMP size check must not refuse valid files: an exact-size BMP decodes, bottom-up or
// top-down (negative height) alike, and one byte less is a truncated file.
TEST(BadInputs, BmpSizeCheckKeepsValidFiles) {
  const int width = 3, height = 2;
  const size_t row_bytes = 12;  // 3 pixels * 3 bytes, padded to a multiple of 4
  auto make_bmp = [&](bool top_down) {
    std::vector<uint8_t> bmp(54 + row_bytes * height, 0);
    auto put32 = [&](size_t at, uint32_t v) {
      for (int i = 0; i < 4; ++i) bmp[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
    };
    bmp[0] = 'B';
    bmp[1] = 'M';
    put32(2, static_cast<uint32_t>(bmp.size()));
    put32(10, 54);
    put32(14, 40);
    put32(18, width);
    put32(22, static_cast<uint32_t>(top_down ? -height : height));
    bmp[26] = 1;   // planes
    bmp[28] = 24;  // bits per pixel
    for (int y = 0; y < height; ++y) {
      // BMP rows are stored bottom-up unless the height is negative.
      const size_t stored_row = static_cast<size_t>(top_down ? y : height - 1 - y);
      for (int x = 0; x < width; ++x) {
        uint8_t* bgr = &bmp[54 + stored_row * row_bytes + static_cast<size_t>(x) * 3];
        bgr[0] = static_cast<uint8_t>(10 * x);        // blue
        bgr[1] = static_cast<uint8_t>(100 + y);       // green
        bgr[2] = static_cast<uint8_t>(200 + x + y);   // red
      }
    }
    return bmp;
  };
  const auto bottom_up = make_bmp(false);
  const auto top_down = make_bmp(true);
  const auto a = pnpovss::image::decode_image_memory(bottom_up.data(), bottom_up.size(), "bottom-up");
  const auto b = pnpovss::image::decode_image_memory(top_down.data(), top_down.size(), "top-down");
  ASSERT_EQ(a.width, width);
  ASSERT_EQ(a.height, height);
  ASSERT_EQ(b.width, width);
  ASSERT_EQ(b.height, height);
  EXPECT_EQ(a.rgb, b.rgb);
  // Pixel (x=2, y=1) in RGB order.
  const size_t at = (1 * width + 2) * 3;
  EXPECT_EQ(a.rgb[at], 203);
  EXPECT_EQ(a.rgb[at + 1], 101);
  EXPECT_EQ(a.rgb[at + 2], 20);
  for (const auto* bmp : {&bottom_up, &top_down}) {
    const std::vector<uint8_t> short_by_one(bmp->begin(), bmp->end() - 1);
    const std::string problem = expect_clean_error(
        [&] { pnpovss::image::decode_image_memory(short_by_one.data(), short_by_one.size(), "short"); }, "truncated");
    EXPECT_EQ(problem, "");
  }
}

// Random byte changes in the header of the fixture checkpoint (length field included) and
// random truncations. Offsets and shapes are checked against an exact-size buffer, so a read
// outside the file shows up under AddressSanitizer.
TEST(BadInputs, FuzzedSafetensorsHeaders) {
  std::vector<uint8_t> bytes = read_bytes(kFixture + "/model.safetensors");
  ASSERT_GT(bytes.size(), 8u);
  const size_t header_end = 8 + static_cast<size_t>(read_u64_le(bytes.data()));
  ASSERT_LT(header_end, bytes.size());
  ASSERT_NO_THROW(pnpovss::io::SafetensorsFile::parse(bytes.data(), bytes.size(), "fixture"));

  std::mt19937 rng(20240611);
  // Bytes that keep a JSON text JSON-like, so that mutations reach the field checks too.
  const std::string json_bytes = "0123456789[]{}\",:-.eE \\";
  size_t rejected = 0;
  for (int iteration = 0; iteration < 150; ++iteration) {
    std::vector<std::pair<size_t, uint8_t>> saved;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % header_end;
      saved.emplace_back(pos, bytes[pos]);
      if (rng() % 2 == 0) {
        bytes[pos] = static_cast<uint8_t>(rng());
      } else {
        bytes[pos] = static_cast<uint8_t>(json_bytes[rng() % json_bytes.size()]);
      }
    }
    bool threw = false;
    expect_returns_or_error(
        [&] {
          try {
            pnpovss::io::SafetensorsFile::parse(bytes.data(), bytes.size(), "fuzzed");
          } catch (const Error&) {
            threw = true;
            throw;
          }
        },
        "byte edit iteration " + std::to_string(iteration));
    rejected += threw ? 1 : 0;
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) bytes[it->first] = it->second;
  }
  // Nearly every edit of the JSON breaks it; mostly-accepted inputs would mean the edits missed.
  EXPECT_GT(rejected, 75u);

  for (int iteration = 0; iteration < 60; ++iteration) {
    // Half inside the header, copied to an exact-size buffer. Half inside the tensor data, which
    // the parser never reads (only the offsets are checked), so no copy of megabytes is needed.
    const bool in_header = iteration % 2 == 0;
    const size_t size = in_header ? rng() % (header_end + 1) : header_end + rng() % (bytes.size() - header_end);
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(in_header ? size : 0));
    const uint8_t* data = in_header ? prefix.data() : bytes.data();
    const std::string what = "truncation to " + std::to_string(size) + " bytes";
    EXPECT_THROW(pnpovss::io::SafetensorsFile::parse(data, size, "truncated"), Error) << what;
  }
}

// The same for the fixture PNG, and for a small baseline JPEG (stb's JPEG decoder and the
// Huffman-table guard in front of it).
TEST(BadInputs, FuzzedImages) {
  // 8x8 gray baseline JPEG with one-code Huffman tables (DC category 0, then end of block).
  std::vector<uint8_t> jpeg = {0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x43, 0x00};
  jpeg.insert(jpeg.end(), 64, 0x01);
  const std::vector<uint8_t> rest = {
      0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00,  // SOF0 8x8
      0xFF, 0xC4, 0x00, 0x14, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00,  // DC
      0xFF, 0xC4, 0x00, 0x14, 0x10, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00,  // AC
      0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00,                     // SOS
      0x3F, 0xFF, 0xD9};
  jpeg.insert(jpeg.end(), rest.begin(), rest.end());
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds = {
      {"input.png", read_bytes(kFixture + "/input.png")},
      {"baseline.jpg", jpeg},
  };
  std::mt19937 rng(7);
  for (const auto& [name, original] : seeds) {
    const auto decoded = pnpovss::image::decode_image_memory(original.data(), original.size(), name);
    ASSERT_GT(decoded.width, 0) << name;
    for (int iteration = 0; iteration < 150; ++iteration) {
      std::vector<uint8_t> bytes = original;
      const bool truncate = iteration % 3 == 2;
      if (truncate) {
        bytes.resize(rng() % bytes.size());
        bytes.shrink_to_fit();
      } else {
        const int edits = 1 + static_cast<int>(rng() % 6);
        for (int e = 0; e < edits; ++e) {
          const size_t pos = rng() % bytes.size();
          if (rng() % 2 == 0) {
            bytes[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
          } else {
            bytes[pos] = static_cast<uint8_t>(rng());
          }
        }
      }
      expect_returns_or_error([&] { pnpovss::image::decode_image_memory(bytes.data(), bytes.size(), name); },
                              name + " iteration " + std::to_string(iteration));
    }
  }
}
