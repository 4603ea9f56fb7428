#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/resize.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/io/safetensors.h"
#include "pnpovss/models/blip_preprocess.h"

using pnpovss::Error;
using pnpovss::image::decode_image_file;
using pnpovss::image::decode_image_memory;
using pnpovss::Image;
using pnpovss::models::ImagePreprocessConfig;

namespace {

const std::string kFixture = std::string(PNPOVSS_TEST_DATA) + "/blip_itm";

std::string scratch(const std::string& name) {
  const auto dir = std::filesystem::path(testing::TempDir()) / "pnpovss_image";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  const std::string text = pnpovss::io::read_text_file(path);
  return std::vector<uint8_t>(text.begin(), text.end());
}

// Minimal PNG writer (stored deflate blocks), so that every colour type and bit depth can be
// tested without a second encoder.
class PngBuilder {
 public:
  static std::vector<uint8_t> make(int width, int height, int bit_depth, int color_type,
                                   const std::vector<uint8_t>& raw_rows, const std::vector<uint8_t>& palette = {},
                                   const std::vector<uint8_t>& trns = {}) {
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    std::vector<uint8_t> ihdr;
    put32(ihdr, static_cast<uint32_t>(width));
    put32(ihdr, static_cast<uint32_t>(height));
    ihdr.insert(ihdr.end(), {static_cast<uint8_t>(bit_depth), static_cast<uint8_t>(color_type), 0, 0, 0});
    chunk(png, "IHDR", ihdr);
    if (!palette.empty()) chunk(png, "PLTE", palette);
    if (!trns.empty()) chunk(png, "tRNS", trns);
    chunk(png, "IDAT", zlib_stored(raw_rows));
    chunk(png, "IEND", {});
    return png;
  }

  // Rows of `bytes_per_row` bytes, each preceded by filter type 0.
  static std::vector<uint8_t> rows(const std::vector<uint8_t>& pixels, size_t bytes_per_row) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i < pixels.size(); i += bytes_per_row) {
      out.push_back(0);
      out.insert(out.end(), pixels.begin() + static_cast<std::ptrdiff_t>(i),
                 pixels.begin() + static_cast<std::ptrdiff_t>(i + bytes_per_row));
    }
    return out;
  }

 private:
  static void put32(std::vector<uint8_t>& out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
  }
  static uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0xFFFFFFFFu) {
    for (size_t i = 0; i < n; ++i) {
      crc ^= data[i];
      for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return crc;
  }
  static void chunk(std::vector<uint8_t>& png, const char* type, const std::vector<uint8_t>& data) {
    put32(png, static_cast<uint32_t>(data.size()));
    std::vector<uint8_t> body(type, type + 4);
    body.insert(body.end(), data.begin(), data.end());
    png.insert(png.end(), body.begin(), body.end());
    put32(png, crc32(body.data(), body.size()) ^ 0xFFFFFFFFu);
  }
  static std::vector<uint8_t> zlib_stored(const std::vector<uint8_t>& data) {
    std::vector<uint8_t> out = {0x78, 0x01};
    size_t pos = 0;
    do {
      const size_t n = std::min<size_t>(65535, data.size() - pos);
      const bool last = pos + n == data.size();
      out.push_back(last ? 1 : 0);
      out.push_back(static_cast<uint8_t>(n & 0xFF));
      out.push_back(static_cast<uint8_t>(n >> 8));
      out.push_back(static_cast<uint8_t>(~n & 0xFF));
      out.push_back(static_cast<uint8_t>((~n >> 8) & 0xFF));
      out.insert(out.end(), data.begin() + static_cast<std::ptrdiff_t>(pos),
                 data.begin() + static_cast<std::ptrdiff_t>(pos + n));
      pos += n;
    } while (pos < data.size());
    uint32_t a = 1, b = 0;
    for (uint8_t v : data) {
      a = (a + v) % 65521;
      b = (b + a) % 65521;
    }
    put32(out, (b << 16) | a);
    return out;
  }
};

Image decode(const std::vector<uint8_t>& bytes) { return decode_image_memory(bytes.data(), bytes.size(), "test"); }

// Largest |a - b| between the preprocessed images and a reference tensor (N x 3 x H x W).
double max_error(const std::vector<std::vector<float>>& images, const pnpovss::io::TensorView& ref) {
  EXPECT_EQ(ref.dtype, pnpovss::io::DType::F32);
  std::vector<float> expected(static_cast<size_t>(ref.numel()));
  std::memcpy(expected.data(), ref.data, expected.size() * sizeof(float));
  size_t offset = 0;
  double worst = 0.0;
  for (const auto& image : images) {
    EXPECT_LE(offset + image.size(), expected.size());
    if (offset + image.size() > expected.size()) return INFINITY;
    for (size_t i = 0; i < image.size(); ++i) {
      worst = std::max(worst, std::fabs(static_cast<double>(image[i]) - expected[offset + i]));
    }
    offset += image.size();
  }
  EXPECT_EQ(offset, expected.size());
  return worst;
}

double preprocessing_atol(const std::string& tensor) {
  const auto reference = pnpovss::io::read_json_file(kFixture + "/reference.json");
  return reference.at("tensors").at(tensor).at("tolerance").at("preprocessing_atol").get<double>();
}

}  // namespace

TEST(Image, DecodesFixturePngs) {
  const Image input = decode_image_file(kFixture + "/input.png");
  EXPECT_EQ(input.width, 160);
  EXPECT_EQ(input.height, 120);
  EXPECT_EQ(input.rgb.size(), 160u * 120u * 3u);
  const Image noise = decode_image_file(kFixture + "/random.png");
  EXPECT_EQ(noise.width, 53);
  EXPECT_EQ(noise.height, 37);
}

TEST(Image, PixelValuesMatchReference) {
  const auto config = ImagePreprocessConfig::from_file(kFixture + "/preprocessor_config.json");
  EXPECT_EQ(config.height, 64);
  EXPECT_EQ(config.width, 64);
  const auto tensors = pnpovss::io::SafetensorsFile::open(kFixture + "/reference.safetensors");
  const Image input = decode_image_file(kFixture + "/input.png");
  const Image noise = decode_image_file(kFixture + "/random.png");

  const double err = max_error({pnpovss::models::preprocess_to_chw(input, config.height, config.width, config),
                                pnpovss::models::preprocess_to_chw(noise, config.height, config.width, config)},
                               tensors.at("pixel_values"));
  std::printf("pixel_values max abs error: %.3g\n", err);
  EXPECT_LE(err, preprocessing_atol("pixel_values"));
  // The resize is PIL's integer arithmetic, so the only difference left is float rounding.
  EXPECT_LE(err, 1e-6);

  const auto& large = tensors.at("pixel_values_large");
  ASSERT_EQ(large.shape, (std::vector<int64_t>{1, 3, 96, 80}));
  const double err_large = max_error({pnpovss::models::preprocess_to_chw(input, 96, 80, config)}, large);
  std::printf("pixel_values_large max abs error: %.3g\n", err_large);
  EXPECT_LE(err_large, preprocessing_atol("pixel_values_large"));
  EXPECT_LE(err_large, 1e-6);
}

TEST(Image, ConvertsGrayAndAlphaLikePil) {
  // 2x1 gray: replicated into R, G and B.
  const Image gray = decode(PngBuilder::make(2, 1, 8, 0, PngBuilder::rows({10, 200}, 2)));
  EXPECT_EQ(gray.rgb, (std::vector<uint8_t>{10, 10, 10, 200, 200, 200}));
  // Gray + alpha: alpha is dropped, not blended.
  const Image gray_alpha = decode(PngBuilder::make(2, 1, 8, 4, PngBuilder::rows({10, 0, 200, 128}, 4)));
  EXPECT_EQ(gray_alpha.rgb, (std::vector<uint8_t>{10, 10, 10, 200, 200, 200}));
  // RGBA: alpha dropped.
  const Image rgba = decode(PngBuilder::make(1, 2, 8, 6, PngBuilder::rows({1, 2, 3, 0, 4, 5, 6, 77}, 4)));
  EXPECT_EQ(rgba.rgb, (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
  // Palette with transparency: colours looked up, transparency ignored.
  const Image palette = decode(PngBuilder::make(2, 1, 8, 3, PngBuilder::rows({1, 0}, 2), {9, 8, 7, 50, 60, 70}, {0, 255}));
  EXPECT_EQ(palette.rgb, (std::vector<uint8_t>{50, 60, 70, 9, 8, 7}));
  // 16-bit RGB keeps the high byte; 16-bit gray (PIL mode "I") is clipped to 255.
  const Image rgb16 = decode(PngBuilder::make(1, 1, 16, 2, PngBuilder::rows({0x12, 0x34, 0xAB, 0xCD, 0x00, 0xFF}, 6)));
  EXPECT_EQ(rgb16.rgb, (std::vector<uint8_t>{0x12, 0xAB, 0x00}));
  const Image gray16 = decode(PngBuilder::make(3, 1, 16, 0, PngBuilder::rows({0x00, 0x07, 0x00, 0xFF, 0x12, 0x34}, 6)));
  EXPECT_EQ(gray16.rgb, (std::vector<uint8_t>{7, 7, 7, 255, 255, 255, 255, 255, 255}));
}

TEST(Image, RejectsBadFiles) {
  const std::string empty = scratch("empty.png");
  write_bytes(empty, {});
  EXPECT_THROW(decode_image_file(empty), Error);

  std::vector<uint8_t> png = read_bytes(kFixture + "/input.png");
  png.resize(png.size() / 2);
  const std::string truncated = scratch("truncated.png");
  write_bytes(truncated, png);
  EXPECT_THROW(decode_image_file(truncated), Error);

  EXPECT_THROW(decode_image_file(kFixture + "/config.json"), Error);
  try {
    decode_image_file(kFixture + "/missing.png");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.png"), std::string::npos) << e.what();
  }
  EXPECT_THROW(decode_image_file(kFixture), Error);  // a folder

  // A JPEG Huffman table with more than 256 codes is refused before the decoder sees it.
  std::vector<uint8_t> jpeg = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x13, 0x00};
  jpeg.insert(jpeg.end(), 16, 0xFF);
  jpeg.insert(jpeg.end(), 600, 0x00);
  try {
    decode(jpeg);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Huffman"), std::string::npos) << e.what();
  }

  // Header-only images: no pixels, or more pixels than allowed (refused before decoding).
  EXPECT_THROW(decode(PngBuilder::make(0, 5, 8, 2, {})), Error);
  try {
    decode(PngBuilder::make(30000, 30000, 8, 0, {0}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();
  }
}

TEST(Image, WritesPngAtomically) {
  Image image;
  image.width = 3;
  image.height = 2;
  image.rgb = {0, 1, 2, 3, 4, 5, 6, 7, 8, 250, 251, 252, 253, 254, 255, 9, 10, 11};
  const std::string path = scratch("roundtrip.png");
  pnpovss::image::write_png_rgb(path, image);
  const Image back = decode_image_file(path);
  EXPECT_EQ(back.width, 3);
  EXPECT_EQ(back.height, 2);
  EXPECT_EQ(back.rgb, image.rgb);
  Image broken = image;
  broken.rgb.pop_back();
  EXPECT_THROW(pnpovss::image::write_png_rgb(path, broken), Error);
  EXPECT_THROW(pnpovss::image::write_png_rgb(scratch("no-such-dir/out.png"), image), Error);
}

TEST(Resize, KeepsConstantImagesAndIdentity) {
  Image flat;
  flat.width = 17;
  flat.height = 9;
  flat.rgb.assign(17 * 9 * 3, 137);
  for (auto [w, h] : {std::pair{5, 3}, std::pair{40, 31}, std::pair{17, 4}, std::pair{2, 9}}) {
    const Image out = pnpovss::image::resize_bicubic_pil(flat, w, h);
    ASSERT_EQ(out.rgb.size(), static_cast<size_t>(w * h * 3));
    EXPECT_TRUE(std::all_of(out.rgb.begin(), out.rgb.end(), [](uint8_t v) { return v == 137; })) << w << "x" << h;
  }
  const Image noise = decode_image_file(kFixture + "/random.png");
  EXPECT_EQ(pnpovss::image::resize_bicubic_pil(noise, noise.width, noise.height).rgb, noise.rgb);
  EXPECT_THROW(pnpovss::image::resize_bicubic_pil(noise, 0, 4), Error);
  EXPECT_THROW(pnpovss::image::resize_bicubic_pil(Image{}, 4, 4), Error);
}

TEST(Preprocess, ParsesConfigVariants) {
  const std::string path = scratch("preprocessor_config.json");
  std::ofstream(path) << R"({"size": {"shortest_edge": 224}, "image_mean": 0.5, "do_normalize": false})";
  const auto config = ImagePreprocessConfig::from_file(path);
  EXPECT_EQ(config.height, 224);
  EXPECT_EQ(config.width, 224);
  EXPECT_FLOAT_EQ(config.mean[2], 0.5f);
  EXPECT_FALSE(config.do_normalize);
  std::ofstream(path) << R"({"size": {"height": 10}})";
  EXPECT_THROW(ImagePreprocessConfig::from_file(path), Error);
  std::ofstream(path) << R"({"image_std": [1, 0, 1]})";
  EXPECT_THROW(ImagePreprocessConfig::from_file(path), Error);
}
