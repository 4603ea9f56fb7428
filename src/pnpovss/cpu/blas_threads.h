// The BLAS's own thread count. libtorch's matrix products on the CPU go through the BLAS, whose
// threads are not libtorch's: OpenBLAS keeps one worker per core and spreads every product over
// them. Several images segmented side by side, one per core, want one BLAS thread each instead.
//
// Found in the process at run time (libtorch loads the BLAS): with another BLAS than OpenBLAS
// nothing can be read or set, and these functions say so rather than guess.
#pragma once

namespace pnpovss::cpu {

// The BLAS's thread count, or 0 when this process's BLAS does not let it be read and set.
int blas_threads();

// Within its lifetime every matrix product of the process runs on `threads` BLAS threads; the
// count before is restored at the end. The setting is process-wide, so the scope belongs around
// work that the constructing thread waits for. Does nothing when blas_threads() is 0.
// One image at a time, OpenBLAS spreads each matrix product over every core, and between two
// products its other threads keep polling for about 0.1 s (yielding the CPU in a loop) while
// this process does element-wise work and runs its fused attention kernel on those cores: that
// polling took the vision attention from 2.7 to 4.9 ms per layer at 336 px, about 5% of an
// image. OPENBLAS_THREAD_TIMEOUT (log2 of the cycles to poll; 4 is the least) stops it, but
// OpenBLAS reads it only when it starts its threads, from its initialiser, before main().
//
// So this sets OPENBLAS_THREAD_TIMEOUT=4 unless the variable is set already, and has OpenBLAS
// read its environment and start its threads again (the entry points its own fork handler
// uses). It is for the start of a program, before any matrix product and before any other
// thread exists; the executables call it first thing. Returns whether it did; with another
// BLAS, or an OpenBLAS without those entry points, it does nothing.
bool sleep_idle_blas_threads();

class BlasThreadsScope {
 public:
  explicit BlasThreadsScope(int threads);
  ~BlasThreadsScope();
  BlasThreadsScope(const BlasThreadsScope&) = delete;
  BlasThreadsScope& operator=(const BlasThreadsScope&) = delete;

 private:
  int previous_;
};

}  // namespace pnpovss::cpu
