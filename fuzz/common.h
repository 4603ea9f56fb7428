// What every fuzz target shares: the contract it checks, inputs made of several files, and a
// scratch folder for parsers that read from disk.
//
// The contract: a parser either succeeds or throws pnpovss::Error whose message is one
// non-empty line. Any other exception is left to escape (libFuzzer reports it as a crash, with
// the input); a message that is empty or spans lines aborts. Memory errors, undefined behaviour,
// leaks, inputs slower than -timeout and allocations over -malloc_limit_mb are libFuzzer's and
// the sanitizers' to report.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pnpovss/error.h"

namespace pnpovss::fuzz {

// Aborts (so that libFuzzer keeps the input) when `message` breaks the one-line rule.
inline void check_message(const std::string& message) {
  if (message.empty() || message.find('\n') != std::string::npos || message.find('\r') != std::string::npos) {
    std::fprintf(stderr, "pnpovss::Error message is not one non-empty line: [%s]\n", message.c_str());
    std::abort();
  }
}

// PNPOVSS_FUZZ_VERBOSE=1 prints each rejection's message (to see what the seeds reach).
inline bool verbose() {
  static const bool on = std::getenv("PNPOVSS_FUZZ_VERBOSE") != nullptr;
  return on;
}

// Runs `parse`; true when it returned, false when it threw a pnpovss::Error (checked). Other
// exceptions pass through.
template <typename Parse>
bool accepts(Parse&& parse) {
  try {
    parse();
    return true;
  } catch (const Error& e) {
    check_message(e.what());
    if (verbose()) std::fprintf(stderr, "rejected: %s\n", e.what());
    return false;
  }
}

// A violated expectation about an accepted input (a round trip that changes the value, a
// size that disagrees): aborts with `what`.
inline void expect(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz expectation failed: %s\n", what);
    std::abort();
  }
}

// Reads `size` bytes at `bytes`, so that a view outside its buffer shows up under
// AddressSanitizer (storing the sum in a volatile keeps the reads from being optimised away).
inline volatile uint8_t touched = 0;
inline void touch(const uint8_t* bytes, size_t size) {
  uint8_t sum = 0;
  for (size_t i = 0; i < size; ++i) sum = static_cast<uint8_t>(sum + bytes[i]);
  touched = sum;
}

// An input made of several files: the parts between NUL bytes, at most `max_parts` (the last
// keeps any further NULs, so binary data goes last). Fewer parts mean absent files. The seeds
// in fuzz/corpus are written this way (fuzz/make_seeds.py).
inline std::vector<std::string> split_parts(const uint8_t* data, size_t size, size_t max_parts) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (parts.size() + 1 < max_parts) {
    size_t end = start;
    while (end < size && data[end] != 0) ++end;
    if (end == size) break;
    parts.emplace_back(reinterpret_cast<const char*>(data) + start, end - start);
    start = end + 1;
  }
  parts.emplace_back(reinterpret_cast<const char*>(data) + start, size - start);
  return parts;
}

// The JSON parse of io::read_json_file (no exceptions; a syntax error gives a discarded value,
// which read_json_file turns into a pnpovss::Error).
inline nlohmann::json parse_json(const std::string& text) { return nlohmann::json::parse(text, nullptr, false); }

// A folder of this process (in /dev/shm when there is one: the files never touch a disk), made
// empty for each input and removed when the process ends normally.
class ScratchDir {
 public:
  static ScratchDir& get() {
    static ScratchDir dir;
    return dir;
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  // Empties the folder.
  void reset() const {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
    std::filesystem::create_directories(path_);
  }
  // Writes `content` as `name` (folders included), returning its path.
  std::string write(const std::string& name, const std::string& content) const {
    const std::filesystem::path target = file(name);
    std::filesystem::create_directories(target.parent_path());
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write the scratch file %s\n", target.c_str());
      std::abort();
    }
    return target.string();
  }

  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

 private:
  // Under PNPOVSS_FUZZ_SCRATCH when set (scripts/fuzz.sh sets it, and removes it at the end: a
  // crashing process leaves its folder behind).
  ScratchDir() {
    std::error_code ec;
    const char* chosen = std::getenv("PNPOVSS_FUZZ_SCRATCH");
    const std::string base = chosen != nullptr && *chosen != '\0'          ? std::string(chosen)
                             : std::filesystem::is_directory("/dev/shm", ec) ? std::string("/dev/shm")
                                                                            : std::filesystem::temp_directory_path().string();
    path_ = base + "/pnpovss-fuzz-" + std::to_string(::getpid());
    reset();
  }
  std::string path_;
};

}  // namespace pnpovss::fuzz
