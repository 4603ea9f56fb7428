// pnp-ovss: training-free open-vocabulary semantic segmentation (PnP-OVSS).
#include "pnpovss/cli/app.h"
#include "pnpovss/models/blas_threads.h"

int main(int argc, char** argv) {
  pnpovss::models::sleep_idle_blas_threads();  // before anything else runs
  return pnpovss::cli::run_cli(argc, argv);
}
