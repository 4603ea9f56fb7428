// Walks the Huffman-coded data of a JPEG scan the way a decoder reads it, without computing any
// pixel, to find data that a decoder would read past its end or misread. The decoder we use
// (stb_image 2.27) lets its bit count drop below zero on such data and then shifts by 32 or more
// (undefined behaviour), and it leaves parts of the image uninitialised when a scan or a
// component is missing; jpeg_guard refuses those files with what this reports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pnpovss::image::jpeg {

// One Huffman table of a DHT segment, as canonical codes per length (ITU T.81, annex C).
class HuffmanTable {
 public:
  // From the 16 code counts (codes of 1..16 bits) and their symbols; false when the counts
  // describe more codes than fit in their lengths (stb refuses such tables: "bad code lengths").
  bool assign(const uint8_t counts[16], const uint8_t* symbols, int symbol_count);
  bool defined() const { return defined_; }
  // The symbol whose code starts the 16 bits `window` (most significant first) and its length
  // in bits, or length 0 when no code matches.
  int decode(uint32_t window, int& length) const;

 private:
  static constexpr int kFastBits = 9;
  bool defined_ = false;
  // The codes of up to kFastBits bits by their leading bits: length << 8 | symbol, 0 for longer.
  uint16_t fast_[1 << kFastBits] = {};
  uint16_t first_code_[17] = {};  // the first code of each length
  uint16_t count_[17] = {};
  uint16_t first_index_[17] = {};  // where the symbols of each length start in symbols_
  uint8_t symbols_[256] = {};
};

// A frame component, with the block grid a decoder lays out for it.
struct Component {
  int id = 0;
  int h = 1, v = 1;              // sampling factors
  int blocks_x = 0, blocks_y = 0;  // blocks holding its pixels (a non-interleaved scan's units)
  int grid_w = 0;                // blocks per row in the MCU-padded grid
  bool scanned = false;          // a sequential scan, or a progressive first DC scan, covered it
  std::vector<uint64_t> nonzero;  // progressive: coefficients (zigzag order) set so far, per block
};

struct Frame {
  bool progressive = false;
  int width = 0, height = 0;
  int mcus_x = 0, mcus_y = 0;
  std::vector<Component> components;
};

struct Scan {
  int components[4] = {};  // indices into Frame::components, in the scan's order
  int count = 0;
  const HuffmanTable* dc[4] = {};
  const HuffmanTable* ac[4] = {};
  int spectral_start = 0, spectral_end = 63;
  int successive_high = 0, successive_low = 0;
  int restart_interval = 0;  // units between restart markers; 0 for none
};

// Reads the scan's entropy-coded data from data[pos] on; returns why a decoder would misread
// it (an invalid Huffman code, data that ends before the scan's last block, a missing restart
// marker), or "" when every block decodes within the data.
std::string check_scan(Frame& frame, const Scan& scan, const uint8_t* data, size_t size, size_t pos);

}  // namespace pnpovss::image::jpeg
