// How much memory the system could still give this process, for choices and checks made before
// a large allocation (workers side by side, post-processing a large photo).
#pragma once

#include <cstdint>

namespace pnpovss::cpu {

// MemAvailable of /proc/meminfo, in bytes; 0 when unknown (not Linux).
uint64_t available_memory_bytes();

}  // namespace pnpovss::cpu
