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

// stb_image 2.27 (Debian 12's libstb) builds a Huffman table from a DHT segment without checking
// that its 16 code counts add up to at most 256, so a crafted JPEG writes past the table
// (CVE-2021-37789, fixed in 2.28). This walks the markers the way stb reads them and refuses
// such a table before stb sees it. Returns false for an unsafe file.
class JpegHuffmanGuard {
 public:
  JpegHuffmanGuard(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool safe() {
    if (size_ < 2 || data_[0] != 0xFF || data_[1] != 0xD8) return true;  // not a JPEG
    pos_ = 2;
    while (pos_ < size_) {
      const int marker = next_marker();
      if (marker < 0 || marker == 0xD9) return true;
      if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;
      if (marker == 0xC4) {
        if (!huffman_segment_safe()) return false;
        continue;
      }
      const size_t length = get16();
      if (length < 2) return true;  // stb rejects the file here
      pos_ += length - 2;
      if (marker == 0xDA) skip_entropy_coded_data();
    }
    return true;
  }

 private:
  // Bytes past the end read as 0, as stbi__get8 does.
  int get8() { return pos_ < size_ ? data_[pos_++] : (pos_++, 0); }
  size_t get16() {
    const int hi = get8();
    return static_cast<size_t>(hi << 8 | get8());
  }

  // stb skips stray bytes up to the next 0xFF and any 0xFF fill bytes before a marker code.
  int next_marker() {
    while (pos_ < size_ && data_[pos_] != 0xFF) ++pos_;
    while (pos_ < size_ && data_[pos_] == 0xFF) ++pos_;
    return pos_ < size_ ? data_[pos_++] : -1;
  }

  // Entropy-coded data ends at the first 0xFF not followed by 0x00 (stuffing) or a restart.
  void skip_entropy_coded_data() {
    while (pos_ + 1 < size_) {
      if (data_[pos_] == 0xFF) {
        const uint8_t next = data_[pos_ + 1];
        if (next != 0x00 && next != 0xFF && (next < 0xD0 || next > 0xD7)) return;
        pos_ += next == 0xFF ? 1 : 2;
      } else {
        ++pos_;
      }
    }
    pos_ = size_;
  }

  // Mirrors stb's DHT loop: a table class/index byte, 16 counts, then that many symbols.
  bool huffman_segment_safe() {
    long remaining = static_cast<long>(get16()) - 2;
    while (remaining > 0) {
      const int q = get8();
      if ((q >> 4) > 1 || (q & 15) > 3) return true;  // stb stops with "bad DHT header"
      int symbols = 0;
      for (int i = 0; i < 16; ++i) symbols += get8();
      if (symbols > 256) return false;
      pos_ += static_cast<size_t>(symbols);
      remaining -= 17 + symbols;
    }
    return true;
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

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
uint32_t read_le32(const uint8_t* p) {
  return uint32_t{p[3]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | p[0];
}
uint16_t read_le16(const uint8_t* p) { return static_cast<uint16_t>(p[1] << 8 | p[0]); }

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
  if (size < 26 || data[0] != 'B' || data[1] != 'M') return false;
  const uint32_t offset = read_le32(data + 10);
  const uint32_t header = read_le32(data + 14);
  int64_t bits = 0;
  uint32_t compression = 0;
  if (header == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes, never compressed
    out.width = read_le16(data + 18);
    out.height = read_le16(data + 20);
    bits = read_le16(data + 24);
  } else if ((header == 40 || header == 56 || header == 108 || header == 124) && size >= 34) {
    out.width = static_cast<int32_t>(read_le32(data + 18));
    out.height = static_cast<int32_t>(read_le32(data + 22));  // negative: rows stored top-down
    bits = read_le16(data + 28);
    compression = read_le32(data + 30);
  } else {
    return false;  // stb refuses other headers
  }
  out.height = out.height < 0 ? -out.height : out.height;
  if (compression == 0 || compression == 3)  // RLE and embedded formats: stb refuses them
    out.bmp_pixel_bytes = int64_t{offset} + (out.width * bits + 31) / 32 * 4 * out.height;
  return true;
}

// What stb does not check itself. A PNG or BMP header declaring more pixels than the limit is
// refused by size (stb's header scan reports those as "unknown image type"). The pixel array
// of an uncompressed BMP must fit in the file: stb reads missing bytes as zeros, where PIL
// refuses a truncated file.
void check_declared_size(const uint8_t* data, size_t size, const std::string& origin) {
  DeclaredSize d;
  if (!read_declared_size(data, size, d)) return;
  check_dimensions(d.width, d.height, origin);
  if (d.bmp_pixel_bytes > static_cast<int64_t>(size)) {
    throw Error("image " + origin + " is truncated (its " + std::to_string(d.width) + "x" + std::to_string(d.height) +
                " BMP pixels need " + std::to_string(d.bmp_pixel_bytes) + " bytes, the file has " + std::to_string(size) + ")");
  }
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

void write_all(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) throw Error("cannot create '" + path + "': " + std::strerror(errno));
  const size_t written = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), file);
  const int write_errno = errno;
  const bool closed = std::fclose(file) == 0;
  if (written != bytes.size() || !closed) {
    std::remove(path.c_str());
    throw Error("cannot write '" + path + "': " + std::strerror(write_errno));
  }
}

}  // namespace

std::pair<int64_t, int64_t> read_image_size(const uint8_t* data, size_t size, const std::string& origin) {
  if (data == nullptr || size == 0) throw Error("image " + origin + " is empty (0 bytes)");
  DeclaredSize d;
  if (read_declared_size(data, size, d)) return {d.width, d.height};
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
  if (!JpegHuffmanGuard(data, size).safe()) {
    throw Error("cannot decode image " + origin + ": corrupt JPEG (a Huffman table has more than 256 codes)");
  }
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
  const std::vector<uint8_t> bytes = encode_png_rgb(image, "'" + path + "'");
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  write_all(tmp, bytes);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error("cannot move '" + tmp + "' to '" + path + "': " + std::strerror(err));
  }
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
