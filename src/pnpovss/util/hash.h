// SHA-256 and SHA-1, for the hashes the Hugging Face hub announces (hub/etag.h) and for the
// image hashes in output records, so that no crypto library is needed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace pnpovss::util {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::string hex_digest();  // lower-case hex; call once

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buffered_ = 0;
  uint64_t total_ = 0;
};

class Sha1 {
 public:
  Sha1();
  void update(const void* data, size_t size);
  std::string hex_digest();  // lower-case hex; call once

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 5> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buffered_ = 0;
  uint64_t total_ = 0;
};

// The lower-case hex SHA-256 of the file at `path`, and its git blob id (SHA-1 of
// "blob <size>\0" + content). Throw pnpovss::Error when the file cannot be read.
std::string file_sha256(const std::string& path);
std::string file_git_blob_sha1(const std::string& path);

}  // namespace pnpovss::util
