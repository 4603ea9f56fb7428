#include "pnpovss/image/codec.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "pnpovss/error.h"
#include "pnpovss/io/file_write.h"
#include "pnpovss/image/jpeg_guard.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/util/hash.h"

// Only the formats the tool documents; fewer decoders also means less exposure to hostile files.
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_MAX_DIMENSIONS (1 << 20)
#define STB_IMAGE_IMPLEMENTATION
#define STBIW_ONLY_PNG
#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#include <stb_image.h>
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace pnpovss::image {

namespace {

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

// stb puts raw bytes of the file into some reasons (an unknown PNG chunk's type), so anything
// but printable ASCII is masked to keep messages one clean line.
std::string stb_reason() {
  const char* reason = stbi_failure_reason();
  std::string text = reason != nullptr ? reason : "unknown reason";
  for (char& c : text) {
    if (c < 0x20 || c > 0x7E) c = '?';
  }
  return text;
}

// PIL opens a 16-bit grayscale PNG as mode "I" (32-bit integers), and its convert("RGB") clips
// those values to 0..255 instead of scaling them; every other 16-bit PNG keeps the high byte.
// stb cannot tell gray from gray-with-tRNS after decoding, so the header decides.
bool is_png_gray16(const uint8_t* data, size_t size) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size < 26 || std::memcmp(data, kSignature, 8) != 0 || std::memcmp(data + 12, "IHDR", 4) != 0) {
    return false;
  }
  return data[24] == 16 && data[25] == 0;
}

void refuse_unsafe_jpeg(const uint8_t* data, size_t size, JpegReading reading, const std::string& origin) {
  const std::string problem = jpeg_problem(data, size, reading);
  if (!problem.empty()) throw Error("cannot decode image " + origin + ": corrupt JPEG (" + problem + ")");
}

void check_dimensions(int64_t width, int64_t height, const std::string& origin) {
  if (width <= 0 || height <= 0) throw Error("image " + origin + " has no pixels (" +
                                             std::to_string(width) + "x" + std::to_string(height) + ")");
  if (width > kMaxImagePixels || height > kMaxImagePixels || width * height > kMaxImagePixels) {
    throw Error("image " + origin + " is too large (" + std::to_string(width) + "x" + std::to_string(height) +
                " pixels; the limit is " + std::to_string(kMaxImagePixels) +
                " pixels): downscale it before processing");
  }
}

uint32_t read_be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// The size a PNG or BMP header declares, read without stb (whose header scan gives up on
// sizes it deems too large); false for other formats and headers stb refuses.
struct DeclaredSize {
  int64_t width = 0, height = 0;
  int64_t bmp_pixel_bytes = 0;  // an uncompressed BMP's pixel array end (0: not known)
};
bool read_declared_size(const uint8_t* data, size_t size, DeclaredSize& out) {
  static const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 24 && std::memcmp(data, kPngSignature, 8) == 0 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    out.width = read_be32(data + 16);
    out.height = read_be32(data + 20);
    return true;
  }
  if (size < 2 || data[0] != 'B' || data[1] != 'M') return false;
  // A header cut short by the end of the file reads as zeros past it, as stb reads it (which
  // then decodes the missing pixels as zeros too, unless the pixel check below refuses them).
  const auto byte = [&](size_t at) -> uint32_t { return at < size ? data[at] : 0; };
  const auto le16 = [&](size_t at) -> uint32_t { return byte(at) | byte(at + 1) << 8; };
  const auto le32 = [&](size_t at) -> uint32_t { return le16(at) | le16(at + 2) << 16; };
  const uint32_t offset = le32(10);
  const uint32_t header = le32(14);
  int64_t bits = 0;
  uint32_t compression = 0;
  if (header == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes, never compressed
    out.width = le16(18);
    out.height = le16(20);
    bits = le16(24);
  } else if (header == 40 || header == 56 || header == 108 || header == 124) {
    out.width = static_cast<int32_t>(le32(18));
    out.height = static_cast<int32_t>(le32(22));  // negative: rows stored top-down
    bits = le16(28);
    compression = le32(30);
  } else {
    return false;  // stb refuses other headers
  }
  out.height = out.height < 0 ? -out.height : out.height;
  // RLE and embedded formats are refused by stb, and so are more than 32 bits per pixel; sizes
  // beyond the pixel limit are refused by check_dimensions, before the product could overflow.
  const bool in_limits = out.width > 0 && out.width <= kMaxImagePixels && out.height > 0 &&
                         out.height <= kMaxImagePixels && bits >= 1 && bits <= 32;
  if ((compression == 0 || compression == 3) && in_limits)
    out.bmp_pixel_bytes = int64_t{offset} + (out.width * bits + 31) / 32 * 4 * out.height;
  return true;
}

// The most output one byte of deflate data can give (a 258-byte match coded in two bits).
constexpr uint64_t kMaxDeflateRatio = 1032;

// Bits per pixel of a PNG colour type and bit depth; 0 for combinations stb refuses anyway.
uint64_t png_bits_per_pixel(int color_type, int depth) {
  switch (color_type) {
    case 0: return static_cast<uint64_t>(depth);          // gray
    case 2: return static_cast<uint64_t>(depth) * 3;      // RGB
    case 3: return static_cast<uint64_t>(depth);          // palette
    case 4: return static_cast<uint64_t>(depth) * 2;      // gray + alpha
    case 6: return static_cast<uint64_t>(depth) * 4;      // RGBA
    default: return 0;
  }
}

// stb 2.27 allocates the declared length of an IDAT chunk before reading it, and the whole
// inflated image before inflating: a PNG of a few hundred bytes could make it claim gigabytes
// (and take seconds). So the chunks up to IEND are walked first: one that runs past the end of
// the file is refused, and so is compressed data too short for the declared pixels; neither
// refuses a file stb would decode.
void check_png_chunks(const uint8_t* data, size_t size, const DeclaredSize& d, const std::string& origin) {
  uint64_t compressed = 0;
  size_t pos = 8;
  while (pos + 8 <= size) {
    const uint64_t length = read_be32(data + pos);
    const uint8_t* type = data + pos + 4;
    if (std::memcmp(type, "IEND", 4) == 0) break;  // stb stops here, without reading its CRC
    if (length + 12 > size - pos) {
      std::string name(reinterpret_cast<const char*>(type), 4);
      for (char& c : name)
        if (c < 0x20 || c > 0x7E) c = '?';
      throw Error("cannot decode image " + origin + ": truncated PNG (its chunk '" + name + "' of " +
                  std::to_string(length) + " bytes runs past the end of the file)");
    }
    if (std::memcmp(type, "IDAT", 4) == 0) {
      // stb copies an empty first IDAT chunk to a null buffer (undefined behaviour): such
      // files, which no common encoder writes, are refused.
      if (length == 0 && compressed == 0)
        throw Error("cannot decode image " + origin + ": unsupported PNG (an empty IDAT chunk before the image data)");
      compressed += length;
    }
    pos += static_cast<size_t>(length) + 12;
  }
  // width * height is at most kMaxImagePixels here (check_dimensions), so nothing overflows.
  const uint64_t bits = size >= 26 ? png_bits_per_pixel(data[25], data[24]) : 0;
  const uint64_t pixel_bytes = static_cast<uint64_t>(d.width) * static_cast<uint64_t>(d.height) * bits / 8;
  if (pixel_bytes / kMaxDeflateRatio > compressed) {
    throw Error("cannot decode image " + origin + ": truncated PNG (its " + std::to_string(compressed) +
                " bytes of compressed pixel data cannot hold " + std::to_string(d.width) + "x" +
                std::to_string(d.height) + " pixels)");
  }
}

// What stb does not check itself. A PNG or BMP header declaring more pixels than the limit is
// refused by size (stb's header scan reports those as "unknown image type"). The pixel array
// of an uncompressed BMP must fit in the file: stb reads missing bytes as zeros, where PIL
// refuses a truncated file. The chunks of a PNG must fit in the file and hold enough data.
void check_declared_size(const uint8_t* data, size_t size, const std::string& origin) {
  DeclaredSize d;
  if (!read_declared_size(data, size, d)) return;
  check_dimensions(d.width, d.height, origin);
  if (d.bmp_pixel_bytes > static_cast<int64_t>(size)) {
    throw Error("image " + origin + " is truncated (its " + std::to_string(d.width) + "x" + std::to_string(d.height) +
                " BMP pixels need " + std::to_string(d.bmp_pixel_bytes) + " bytes, the file has " + std::to_string(size) + ")");
  }
  if (data[0] == 0x89) check_png_chunks(data, size, d, origin);
}

// Channel layouts of stb: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. Like PIL's convert("RGB"), gray
// is replicated and alpha ignored.
template <typename Sample, typename ToByte>
Image to_rgb(const Sample* pixels, int width, int height, int channels, ToByte to_byte) {
  Image image;
  image.width = width;
  image.height = height;
  const size_t count = static_cast<size_t>(width) * static_cast<size_t>(height);
  image.rgb.resize(count * 3);
  for (size_t i = 0; i < count; ++i) {
    const Sample* px = pixels + i * static_cast<size_t>(channels);
    uint8_t* out = image.rgb.data() + i * 3;
    if (channels >= 3) {
      out[0] = to_byte(px[0]);
      out[1] = to_byte(px[1]);
      out[2] = to_byte(px[2]);
    } else {
      out[0] = out[1] = out[2] = to_byte(px[0]);
    }
  }
  return image;
}

}  // namespace

std::pair<int64_t, int64_t> read_image_size(const uint8_t* data, size_t size, const std::string& origin) {
  if (data == nullptr || size == 0) throw Error("image " + origin + " is empty (0 bytes)");
  DeclaredSize d;
  if (read_declared_size(data, size, d)) return {d.width, d.height};
  // stb's JPEG header scan builds the Huffman tables too, so the guard comes first here as well.
  refuse_unsafe_jpeg(data, size, JpegReading::kHeader, origin);
  int width = 0, height = 0, channels = 0;
  if (size > static_cast<size_t>(INT_MAX) || !stbi_info_from_memory(data, static_cast<int>(size), &width, &height, &channels)) {
    throw Error("cannot decode image " + origin + ": " + stb_reason() + " (supported formats: JPEG, PNG, BMP)");
  }
  return {width, height};
}

Image decode_image_memory(const uint8_t* data, size_t size, const std::string& origin) {
  if (data == nullptr || size == 0) throw Error("image " + origin + " is empty (0 bytes)");
  if (size > static_cast<size_t>(INT_MAX)) throw Error("image " + origin + " is too large (over 2 GiB)");
  const int len = static_cast<int>(size);
  // One walk for everything stb will read: its header scan builds the Huffman tables, so this
  // comes first. A frame over the pixel limit is left to check_dimensions below.
  refuse_unsafe_jpeg(data, size, JpegReading::kImage, origin);
  check_declared_size(data, size, origin);
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(data, len, &width, &height, &channels)) {
    throw Error("cannot decode image " + origin + ": " + stb_reason() + " (supported formats: JPEG, PNG, BMP)");
  }
  // stb's BMP header scan passes the height of a top-down BMP on as negative (its loader
  // flips it); check_declared_size has bounded it.
  if (height < 0 && data[0] == 'B') height = -height;
  check_dimensions(width, height, origin);

  if (stbi_is_16_bit_from_memory(data, len)) {
    const bool gray16 = is_png_gray16(data, size);
    std::unique_ptr<stbi_us, StbFree> pixels(stbi_load_16_from_memory(data, len, &width, &height, &channels, 0));
    if (!pixels) throw Error("cannot decode image " + origin + ": " + stb_reason());
    check_dimensions(width, height, origin);
    if (gray16) {
      return to_rgb(pixels.get(), width, height, channels,
                    [](stbi_us v) { return static_cast<uint8_t>(std::min<stbi_us>(v, 255)); });
    }
    return to_rgb(pixels.get(), width, height, channels, [](stbi_us v) { return static_cast<uint8_t>(v >> 8); });
  }
  std::unique_ptr<stbi_uc, StbFree> pixels(stbi_load_from_memory(data, len, &width, &height, &channels, 0));
  if (!pixels) throw Error("cannot decode image " + origin + ": " + stb_reason());
  check_dimensions(width, height, origin);
  return to_rgb(pixels.get(), width, height, channels, [](stbi_uc v) { return v; });
}

namespace {

std::shared_ptr<const io::MappedFile> open_image_file(const std::string& path) {
  if (!io::file_exists(path)) throw Error("image file '" + path + "' not found (or not a regular file)");
  return io::MappedFile::open(path);
}

}  // namespace

Image decode_image_file(const std::string& path) {
  const std::shared_ptr<const io::MappedFile> file = open_image_file(path);
  return decode_image_memory(file->data(), file->size(), "'" + path + "'");
}

Image decode_image_file(const std::string& path, std::string& sha256) {
  const std::shared_ptr<const io::MappedFile> file = open_image_file(path);
  util::Sha256 hash;
  hash.update(file->data(), file->size());
  sha256 = hash.hex_digest();
  return decode_image_memory(file->data(), file->size(), "'" + path + "'");
}

std::vector<uint8_t> encode_png_rgb(const Image& image, const std::string& what) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3) {
    throw Error("cannot write " + what + ": the image buffer does not match its size " +
                std::to_string(image.width) + "x" + std::to_string(image.height));
  }
  if (image.width > INT_MAX / 3) throw Error("cannot write " + what + ": the image is too wide for PNG");
  std::vector<uint8_t> bytes;
  const auto append = [](void* context, void* chunk, int n) {
    auto* out = static_cast<std::vector<uint8_t>*>(context);
    const auto* begin = static_cast<const uint8_t*>(chunk);
    out->insert(out->end(), begin, begin + n);
  };
  if (!stbi_write_png_to_func(append, &bytes, image.width, image.height, 3, image.rgb.data(), image.width * 3)) {
    throw Error("cannot encode " + what + " as PNG");
  }
  return bytes;
}

void write_png_rgb(const std::string& path, const Image& image) {
  io::write_file_atomic(path, encode_png_rgb(image, "'" + path + "'"));
}

std::vector<uint8_t> zlib_compress(const uint8_t* data, size_t size) {
  if (size > static_cast<size_t>(INT_MAX)) throw Error("cannot compress more than 2 GiB at once");
  // stb takes a mutable pointer but only reads the input.
  unsigned char* input = const_cast<unsigned char*>(size == 0 ? reinterpret_cast<const unsigned char*>("") : data);
  int out_len = 0;
  // Quality 8 is what stbi_write_png uses by default.
  std::unique_ptr<unsigned char, decltype(&std::free)> out(
      stbi_zlib_compress(input, static_cast<int>(size), &out_len, 8), &std::free);
  if (!out || out_len <= 0) throw Error("zlib compression failed (out of memory?)");
  return std::vector<uint8_t>(out.get(), out.get() + out_len);
}

}  // namespace pnpovss::image

namespace pnpovss {

Image read_image(const std::string& path) { return image::decode_image_file(path); }

}  // namespace pnpovss
