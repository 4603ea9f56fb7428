// pnp-ovss: training-free open-vocabulary semantic segmentation (PnP-OVSS).
#include "pnpovss/command_line.h"
#include "pnpovss/cpu/blas_threads.h"

int main(int argc, char** argv) {
  pnpovss::cpu::sleep_idle_blas_threads();  // before anything else runs
  return pnpovss::run_command_line(argc, argv);
}
