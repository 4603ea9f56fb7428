#include "pnpovss/cpu/cpu_info.h"

#include <dlfcn.h>

#include <algorithm>
#include <climits>
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

// The file that provides the BLAS's sgemm_ in this process (links resolved), "" when none does.
std::string sgemm_library() {
  void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info where{};
  if (sgemm == nullptr || dladdr(sgemm, &where) == 0 || where.dli_fname == nullptr) return "";
  char resolved[PATH_MAX];
  return realpath(where.dli_fname, resolved) != nullptr ? resolved : where.dli_fname;
}

// BLIS as the BLAS. Debian's blis-*/libblas.so.3 exports only the BLAS interface, so neither
// its version nor its kernels can be asked (loading its libblis.so.4 beside it to ask would do,
// but BLIS aborts the process when BLIS_ARCH_TYPE names kernels that copy lacks). The kernels
// are BLIS_ARCH_TYPE's when set; the threads BLIS_NUM_THREADS's, which BLIS reads (1 unset).
void describe_blis(CpuInfo& info) {
  const char* arch = std::getenv("BLIS_ARCH_TYPE");
  const char* threads_text = std::getenv("BLIS_NUM_THREADS");
  const int threads = threads_text != nullptr ? std::max(1, std::atoi(threads_text)) : 1;
  const std::string kernels = arch != nullptr && *arch != '\0' ? std::string(arch) + " kernels (BLIS_ARCH_TYPE)"
                                                                 : "kernels chosen by CPU model";
  info.blas = "BLIS (" + kernels + ", " + std::to_string(threads) + (threads == 1 ? " thread)" : " threads)");
  info.blas_warning = blis_speed_warning(threads);
}

}  // namespace

CpuInfo cpu_info() {
  CpuInfo info;
  const bool avx512 = simd::cpu_has_avx512();
  info.vectors = avx512 ? "AVX-512" : simd::cpu_has_avx2() ? "AVX2" : "SSE2";

  const auto corename = openblas_symbol<char* (*)()>("openblas_get_corename");
  const auto config = openblas_symbol<char* (*)()>("openblas_get_config");
  const std::string library = sgemm_library();
  const std::string from = library.empty() ? "" : ", from " + library;
  if (library.find("blis") != std::string::npos) {
    describe_blis(info);
    info.blas += from;
    return info;
  }
  if (corename == nullptr) {
    info.blas = "unknown (neither OpenBLAS nor BLIS)" + from;
    return info;
  }
  const std::string core = corename();
  // How long idle BLAS threads poll before sleeping, when set (the executables set it: see
  // sleep_idle_blas_threads in blas_threads.h); OpenBLAS reads it from this same environment.
  const char* timeout = std::getenv("OPENBLAS_THREAD_TIMEOUT");
  const std::string polling = timeout && *timeout ? ", idle threads poll 2^" + std::string(timeout) + " cycles" : "";
  info.blas = version_of(config ? config() : nullptr) + " (" + core + " kernels" + polling + ")" + from;
  info.blas_warning = blas_speed_warning(avx512, core, std::getenv("OPENBLAS_CORETYPE"));
  return info;
}

std::string blis_speed_warning(int threads) {
  if (threads > 1) return "";
  return "BLIS runs matrix products on one thread: set BLIS_NUM_THREADS to the number of cores";
}

std::string blas_speed_warning(bool cpu_has_avx512, const std::string& core, const char* forced_core) {
  if (!cpu_has_avx512 || forced_core == nullptr || *forced_core == '\0' || avx512_core(core)) return "";
  return "OPENBLAS_CORETYPE=" + std::string(forced_core) + " makes OpenBLAS use " + core +
         " kernels on this AVX-512 CPU, so matrix products run at about half speed; unset it unless this "
         "OpenBLAS build fails without it";
}

}  // namespace pnpovss::cpu
