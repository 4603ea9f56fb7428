// What the CPU path runs on: the widest vector instructions the kernels use, and the BLAS that
// libtorch's matrix products go through: the file that provides sgemm_ (the libblas.so.3 that
// Debian's alternatives select), OpenBLAS's version and kernels, BLIS's threads.
//
// OpenBLAS takes its kernels from OPENBLAS_CORETYPE when that is set; an older core than the
// CPU (Haswell kernels on an AVX-512 CPU, say) halves the speed of every matrix product, and
// nothing else says so. CpuInfo::blas_warning does.
#pragma once

#include <string>

namespace pnpovss::cpu {

struct CpuInfo {
  std::string vectors;       // "AVX-512", "AVX2" or "SSE2"
  std::string blas;          // e.g. "OpenBLAS 0.3.21 (Cooperlake kernels, idle threads poll 2^4 cycles), from
                             // /usr/lib/x86_64-linux-gnu/libblas.so.3", "BLIS (kernels chosen by CPU model, 2
                             // threads), from ...", "unknown (neither OpenBLAS nor BLIS)" for another BLAS
  std::string blas_warning;  // empty, or why the BLAS runs below this CPU's speed and what to do
};

CpuInfo cpu_info();

// The warning of cpu_info() for BLIS on `threads` threads: empty unless that is one.
std::string blis_speed_warning(int threads);

// The warning of cpu_info() for a CPU with or without AVX-512, the OpenBLAS core in use and
// the value of OPENBLAS_CORETYPE (null when unset): empty unless a forced core leaves
// AVX-512 unused.
std::string blas_speed_warning(bool cpu_has_avx512, const std::string& core, const char* forced_core);

}  // namespace pnpovss::cpu
