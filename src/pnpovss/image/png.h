// PNG flavours stb_image_write cannot produce: 8-bit indexed (palette) images, used for label
// maps so that every pixel byte is its label and viewers still show colours, and 16-bit
// grayscale for label maps with more than 256 labels. The chunks (IHDR, PLTE, IDAT, IEND) are
// written here; the IDAT zlib stream comes from image::zlib_compress. Rows use filter 0 (none):
// label maps compress well without prediction, and readers of the raw stream stay simple.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pnpovss::image {

// CRC-32 (ISO 3309 / ITU-T V.42, the one of PNG and gzip) of `size` bytes, continuing from
// `crc` (0 to start).
uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

// An 8-bit indexed PNG: `indices` is height x width row-major, `palette` 3 bytes (r, g, b) per
// entry, 1..256 entries. Throws pnpovss::Error for bad sizes or an index without palette entry.
std::vector<uint8_t> encode_png_indexed(const uint8_t* indices, int width, int height,
                                        const std::vector<uint8_t>& palette);

// A 16-bit grayscale PNG of height x width row-major values.
std::vector<uint8_t> encode_png_gray16(const uint16_t* values, int width, int height);

// The label PNG of the CLI: indexed with the io::palette colours of labels 0..max_label when
// max_label <= 255 (one byte per pixel = label), else 16-bit grayscale (the sample = label).
// Throws pnpovss::Error for a label outside 0..max_label or max_label above 65535.
std::vector<uint8_t> encode_label_png(const std::vector<int32_t>& labels, int width, int height, int max_label);

}  // namespace pnpovss::image
