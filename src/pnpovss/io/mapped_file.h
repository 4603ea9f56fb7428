// A read-only view of a whole file, memory-mapped so that multi-gigabyte checkpoints are
// paged in on demand and never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace pnpovss::io {

class MappedFile {
 public:
  // Maps `path`; throws pnpovss::Error naming the file when it cannot be opened or mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Gives back to the system the whole memory pages of this mapping inside [data, data + bytes),
  // for bytes that nothing reads any more: they leave the process's resident memory, and a later
  // read would fetch the file's bytes again. Does nothing for a range outside the mapping. Used
  // when a weight read from the mapping is dropped (e.g. once copied to another type or device),
  // so that a model moved to bf16 or a GPU does not hold the float32 file in memory as well.
  void release(const void* data, size_t bytes) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;
};

// Reads a whole (small) file into a string; throws pnpovss::Error naming the file.
std::string read_text_file(const std::string& path);

bool file_exists(const std::string& path);

}  // namespace pnpovss::io
