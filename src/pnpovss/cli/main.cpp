// pnp-ovss: training-free open-vocabulary semantic segmentation (PnP-OVSS).
#include "pnpovss/cli/app.h"

int main(int argc, char** argv) { return pnpovss::cli::run_cli(argc, argv); }
