// 8-bit RGB images: decoding (JPEG, PNG, BMP) to what PIL's Image.open(path).convert("RGB")
// yields, and PNG writing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pnpovss/image.h"

namespace pnpovss::image {

// Decodes a JPEG, PNG or BMP file. Gray, gray+alpha, palette and RGBA images become RGB the way
// PIL's convert("RGB") does (alpha is dropped, not blended). PNG and BMP pixels equal PIL's;
// JPEG goes through stb_image's IDCT and upsampling, which differ from libjpeg's (used by PIL)
// by a few levels on some pixels. EXIF orientation is ignored, as PIL's Image.open does. Throws
// pnpovss::Error naming the file for unreadable, unsupported, truncated, empty or oversized images.
Image decode_image_file(const std::string& path);
// The same, also setting `sha256` to the lower-case hex SHA-256 of the file's bytes, read once
// for both (segment records which file a result came from).
Image decode_image_file(const std::string& path, std::string& sha256);
// The same for bytes in memory; `origin` names them in messages.
Image decode_image_memory(const uint8_t* data, size_t size, const std::string& origin);

// `image` as the bytes of an 8-bit RGB PNG; `what` names it in messages. Throws pnpovss::Error.
std::vector<uint8_t> encode_png_rgb(const Image& image, const std::string& what = "the image");
// Width and height an encoded image declares in its header, read without decoding its pixels
// and without the size limit of decoding, so that a caller can refuse an image over its own
// limit before it costs memory. Throws pnpovss::Error for bytes whose header is not that of
// a JPEG, PNG or BMP; decoding checks the rest.
std::pair<int64_t, int64_t> read_image_size(const uint8_t* data, size_t size, const std::string& origin);
// Writes `image` as an 8-bit RGB PNG. The file is written next to `path` and renamed into place,
// so readers never see a partial file. Throws pnpovss::Error on failure.
void write_png_rgb(const std::string& path, const Image& image);

// `data` as a zlib stream (RFC 1950) with stb_image_write's deflate at its PNG setting, for
// PNG flavours that stb cannot write (palette, 16-bit; image/png.h). Throws pnpovss::Error
// for more than 2 GiB of input or when the compressor fails.
std::vector<uint8_t> zlib_compress(const uint8_t* data, size_t size);

}  // namespace pnpovss::image
