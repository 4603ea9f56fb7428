#include "pnpovss/image/png.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/palette.h"

namespace pnpovss::image {
namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  return table;
}

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

// length, type, data, CRC of type + data.
void put_chunk(std::vector<uint8_t>& out, const char type[4], const std::vector<uint8_t>& data) {
  if (data.size() > 0x7FFFFFFFu) throw Error("PNG chunk too large");
  put_be32(out, static_cast<uint32_t>(data.size()));
  const size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_be32(out, crc32(out.data() + type_at, 4 + data.size()));
}

void check_size(int width, int height, int bytes_per_pixel) {
  if (width <= 0 || height <= 0)
    throw Error("cannot encode a PNG of " + std::to_string(width) + "x" + std::to_string(height) + " pixels");
  // The filtered rows go to the compressor in one piece of at most INT_MAX bytes.
  const int64_t row = int64_t{width} * bytes_per_pixel + 1;
  if (row * height > INT_MAX)
    throw Error("cannot encode a PNG of " + std::to_string(width) + "x" + std::to_string(height) +
                " pixels: over 2 GiB of pixel data");
}

// Signature, IHDR, optional PLTE, IDAT of the rows (each prefixed with filter byte 0), IEND.
std::vector<uint8_t> assemble(int width, int height, uint8_t bit_depth, uint8_t colour_type,
                              const std::vector<uint8_t>& palette, const uint8_t* rows, size_t row_bytes) {
  std::vector<uint8_t> raw;
  raw.reserve((row_bytes + 1) * static_cast<size_t>(height));
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    const uint8_t* row = rows + static_cast<size_t>(y) * row_bytes;
    raw.insert(raw.end(), row, row + row_bytes);
  }
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> out(kSignature, kSignature + 8);
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, static_cast<uint32_t>(width));
  put_be32(ihdr, static_cast<uint32_t>(height));
  ihdr.push_back(bit_depth);
  ihdr.push_back(colour_type);
  ihdr.push_back(0);  // compression: deflate
  ihdr.push_back(0);  // filter method 0
  ihdr.push_back(0);  // no interlace
  put_chunk(out, "IHDR", ihdr);
  if (!palette.empty()) put_chunk(out, "PLTE", palette);
  put_chunk(out, "IDAT", zlib_compress(raw.data(), raw.size()));
  put_chunk(out, "IEND", {});
  return out;
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
  const auto& table = crc_table();
  uint32_t c = crc ^ 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::vector<uint8_t> encode_png_indexed(const uint8_t* indices, int width, int height,
                                        const std::vector<uint8_t>& palette) {
  check_size(width, height, 1);
  if (palette.empty() || palette.size() % 3 != 0 || palette.size() > 256 * 3)
    throw Error("a PNG palette needs 1 to 256 entries of 3 bytes, got " + std::to_string(palette.size()) + " bytes");
  const size_t entries = palette.size() / 3;
  const size_t count = static_cast<size_t>(width) * static_cast<size_t>(height);
  for (size_t i = 0; i < count; ++i)
    if (indices[i] >= entries)
      throw Error("pixel index " + std::to_string(indices[i]) + " has no palette entry (the palette has " +
                  std::to_string(entries) + ")");
  return assemble(width, height, 8, 3, palette, indices, static_cast<size_t>(width));
}

std::vector<uint8_t> encode_png_gray16(const uint16_t* values, int width, int height) {
  check_size(width, height, 2);
  const size_t count = static_cast<size_t>(width) * static_cast<size_t>(height);
  std::vector<uint8_t> big_endian(count * 2);
  for (size_t i = 0; i < count; ++i) {
    big_endian[2 * i] = static_cast<uint8_t>(values[i] >> 8);
    big_endian[2 * i + 1] = static_cast<uint8_t>(values[i]);
  }
  return assemble(width, height, 16, 0, {}, big_endian.data(), static_cast<size_t>(width) * 2);
}

std::vector<uint8_t> encode_label_png(const std::vector<int32_t>& labels, int width, int height, int max_label) {
  if (max_label < 0 || max_label > 65535)
    throw Error("a label PNG holds labels 0..65535, not up to " + std::to_string(max_label));
  check_size(width, height, 2);
  if (labels.size() != static_cast<size_t>(width) * static_cast<size_t>(height))
    throw Error("the label map does not match its size " + std::to_string(width) + "x" + std::to_string(height));
  for (int32_t v : labels)
    if (v < 0 || v > max_label)
      throw Error("label " + std::to_string(v) + " is outside 0.." + std::to_string(max_label));
  if (max_label <= 255) {
    std::vector<uint8_t> bytes(labels.begin(), labels.end());
    return encode_png_indexed(bytes.data(), width, height, palette_bytes(max_label + 1));
  }
  std::vector<uint16_t> values(labels.begin(), labels.end());
  return encode_png_gray16(values.data(), width, height);
}

}  // namespace pnpovss::image
