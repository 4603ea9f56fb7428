#include "pnpovss/runtime/cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "pnpovss/cpu/large_blocks.h"

namespace pnpovss::runtime {
namespace {

// The deleter of the allocator replaced, for the small blocks it still serves.
c10::DeleterFnPtr small_deleter = nullptr;

// One deleter for every block, as libtorch's raw interface requires (raw_deleter below).
void delete_block(void* data) {
  if (!cpu::give_back_large_block(data)) small_deleter(data);
}

// Large requests to cpu/large_blocks.h, the rest to the allocator it replaces, whose blocks are
// handed out with delete_block as their deleter too. libtorch 1.x declares `allocate` const and
// libtorch 2.3 and later non-const, with a `copy_data` to define: both overloads are declared,
// so whichever the base class has is overridden.
class LargeBlockAllocator final : public c10::Allocator {
 public:
  explicit LargeBlockAllocator(c10::Allocator* small) : small_(small) {}

  c10::DataPtr allocate(size_t bytes) const { return serve(bytes); }
  c10::DataPtr allocate(size_t bytes) { return serve(bytes); }
  c10::DeleterFnPtr raw_deleter() const override { return &delete_block; }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count > 0) std::memcpy(dest, src, count);
  }

 private:
  c10::DataPtr serve(size_t bytes) const {
    void* data = nullptr;
    if (bytes < cpu::kLargeBlockThreshold) {
      c10::DataPtr small = small_->allocate(bytes);
      data = small.release_context();  // the data itself (the replaced allocator has a raw deleter)
    } else {
      data = cpu::take_large_block(bytes);
    }
    return {data, data, &delete_block, c10::Device(c10::DeviceType::CPU)};
  }

  c10::Allocator* small_;
};

LargeBlockAllocator* installed = nullptr;

}  // namespace

void install_cpu_allocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* choice = std::getenv("PNPOVSS_CPU_ALLOCATOR");
    if (choice != nullptr && std::string(choice) == "libtorch") return;
    c10::Allocator* current = c10::GetCPUAllocator();
    // Small blocks need the current allocator's raw deleter (libtorch's default has one).
    if (current == nullptr || current->raw_deleter() == nullptr) return;
    small_deleter = current->raw_deleter();
    // Never destroyed: tensors may outlive every static object.
    installed = new LargeBlockAllocator(current);
    // Priority above the default's (0), so a later default registration cannot replace it.
    c10::SetCPUAllocator(installed, /*priority=*/1);
  });
}

bool cpu_allocator_installed() { return installed != nullptr && c10::GetCPUAllocator() == installed; }

}  // namespace pnpovss::runtime
