// OpenBLAS entry points looked up in the process at run time: libtorch loads the BLAS, so the
// project never links it itself. Null when the BLAS is another one (or none, as in the core
// tests); callers then say nothing about it or leave it alone.
#pragma once

#include <dlfcn.h>

namespace pnpovss::cpu {

template <typename Fn>
Fn openblas_symbol(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace pnpovss::cpu
