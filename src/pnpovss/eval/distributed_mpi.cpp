// World on MPI.
#include <mpi.h>

#include <cstdlib>

#include "pnpovss/error.h"
#include "pnpovss/eval/distributed.h"

namespace pnpovss::eval {
namespace {

// MPI may be initialised once per process; finalised when the process exits normally.
void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace

bool launched_as_mpi_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    const char* v = std::getenv(name);
    if (v && *v) return true;
  }
  return false;
}

World World::join() {
  World w;
  if (!launched_as_mpi_rank()) return w;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    if (MPI_Init(nullptr, nullptr) != MPI_SUCCESS) throw Error("MPI_Init failed");
    std::atexit(finalize_at_exit);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &w.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &w.size_);
  return w;
}

void World::barrier() const {
  if (size_ > 1) MPI_Barrier(MPI_COMM_WORLD);
}

void World::sum_to_root(std::vector<int64_t>& values) const {
  if (size_ <= 1) return;
  std::vector<int64_t> sum(values.size(), 0);
  MPI_Reduce(values.data(), sum.data(), static_cast<int>(values.size()), MPI_INT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank_ == 0) values = sum;
}

void World::abort(int status) const {
  if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, status);
  std::exit(status);
}

}  // namespace pnpovss::eval
