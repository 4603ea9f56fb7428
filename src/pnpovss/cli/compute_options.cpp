#include "pnpovss/cli/compute_options.h"

#include <cstdio>
#include <string>

#include "pnpovss/cpu/cpu_info.h"
#include "pnpovss/run/model.h"

namespace pnpovss::cli {

void add_compute_options(CLI::App* cmd, ComputeOptions& o, ComputeOptionSet set) {
  cmd->add_option("--device", o.device, "cpu, cuda or cuda:N: where the model runs")->capture_default_str();
  if (set != ComputeOptionSet::DeviceOnly)
    cmd->add_option("--postprocess-device", o.postprocess_device,
                    "where the blur and the Dense CRF run: auto (the model's device), cpu (the reference's "
                    "arithmetic exactly) or cuda[:N] (the same operations as tensors on that GPU; labels may "
                    "differ at near-ties)")
        ->capture_default_str();
  cmd->add_option("--dtype", o.dtype,
                  "fp32 (exact), bf16 or fp16 (CUDA only): the model's arithmetic; maps then differ slightly")
      ->capture_default_str();
  if (set == ComputeOptionSet::WithBatchAndWorkers)
    cmd->add_option("--batch-size", o.batch_size,
                    "images per model pass: auto (1 on the CPU; on CUDA 32 at 336 px, fewer for larger sizes, "
                    "halved on out-of-memory) or a number")
        ->capture_default_str();
  if (set != ComputeOptionSet::DeviceOnly)
    cmd->add_option("--workers", o.workers,
                    "images segmented side by side, each on its own share of the CPU cores with a single-threaded "
                    "BLAS: auto (on the CPU with OpenBLAS one per core, as many as half the free memory holds; "
                    "about 1.2x the images per second of one on 2 cores; 1 on CUDA) or a number. Each image then "
                    "takes longer, so one photo gains nothing")
        ->capture_default_str();
}

runtime::Placement resolve_placement(const ComputeOptions& o) { return runtime::parse_placement(o.device, o.dtype); }

std::string resolve_postprocess_device(const ComputeOptions& o, const runtime::Placement& p) {
  return run::postprocess_device(o.postprocess_device, p);
}

void note_cpu_speed(const runtime::Placement& p) {
  if (!p.device.is_cpu()) return;
  const std::string warning = cpu::cpu_info().blas_warning;
  if (!warning.empty()) std::printf("note: %s\n", warning.c_str());
}

segment::BatchSize resolve_batch_size(const ComputeOptions& o, const runtime::Placement& p, int input_size) {
  return segment::parse_batch_size(o.batch_size, p, input_size);
}

int resolve_workers(const ComputeOptions& o, const runtime::Placement& p, const segment::WorkerLoad& load) {
  return segment::parse_workers(o.workers, p, load);
}

}  // namespace pnpovss::cli
