// The checks run on a JPEG before stb decodes it (image/jpeg_guard) must let every valid layout
// of compressed data through, and decode it to the pixels it was encoded from; and any damaged
// copy must either decode or be refused with one line, never anything worse (the sanitizer job
// runs these too).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/jpeg_guard.h"
#include "pnpovss/io/mapped_file.h"

namespace fs = std::filesystem;
using pnpovss::Image;
using pnpovss::image::decode_image_file;
using pnpovss::image::decode_image_memory;
using pnpovss::image::jpeg_problem;
using pnpovss::image::JpegReading;

namespace {

const std::string kImages = std::string(PNPOVSS_TEST_DATA) + "/images";

std::vector<std::string> jpeg_files() {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(kImages + "/jpeg")) {
    if (entry.path().extension() == ".jpg") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  const auto file = pnpovss::io::MappedFile::open(path);
  return std::vector<uint8_t>(file->data(), file->data() + file->size());
}

// Mean absolute difference between `image` and the top-left corner of `source`, over RGB (or
// over luma when `image` is gray, which decodes to three equal channels).
double mean_difference(const Image& image, const Image& source, bool gray) {
  double total = 0;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* got = &image.rgb[(static_cast<size_t>(y) * image.width + x) * 3];
      const uint8_t* want = &source.rgb[(static_cast<size_t>(y) * source.width + x) * 3];
      if (gray) {
        total += std::abs(got[0] - (0.299 * want[0] + 0.587 * want[1] + 0.114 * want[2]));
      } else {
        for (int c = 0; c < 3; ++c) total += std::abs(got[c] - want[c]) / 3.0;
      }
    }
  }
  return total / (static_cast<double>(image.width) * image.height);
}

}  // namespace

TEST(JpegGuard, EveryEncodingLayoutDecodesToItsSource) {
  const Image source = decode_image_file(kImages + "/coco_000000039769.png");
  const std::vector<std::string> files = jpeg_files();
  ASSERT_EQ(files.size(), 10u);
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    const std::vector<uint8_t> bytes = read_bytes(path);
    EXPECT_EQ(jpeg_problem(bytes.data(), bytes.size(), JpegReading::kImage), "");
    const Image image = decode_image_memory(bytes.data(), bytes.size(), path);
    const bool small = path.find("/33x17_") != std::string::npos;
    EXPECT_EQ(image.width, small ? 33 : 129);
    EXPECT_EQ(image.height, small ? 17 : 65);
    // Quality 90 keeps the mean error to a few levels; the 33x17 file is at quality 30.
    EXPECT_LT(mean_difference(image, source, path.find("_gray_") != std::string::npos), small ? 12.0 : 4.0);
  }
}

TEST(JpegGuard, NonJpegBytesAreNotItsConcern) {
  const std::vector<uint8_t> png = read_bytes(kImages + "/coco_000000039769.png");
  EXPECT_EQ(jpeg_problem(png.data(), png.size(), JpegReading::kImage), "");
  const uint8_t empty[1] = {0};
  EXPECT_EQ(jpeg_problem(empty, 0, JpegReading::kImage), "");
}

TEST(JpegGuard, CutCopiesDecodeOrAreRefusedWithOneLine) {
  // Every file cut at 24 places, as is and with an end-of-image marker put back (which makes the
  // decoder meet a marker inside the compressed data). A copy cut between two progressive scans
  // may still decode; one cut inside a scan must be refused.
  int refused = 0, decoded = 0;
  for (const std::string& path : jpeg_files()) {
    const std::vector<uint8_t> bytes = read_bytes(path);
    for (int i = 1; i <= 24; ++i) {
      const size_t cut = bytes.size() * static_cast<size_t>(i) / 25;
      for (bool end_marker : {false, true}) {
        std::vector<uint8_t> copy(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut));
        if (end_marker) copy.insert(copy.end(), {0xFF, 0xD9});
        SCOPED_TRACE(path + " cut at " + std::to_string(cut) + (end_marker ? " + EOI" : ""));
        try {
          const Image image = decode_image_memory(copy.data(), copy.size(), "cut");
          EXPECT_GT(image.width, 0);
          ++decoded;
        } catch (const pnpovss::Error& e) {
          const std::string message = e.what();
          EXPECT_EQ(message.find('\n'), std::string::npos) << message;
          ++refused;
        }
      }
    }
  }
  EXPECT_GT(refused, 400);
  EXPECT_LT(decoded, 40);
}

TEST(JpegGuard, HeaderReadingSkipsTheCompressedData) {
  // Only decoding reads scans: the header check passes a copy whose last scan is cut short.
  const std::vector<uint8_t> bytes = read_bytes(kImages + "/jpeg/129x65_420_baseline.jpg");
  std::vector<uint8_t> copy(bytes.begin(), bytes.end() - 200);
  copy.insert(copy.end(), {0xFF, 0xD9});
  EXPECT_EQ(jpeg_problem(copy.data(), copy.size(), JpegReading::kHeader), "");
  EXPECT_NE(jpeg_problem(copy.data(), copy.size(), JpegReading::kImage).find("ends before its last block"),
            std::string::npos);
}
