// World without MPI: always one process.
#include <cstdlib>

#include "pnpovss/error.h"
#include "pnpovss/eval/distributed.h"

namespace pnpovss::eval {

bool launched_as_mpi_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    const char* v = std::getenv(name);
    if (v && *v) return true;
  }
  return false;
}

World World::join() {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (!size) size = std::getenv("PMI_SIZE");
  if (size && std::atoi(size) > 1)
    throw Error("started by mpirun, but this pnp-ovss was built without MPI: every rank would evaluate every "
                "image (install an MPI development package, e.g. libopenmpi-dev, and rebuild)");
  return World();
}

void World::barrier() const {}
void World::sum_to_root(std::vector<int64_t>&) const {}
void World::abort(int status) const { std::exit(status); }

}  // namespace pnpovss::eval
