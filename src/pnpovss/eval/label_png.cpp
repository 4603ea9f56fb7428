#include "pnpovss/eval/label_png.h"

#include <stb_image.h>

#include <cstdlib>
#include <cstring>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/png.h"
#include "pnpovss/io/mapped_file.h"

namespace pnpovss::eval {
namespace {

constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
// The most output one byte of deflate data can give.
constexpr size_t kMaxDeflateRatio = 1032;

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct Header {
  uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
};

// The chunks that matter: IHDR and the concatenated IDAT data. CRCs are checked, so a damaged
// file is refused instead of scored.
struct Chunks {
  Header header;
  std::vector<uint8_t> idat;
};

Chunks read_chunks(const uint8_t* data, size_t size, const std::string& origin) {
  if (size < 8 || std::memcmp(data, kSignature, 8) != 0) throw Error("'" + origin + "' is not a PNG file");
  Chunks c;
  bool have_header = false, have_end = false;
  size_t pos = 8;
  while (pos + 12 <= size) {
    const uint32_t length = be32(data + pos);
    const uint8_t* type = data + pos + 4;
    if (length > size - pos - 12) throw Error("'" + origin + "' is truncated (a chunk runs past the end of the file)");
    const uint8_t* body = type + 4;
    // Fuzzing builds (fuzz/) skip the CRC, which random mutations almost never get right, so
    // that the fuzzer reaches the checks and the decoding behind it.
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    if (image::crc32(type, length + 4) != be32(body + length))
      throw Error("'" + origin + "' is corrupt (bad CRC in chunk " + std::string(reinterpret_cast<const char*>(type), 4) + ")");
#endif
    if (std::memcmp(type, "IHDR", 4) == 0) {
      if (length != 13) throw Error("'" + origin + "' has a malformed IHDR chunk");
      c.header.width = be32(body);
      c.header.height = be32(body + 4);
      c.header.bit_depth = body[8];
      c.header.color_type = body[9];
      c.header.interlace = body[12];
      if (body[10] != 0 || body[11] != 0) throw Error("'" + origin + "' uses an unknown PNG compression or filter method");
      have_header = true;
    } else if (std::memcmp(type, "IDAT", 4) == 0) {
      c.idat.insert(c.idat.end(), body, body + length);
    } else if (std::memcmp(type, "IEND", 4) == 0) {
      have_end = true;
      break;
    }
    pos += 12 + static_cast<size_t>(length);
  }
  if (!have_header) throw Error("'" + origin + "' has no IHDR chunk");
  if (!have_end) throw Error("'" + origin + "' is truncated (no IEND chunk)");
  if (c.idat.empty()) throw Error("'" + origin + "' has no image data");
  return c;
}

void check_header(const Header& h, const std::string& origin) {
  if (h.width == 0 || h.height == 0) throw Error("'" + origin + "' is empty (0 pixels)");
  if (uint64_t{h.width} * h.height > static_cast<uint64_t>(kMaxImagePixels))
    throw Error("'" + origin + "' is too large (" + std::to_string(h.width) + "x" + std::to_string(h.height) + ")");
  if (h.interlace != 0) throw Error("'" + origin + "' is interlaced: label PNGs must be saved without interlacing");
  const bool gray = h.color_type == 0, palette = h.color_type == 3;
  if (!gray && !palette)
    throw Error("'" + origin + "' is a color PNG (type " + std::to_string(h.color_type) +
                "): label PNGs hold one class index per pixel (grayscale or palette)");
  const int d = h.bit_depth;
  const bool ok = d == 1 || d == 2 || d == 4 || d == 8 || (gray && d == 16);
  if (!ok) throw Error("'" + origin + "' has an invalid bit depth " + std::to_string(d));
}

int paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

// Undoes the per-row filters in place; `bpp` is the byte distance of the filters (>= 1).
void unfilter(std::vector<uint8_t>& raw, size_t rows, size_t row_bytes, size_t bpp, const std::string& origin) {
  const size_t stride = row_bytes + 1;
  for (size_t y = 0; y < rows; ++y) {
    uint8_t* row = raw.data() + y * stride + 1;
    const uint8_t* prior = y > 0 ? raw.data() + (y - 1) * stride + 1 : nullptr;
    const int filter = row[-1];
    for (size_t x = 0; x < row_bytes; ++x) {
      const int a = x >= bpp ? row[x - bpp] : 0;
      const int b = prior ? prior[x] : 0;
      const int c = prior && x >= bpp ? prior[x - bpp] : 0;
      switch (filter) {
        case 0: break;
        case 1: row[x] = static_cast<uint8_t>(row[x] + a); break;
        case 2: row[x] = static_cast<uint8_t>(row[x] + b); break;
        case 3: row[x] = static_cast<uint8_t>(row[x] + ((a + b) >> 1)); break;
        case 4: row[x] = static_cast<uint8_t>(row[x] + paeth(a, b, c)); break;
        default: throw Error("'" + origin + "' is corrupt (unknown row filter " + std::to_string(filter) + ")");
      }
    }
  }
}

}  // namespace

LabelMap decode_label_png(const uint8_t* data, size_t size, const std::string& origin) {
  const Chunks chunks = read_chunks(data, size, origin);
  const Header& h = chunks.header;
  check_header(h, origin);
  const size_t width = h.width, height = h.height, depth = static_cast<size_t>(h.bit_depth);
  const size_t row_bytes = (width * depth + 7) / 8;
  const size_t expected = (row_bytes + 1) * height;
  if (chunks.idat.size() > static_cast<size_t>(INT32_MAX) || expected > static_cast<size_t>(INT32_MAX))
    throw Error("'" + origin + "' is too large to decode");
  // Deflate makes at most 1032 bytes out of one (a 258-byte match coded in two bits), so data
  // too short for the pixels is refused before their buffer is allocated: a small file that
  // declares a huge image must not cost its size in memory and time.
  if (expected / kMaxDeflateRatio > chunks.idat.size())
    throw Error("'" + origin + "' is truncated (its " + std::to_string(chunks.idat.size()) +
                " bytes of compressed pixel data cannot hold " + std::to_string(width) + "x" +
                std::to_string(height) + " pixels)");
  // Inflating into a buffer of the exact size bounds the memory a hostile file can claim.
  std::vector<uint8_t> raw(expected);
  const int got = stbi_zlib_decode_buffer(reinterpret_cast<char*>(raw.data()), static_cast<int>(expected),
                                          reinterpret_cast<const char*>(chunks.idat.data()),
                                          static_cast<int>(chunks.idat.size()));
  if (got < 0) throw Error("'" + origin + "' is corrupt (its compressed pixel data does not inflate to " +
                           std::to_string(expected) + " bytes)");
  if (static_cast<size_t>(got) < expected) throw Error("'" + origin + "' is truncated (too little pixel data)");
  unfilter(raw, height, row_bytes, depth >= 8 ? depth / 8 : 1, origin);

  LabelMap out;
  out.width = static_cast<int>(width);
  out.height = static_cast<int>(height);
  out.values.resize(width * height);
  for (size_t y = 0; y < height; ++y) {
    const uint8_t* row = raw.data() + y * (row_bytes + 1) + 1;
    int32_t* dst = out.values.data() + y * width;
    for (size_t x = 0; x < width; ++x) {
      if (depth == 16) {
        dst[x] = (int32_t{row[2 * x]} << 8) | row[2 * x + 1];
      } else if (depth == 8) {
        dst[x] = row[x];
      } else {
        // Sub-byte samples are packed from the high bits down.
        const size_t bit = x * depth;
        const int shift = static_cast<int>(8 - depth - bit % 8);
        dst[x] = (row[bit / 8] >> shift) & ((1 << depth) - 1);
      }
    }
  }
  return out;
}

LabelMap read_label_png(const std::string& path) {
  const auto file = io::MappedFile::open(path);
  return decode_label_png(file->data(), file->size(), path);
}

}  // namespace pnpovss::eval
