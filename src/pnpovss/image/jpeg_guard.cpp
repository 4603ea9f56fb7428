#include "pnpovss/image/jpeg_guard.h"

#include <algorithm>

#include "pnpovss/image.h"
#include "pnpovss/image/jpeg_entropy.h"

namespace pnpovss::image {

namespace {

bool is_restart(int marker) { return marker >= 0xD0 && marker <= 0xD7; }
bool is_frame(int marker) { return marker == 0xC0 || marker == 0xC1 || marker == 0xC2; }

// Walks the markers as stb does. `stops` are the points where stb refuses the file by itself:
// nothing after them is read, so the walk ends there with no problem of its own.
class JpegGuard {
 public:
  JpegGuard(const uint8_t* data, size_t size, JpegReading reading) : data_(data), size_(size), reading_(reading) {}

  std::string problem() {
    // stb reads the first marker as every other: 0xFF, any 0xFF fill bytes, then the code, so
    // "FF FF D8" starts a JPEG too.
    if (size_ < 2 || data_[0] != 0xFF) return "";  // not a JPEG
    pos_ = 1;
    while (pos_ < size_ && data_[pos_] == 0xFF) ++pos_;
    if (pos_ == size_ || data_[pos_] != 0xD8) return "";  // not a JPEG
    ++pos_;
    while (pos_ < size_) {
      const int marker = next_marker();
      if (marker < 0 || marker == 0xD9) break;
      if (marker == 0xD8 || marker == 0x01 || is_restart(marker)) continue;
      if (marker == 0xC4) {
        const Tables outcome = read_huffman_segment();
        if (outcome == Tables::kOverflow) return "a Huffman table has more than 256 codes";
        if (outcome == Tables::kStop) return "";
        continue;
      }
      const size_t start = pos_;
      const size_t length = get16();
      if (length < 2) return "";  // stb refuses the file here
      if (marker == 0xDD && !read_restart_interval(length)) return "";
      if (is_frame(marker) && !frame_seen_) {
        frame_seen_ = true;
        frame_.progressive = marker == 0xC2;
        if (reading_ == JpegReading::kImage && !read_frame(length)) return "";
      }
      if (marker == 0xDA) {
        const std::string problem = check_scan(start + length);
        if (!problem.empty()) return problem;
        if (stopped_) return "";
      }
      pos_ = start + length;
      if (marker == 0xDA) skip_entropy_coded_data();
    }
    return frame_ready_ ? missing_data() : "";
  }

 private:
  enum class Tables { kRead, kOverflow, kStop };

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
        if (next != 0x00 && next != 0xFF && !is_restart(next)) return;
        pos_ += next == 0xFF ? 1 : 2;
      } else {
        ++pos_;
      }
    }
    pos_ = size_;
  }

  // Mirrors stb's DHT loop: a table class/index byte, 16 counts, then that many symbols. The
  // count check must come before anything else, since stb itself writes past its table there.
  Tables read_huffman_segment() {
    long remaining = static_cast<long>(get16()) - 2;
    while (remaining > 0) {
      const int q = get8();
      if ((q >> 4) > 1 || (q & 15) > 3) return Tables::kStop;  // stb: "bad DHT header"
      uint8_t counts[16];
      int symbols = 0;
      for (uint8_t& count : counts) {
        count = static_cast<uint8_t>(get8());
        symbols += count;
      }
      if (symbols > 256) return Tables::kOverflow;
      uint8_t values[256];
      for (int i = 0; i < symbols; ++i) values[i] = static_cast<uint8_t>(get8());
      jpeg::HuffmanTable& table = ((q >> 4) == 0 ? dc_ : ac_)[q & 15];
      if (!table.assign(counts, values, symbols)) return Tables::kStop;  // stb: "bad code lengths"
      remaining -= 17 + symbols;
    }
    return remaining == 0 ? Tables::kRead : Tables::kStop;
  }

  bool read_restart_interval(size_t length) {
    if (length != 4) return false;  // stb: "bad DRI len"
    restart_interval_ = static_cast<int>(get16());
    return true;
  }

  // Mirrors stb's frame header checks; false where stb refuses the frame. The block grid is
  // laid out as stb lays it out, MCUs padded to whole blocks of every component.
  bool read_frame(size_t length) {
    if (get8() != 8) return false;  // stb decodes 8-bit samples only
    frame_.height = static_cast<int>(get16());
    frame_.width = static_cast<int>(get16());
    const size_t count = static_cast<size_t>(get8());
    if (frame_.width == 0 || frame_.height == 0 || (count != 1 && count != 3 && count != 4) || length != 8 + 3 * count) return false;
    // Larger frames are refused by size before decoding, and would only cost memory here.
    if (int64_t{frame_.width} * frame_.height > kMaxImagePixels) return false;
    int h_max = 1, v_max = 1;
    frame_.components.resize(count);
    for (jpeg::Component& c : frame_.components) {
      c.id = get8();
      const int q = get8();
      c.h = q >> 4;
      c.v = q & 15;
      if (c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || get8() > 3) return false;
      h_max = std::max(h_max, c.h);
      v_max = std::max(v_max, c.v);
    }
    frame_.mcus_x = (frame_.width + 8 * h_max - 1) / (8 * h_max);
    frame_.mcus_y = (frame_.height + 8 * v_max - 1) / (8 * v_max);
    for (jpeg::Component& c : frame_.components) {
      if (h_max % c.h != 0 || v_max % c.v != 0) return false;  // stb: "bad H", "bad V"
      c.blocks_x = ((frame_.width * c.h + h_max - 1) / h_max + 7) / 8;
      c.blocks_y = ((frame_.height * c.v + v_max - 1) / v_max + 7) / 8;
      c.grid_w = frame_.mcus_x * c.h;
      if (frame_.progressive) c.nonzero.assign(static_cast<size_t>(c.grid_w) * static_cast<size_t>(frame_.mcus_y * c.v), 0);
    }
    frame_ready_ = true;
    return true;
  }

  // Reads a scan header as stb does (pos_ after its length) and, when decoding, walks the
  // scan's data, which starts at `data_start`.
  std::string check_scan(size_t data_start) {
    const size_t count = static_cast<size_t>(get8());
    uint8_t ids[4] = {}, tables[4] = {};
    for (size_t i = 0; i < std::min<size_t>(count, 4); ++i) {
      ids[i] = static_cast<uint8_t>(get8());
      tables[i] = static_cast<uint8_t>(get8());
    }
    jpeg::Scan scan;
    scan.count = static_cast<int>(count);
    scan.spectral_start = get8();
    scan.spectral_end = get8();
    const int approximation = get8();
    scan.successive_high = approximation >> 4;
    scan.successive_low = approximation & 15;
    scan.restart_interval = restart_interval_;
    if (count < 1 || count > 4) return stop();  // stb: "bad SOS component count"
    for (size_t i = 0; i < count; ++i) {
      if ((tables[i] >> 4) > 3 || (tables[i] & 15) > 3) return stop();  // stb: "bad DC/AC huff"
    }
    if (!tables_defined(scan, tables)) return "a scan uses a Huffman table that was never defined";
    if (reading_ != JpegReading::kImage || !frame_ready_) return "";
    if (!assign_components(scan, ids, tables) || !scan_layout_accepted(scan)) return stop();
    ++scans_;
    const std::string problem = jpeg::check_scan(frame_, scan, data_, size_, data_start);
    return problem.empty() ? "" : "scan " + std::to_string(scans_) + ": " + problem;
  }

  // A sequential scan decodes with both tables of each component, a progressive one with the
  // DC table in a first DC scan and the AC table in an AC scan.
  bool tables_defined(const jpeg::Scan& scan, const uint8_t* tables) const {
    const bool uses_dc = !frame_.progressive || (scan.spectral_start == 0 && scan.successive_high == 0);
    const bool uses_ac = !frame_.progressive || scan.spectral_start > 0;
    for (int i = 0; i < scan.count; ++i) {
      if ((uses_dc && !dc_[tables[i] >> 4].defined()) || (uses_ac && !ac_[tables[i] & 15].defined())) return false;
    }
    return true;
  }

  // stb finds each scan component by its id, and keeps the tables on the frame component, so
  // a component listed twice decodes with the tables given last.
  bool assign_components(jpeg::Scan& scan, const uint8_t* ids, const uint8_t* tables) {
    if (static_cast<size_t>(scan.count) > frame_.components.size()) return false;
    int dc_of[4] = {}, ac_of[4] = {};
    for (int i = 0; i < scan.count; ++i) {
      const auto found = std::find_if(frame_.components.begin(), frame_.components.end(),
                                      [&](const jpeg::Component& c) { return c.id == ids[i]; });
      if (found == frame_.components.end()) return false;
      const int which = static_cast<int>(found - frame_.components.begin());
      scan.components[i] = which;
      dc_of[which] = tables[i] >> 4;
      ac_of[which] = tables[i] & 15;
    }
    for (int i = 0; i < scan.count; ++i) {
      scan.dc[i] = &dc_[dc_of[scan.components[i]]];
      scan.ac[i] = &ac_[ac_of[scan.components[i]]];
    }
    return true;
  }

  // stb's checks of the spectral selection and successive approximation.
  bool scan_layout_accepted(jpeg::Scan& scan) const {
    if (frame_.progressive) {
      return scan.spectral_start <= 63 && scan.spectral_end <= 63 && scan.spectral_start <= scan.spectral_end &&
             scan.successive_high <= 13 && scan.successive_low <= 13;
    }
    if (scan.spectral_start != 0 || scan.successive_high != 0 || scan.successive_low != 0) return false;
    scan.spectral_end = 63;
    return true;
  }

  std::string stop() {
    stopped_ = true;
    return "";
  }

  // At the end of the image: stb would return memory it never wrote for a component that no
  // scan covered.
  std::string missing_data() const {
    if (scans_ == 0) return "it has no scan, so no image data";
    for (size_t i = 0; i < frame_.components.size(); ++i) {
      if (!frame_.components[i].scanned) {
        return "component " + std::to_string(i + 1) + " of " + std::to_string(frame_.components.size()) +
               (frame_.progressive ? " has no first DC scan" : " has no scan");
      }
    }
    return "";
  }

  const uint8_t* data_;
  size_t size_;
  JpegReading reading_;
  size_t pos_ = 0;
  bool frame_seen_ = false;
  bool frame_ready_ = false;  // the frame was read for decoding
  bool stopped_ = false;
  int restart_interval_ = 0;
  int scans_ = 0;
  jpeg::Frame frame_;
  jpeg::HuffmanTable dc_[4], ac_[4];
};

}  // namespace

std::string jpeg_problem(const uint8_t* data, size_t size, JpegReading reading) {
  return JpegGuard(data, size, reading).problem();
}

}  // namespace pnpovss::image
