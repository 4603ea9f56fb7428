// Reader for the safetensors format (8-byte little-endian header length, a JSON header
// mapping tensor names to dtype/shape/byte range, then the raw data). The whole file is
// memory-mapped; tensors are views into the mapping. Every field of the header is
// validated, because checkpoint files come from untrusted sources.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pnpovss/io/mapped_file.h"

namespace pnpovss::io {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

// Bytes per element of `dtype`.
size_t dtype_size(DType dtype);
// The safetensors spelling ("F32", "BF16", ...).
const char* dtype_name(DType dtype);
std::string shape_string(const std::vector<int64_t>& shape);

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // points into the owning file's bytes
  size_t nbytes = 0;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Opens and validates `path`; throws pnpovss::Error naming the file and the problem.
  static SafetensorsFile open(const std::string& path);
  // Parses bytes already in memory (`origin` names them in messages). The caller keeps the
  // bytes alive for as long as the returned views are used.
  static SafetensorsFile parse(const uint8_t* bytes, size_t size, const std::string& origin);

  const std::vector<TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorView* find(const std::string& name) const;
  // Like find, but throws pnpovss::Error when the tensor is absent.
  const TensorView& at(const std::string& name) const;
  const std::string& origin() const { return origin_; }
  // Keeps the mapping alive (shared with tensors created from the views).
  std::shared_ptr<const MappedFile> file() const { return file_; }

 private:
  std::string origin_;
  std::shared_ptr<const MappedFile> file_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors in the safetensors format (used for outputs such as saved maps). Each
// entry's data must hold exactly numel * dtype_size bytes.
void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace pnpovss::io
