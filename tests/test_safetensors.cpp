#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/io/checkpoint.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/io/safetensors.h"
#include "resident_memory.h"

using pnpovss::Error;
using pnpovss::io::DType;
using pnpovss::io::SafetensorsFile;

namespace {

std::vector<uint8_t> make_file(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> bytes(8 + header.size() + data_bytes, 0);
  uint64_t len = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(len >> (8 * i));
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  return bytes;
}

SafetensorsFile parse(const std::vector<uint8_t>& bytes) {
  return SafetensorsFile::parse(bytes.data(), bytes.size(), "test");
}


}  // namespace

TEST(Safetensors, ReadsFixtureModel) {
  auto file = SafetensorsFile::open(std::string(PNPOVSS_TEST_DATA) + "/blip_itm/model.safetensors");
  const auto& t = file.at("vision_model.embeddings.patch_embedding.weight");
  EXPECT_EQ(t.dtype, DType::F32);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{64, 3, 16, 16}));
  EXPECT_EQ(t.nbytes, 64u * 3 * 16 * 16 * 4);
  EXPECT_EQ(file.find("no.such.tensor"), nullptr);
  EXPECT_THROW(file.at("no.such.tensor"), Error);
}

TEST(Safetensors, ParsesValidHeaderAndMetadata) {
  auto bytes = make_file(
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},)"
      R"("b":{"dtype":"BF16","shape":[],"data_offsets":[12,14]}})",
      14);
  auto file = parse(bytes);
  ASSERT_EQ(file.tensors().size(), 2u);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.at("a").numel(), 6);
  EXPECT_EQ(file.at("b").numel(), 1);
}

TEST(Safetensors, RejectsMalformedHeaders) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "{\"a\":"},
      {"not an object", "[1,2]"},
      {"unknown dtype", R"({"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})"},
      {"negative dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})"},
      {"offsets out of range", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}})"},
      {"offsets reversed", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})"},
      {"size mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})"},
      {"overflowing shape",
       R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})"},
      {"overlap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})"},
      {"missing dtype", R"({"a":{"shape":[2],"data_offsets":[0,8]}})"},
      {"bad metadata", R"({"__metadata__":{"x":1}})"},
  };
  for (const auto& [what, header] : cases) {
    auto bytes = make_file(header, 16);
    EXPECT_THROW(parse(bytes), Error) << what;
  }
}

TEST(Safetensors, RejectsTruncatedFiles) {
  std::vector<uint8_t> tiny = {1, 2, 3};
  EXPECT_THROW(parse(tiny), Error);
  auto bytes = make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8);
  bytes.resize(bytes.size() - 1);
  EXPECT_THROW(parse(bytes), Error);
  std::vector<uint8_t> huge_len(16, 0xff);
  EXPECT_THROW(parse(huge_len), Error);
}

TEST(Safetensors, WriteThenReadRoundTrips) {
  std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f};
  pnpovss::io::TensorView v;
  v.name = "x";
  v.dtype = DType::F32;
  v.shape = {2, 2};
  v.data = reinterpret_cast<const uint8_t*>(values.data());
  v.nbytes = values.size() * sizeof(float);
  const std::string path = testing::TempDir() + "/roundtrip.safetensors";
  pnpovss::io::write_safetensors(path, {v}, {{"k", "v"}});
  auto file = SafetensorsFile::open(path);
  const auto& t = file.at("x");
  ASSERT_EQ(t.nbytes, v.nbytes);
  EXPECT_EQ(std::memcmp(t.data, values.data(), v.nbytes), 0);
  EXPECT_EQ(file.metadata().at("k"), "v");
}

TEST(Checkpoint, OpensModelDirectoryAndRejectsEmptyOne) {
  auto ckpt = pnpovss::io::Checkpoint::open_dir(std::string(PNPOVSS_TEST_DATA) + "/blip_itm");
  EXPECT_NE(ckpt.find("itm_head.weight"), nullptr);
  EXPECT_THROW(pnpovss::io::Checkpoint::open_dir(testing::TempDir()), Error);
}

TEST(MappedFile, ReleasedPagesLeaveResidentMemoryAndReadBackTheFile) {
  const std::string path = testing::TempDir() + "/pages.bin";
  const size_t size = size_t{4} << 20;
  {
    std::vector<char> bytes(size);
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 7 % 251);
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(size));
  }
  const auto file = pnpovss::io::MappedFile::open(path);
  auto checksum = [&] {
    uint64_t sum = 0;
    for (size_t i = 0; i < size; ++i) sum += file->data()[i] * (i % 13 + 1);
    return sum;
  };
  const uint64_t before = checksum();  // reads every page
  ASSERT_GE(resident_kib(file->data()), 4000) << "smaps shows no resident pages for the mapping";
  // A range outside the mapping is ignored; the interior of the file leaves memory.
  std::vector<char> heap(1 << 16, 1);
  file->release(heap.data(), heap.size());
  EXPECT_EQ(heap[100], 1);
  file->release(file->data() + 1, size - 2);
  EXPECT_LE(resident_kib(file->data()), 8) << "only the two partial pages at the ends stay";
  EXPECT_EQ(checksum(), before);  // read back from the file
}
