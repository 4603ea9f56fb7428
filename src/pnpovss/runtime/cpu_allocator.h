// libtorch's CPU tensors through cpu/large_blocks.h: a tensor of 4 MiB or more gets a block on
// huge pages, reused from an earlier tensor of the same size when one was freed; smaller ones
// keep libtorch's own allocator. At 768 px a vision layer allocates about 340 MB of such
// tensors; from fresh pages that cost more than its GELU and residual sums together.
//
// The allocator is process-wide (libtorch has one CPU allocator). The models install it when
// they load; a tensor allocated before keeps its own deleter, so installing it at any time is
// safe. PNPOVSS_BUFFER_CACHE_MIB=0 keeps no freed block (each is still mapped on huge pages);
// PNPOVSS_CPU_ALLOCATOR=libtorch leaves libtorch's allocator in place.
#pragma once

namespace pnpovss::runtime {

// Makes libtorch allocate CPU tensors as above, once per process (unless
// PNPOVSS_CPU_ALLOCATOR=libtorch); later calls do nothing.
void install_cpu_allocator();

// Whether install_cpu_allocator has run and the allocator is libtorch's current one.
bool cpu_allocator_installed();

}  // namespace pnpovss::runtime
