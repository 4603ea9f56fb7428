#include "pnpovss/cpu/blas_threads.h"

#include <algorithm>
#include <cstdlib>

#include "pnpovss/cpu/openblas_symbol.h"

namespace pnpovss::cpu {
namespace {

using GetThreads = int (*)();
using SetThreads = void (*)(int);

GetThreads openblas_get() { return openblas_symbol<GetThreads>("openblas_get_num_threads"); }
SetThreads openblas_set() { return openblas_symbol<SetThreads>("openblas_set_num_threads"); }

}  // namespace

bool sleep_idle_blas_threads() {
  if (std::getenv("OPENBLAS_THREAD_TIMEOUT") != nullptr) return false;  // the user's choice
  using Call = void (*)();
  using Status = int (*)();
  const auto read_env = openblas_symbol<Call>("openblas_read_env");
  const auto stop_threads = openblas_symbol<Status>("blas_thread_shutdown_");
  const auto start_threads = openblas_symbol<Status>("blas_thread_init");
  if (read_env == nullptr || stop_threads == nullptr || start_threads == nullptr) return false;
  setenv("OPENBLAS_THREAD_TIMEOUT", "4", /*overwrite=*/0);
  read_env();
  stop_threads();
  start_threads();
  return true;
}

int blas_threads() {
  const GetThreads get = openblas_get();
  return get != nullptr && openblas_set() != nullptr ? std::max(1, get()) : 0;
}

BlasThreadsScope::BlasThreadsScope(int threads) : previous_(blas_threads()) {
  if (previous_ > 0) openblas_set()(std::max(1, threads));
}

BlasThreadsScope::~BlasThreadsScope() {
  if (previous_ > 0) openblas_set()(previous_);
}

}  // namespace pnpovss::cpu
