#include "pnpovss/cpu/cpu_info.h"

#include <cstdlib>
#include <cstring>

#include "pnpovss/cpu/openblas_symbol.h"
#include "pnpovss/cpu/simd.h"

namespace pnpovss::cpu {
namespace {

// OpenBLAS core names whose sgemm kernels use AVX-512.
bool avx512_core(const std::string& core) {
  for (const char* name : {"SkylakeX", "Cooperlake", "SapphireRapids"})
    if (strcasecmp(core.c_str(), name) == 0) return true;
  return false;
}

// "OpenBLAS 0.3.21" from the build configuration string ("OpenBLAS 0.3.21 NO_LAPACKE ...").
std::string version_of(const char* config) {
  const std::string text = config ? config : "OpenBLAS";
  const size_t second_space = text.find(' ', text.find(' ') + 1);
  return text.substr(0, second_space);
}

}  // namespace

CpuInfo cpu_info() {
  CpuInfo info;
  const bool avx512 = simd::cpu_has_avx512();
  info.vectors = avx512 ? "AVX-512" : simd::cpu_has_avx2() ? "AVX2" : "SSE2";

  const auto corename = openblas_symbol<char* (*)()>("openblas_get_corename");
  const auto config = openblas_symbol<char* (*)()>("openblas_get_config");
  if (corename == nullptr) {
    info.blas = "unknown (not OpenBLAS)";
    return info;
  }
  const std::string core = corename();
  // How long idle BLAS threads poll before sleeping, when set (the executables set it: see
  // sleep_idle_blas_threads in blas_threads.h); OpenBLAS reads it from this same environment.
  const char* timeout = std::getenv("OPENBLAS_THREAD_TIMEOUT");
  const std::string polling = timeout && *timeout ? ", idle threads poll 2^" + std::string(timeout) + " cycles" : "";
  info.blas = version_of(config ? config() : nullptr) + " (" + core + " kernels" + polling + ")";
  info.blas_warning = blas_speed_warning(avx512, core, std::getenv("OPENBLAS_CORETYPE"));
  return info;
}

std::string blas_speed_warning(bool cpu_has_avx512, const std::string& core, const char* forced_core) {
  if (!cpu_has_avx512 || forced_core == nullptr || *forced_core == '\0' || avx512_core(core)) return "";
  return "OPENBLAS_CORETYPE=" + std::string(forced_core) + " makes OpenBLAS use " + core +
         " kernels on this AVX-512 CPU, so matrix products run at about half speed; unset it unless this "
         "OpenBLAS build fails without it";
}

}  // namespace pnpovss::cpu
