// Where the model runs and how many images go through it at once: --device, --dtype and (for
// commands that segment many images) --batch-size and --workers. These change speed and
// memory, not the method; fp32 on any device gives the same labels.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "pnpovss/runtime/placement.h"
#include "pnpovss/segment/batching.h"

namespace pnpovss::cli {

struct ComputeOptions {
  std::string device = "cpu";
  std::string dtype = "fp32";
  std::string batch_size = "auto";
  std::string workers = "auto";
  std::string postprocess_device = "auto";
};

// Which of them a command takes besides --device and --dtype.
enum class ComputeOptionSet { DeviceOnly, WithWorkers, WithBatchAndWorkers };

// Registers --device and --dtype, and --batch-size and --workers as `set` says.
void add_compute_options(CLI::App* cmd, ComputeOptions& o, ComputeOptionSet set);

// Parsed and checked against this build and machine; throws pnpovss::Error.
runtime::Placement resolve_placement(const ComputeOptions& o);
segment::BatchSize resolve_batch_size(const ComputeOptions& o, const runtime::Placement& p, int input_size);
int resolve_workers(const ComputeOptions& o, const runtime::Placement& p, const segment::WorkerLoad& load);

// Where the Dense CRF runs: --postprocess-device as run::postprocess_device resolves it.
std::string resolve_postprocess_device(const ComputeOptions& o, const runtime::Placement& p);

// Prints "note: ..." on stdout when the model runs on the CPU and the BLAS runs below this
// CPU's speed (see models/cpu_info.h); nothing otherwise.
void note_cpu_speed(const runtime::Placement& p);

}  // namespace pnpovss::cli
