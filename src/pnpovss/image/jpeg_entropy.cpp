#include "pnpovss/image/jpeg_entropy.h"

#include <algorithm>

namespace pnpovss::image::jpeg {

bool HuffmanTable::assign(const uint8_t counts[16], const uint8_t* symbols, int symbol_count) {
  uint32_t code = 0;
  int index = 0;
  for (int length = 1; length <= 16; ++length) {
    const int count = counts[length - 1];
    first_code_[length] = static_cast<uint16_t>(code);
    first_index_[length] = static_cast<uint16_t>(index);
    count_[length] = static_cast<uint16_t>(count);
    code += static_cast<uint32_t>(count);
    index += count;
    if (count > 0 && code - 1 >= (1u << length)) return false;
    code <<= 1;
  }
  std::copy(symbols, symbols + std::min(symbol_count, 256), symbols_);
  std::fill(std::begin(fast_), std::end(fast_), uint16_t{0});
  for (int length = 1; length <= kFastBits; ++length) {
    for (uint32_t i = 0; i < count_[length]; ++i) {
      // Every window of kFastBits bits that starts with this code.
      const uint32_t first = (first_code_[length] + i) << (kFastBits - length);
      const uint16_t entry = static_cast<uint16_t>(length << 8 | symbols_[first_index_[length] + i]);
      std::fill(fast_ + first, fast_ + first + (1u << (kFastBits - length)), entry);
    }
  }
  defined_ = true;
  return true;
}

int HuffmanTable::decode(uint32_t window, int& length) const {
  const uint16_t fast = fast_[window >> (16 - kFastBits)];
  if (fast != 0) {
    length = fast >> 8;
    return fast & 0xFF;
  }
  // Canonical codes: the codes of one length are consecutive from first_code_, and a prefix of
  // a longer code never falls in that range, so the first length whose range holds the leading
  // bits is the code's length.
  for (int n = kFastBits + 1; n <= 16; ++n) {
    const uint32_t offset = (window >> (16 - n)) - first_code_[n];
    if (offset < count_[n]) {
      length = n;
      return symbols_[first_index_[n] + offset];
    }
  }
  length = 0;
  return -1;
}

namespace {

// The bits of one scan's entropy-coded data, most significant first: a 0xFF data byte is
// followed by a stuffed 0x00, and the data ends at a marker (0xFF and a code, after any 0xFF
// fill bytes) or at the end of the file.
class BitReader {
 public:
  BitReader(const uint8_t* data, size_t size, size_t pos) : data_(data), size_(size), pos_(pos) {}

  // The next 16 bits; zeros stand for bits past the end of the data.
  uint32_t peek16() {
    fill(16);
    return static_cast<uint32_t>(count_ >= 16 ? buffer_ >> (count_ - 16) : buffer_ << (16 - count_)) & 0xFFFF;
  }
  // False when the data ends before `n` more bits.
  bool skip(int n) {
    fill(n);
    if (n > count_) return false;
    count_ -= n;
    return true;
  }
  bool read(int n, uint32_t& value) {
    fill(n);
    if (n > count_) return false;
    count_ -= n;
    value = static_cast<uint32_t>(buffer_ >> count_) & ((1u << n) - 1);
    return true;
  }
  bool ended() const { return ended_ && count_ < 16; }

  enum class Restart { kPassed, kDataEnded, kMarkerMissing };
  // At the end of a restart interval: the rest of the current byte is padding, and a restart
  // marker (RST0..RST7) must follow, after which the data goes on.
  Restart pass_restart_marker() {
    count_ -= count_ % 8;
    if (count_ > 0) return Restart::kMarkerMissing;
    fill(8);
    if (!ended_) return Restart::kMarkerMissing;
    if (marker_ < 0xD0 || marker_ > 0xD7) return Restart::kDataEnded;
    pos_ = after_marker_;
    ended_ = false;
    marker_ = -1;
    buffer_ = 0;
    return Restart::kPassed;
  }

 private:
  // Loads whole bytes up to 57 bits when fewer than `n` are left, so that most reads find
  // their bits already loaded.
  void fill(int n) {
    if (count_ >= n) return;
    while (count_ <= 56 && !ended_) load_byte();
  }

  void load_byte() {
    if (pos_ >= size_) {
      ended_ = true;
      return;
    }
    uint8_t byte = data_[pos_];
    if (byte == 0xFF) {
      size_t next = pos_ + 1;
      while (next < size_ && data_[next] == 0xFF) ++next;
      if (next >= size_ || data_[next] != 0x00) {
        ended_ = true;
        marker_ = next < size_ ? data_[next] : -1;
        after_marker_ = next + 1;
        return;
      }
      pos_ = next;  // the stuffed 0x00, passed below
    }
    ++pos_;
    buffer_ = buffer_ << 8 | byte;
    count_ += 8;
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_;
  uint64_t buffer_ = 0;
  int count_ = 0;
  bool ended_ = false;
  int marker_ = -1;
  size_t after_marker_ = 0;
};

constexpr const char* kInvalidCode = "its compressed data holds an invalid Huffman code";
constexpr const char* kDataEnded =
    "its compressed data ends before its last block; the file is truncated or damaged";
constexpr const char* kMarkerMissing = "a restart marker is missing in its compressed data";
constexpr const char* kBadValue = "its compressed data holds a coefficient size out of range";

// Decodes every block of one scan, keeping only what later scans need: which coefficients of
// each block are non-zero (progressive refinement reads a correction bit for exactly those).
class ScanWalker {
 public:
  ScanWalker(Frame& frame, const Scan& scan, BitReader& bits) : frame_(frame), scan_(scan), bits_(bits) {}

  std::string run() {
    if (const char* problem = scan_problem()) return problem;
    const bool interleaved = scan_.count > 1;
    const Component& first = frame_.components[static_cast<size_t>(scan_.components[0])];
    const int64_t units = interleaved ? int64_t{frame_.mcus_x} * frame_.mcus_y : int64_t{first.blocks_x} * first.blocks_y;
    int todo = scan_.restart_interval;
    for (int64_t unit = 0; unit < units; ++unit) {
      const bool ok = interleaved ? mcu(static_cast<int>(unit % frame_.mcus_x), static_cast<int>(unit / frame_.mcus_x))
                                  : block(0, static_cast<size_t>(unit / first.blocks_x) * static_cast<size_t>(first.grid_w) +
                                                 static_cast<size_t>(unit % first.blocks_x));
      if (!ok) return problem_;
      if (scan_.restart_interval > 0 && --todo == 0 && unit + 1 < units) {
        switch (bits_.pass_restart_marker()) {
          case BitReader::Restart::kPassed: break;
          case BitReader::Restart::kDataEnded: return kDataEnded;
          case BitReader::Restart::kMarkerMissing: return kMarkerMissing;
        }
        eob_run_ = 0;
        todo = scan_.restart_interval;
      }
    }
    if (!frame_.progressive || first_dc_scan()) {
      for (int i = 0; i < scan_.count; ++i) frame_.components[static_cast<size_t>(scan_.components[i])].scanned = true;
    }
    return "";
  }

 private:
  bool first_dc_scan() const { return scan_.spectral_start == 0 && scan_.successive_high == 0; }

  // What the decoder refuses in a progressive scan's layout, checked here first because a
  // refinement of coefficients never set would read memory the decoder never wrote.
  const char* scan_problem() const {
    if (!frame_.progressive) return nullptr;
    if (scan_.spectral_start == 0 && scan_.spectral_end != 0) return "it mixes DC and AC coefficients";
    if (scan_.count > 1 && scan_.spectral_start != 0) return "it interleaves AC coefficients of several components";
    if (!first_dc_scan()) {
      for (int i = 0; i < scan_.count; ++i) {
        if (!frame_.components[static_cast<size_t>(scan_.components[i])].scanned)
          return "it comes before the first DC scan of a component it codes";
      }
    }
    return nullptr;
  }

  bool mcu(int x, int y) {
    for (int slot = 0; slot < scan_.count; ++slot) {
      const Component& c = frame_.components[static_cast<size_t>(scan_.components[slot])];
      for (int by = 0; by < c.v; ++by) {
        for (int bx = 0; bx < c.h; ++bx) {
          const size_t row = static_cast<size_t>(y) * static_cast<size_t>(c.v) + static_cast<size_t>(by);
          const size_t column = static_cast<size_t>(x) * static_cast<size_t>(c.h) + static_cast<size_t>(bx);
          if (!block(slot, row * static_cast<size_t>(c.grid_w) + column)) return false;
        }
      }
    }
    return true;
  }

  bool block(int slot, size_t index) {
    if (!frame_.progressive) return sequential_block(*scan_.dc[slot], *scan_.ac[slot]);
    Component& c = frame_.components[static_cast<size_t>(scan_.components[slot])];
    uint64_t& nonzero = c.nonzero[index];
    if (scan_.spectral_start == 0) {
      if (scan_.successive_high != 0) return skip(1);
      nonzero = 0;  // a first DC scan clears the whole block
      int size = 0;
      return symbol(*scan_.dc[slot], size) && size_in_range(size) && skip(size);
    }
    return scan_.successive_high == 0 ? first_ac_block(*scan_.ac[slot], nonzero) : refine_ac_block(*scan_.ac[slot], nonzero);
  }

  bool sequential_block(const HuffmanTable& dc, const HuffmanTable& ac) {
    int size = 0;
    if (!symbol(dc, size) || !size_in_range(size) || !skip(size)) return false;
    for (int k = 1; k < 64;) {
      int run_size = 0;
      if (!symbol(ac, run_size)) return false;
      const int run = run_size >> 4, bits = run_size & 15;
      if (bits == 0) {
        if (run_size != 0xF0) break;  // end of block
        k += 16;
      } else {
        k += run + 1;
        if (!skip(bits)) return false;
      }
    }
    return true;
  }

  bool first_ac_block(const HuffmanTable& ac, uint64_t& nonzero) {
    if (eob_run_ > 0) {
      --eob_run_;
      return true;
    }
    int k = scan_.spectral_start;
    do {
      int run_size = 0;
      if (!symbol(ac, run_size)) return false;
      const int run = run_size >> 4, bits = run_size & 15;
      if (bits == 0) {
        if (run < 15) {
          uint32_t extra = 0;
          if (run > 0 && !read(run, extra)) return false;
          eob_run_ = (1 << run) + static_cast<int>(extra) - 1;
          break;
        }
        k += 16;
      } else {
        k += run;
        // A corrupt run can point past the last coefficient; the decoder stores it in the last.
        const int position = std::min(k, 63);
        ++k;
        uint32_t magnitude = 0;
        if (!read(bits, magnitude)) return false;
        // The decoder keeps the value shifted by the successive-approximation bit in 16 bits,
        // where a large corrupt value can become zero.
        const int32_t value = magnitude >> (bits - 1) ? static_cast<int32_t>(magnitude)
                                                        : static_cast<int32_t>(magnitude) - ((1 << bits) - 1);
        const bool set = (static_cast<uint32_t>(value) << scan_.successive_low & 0xFFFFu) != 0;
        const uint64_t mask = uint64_t{1} << position;
        nonzero = set ? nonzero | mask : nonzero & ~mask;
      }
    } while (k <= scan_.spectral_end);
    return true;
  }

  bool refine_ac_block(const HuffmanTable& ac, uint64_t& nonzero) {
    int k = scan_.spectral_start;
    if (eob_run_ > 0) {
      --eob_run_;
      for (; k <= scan_.spectral_end; ++k) {
        if ((nonzero >> k & 1) && !skip(1)) return false;
      }
      return true;
    }
    do {
      int run_size = 0;
      if (!symbol(ac, run_size)) return false;
      int run = run_size >> 4;
      const int bits = run_size & 15;
      bool places_coefficient = false;
      if (bits == 0) {
        if (run < 15) {
          uint32_t extra = 0;
          if (run > 0 && !read(run, extra)) return false;
          eob_run_ = (1 << run) - 1 + static_cast<int>(extra);
          run = 64;  // the rest of the block: correction bits only
        }
      } else {
        if (bits != 1) return fail(kBadValue);
        if (!skip(1)) return false;  // its sign
        places_coefficient = true;
      }
      // Zero coefficients count down the run; each non-zero one passed takes a correction bit.
      while (k <= scan_.spectral_end) {
        const int position = k++;
        if (nonzero >> position & 1) {
          if (!skip(1)) return false;
        } else {
          if (run == 0) {
            if (places_coefficient) nonzero |= uint64_t{1} << position;
            break;
          }
          --run;
        }
      }
    } while (k <= scan_.spectral_end);
    return true;
  }

  bool symbol(const HuffmanTable& table, int& value) {
    const uint32_t window = bits_.peek16();
    int length = 0;
    value = table.decode(window, length);
    if (length == 0) return fail(bits_.ended() ? kDataEnded : kInvalidCode);
    return skip(length);
  }
  bool size_in_range(int size) { return size <= 15 || fail(kBadValue); }
  bool skip(int n) { return bits_.skip(n) || fail(kDataEnded); }
  bool read(int n, uint32_t& value) { return bits_.read(n, value) || fail(kDataEnded); }
  bool fail(const char* problem) {
    problem_ = problem;
    return false;
  }

  Frame& frame_;
  const Scan& scan_;
  BitReader& bits_;
  int eob_run_ = 0;
  const char* problem_ = "";
};

}  // namespace

std::string check_scan(Frame& frame, const Scan& scan, const uint8_t* data, size_t size, size_t pos) {
  BitReader bits(data, size, pos);
  return ScanWalker(frame, scan, bits).run();
}

}  // namespace pnpovss::image::jpeg
