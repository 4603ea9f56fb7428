// Batch sizes and workers: what `auto` means on each device, running a list of images in
// batches that shrink when the GPU runs out of memory, and on the CPU several images side by
// side, one per core.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pnpovss/runtime/placement.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/segment/segmenter.h"

namespace pnpovss::segment {

struct BatchSize {
  int value = 1;
  bool automatic = true;  // halved on out-of-memory instead of failing
};

// "auto" or a positive count; throws pnpovss::SettingError ("batch_size") otherwise. `auto` is 1 on the CPU
// (so that one image's result never depends on its neighbours' rounding; batches of 3-4 save
// 7-12% per image there at 336 px) and on CUDA 32 images at 336 px, scaled
// by (336 / input_size)^2, at least 1; out of memory then halves it.
BatchSize parse_batch_size(const std::string& text, const runtime::Placement& placement, int input_size);

// True for the out-of-memory errors of libtorch's CUDA allocator (1.13 and 2.x).
bool is_out_of_memory(const std::exception& e);

// Workers: images segmented side by side on the CPU (see side_by_side.h; 2 cores, 336 px: 3.2 s
// per image instead of 3.8, with the same results).
//
// What one worker holds at once: the model's activations for its image and, in
// post-processing, that image's class maps.
struct WorkerLoad {
  int input_size = 336;
  size_t classes = 1;  // the most any image is prompted with
};

// "auto" or a positive count; throws pnpovss::SettingError ("workers") otherwise. `auto` is auto_workers()
// on the CPU when the BLAS's thread count can be set (OpenBLAS), otherwise 1, and 1 on CUDA
// (one image already fills the GPU's queue).
int parse_workers(const std::string& text, const runtime::Placement& placement, const WorkerLoad& load);

// One worker per hardware thread, but no more than half of `available_bytes` holds (0 bytes:
// unknown, no limit). At least 1.
int auto_workers(int hardware_threads, const WorkerLoad& load, uint64_t available_bytes);

// The memory one worker needs, measured at fp32: the model's activations, 0.3 GiB at 768 px
// and scaling with the token count, plus 16 MiB per class for blurring and the Dense CRF of a
// 640x480 image (2.3 GiB for ADE-150's 150 classes).
uint64_t worker_bytes(const WorkerLoad& load);

// Segments `tasks` in batches of at most `size.value`. With size.automatic, a batch that runs
// out of GPU memory is retried in halves and size.value keeps the smaller value for later
// calls; otherwise that error is reported with advice. With `workers` > 1 the tasks go side by
// side in contiguous runs (run_side_by_side). Results are in task order and equal to those of
// one worker. The first error of any worker is thrown after all have stopped.
std::vector<SegmentationResult> segment_in_batches(const Segmenter& model, const std::vector<ImageTask>& tasks,
                                                   const MethodSettings& settings, BatchSize& size,
                                                   int workers = 1);

// The same over any batch function (`run` segments one batch; `input_size` for messages). With
// several workers, `run` is called from several threads at once.
using BatchRun = std::function<std::vector<SegmentationResult>(const std::vector<ImageTask>&)>;
std::vector<SegmentationResult> run_in_batches(const BatchRun& run, const std::vector<ImageTask>& tasks,
                                               BatchSize& size, int input_size, int workers = 1);

// A batch in two stages (model_stage and postprocess_stage of pipeline.h, or stand-ins).
struct BatchStages {
  BatchRun model;
  std::function<void(const std::vector<ImageTask>&, std::vector<SegmentationResult>&)> postprocess;
};
// model_stage and postprocess_stage on `backbone` (all three arguments must outlive the stages).
BatchStages segment_stages(const Backbone& backbone, const PromptTokenizer& tokenizer, const MethodSettings& settings);

// run_in_batches with one worker, where each batch is post-processed on a thread of its own
// while the model runs the next batch (one post-processing at a time; it uses libtorch's
// threads). Out-of-memory halving applies to the model stage. Results are in task order and
// equal to run_in_batches'; the first error of either stage is thrown once neither runs.
std::vector<SegmentationResult> run_overlapped(const BatchStages& stages, const std::vector<ImageTask>& tasks,
                                               BatchSize& size, int input_size);

// Whether segment_in_batches overlaps post-processing with the model: on a GPU with one
// worker. On the CPU both stages would compete for the same cores.
bool overlaps_postprocessing(const runtime::Placement& placement, int workers);

// The images a front end that works in groups (segment, eval) hands to segment_in_batches at
// once: a batch per worker; four batches when post-processing overlaps the model (on a GPU), so
// that the post-processing of all but the group's last batch overlaps a model pass.
size_t images_per_group(const BatchSize& size, int workers, bool overlapped);
// The same, overlapped as segment_in_batches does on `placement`.
size_t images_per_group(const BatchSize& size, int workers, const runtime::Placement& placement);

}  // namespace pnpovss::segment
