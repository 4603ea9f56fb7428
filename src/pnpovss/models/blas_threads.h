// The BLAS's own thread count. libtorch's matrix products on the CPU go through the BLAS, whose
// threads are not libtorch's: OpenBLAS keeps one worker per core and spreads every product over
// them. Several images segmented side by side, one per core, want one BLAS thread each instead.
//
// Found in the process at run time (libtorch loads the BLAS): with another BLAS than OpenBLAS
// nothing can be read or set, and these functions say so rather than guess.
#pragma once

namespace pnpovss::models {

// The BLAS's thread count, or 0 when this process's BLAS does not let it be read and set.
int blas_threads();

// Within its lifetime every matrix product of the process runs on `threads` BLAS threads; the
// count before is restored at the end. The setting is process-wide, so the scope belongs around
// work that the constructing thread waits for. Does nothing when blas_threads() is 0.
class BlasThreadsScope {
 public:
  explicit BlasThreadsScope(int threads);
  ~BlasThreadsScope();
  BlasThreadsScope(const BlasThreadsScope&) = delete;
  BlasThreadsScope& operator=(const BlasThreadsScope&) = delete;

 private:
  int previous_;
};

}  // namespace pnpovss::models
