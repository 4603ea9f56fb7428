#include "pnpovss/models/blas_threads.h"

#include <algorithm>

#include "pnpovss/models/openblas_symbol.h"

namespace pnpovss::models {
namespace {

using GetThreads = int (*)();
using SetThreads = void (*)(int);

GetThreads openblas_get() { return openblas_symbol<GetThreads>("openblas_get_num_threads"); }
SetThreads openblas_set() { return openblas_symbol<SetThreads>("openblas_set_num_threads"); }

}  // namespace

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

}  // namespace pnpovss::models
