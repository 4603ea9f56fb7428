// Several processes of one `mpirun -n N pnp-ovss eval ...`: each rank takes every N-th image
// and the counts are summed on rank 0, which writes the metrics. Built with MPI only when CMake
// finds it (distributed_mpi.cpp); otherwise distributed_none.cpp, which refuses to run under
// mpirun rather than letting N copies each evaluate everything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pnpovss/eval/evaluation.h"
#include "pnpovss/eval/run_dir.h"

namespace pnpovss::eval {

class World {
 public:
  // Joins the MPI job when the process was started by mpirun/srun (MPI initialised once per
  // process); otherwise a world of one. Throws pnpovss::Error under mpirun without MPI support.
  static World join();
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool distributed() const { return size_ > 1; }

  void barrier() const;
  // Element-wise sum over all ranks; the result is valid on rank 0.
  void sum_to_root(std::vector<int64_t>& values) const;
  // Ends the whole job after an error on one rank (others may be waiting in a collective).
  [[noreturn]] void abort(int status) const;

 private:
  int rank_ = 0, size_ = 1;
};

// Whether the environment says this process is one rank of several (Open MPI, MPICH, PMIx, Slurm).
bool launched_as_mpi_rank();

// The loop results of every rank summed on rank 0: counts, images computed and resumed (other
// ranks get theirs back). A collective: every rank calls it.
LoopResult sum_over_ranks(const World& world, const LoopResult& loop);

// On rank 0 after sum_over_ranks: the failures of every rank, found as the images of `selected`
// without a record in `run`, with this rank's messages where it has them (the others say to
// see their rank's log).
std::vector<Failure> failures_of_all_ranks(const World& world, const RunDir& run, const std::vector<Sample>& selected,
                                           int num_classes, const std::vector<Failure>& own);

}  // namespace pnpovss::eval
