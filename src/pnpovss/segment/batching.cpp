#include "pnpovss/segment/batching.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <future>
#include <mutex>

#include "pnpovss/cpu/blas_threads.h"
#include "pnpovss/cpu/parallel.h"
#include "pnpovss/cpu/side_by_side.h"
#include "pnpovss/cpu/system_memory.h"
#include "pnpovss/error.h"

namespace pnpovss::segment {
namespace {

// The value of a count setting other than auto: a whole number from 1, in at most `max_digits`.
int count_option(const std::string& text, size_t max_digits, const char* setting) {
  const bool digits = !text.empty() && text.size() <= max_digits &&
                      std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  const int value = digits ? std::stoi(text) : 0;
  if (value < 1) throw SettingError(setting, "'" + text + "'", "must be auto or a whole number of images from 1");
  return value;
}

}  // namespace

BatchSize parse_batch_size(const std::string& text, const runtime::Placement& placement, int input_size) {
  if (text == "auto") {
    if (!placement.device.is_cuda()) return {1, true};
    const double scale = 336.0 / std::max(input_size, 1);
    return {std::max(1, static_cast<int>(32.0 * scale * scale)), true};
  }
  return {count_option(text, 6, "batch_size"), false};
}

int parse_workers(const std::string& text, const runtime::Placement& placement, const WorkerLoad& load) {
  if (text == "auto") {
    if (!placement.device.is_cpu() || cpu::blas_threads() == 0) return 1;
    return auto_workers(cpu::resolve_threads(0), load, cpu::available_memory_bytes());
  }
  return count_option(text, 4, "workers");
}

uint64_t worker_bytes(const WorkerLoad& load) {
  const double side = static_cast<double>(std::max(load.input_size, 1)) / 768.0;
  const double model = 0.3 * (1 << 30) * side * side;
  const double post = 16.0 * (1 << 20) * static_cast<double>(std::max<size_t>(load.classes, 1));
  return static_cast<uint64_t>(model + post);
}

int auto_workers(int hardware_threads, const WorkerLoad& load, uint64_t available_bytes) {
  const int workers = std::max(1, hardware_threads);
  if (available_bytes == 0) return workers;
  const double fit = 0.5 * static_cast<double>(available_bytes) / static_cast<double>(worker_bytes(load));
  return std::max(1, std::min(workers, static_cast<int>(std::min(fit, 1e6))));
}

bool is_out_of_memory(const std::exception& e) {
  const char* what = e.what();
  return std::strstr(what, "out of memory") != nullptr || std::strstr(what, "OutOfMemory") != nullptr;
}

namespace {

std::vector<SegmentationResult> run_chunk(const BatchRun& run, const std::vector<ImageTask>& chunk, BatchSize& size,
                                          int input_size) {
  try {
    return run(chunk);
  } catch (const std::exception& e) {
    if (!is_out_of_memory(e)) throw;
    if (!size.automatic || chunk.size() == 1)
      throw Error("out of GPU memory with " + std::to_string(chunk.size()) + " image(s) per batch at " +
                  std::to_string(input_size) +
                  " px: give a smaller batch size (or auto), a smaller input size, or the bf16 dtype");
  }
  size.value = std::max(1, static_cast<int>(chunk.size()) / 2);
  const auto half = static_cast<std::ptrdiff_t>(size.value);
  std::vector<SegmentationResult> out =
      run_chunk(run, std::vector<ImageTask>(chunk.begin(), chunk.begin() + half), size, input_size);
  for (auto& r : run_chunk(run, std::vector<ImageTask>(chunk.begin() + half, chunk.end()), size, input_size))
    out.push_back(std::move(r));
  return out;
}

std::vector<ImageTask> slice(const std::vector<ImageTask>& tasks, size_t begin, size_t end) {
  return {tasks.begin() + static_cast<std::ptrdiff_t>(begin), tasks.begin() + static_cast<std::ptrdiff_t>(end)};
}

// `run` on consecutive batches of at most size.value tasks (which may shrink on the way), in
// order, handing each batch and its results to `take`.
void for_each_batch(const BatchRun& run, const std::vector<ImageTask>& tasks, BatchSize& size, int input_size,
                    const std::function<void(std::vector<ImageTask>, std::vector<SegmentationResult>)>& take) {
  size_t next = 0;
  while (next < tasks.size()) {
    const size_t count = std::min(tasks.size() - next, static_cast<size_t>(std::max(size.value, 1)));
    std::vector<ImageTask> chunk = slice(tasks, next, next + count);
    std::vector<SegmentationResult> results = run_chunk(run, chunk, size, input_size);
    take(std::move(chunk), std::move(results));
    next += count;
  }
}

std::vector<SegmentationResult> run_serially(const BatchRun& run, const std::vector<ImageTask>& tasks,
                                             BatchSize& size, int input_size) {
  std::vector<SegmentationResult> out;
  for_each_batch(run, tasks, size, input_size, [&](std::vector<ImageTask>, std::vector<SegmentationResult> results) {
    for (auto& r : results) out.push_back(std::move(r));
  });
  return out;
}

}  // namespace

std::vector<SegmentationResult> run_in_batches(const BatchRun& run, const std::vector<ImageTask>& tasks,
                                               BatchSize& size, int input_size, int workers) {
  std::vector<SegmentationResult> out(tasks.size());
  std::mutex lock;  // each run shrinks its own copy of the batch size; the call keeps the least
  auto copy_of_size = [&] {
    const std::lock_guard<std::mutex> hold(lock);
    return size;
  };
  cpu::run_side_by_side(tasks.size(), workers, [&](size_t begin, size_t end) {
    BatchSize own = copy_of_size();
    std::vector<SegmentationResult> part = run_serially(run, slice(tasks, begin, end), own, input_size);
    std::move(part.begin(), part.end(), out.begin() + static_cast<std::ptrdiff_t>(begin));
    const std::lock_guard<std::mutex> hold(lock);
    size.value = std::min(size.value, own.value);
  });
  return out;
}

std::vector<SegmentationResult> run_overlapped(const BatchStages& stages, const std::vector<ImageTask>& tasks,
                                               BatchSize& size, int input_size) {
  std::vector<SegmentationResult> out;
  out.reserve(tasks.size());
  // Declared after `out`, so that leaving early (an error of the model stage) first waits for
  // the post-processing still running: a future of std::async blocks when destroyed.
  std::future<std::vector<SegmentationResult>> finishing;
  auto collect = [&] {
    for (auto& r : finishing.get()) out.push_back(std::move(r));
  };
  for_each_batch(stages.model, tasks, size, input_size,
                 [&](std::vector<ImageTask> chunk, std::vector<SegmentationResult> modelled) {
                   if (finishing.valid()) collect();
                   finishing = std::async(std::launch::async,
                                          [&stages, chunk = std::move(chunk), r = std::move(modelled)]() mutable {
                                            stages.postprocess(chunk, r);
                                            return std::move(r);
                                          });
                 });
  if (finishing.valid()) collect();
  return out;
}

BatchStages segment_stages(const Backbone& backbone, const PromptTokenizer& tokenizer,
                           const MethodSettings& settings) {
  return {[&backbone, &tokenizer, &settings](const std::vector<ImageTask>& chunk) {
            return model_stage(backbone, tokenizer, chunk, settings);
          },
          [&settings](const std::vector<ImageTask>& chunk, std::vector<SegmentationResult>& results) {
            postprocess_stage(chunk, results, settings);
          }};
}

bool overlaps_postprocessing(const runtime::Placement& placement, int workers) {
  return workers == 1 && !placement.device.is_cpu();
}

size_t images_per_group(const BatchSize& size, int workers, bool overlapped) {
  const auto batch = static_cast<size_t>(std::max(size.value, 1));
  return overlapped ? 4 * batch : batch * static_cast<size_t>(std::max(workers, 1));
}

size_t images_per_group(const BatchSize& size, int workers, const runtime::Placement& placement) {
  return images_per_group(size, workers, overlaps_postprocessing(placement, workers));
}

std::vector<SegmentationResult> segment_in_batches(const Segmenter& model, const std::vector<ImageTask>& tasks,
                                                   const MethodSettings& settings, BatchSize& size, int workers) {
  if (overlaps_postprocessing(model.placement(), workers))
    return run_overlapped(segment_stages(model.backbone(), model.tokenizer(), settings), tasks, size,
                          settings.input_size);
  return run_in_batches([&](const std::vector<ImageTask>& chunk) { return model.segment_batch(chunk, settings); },
                        tasks, size, settings.input_size, workers);
}

}  // namespace pnpovss::segment
