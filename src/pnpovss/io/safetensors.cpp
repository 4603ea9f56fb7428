#include "pnpovss/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "pnpovss/error.h"
#include "pnpovss/io/file_write.h"

namespace pnpovss::io {
namespace {

// A header larger than this is certainly not a checkpoint header (real ones are < 1 MiB
// even for thousands of tensors); refusing it early keeps a corrupt length from making us
// parse gigabytes of weights as JSON.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DTypeName {
  const char* name;
  DType dtype;
  size_t size;
};
constexpr DTypeName kDTypes[] = {
    {"F64", DType::F64, 8},  {"F32", DType::F32, 4}, {"F16", DType::F16, 2},
    {"BF16", DType::BF16, 2}, {"I64", DType::I64, 8}, {"I32", DType::I32, 4},
    {"I16", DType::I16, 2},  {"I8", DType::I8, 1},   {"U8", DType::U8, 1},
    {"BOOL", DType::BOOL, 1},
};

DType parse_dtype(const std::string& name, const std::string& where) {
  for (const auto& d : kDTypes)
    if (name == d.name) return d.dtype;
  throw Error(where + ": unsupported dtype '" + name +
              "' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Product of dims times element size, or throws when it overflows 64 bits.
uint64_t checked_nbytes(const std::vector<int64_t>& shape, size_t elem, const std::string& where) {
  uint64_t total = elem;
  for (int64_t d : shape) {
    uint64_t ud = static_cast<uint64_t>(d);
    if (ud != 0 && total > std::numeric_limits<uint64_t>::max() / ud)
      throw Error(where + ": shape " + shape_string(shape) + " is too large (size overflows)");
    total *= ud;
  }
  return total;
}

TensorView parse_entry(const std::string& name, const nlohmann::json& entry,
                       const uint8_t* data, uint64_t data_size, const std::string& origin) {
  const std::string where = origin + ": tensor '" + name + "'";
  if (!entry.is_object()) throw Error(where + ": header entry is not an object");
  auto dtype_it = entry.find("dtype");
  auto shape_it = entry.find("shape");
  auto offsets_it = entry.find("data_offsets");
  if (dtype_it == entry.end() || !dtype_it->is_string())
    throw Error(where + ": missing or non-string 'dtype'");
  if (shape_it == entry.end() || !shape_it->is_array())
    throw Error(where + ": missing or non-array 'shape'");
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2)
    throw Error(where + ": 'data_offsets' must be an array [begin, end]");

  TensorView view;
  view.name = name;
  view.dtype = parse_dtype(dtype_it->get<std::string>(), where);
  for (const auto& d : *shape_it) {
    if (!d.is_number_unsigned()) throw Error(where + ": shape entries must be non-negative integers");
    uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw Error(where + ": shape entry too large");
    view.shape.push_back(static_cast<int64_t>(dim));
  }
  for (const auto& o : *offsets_it)
    if (!o.is_number_unsigned()) throw Error(where + ": data_offsets must be non-negative integers");
  uint64_t begin = (*offsets_it)[0].get<uint64_t>();
  uint64_t end = (*offsets_it)[1].get<uint64_t>();
  if (begin > end || end > data_size)
    throw Error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                "] lie outside the data section of " + std::to_string(data_size) +
                " bytes (file truncated or corrupt)");
  uint64_t expected = checked_nbytes(view.shape, dtype_size(view.dtype), where);
  if (expected != end - begin)
    throw Error(where + ": " + dtype_name(view.dtype) + " " + shape_string(view.shape) + " needs " +
                std::to_string(expected) + " bytes but data_offsets span " +
                std::to_string(end - begin));
  view.data = data + begin;
  view.nbytes = static_cast<size_t>(end - begin);
  return view;
}

}  // namespace

size_t dtype_size(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.size;
  return 0;
}

const char* dtype_name(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.name;
  return "?";
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto file = MappedFile::open(path);
  SafetensorsFile result = parse(file->data(), file->size(), path);
  result.file_ = std::move(file);
  return result;
}

SafetensorsFile SafetensorsFile::parse(const uint8_t* bytes, size_t size, const std::string& origin) {
  if (size < 8)
    throw Error(origin + ": not a safetensors file (" + std::to_string(size) +
                " bytes; the 8-byte header length is missing)");
  const uint64_t header_len = read_u64_le(bytes);
  if (header_len > kMaxHeaderBytes || header_len > size - 8)
    throw Error(origin + ": header length " + std::to_string(header_len) +
                " exceeds the file size of " + std::to_string(size) +
                " bytes (truncated or not a safetensors file)");
  const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
  nlohmann::json header = nlohmann::json::parse(header_begin, header_begin + header_len, nullptr,
                                                /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    throw Error(origin + ": the header is not a valid JSON object (corrupt file?)");

  SafetensorsFile result;
  result.origin_ = origin;
  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) throw Error(origin + ": __metadata__ must be an object of strings");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) throw Error(origin + ": __metadata__ value of '" + mk + "' is not a string");
        result.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    result.tensors_.push_back(parse_entry(key, value, data, data_size, origin));
  }
  // Byte ranges must not overlap: overlapping tensors would alias each other's storage.
  std::vector<const TensorView*> by_offset;
  for (const auto& t : result.tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorView* a, const TensorView* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorView* prev = by_offset[i - 1];
    if (prev->data + prev->nbytes > by_offset[i]->data)
      throw Error(origin + ": the data of tensors '" + prev->name + "' and '" + by_offset[i]->name +
                  "' overlap (corrupt file)");
  }
  for (size_t i = 0; i < result.tensors_.size(); ++i) result.index_[result.tensors_[i].name] = i;
  return result;
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorView& SafetensorsFile::at(const std::string& name) const {
  const TensorView* view = find(name);
  if (view == nullptr) throw Error(origin_ + ": no tensor named '" + name + "'");
  return *view;
}

void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    uint64_t expected = checked_nbytes(t.shape, dtype_size(t.dtype), "tensor '" + t.name + "'");
    if (expected != t.nbytes) throw Error("tensor '" + t.name + "': byte count does not match its shape");
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text += ' ';  // keep the data 8-byte aligned
  uint64_t len = text.size();
  uint8_t le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<uint8_t>(len >> (8 * i));
  std::vector<BytesView> pieces = {{le, 8}, {text.data(), text.size()}};
  for (const auto& t : tensors) pieces.push_back({t.data, t.nbytes});
  // Through a temporary file, so that an interrupted write never leaves a truncated file under the name.
  write_file_atomic(path, pieces);
}

}  // namespace pnpovss::io
