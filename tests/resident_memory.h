// Test helper: how much of one memory mapping of this process is resident, from
// /proc/self/smaps (Linux).
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

// Resident kB of the mapping that holds `address`; -1 when no mapping holds it.
inline long resident_kib(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  const auto a = reinterpret_cast<uintptr_t>(address);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    // A mapping's first line: "start-end perms offset dev inode path"; its fields follow as
    // "Key: value" lines.
    unsigned long long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' ')) {
      inside = lo <= a && a < hi;
      continue;
    }
    if (inside && line.rfind("Rss:", 0) == 0) return std::stol(line.substr(4));
  }
  return -1;
}
