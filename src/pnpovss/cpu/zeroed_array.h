// A fixed-size array that starts as zeros without being written: small ones come from calloc,
// large ones (from kLargeBlockThreshold bytes) are fresh huge-page mappings (large_blocks.h), so
// that neither costs a pass of stores nor, for the large ones, a page fault per 4 KiB. For
// buffers of hundreds of megabytes that are filled once per call, as the Dense CRF's lattice
// values are.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>

#include "pnpovss/cpu/large_blocks.h"

namespace pnpovss::cpu {

template <typename T>
class ZeroedArray {
  static_assert(std::is_trivial_v<T>, "ZeroedArray holds plain values whose all-zero bytes are a value");

 public:
  ZeroedArray() = default;
  explicit ZeroedArray(size_t count) : count_(count) {
    if (count == 0) return;
    if (count > static_cast<size_t>(-1) / sizeof(T)) throw std::bad_alloc();
    const size_t bytes = count * sizeof(T);
    mapped_ = bytes >= kLargeBlockThreshold;
    data_ = static_cast<T*>(mapped_ ? map_zeroed_block(bytes) : std::calloc(count, sizeof(T)));
    if (data_ == nullptr) throw std::bad_alloc();
  }
  ~ZeroedArray() { release(); }
  ZeroedArray(ZeroedArray&& other) noexcept { swap(other); }
  ZeroedArray& operator=(ZeroedArray&& other) noexcept {
    if (this != &other) {
      release();
      swap(other);
    }
    return *this;
  }
  ZeroedArray(const ZeroedArray&) = delete;
  ZeroedArray& operator=(const ZeroedArray&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return count_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  void swap(ZeroedArray& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    std::swap(mapped_, other.mapped_);
  }
  void release() {
    if (mapped_)
      unmap_zeroed_block(data_, count_ * sizeof(T));
    else
      std::free(data_);
    data_ = nullptr;
    count_ = 0;
    mapped_ = false;
  }

  T* data_ = nullptr;
  size_t count_ = 0;
  bool mapped_ = false;
};

}  // namespace pnpovss::cpu
