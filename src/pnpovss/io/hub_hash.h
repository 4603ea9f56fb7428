// The two hashes the Hugging Face hub announces for a file (its ETag): SHA-256 of the content
// for files stored with Git LFS, and the git blob id (SHA-1 of "blob <size>\0" + content) for
// the others. Used to check downloads, so no crypto library is needed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace pnpovss::io {

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

// How a hub ETag identifies its file's content.
enum class EtagKind { Sha256, GitSha1, Opaque };
EtagKind etag_kind(const std::string& etag);

// The hash of the file at `path` in the form of `kind` (empty for Opaque). Throws
// pnpovss::Error when the file cannot be read.
std::string file_etag_hash(const std::string& path, EtagKind kind);

}  // namespace pnpovss::io
