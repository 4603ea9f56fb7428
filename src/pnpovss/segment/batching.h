// Batch sizes: what `auto` means on each device, and running a list of images in batches that
// shrink when the GPU runs out of memory.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "pnpovss/models/placement.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/segment/segmenter.h"

namespace pnpovss::segment {

struct BatchSize {
  int value = 1;
  bool automatic = true;  // halved on out-of-memory instead of failing
};

// "auto" or a positive count; throws pnpovss::Error naming --batch-size. `auto` is 1 on the CPU
// (so that one image's result never depends on its neighbours' rounding; batches of 3-4 save
// 7-12% per image there at 336 px) and on CUDA 32 images at 336 px, scaled
// by (336 / input_size)^2, at least 1; out of memory then halves it.
BatchSize parse_batch_size(const std::string& text, const models::Placement& placement, int input_size);

// True for the out-of-memory errors of libtorch's CUDA allocator (1.13 and 2.x).
bool is_out_of_memory(const std::exception& e);

// Segments `tasks` in batches of at most `size.value`. With size.automatic, a batch that runs
// out of GPU memory is retried in halves and size.value keeps the smaller value for later
// calls; otherwise that error is reported with advice. Results are in task order.
std::vector<SegmentationResult> segment_in_batches(const Segmenter& model, const std::vector<ImageTask>& tasks,
                                                   const MethodSettings& settings, BatchSize& size);

// The same over any batch function (`run` segments one batch; `input_size` for messages).
using BatchRun = std::function<std::vector<SegmentationResult>(const std::vector<ImageTask>&)>;
std::vector<SegmentationResult> run_in_batches(const BatchRun& run, const std::vector<ImageTask>& tasks,
                                               BatchSize& size, int input_size);

}  // namespace pnpovss::segment
