// The label PNG writer (indexed and 16-bit), the fixed palette, and the overlay drawing. The
// PNGs are read back two ways: through the project's decoder (stb_image, which expands the
// palette to RGB) and by a small chunk reader here that inflates IDAT and returns the raw
// samples, since no decoder of the project exposes palette indices.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/overlay.h"
#include "pnpovss/image/palette.h"
#include "pnpovss/image/png.h"
#include "pnpovss/io/file_write.h"

// The zlib decoder of stb_image, compiled into pnpovss_core by io/image.cpp.
#include <stb_image.h>

using pnpovss::Error;
using pnpovss::Image;
using pnpovss::image::label_color;
using pnpovss::image::Rgb;

namespace {

uint32_t be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }

// What the chunk reader found in a PNG of ours.
struct RawPng {
  uint32_t width = 0, height = 0;
  int bit_depth = 0, colour_type = 0;
  std::vector<uint8_t> palette;
  std::vector<uint32_t> samples;  // one per pixel, row-major
  std::vector<std::string> chunk_order;
};

// Reads the non-interlaced, filter-0, single-channel PNGs the writer produces; fails the test
// on anything else (bad CRC, other filters, trailing bytes).
RawPng read_raw_png(const std::vector<uint8_t>& png) {
  RawPng out;
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  EXPECT_GE(png.size(), 8u);
  EXPECT_EQ(std::memcmp(png.data(), kSignature, 8), 0);
  std::vector<uint8_t> idat;
  size_t pos = 8;
  while (pos + 12 <= png.size()) {
    const uint32_t length = be32(&png[pos]);
    const std::string type(reinterpret_cast<const char*>(&png[pos + 4]), 4);
    EXPECT_LE(pos + 12 + length, png.size());
    const uint8_t* data = &png[pos + 8];
    EXPECT_EQ(be32(data + length), pnpovss::image::crc32(&png[pos + 4], 4 + length)) << "CRC of " << type;
    out.chunk_order.push_back(type);
    if (type == "IHDR") {
      out.width = be32(data);
      out.height = be32(data + 4);
      out.bit_depth = data[8];
      out.colour_type = data[9];
      EXPECT_EQ(data[12], 0) << "interlaced";
    } else if (type == "PLTE") {
      out.palette.assign(data, data + length);
    } else if (type == "IDAT") {
      idat.insert(idat.end(), data, data + length);
    }
    pos += 12 + length;
  }
  EXPECT_EQ(pos, png.size());
  int raw_len = 0;
  char* raw = stbi_zlib_decode_malloc(reinterpret_cast<const char*>(idat.data()), static_cast<int>(idat.size()),
                                      &raw_len);
  EXPECT_NE(raw, nullptr);
  if (raw == nullptr) return out;
  const size_t bytes_per_sample = out.bit_depth == 16 ? 2 : 1;
  const size_t row = out.width * bytes_per_sample + 1;
  EXPECT_EQ(static_cast<size_t>(raw_len), row * out.height);
  if (static_cast<size_t>(raw_len) == row * out.height) {
    for (uint32_t y = 0; y < out.height; ++y) {
      const auto* r = reinterpret_cast<const uint8_t*>(raw) + y * row;
      EXPECT_EQ(r[0], 0) << "row " << y << " filter";
      for (uint32_t x = 0; x < out.width; ++x)
        out.samples.push_back(bytes_per_sample == 2 ? (uint32_t{r[1 + 2 * x]} << 8 | r[2 + 2 * x]) : r[1 + x]);
    }
  }
  std::free(raw);
  return out;
}

std::vector<int32_t> pattern(int width, int height, int max_label) {
  std::vector<int32_t> labels(static_cast<size_t>(width) * height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) labels[static_cast<size_t>(y) * width + x] = (x / 3 + 7 * y) % (max_label + 1);
  return labels;
}

std::string scratch(const std::string& name) {
  const auto dir = std::filesystem::path(testing::TempDir()) / "pnpovss_png_writer";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

bool has_pixel(const Image& image, int y0, int y1, Rgb c) {
  for (int y = y0; y < y1; ++y)
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* p = image.rgb.data() + (static_cast<size_t>(y) * image.width + x) * 3;
      if (p[0] == c.r && p[1] == c.g && p[2] == c.b) return true;
    }
  return false;
}

}  // namespace

TEST(PngWriter, Crc32KnownValue) {
  const std::string text = "123456789";
  EXPECT_EQ(pnpovss::image::crc32(reinterpret_cast<const uint8_t*>(text.data()), text.size()), 0xCBF43926u);
  EXPECT_EQ(pnpovss::image::crc32(nullptr, 0), 0u);
}

TEST(PngPalette, FixedColours) {
  EXPECT_EQ(label_color(0), (Rgb{0, 0, 0}));
  EXPECT_EQ(label_color(1), (Rgb{128, 0, 0}));
  EXPECT_EQ(label_color(2), (Rgb{0, 128, 0}));
  EXPECT_EQ(label_color(3), (Rgb{128, 128, 0}));
  EXPECT_EQ(label_color(4), (Rgb{0, 0, 128}));
  EXPECT_EQ(label_color(7), (Rgb{128, 128, 128}));
  EXPECT_EQ(label_color(8), (Rgb{64, 0, 0}));
  EXPECT_EQ(label_color(15), (Rgb{192, 128, 128}));  // VOC's "person"
  std::set<uint32_t> seen;
  for (int k = 0; k < 4096; ++k) {
    const Rgb c = label_color(k);
    seen.insert(uint32_t{c.r} << 16 | uint32_t{c.g} << 8 | c.b);
  }
  EXPECT_EQ(seen.size(), 4096u) << "labels share colours";
  const auto bytes = pnpovss::image::palette_bytes(3);
  EXPECT_EQ(bytes, (std::vector<uint8_t>{0, 0, 0, 128, 0, 0, 0, 128, 0}));
}

TEST(PngWriter, IndexedRoundTrip) {
  const int width = 37, height = 23, max_label = 5;
  const auto labels = pattern(width, height, max_label);
  const auto png = pnpovss::image::encode_label_png(labels, width, height, max_label);

  const RawPng raw = read_raw_png(png);
  EXPECT_EQ(raw.chunk_order, (std::vector<std::string>{"IHDR", "PLTE", "IDAT", "IEND"}));
  EXPECT_EQ(raw.width, 37u);
  EXPECT_EQ(raw.height, 23u);
  EXPECT_EQ(raw.bit_depth, 8);
  EXPECT_EQ(raw.colour_type, 3);
  EXPECT_EQ(raw.palette, pnpovss::image::palette_bytes(max_label + 1));
  ASSERT_EQ(raw.samples.size(), labels.size());
  for (size_t i = 0; i < labels.size(); ++i) ASSERT_EQ(raw.samples[i], static_cast<uint32_t>(labels[i])) << i;

  // A standard decoder sees the palette colours.
  const Image rgb = pnpovss::image::decode_image_memory(png.data(), png.size(), "label png");
  ASSERT_EQ(rgb.width, width);
  ASSERT_EQ(rgb.height, height);
  for (size_t i = 0; i < labels.size(); ++i) {
    const Rgb c = label_color(labels[i]);
    ASSERT_EQ(rgb.rgb[3 * i], c.r) << i;
    ASSERT_EQ(rgb.rgb[3 * i + 1], c.g) << i;
    ASSERT_EQ(rgb.rgb[3 * i + 2], c.b) << i;
  }
}

TEST(PngWriter, IndexedFullByteRange) {
  const int width = 256, height = 2;
  std::vector<int32_t> labels(width * height);
  for (int i = 0; i < width * height; ++i) labels[i] = i % 256;
  const RawPng raw = read_raw_png(pnpovss::image::encode_label_png(labels, width, height, 255));
  EXPECT_EQ(raw.bit_depth, 8);
  EXPECT_EQ(raw.palette.size(), 256u * 3);
  ASSERT_EQ(raw.samples.size(), labels.size());
  for (size_t i = 0; i < labels.size(); ++i) ASSERT_EQ(raw.samples[i], static_cast<uint32_t>(labels[i]));
}

TEST(PngWriter, Gray16AboveByteLabels) {
  const int width = 19, height = 11, max_label = 300;
  auto labels = pattern(width, height, max_label);
  labels.back() = 300;
  const auto png = pnpovss::image::encode_label_png(labels, width, height, max_label);
  const RawPng raw = read_raw_png(png);
  EXPECT_EQ(raw.chunk_order, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  EXPECT_EQ(raw.bit_depth, 16);
  EXPECT_EQ(raw.colour_type, 0);
  ASSERT_EQ(raw.samples.size(), labels.size());
  for (size_t i = 0; i < labels.size(); ++i) ASSERT_EQ(raw.samples[i], static_cast<uint32_t>(labels[i])) << i;
  // The project's decoder reads 16-bit gray as PIL does (values clipped to 255).
  const Image rgb = pnpovss::image::decode_image_memory(png.data(), png.size(), "label png 16");
  for (size_t i = 0; i < labels.size(); ++i)
    ASSERT_EQ(rgb.rgb[3 * i], static_cast<uint8_t>(std::min(labels[i], 255))) << i;
}

TEST(PngWriter, RejectsBadInput) {
  const std::vector<int32_t> labels = {0, 1, 2, 3};
  EXPECT_THROW(pnpovss::image::encode_label_png(labels, 2, 2, 2), Error);       // label above max
  EXPECT_THROW(pnpovss::image::encode_label_png({0, -1, 0, 0}, 2, 2, 3), Error);
  EXPECT_THROW(pnpovss::image::encode_label_png(labels, 3, 2, 3), Error);       // size mismatch
  EXPECT_THROW(pnpovss::image::encode_label_png(labels, 2, 2, 70000), Error);   // beyond 16 bits
  EXPECT_THROW(pnpovss::image::encode_label_png({}, 0, 0, 3), Error);
  const uint8_t indices[4] = {0, 1, 2, 3};
  EXPECT_THROW(pnpovss::image::encode_png_indexed(indices, 2, 2, pnpovss::image::palette_bytes(3)), Error);
  EXPECT_THROW(pnpovss::image::encode_png_indexed(indices, 2, 2, {}), Error);
}

TEST(PngWriter, AtomicFileWrite) {
  const std::string path = scratch("atomic.png");
  const auto png = pnpovss::image::encode_label_png({0, 1, 1, 0}, 2, 2, 1);
  pnpovss::io::write_file_atomic(path, png);
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(back, png);
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << "left behind: " << entry.path();
  EXPECT_THROW(pnpovss::io::write_file_atomic(scratch("no_such_dir/x.png"), png), Error);
}

// A killed write leaves `<name>.tmp<pid>`; the next run removes those of dead processes only.
TEST(PngWriter, StaleTemporariesOfDeadProcessesAreRemoved) {
  namespace fs = std::filesystem;
  const fs::path dir = scratch("stale_temporaries");
  fs::remove_all(dir);
  fs::create_directories(dir / "sub");
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ::waitpid(dead, nullptr, 0);  // reaped: its id names no process now
  const std::string dead_tmp = ".tmp" + std::to_string(dead), live_tmp = ".tmp" + std::to_string(::getpid());
  for (const std::string& name : std::vector<std::string>{"a.png" + dead_tmp, "b.json" + dead_tmp, "c.png" + live_tmp,
                                                          "d.png", "e.tmp", "f.tmpx1", "sub/g.png" + dead_tmp})
    std::ofstream(dir / name) << "half";
  EXPECT_EQ(pnpovss::io::remove_stale_temporaries(dir.string()), 2u);
  std::set<std::string> left;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) left.insert(entry.path().lexically_relative(dir).string());
  EXPECT_EQ(left, (std::set<std::string>{"c.png" + live_tmp, "d.png", "e.tmp", "f.tmpx1", "sub", "sub/g.png" + dead_tmp}));
  EXPECT_EQ(pnpovss::io::remove_stale_temporaries(scratch("no_such_dir")), 0u);
}

// Appends are whole: a failed one leaves the file as it was.
TEST(PngWriter, AppendFileAppendsWholeRecords) {
  const std::string path = scratch("append.jsonl");
  std::remove(path.c_str());
  {
    pnpovss::io::AppendFile file(path);
    file.append("one\n");
    file.append("two\n");
  }
  pnpovss::io::AppendFile again(path);
  again.append("three\n");
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "one\ntwo\nthree\n");
  EXPECT_THROW(pnpovss::io::AppendFile(scratch("no_such_dir/x.jsonl")), pnpovss::io::WriteError);
}

TEST(PngOverlay, BlendLeavesBackgroundAndMixesClasses) {
  Image image;
  image.width = 4;
  image.height = 1;
  image.rgb = {10, 20, 30, 200, 100, 50, 0, 0, 0, 255, 255, 255};
  const auto out = pnpovss::image::blend_labels(image, {0, 1, 0, 2});
  EXPECT_EQ(out.rgb, (std::vector<uint8_t>{10, 20, 30, 164, 50, 25, 0, 0, 0, 128, 192, 128}));
}

TEST(PngOverlay, LegendDrawsSwatchAndText) {
  Image image;
  image.width = 120;
  image.height = 80;
  image.rgb.assign(120 * 80 * 3, 200);
  std::vector<int32_t> labels(120 * 80, 0);
  for (int i = 0; i < 120 * 40; ++i) labels[i] = 3;
  const std::vector<pnpovss::image::LegendEntry> legend = {{"background", label_color(0)},
                                                        {"remote control", label_color(3)}};
  const Image out = pnpovss::image::overlay_with_legend(image, labels, legend);
  ASSERT_GT(out.height, image.height);
  ASSERT_GE(out.width, image.width);
  // The image part: blended top half, untouched bottom half.
  EXPECT_EQ(out.rgb[0], (200 + 128 + 1) / 2);
  EXPECT_EQ(out.rgb[(static_cast<size_t>(79) * out.width) * 3], 200);
  // The panel below holds the swatch colour (the image part never has pure (128, 128, 0)
  // outside the blend, whose colour is different) and black ink.
  EXPECT_TRUE(has_pixel(out, image.height, out.height, label_color(3)));
  EXPECT_TRUE(has_pixel(out, image.height, out.height, Rgb{0, 0, 0}));
  EXPECT_FALSE(has_pixel(out, 0, image.height, label_color(3)));
  // "remote control" at scale 2 is wider than the 120-pixel image: the panel widens.
  EXPECT_GT(pnpovss::image::text_width("remote control", 2), 120);
  EXPECT_GT(out.width, image.width);
}

TEST(PngOverlay, TextScaleAndNonAscii) {
  EXPECT_EQ(pnpovss::image::legend_scale(640), 3);
  EXPECT_EQ(pnpovss::image::legend_scale(600), 2);
  EXPECT_EQ(pnpovss::image::text_width("cat", 3), 3 * pnpovss::image::text_width("cat", 1));
  // One '?' per UTF-8 character, whatever its byte count.
  EXPECT_EQ(pnpovss::image::text_width("caf\xC3\xA9", 1), pnpovss::image::text_width("caf?", 1));
  Image image;
  image.width = 60;
  image.height = 20;
  image.rgb.assign(60 * 20 * 3, 255);
  pnpovss::image::draw_text(image, -5, -5, "\x01\xFF sofa", Rgb{1, 2, 3}, 2);  // clipped, no crash
  EXPECT_TRUE(has_pixel(image, 0, image.height, Rgb{1, 2, 3}));
}

TEST(PngOverlay, HeatmapScalesAndColours) {
  const float values[4] = {0.0f, 1.0f, 2.0f, 4.0f};
  const Image map = pnpovss::image::heatmap(values, 2, 2, 256);
  EXPECT_EQ(map.width, 256);
  EXPECT_EQ(map.height, 256);
  const Rgb low = pnpovss::image::heat_color(0.0f), high = pnpovss::image::heat_color(1.0f);
  EXPECT_EQ(map.rgb[0], low.r);
  EXPECT_EQ(map.rgb[1], low.g);
  const size_t last = (static_cast<size_t>(255) * 256 + 255) * 3;
  EXPECT_EQ(map.rgb[last], high.r);
  EXPECT_EQ(map.rgb[last + 1], high.g);
  EXPECT_EQ(map.rgb[last + 2], high.b);
  const float flat[2] = {3.0f, 3.0f};
  const Image constant = pnpovss::image::heatmap(flat, 1, 2, 10);
  EXPECT_EQ(constant.height, 10);
  EXPECT_EQ(constant.width, 20);
  EXPECT_EQ(constant.rgb[0], low.r);
  // Without min-max the values keep their meaning: 0.5 stays the middle colour.
  const float halves[2] = {0.5f, 0.5f};
  const Image absolute = pnpovss::image::heatmap(halves, 1, 2, 1, false);
  const Rgb middle = pnpovss::image::heat_color(0.5f);
  EXPECT_EQ(absolute.rgb, (std::vector<uint8_t>{middle.r, middle.g, middle.b, middle.r, middle.g, middle.b}));
}
