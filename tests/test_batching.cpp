// Batches through the model: several images with different sizes and class lists in one pass
// give what each gives alone (labels equal, maps within the pipeline fixtures' tolerances);
// batch sizes, out-of-memory halving, devices and dtypes.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "pnpovss/check/fixture.h"
#include "pnpovss/cpu/blas_threads.h"
#include "pnpovss/cpu/parallel.h"
#include "pnpovss/cpu/system_memory.h"
#include "pnpovss/crf/densecrf.h"
#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/crop.h"
#include "pnpovss/runtime/placement.h"
#include "pnpovss/segment/batching.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/segment/postprocess.h"
#include "pnpovss/segment/prompt.h"
#include "pnpovss/segment/segmenter.h"
#include "pnpovss/settings.h"

using namespace pnpovss;
using namespace pnpovss::segment;

namespace {

const std::string kData = PNPOVSS_TEST_DATA;
// The pipeline fixtures' float tolerance (tests/data/pipeline/reference.json: every map).
const check::Tolerance kMapTolerance{2e-5, 1e-3};

// The tiny models: BLIP (3 text layers, 4 heads) and BridgeTower (2 cross-modal layers, 4
// heads), each on a 4 x 4 grid.
const std::vector<std::string> kModels = {"blip_itm", "bridgetower_itm"};

struct Fixture {
  Segmenter model;
  const Backbone& backbone = model.backbone();
  const PromptTokenizer* tokenizer = &model.tokenizer();
  std::vector<Image> images;
  std::vector<std::vector<std::string>> classes = {
      {"cat", "remote control", "couch"}, {"cat", "dog"}, {"sofa", "television", "lamp", "window", "potted plant"}};
  MethodSettings settings;

  explicit Fixture(const std::string& name = "blip_itm", const runtime::Placement& placement = {})
      : model(Segmenter::load(kData + "/" + name, PositionResize::SizeBased, placement)),
        settings(preset("paper", model.model_type())) {
    const Image photo = image::decode_image_file(kData + "/images/coco_000000039769.png");
    images.push_back(photo);
    images.push_back(image::center_crop(photo, 200, 150));
    images.push_back(image::decode_image_file(kData + "/images/coco_000000004016.png"));
    fit(settings);
  }
  // The last layer's maps are all zero: only its first text token reaches the ITM head, so the
  // class tokens' gradients vanish. The layer below it has maps for every class.
  void fit(MethodSettings& s) const {
    s.input_size = static_cast<int>(4 * backbone.patch_size());
    s.attention_layer = static_cast<int>(backbone.num_text_layers()) - 2;
    s.attention_head = 2;
  }
  std::vector<ImageTask> tasks() const {
    std::vector<ImageTask> t;
    for (size_t i = 0; i < images.size(); ++i) t.push_back({&images[i], &classes[i]});
    return t;
  }
};

void expect_close(const std::string& what, const torch::Tensor& got, const torch::Tensor& want) {
  const check::TensorCheck c = check::compare_tensors(what, got, want, kMapTolerance);
  EXPECT_TRUE(c.passed) << check::format_check(c);
}

// The margin (best minus second best) per pixel of what `r`'s labels were decided from: the
// Dense CRF's marginals Q when it ran, else the (blurred) channel stack.
std::vector<float> decision_margins(const SegmentationResult& r, const Image& original,
                                    const MethodSettings& settings) {
  const torch::Tensor decided = (r.blurred.defined() ? r.blurred : r.maps.stack).contiguous();
  torch::Tensor values = decided;
  if (uses_crf(settings)) {
    const auto labels = static_cast<int>(decided.size(0));
    const auto pixels = decided.size(1) * decided.size(2);
    const auto unary = crf::unary_from_probabilities(decided.data_ptr<float>(), labels, pixels);
    const auto crf = crf::dense_crf(original.rgb, original.height, original.width, unary, labels, settings.post_crf);
    values = torch::tensor(crf.q).view(decided.sizes());
  }
  const torch::Tensor top = std::get<0>(values.topk(2, 0)).view({2, -1});
  const torch::Tensor margin = (top[0] - top[1]).contiguous();
  return std::vector<float>(margin.data_ptr<float>(), margin.data_ptr<float>() + margin.numel());
}

// Labels equal, except at near-tie pixels, where float rounding in another batch shape may pick
// the other label: a Q margin below 1e-3 after the CRF (the densecrf fixture's rule), or two
// best channels within twice the map tolerance without it (the pipeline fixtures' rule).
void expect_same_labels(const SegmentationResult& batched, const SegmentationResult& alone, const Image& original,
                        const MethodSettings& settings, const std::string& what) {
  ASSERT_EQ(batched.labels.size(), alone.labels.size());
  if (batched.labels == alone.labels) return;
  const std::vector<float> margin = decision_margins(alone, original, settings);
  size_t differ = 0;
  for (size_t i = 0; i < alone.labels.size(); ++i) {
    if (batched.labels[i] == alone.labels[i]) continue;
    ++differ;
    const double bound = uses_crf(settings) ? 1e-3 : 2 * (kMapTolerance.atol + kMapTolerance.rtol);
    EXPECT_LT(margin[i], bound) << what << ": pixel " << i << " changes label at a margin of " << margin[i];
  }
  EXPECT_LE(differ, alone.labels.size() / 1000) << what << ": " << differ << " pixels changed label";
}

void expect_same_result(const SegmentationResult& batched, const SegmentationResult& alone, const Image& original,
                        const MethodSettings& settings, const std::string& what) {
  ASSERT_EQ(batched.dropout.iterations.size(), alone.dropout.iterations.size());
  for (size_t t = 0; t < alone.dropout.iterations.size(); ++t) {
    const auto& a = batched.dropout.iterations[t];
    const auto& b = alone.dropout.iterations[t];
    const std::string it = what + ".iter" + std::to_string(t);
    expect_close(it + ".itm_logits", a.itm_logits, b.itm_logits);
    expect_close(it + ".attn_probs", a.attn_probs, b.attn_probs);
    expect_close(it + ".attn_grad", a.attn_grad, b.attn_grad);
    EXPECT_EQ(a.new_dropped, b.new_dropped) << it;
  }
  expect_close(what + ".final_maps", batched.dropout.final_maps, alone.dropout.final_maps);
  EXPECT_EQ(batched.width, alone.width);
  EXPECT_EQ(batched.height, alone.height);
  expect_same_labels(batched, alone, original, settings, what);
  EXPECT_EQ(batched.channel_names, alone.channel_names) << what;
}

class Batching : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Models, Batching, ::testing::ValuesIn(kModels));

TEST_P(Batching, BatchOfDifferentImagesAndClassListsEqualsOneAtATime) {
  Fixture f(GetParam());
  const auto batched = segment_images(f.backbone, *f.tokenizer, f.tasks(), f.settings);
  ASSERT_EQ(batched.size(), f.images.size());
  for (size_t i = 0; i < f.images.size(); ++i) {
    const auto alone = segment_image(f.backbone, *f.tokenizer, f.images[i], f.classes[i], f.settings);
    expect_same_result(batched[i], alone, f.images[i], f.settings, "image" + std::to_string(i));
  }
  // The prompts really differ in length, so the batch was padded.
  EXPECT_NE(batched[0].prompt.input_ids.size(), batched[1].prompt.input_ids.size());
}

TEST_P(Batching, OfficialPresetBatchEqualsOneAtATime) {
  Fixture f(GetParam());
  f.settings = preset("official", f.model.model_type());
  f.fit(f.settings);
  const auto batched = segment_images(f.backbone, *f.tokenizer, f.tasks(), f.settings);
  for (size_t i = 0; i < f.images.size(); ++i)
    expect_same_result(batched[i], segment_image(f.backbone, *f.tokenizer, f.images[i], f.classes[i], f.settings),
                       f.images[i], f.settings, "official image" + std::to_string(i));
}

TEST_P(Batching, PaddedPromptsGiveEachImageItsOwnAttention) {
  Fixture f(GetParam());
  const int64_t s = f.settings.input_size;
  const torch::Tensor pixels = torch::randn({2, 3, s, s}, torch::TensorOptions().dtype(torch::kFloat32));
  const Prompt short_prompt = build_prompt(*f.tokenizer, {"cat"}, ClassNameStyle::Natural, FirstToken::Enc,
                                           f.backbone.enc_token_id());
  const Prompt long_prompt = build_prompt(*f.tokenizer, {"sofa", "remote control", "potted plant"},
                                          ClassNameStyle::Natural, FirstToken::Enc, f.backbone.enc_token_id());
  const auto batch = f.backbone.attention_and_gradient_batch(pixels, {&short_prompt, &long_prompt}, 1, 0);
  ASSERT_EQ(batch.size(), 2u);
  const Prompt* prompts[] = {&short_prompt, &long_prompt};
  for (int64_t b = 0; b < 2; ++b) {
    const auto alone = f.backbone.attention_and_gradient(pixels.narrow(0, b, 1), prompt_row(prompts[b]->input_ids),
                                                         prompt_row(prompts[b]->attention_mask), 1);
    ASSERT_EQ(batch[b].probs.size(0), static_cast<int64_t>(prompts[b]->input_ids.size()));
    expect_close("probs", batch[b].probs, alone.probs[0]);
    expect_close("grads", batch[b].grads, alone.grads[0]);
    expect_close("logits", batch[b].itm_logits, alone.itm_logits);
  }
}

TEST_P(Batching, BatchErrorsAreClear) {
  Fixture f(GetParam());
  const Prompt p = build_prompt(*f.tokenizer, {"cat"}, ClassNameStyle::Natural, FirstToken::Enc, 0);
  const int64_t s = f.settings.input_size;
  EXPECT_THROW(f.backbone.attention_and_gradient_batch(torch::zeros({2, 3, s, s}), {&p}, 0, 0), Error);
  EXPECT_THROW(f.backbone.attention_and_gradient_batch(torch::zeros({1, 3, s, s}), {&p}, 0, 99), Error);
  const Image empty;
  const std::vector<std::string> cls = {"cat"};
  EXPECT_THROW(segment_images(f.backbone, *f.tokenizer, {{&empty, &cls}}, f.settings), Error);
  EXPECT_TRUE(segment_images(f.backbone, *f.tokenizer, {}, f.settings).empty());
}

TEST(BatchSize, AutoIsOneOnTheCpuAndScaledWithTheInputOnCuda) {
  const runtime::Placement cpu;
  const runtime::Placement cuda{torch::Device(torch::kCUDA, 0), torch::kBFloat16};
  EXPECT_EQ(parse_batch_size("auto", cpu, 336).value, 1);
  EXPECT_TRUE(parse_batch_size("auto", cpu, 336).automatic);
  EXPECT_EQ(parse_batch_size("auto", cuda, 336).value, 32);
  EXPECT_EQ(parse_batch_size("auto", cuda, 768).value, 6);  // 32 * (336/768)^2 = 6.1
  EXPECT_EQ(parse_batch_size("auto", cuda, 4000).value, 1);
  const BatchSize eight = parse_batch_size("8", cpu, 336);
  EXPECT_EQ(eight.value, 8);
  EXPECT_FALSE(eight.automatic);
  for (const char* bad : {"0", "-1", "", "abc", "2.5", "99999999"}) EXPECT_THROW(parse_batch_size(bad, cpu, 336), Error) << bad;
}

// A batch function that runs out of memory above `limit` images and records the chunks.
struct FakeModel {
  size_t limit;
  std::vector<size_t> chunks;
  std::vector<SegmentationResult> operator()(const std::vector<ImageTask>& tasks) {
    if (tasks.size() > limit) throw std::runtime_error("CUDA out of memory. Tried to allocate 2.00 GiB");
    chunks.push_back(tasks.size());
    std::vector<SegmentationResult> out(tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i) out[i].width = tasks[i].image->width;
    return out;
  }
};

std::vector<Image> numbered_images(int n) {
  std::vector<Image> images(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) images[static_cast<size_t>(i)].width = i + 1;
  return images;
}

TEST(BatchSize, AutoHalvesOnOutOfMemoryAndKeepsTheSmallerSize) {
  const auto images = numbered_images(10);
  std::vector<ImageTask> tasks;
  for (const auto& im : images) tasks.push_back({&im, nullptr});
  FakeModel model{3, {}};
  BatchSize size{8, true};
  const auto results = run_in_batches(std::ref(model), tasks, size, 336);
  ASSERT_EQ(results.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(results[static_cast<size_t>(i)].width, i + 1);  // order kept
  EXPECT_EQ(size.value, 2);
  for (size_t c : model.chunks) EXPECT_LE(c, 3u);
}

TEST(BatchSize, FixedSizeReportsOutOfMemoryWithAdvice) {
  const auto images = numbered_images(4);
  std::vector<ImageTask> tasks;
  for (const auto& im : images) tasks.push_back({&im, nullptr});
  FakeModel model{1, {}};
  BatchSize size{4, false};
  try {
    run_in_batches(std::ref(model), tasks, size, 768);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::strstr(e.what(), "smaller batch size"), nullptr) << e.what();
    EXPECT_NE(std::strstr(e.what(), "768"), nullptr) << e.what();
  }
  // Other errors pass through unchanged.
  BatchSize automatic{4, true};
  EXPECT_THROW(run_in_batches([](const std::vector<ImageTask>&) -> std::vector<SegmentationResult> {
                 throw Error("bad image");
               },
                              tasks, automatic, 336),
               Error);
}

// ---- post-processing overlapped with the next batch's model pass ----------------------------------

TEST(Overlap, TwoStagesGiveWhatSegmentImagesGives) {
  Fixture f;
  std::vector<ImageTask> tasks = f.tasks();
  tasks.push_back(tasks[0]);
  tasks.push_back(tasks[2]);
  BatchSize overlapped_size{2, false}, plain_size{2, false};
  const auto overlapped = run_overlapped(segment_stages(f.backbone, *f.tokenizer, f.settings), tasks,
                                         overlapped_size, f.settings.input_size);
  const auto plain = run_in_batches(
      [&](const std::vector<ImageTask>& chunk) { return segment_images(f.backbone, *f.tokenizer, chunk, f.settings); },
      tasks, plain_size, f.settings.input_size);
  ASSERT_EQ(overlapped.size(), tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    // The same batches through the same code: bit for bit.
    EXPECT_EQ(overlapped[i].labels, plain[i].labels) << i;
    EXPECT_TRUE(torch::equal(overlapped[i].maps.stack, plain[i].maps.stack)) << i;
    EXPECT_EQ(overlapped[i].channel_names, plain[i].channel_names) << i;
    EXPECT_EQ(overlapped[i].width, tasks[i].image->width) << i;
  }
}

// Stand-in stages over numbered images (width = number). With `await_overlap`, the model stage
// of batch k > 0 waits up to 10 s for the post-processing of batch k - 1 to start, which only
// happens when the two overlap. The post-processing marks each result and counts how many run
// at once.
struct OverlapProbe {
  std::mutex lock;
  std::condition_variable changed;
  int batches_modelled = 0, postprocess_started = 0, running = 0, most_at_once = 0;
  bool await_overlap = false, waited_in_vain = false;
  size_t fail_postprocess_of = SIZE_MAX, oom_above = SIZE_MAX;

  std::vector<SegmentationResult> model(const std::vector<ImageTask>& chunk) {
    if (chunk.size() > oom_above) throw std::runtime_error("CUDA out of memory. Tried to allocate 1.00 GiB");
    std::unique_lock<std::mutex> hold(lock);
    const int k = batches_modelled++;
    const auto previous_started = [&] { return postprocess_started >= k; };
    if (await_overlap && k > 0 && !changed.wait_for(hold, std::chrono::seconds(10), previous_started))
      waited_in_vain = true;
    std::vector<SegmentationResult> out(chunk.size());
    for (size_t i = 0; i < chunk.size(); ++i) out[i].width = chunk[i].image->width;
    return out;
  }
  void postprocess(const std::vector<ImageTask>& chunk, std::vector<SegmentationResult>& results) {
    {
      const std::lock_guard<std::mutex> hold(lock);
      ++postprocess_started;
      most_at_once = std::max(most_at_once, ++running);
    }
    changed.notify_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (auto& r : results) r.height = 1;  // post-processed
    const std::lock_guard<std::mutex> hold(lock);
    --running;
    if (static_cast<size_t>(chunk.front().image->width) == fail_postprocess_of) throw Error("bad post-processing");
  }
  BatchStages stages() {
    return {[this](const std::vector<ImageTask>& c) { return model(c); },
            [this](const std::vector<ImageTask>& c, std::vector<SegmentationResult>& r) { postprocess(c, r); }};
  }
};

TEST(Overlap, PostprocessingRunsWhileTheModelRunsTheNextBatch) {
  const auto images = numbered_images(7);
  std::vector<ImageTask> tasks;
  for (const auto& im : images) tasks.push_back({&im, nullptr});
  OverlapProbe probe;
  probe.await_overlap = true;
  BatchSize size{2, false};
  const auto results = run_overlapped(probe.stages(), tasks, size, 336);
  ASSERT_EQ(results.size(), 7u);
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(results[static_cast<size_t>(i)].width, i + 1);  // task order
    EXPECT_EQ(results[static_cast<size_t>(i)].height, 1);     // every batch post-processed
  }
  EXPECT_EQ(probe.batches_modelled, 4);
  EXPECT_FALSE(probe.waited_in_vain) << "a model pass never saw the previous batch's post-processing start";
  EXPECT_EQ(probe.most_at_once, 1);
}

TEST(Overlap, ErrorsOfEitherStageArriveAndOutOfMemoryHalvesTheBatch) {
  const auto images = numbered_images(6);
  std::vector<ImageTask> tasks;
  for (const auto& im : images) tasks.push_back({&im, nullptr});
  {
    OverlapProbe probe;
    probe.fail_postprocess_of = 3;  // the second batch of two
    BatchSize size{2, false};
    EXPECT_THROW(run_overlapped(probe.stages(), tasks, size, 336), Error);
  }
  {
    OverlapProbe probe;
    probe.oom_above = 1;
    BatchSize fixed{2, false};
    EXPECT_THROW(run_overlapped(probe.stages(), tasks, fixed, 336), Error);  // with advice, as run_in_batches
  }
  OverlapProbe probe;
  probe.oom_above = 2;
  BatchSize automatic{4, true};
  const auto results = run_overlapped(probe.stages(), tasks, automatic, 336);
  ASSERT_EQ(results.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(results[static_cast<size_t>(i)].width, i + 1);
  EXPECT_EQ(automatic.value, 2);
}

TEST(Overlap, OnlyOnAGpuWithOneWorkerWhichThenTakesFourBatchesPerGroup) {
  const runtime::Placement cpu;
  const runtime::Placement cuda{torch::Device(torch::kCUDA, 0), torch::kBFloat16};
  EXPECT_FALSE(overlaps_postprocessing(cpu, 1));
  EXPECT_TRUE(overlaps_postprocessing(cuda, 1));
  EXPECT_FALSE(overlaps_postprocessing(cuda, 2));
  EXPECT_EQ(images_per_group({3, true}, 2, cpu), 6u);
  EXPECT_EQ(images_per_group({1, true}, 1, cpu), 1u);
  EXPECT_EQ(images_per_group({32, true}, 1, cuda), 128u);
  EXPECT_EQ(images_per_group({3, true}, 2, cuda), 6u);
}

TEST(Workers, SideBySideEqualsOneAtATime) {
  Fixture f;
  // Five tasks: with two or three workers some run side by side and the rest on all cores.
  std::vector<ImageTask> tasks = f.tasks();
  tasks.push_back(tasks[1]);
  tasks.push_back(tasks[0]);
  std::vector<SegmentationResult> alone;
  for (const auto& t : tasks) alone.push_back(segment_image(f.backbone, *f.tokenizer, *t.image, *t.classes, f.settings));
  for (int workers : {2, 3}) {
    BatchSize size{1, true};
    const auto results = segment_in_batches(f.model, tasks, f.settings, size, workers);
    ASSERT_EQ(results.size(), tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i)
      expect_same_result(results[i], alone[i], *tasks[i].image, f.settings,
                         std::to_string(workers) + " workers, image " + std::to_string(i));
  }
}

// A batch function that records which thread ran which images, and what the BLAS and the
// project's kernels were allowed while it ran.
struct RecordingModel {
  std::mutex lock;
  std::map<std::thread::id, std::vector<int>> widths_by_thread;
  std::set<int> blas_threads_seen, kernel_threads_seen;
  std::vector<SegmentationResult> operator()(const std::vector<ImageTask>& tasks) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the workers overlap
    const std::lock_guard<std::mutex> hold(lock);
    std::vector<SegmentationResult> out(tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i) {
      if (tasks[i].image->width < 0) throw Error("bad image");
      out[i].width = tasks[i].image->width;
      widths_by_thread[std::this_thread::get_id()].push_back(tasks[i].image->width);
    }
    blas_threads_seen.insert(cpu::blas_threads());
    kernel_threads_seen.insert(cpu::resolve_threads(0));
    return out;
  }
};

TEST(Workers, ShareOutContiguousRunsWithOneBlasThreadEachAndKeepTheOrder) {
  const auto images = numbered_images(7);
  std::vector<ImageTask> tasks;
  for (const auto& im : images) tasks.push_back({&im, nullptr});
  RecordingModel model;
  const int blas_before = cpu::blas_threads();
  BatchSize size{2, false};
  const auto results = run_in_batches(std::ref(model), tasks, size, 336, 3);
  ASSERT_EQ(results.size(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(results[static_cast<size_t>(i)].width, i + 1);
  // 2 images per worker on 3 threads (the calling thread is the first), then the seventh alone.
  std::set<std::vector<int>> runs;
  for (const auto& [thread, widths] : model.widths_by_thread) runs.insert(widths);
  EXPECT_EQ(runs, (std::set<std::vector<int>>{{1, 2, 7}, {3, 4}, {5, 6}}));
  EXPECT_EQ(model.widths_by_thread.at(std::this_thread::get_id()), (std::vector<int>{1, 2, 7}));
  EXPECT_EQ(cpu::blas_threads(), blas_before);  // restored
  if (blas_before > 0) {
    EXPECT_TRUE(model.blas_threads_seen.count(1));
  }
  EXPECT_TRUE(model.kernel_threads_seen.count(std::max(1, cpu::resolve_threads(0) / 3)));
  EXPECT_TRUE(model.kernel_threads_seen.count(cpu::resolve_threads(0)));  // the leftover image
}

TEST(Workers, AWorkersErrorStopsTheRunAndAutoIsOnePerCoreOnTheCpu) {
  auto images = numbered_images(4);
  images[3].width = -1;
  std::vector<ImageTask> tasks;
  for (const auto& im : images) tasks.push_back({&im, nullptr});
  RecordingModel model;
  BatchSize size{1, false};
  EXPECT_THROW(run_in_batches(std::ref(model), tasks, size, 336, 2), Error);
  EXPECT_THROW(run_in_batches(std::ref(model), tasks, size, 336, 0), Error);

  const runtime::Placement cpu;
  const runtime::Placement cuda{torch::Device(torch::kCUDA, 0), torch::kFloat32};
  const int cores = cpu::resolve_threads(0);
  const WorkerLoad load{336, 5};
  const int automatic = parse_workers("auto", cpu, load);
  if (cpu::blas_threads() == 0) {
    EXPECT_EQ(automatic, 1);  // another BLAS: its threads cannot be made one per worker
  } else if (cpu::available_memory_bytes() >= 2 * static_cast<uint64_t>(cores) * worker_bytes(load)) {
    EXPECT_EQ(automatic, cores);  // OpenBLAS and the memory for them: one per core
  } else {
    EXPECT_GE(automatic, 1);
    EXPECT_LE(automatic, std::max(1, cores - 1));
  }
  EXPECT_EQ(parse_workers("auto", cuda, load), 1);
  EXPECT_EQ(parse_workers("3", cpu, load), 3);
  for (const char* bad : {"0", "-2", "", "two", "1.5", "123456"})
    EXPECT_THROW(parse_workers(bad, cpu, load), Error) << bad;
}

TEST(Workers, AutoIsOnePerCoreWhileHalfTheFreeMemoryHoldsThem) {
  const uint64_t gib = uint64_t{1} << 30;
  EXPECT_EQ(auto_workers(2, {336, 5}, 24 * gib), 2);
  EXPECT_EQ(auto_workers(64, {768, 1}, 0), 64);       // memory unknown: no limit
  EXPECT_EQ(auto_workers(64, {768, 1}, 4 * gib), 6);  // 2 GiB / 0.32 GiB
  EXPECT_EQ(auto_workers(64, {1536, 1}, 4 * gib), 1);  // 1.2 GiB each: one
  EXPECT_EQ(auto_workers(16, {336, 3}, 4 * gib), 16);  // small inputs: the cores decide
  EXPECT_EQ(auto_workers(0, {336, 3}, 4 * gib), 1);
  // ADE-150's classes: 2.4 GiB each (2.3 GiB measured for the post-processing of one image).
  EXPECT_EQ(auto_workers(2, {336, 150}, 24 * gib), 2);
  EXPECT_EQ(auto_workers(2, {336, 150}, 8 * gib), 1);
  EXPECT_NEAR(static_cast<double>(worker_bytes({336, 150})) / gib, 2.40, 0.01);
  EXPECT_GT(cpu::available_memory_bytes(), 0u);  // Linux says
}

TEST(Placement, ParsesDevicesAndTypesAndRefusesWhatCannotRun) {
  EXPECT_TRUE(runtime::parse_device("cpu").is_cpu());
  EXPECT_EQ(runtime::parse_device("cuda").index(), 0);
  EXPECT_EQ(runtime::parse_device("cuda:3").index(), 3);
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "CUDA", "cuda:-1", ""})
    EXPECT_THROW(runtime::parse_device(bad), Error) << bad;
  EXPECT_EQ(runtime::parse_dtype("bf16"), torch::kBFloat16);
  EXPECT_EQ(runtime::parse_dtype("float16"), torch::kFloat16);
  EXPECT_THROW(runtime::parse_dtype("int8"), Error);
  EXPECT_THROW(runtime::parse_placement("cpu", "fp16"), Error);
  EXPECT_NO_THROW(runtime::parse_placement("cpu", "bf16"));
  if (!torch::cuda::is_available()) {
    try {
      runtime::parse_placement("cuda", "fp32");
      FAIL() << "expected an error without a GPU";
    } catch (const Error& e) {
      EXPECT_NE(std::strstr(e.what(), "use the cpu device"), nullptr) << e.what();
    }
  }
}

// bf16 keeps 8 bits of mantissa, and the tiny random model amplifies rounding, so only gross
// errors (a wrong mask, garbage weights, a type left behind) are caught here; the full-size
// comparison is bench_throughput --compare on a GPU.
class Bf16 : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Models, Bf16, ::testing::ValuesIn(kModels));

TEST_P(Bf16, OnTheCpuRunsAndStaysCloseToFp32) {
  Fixture f(GetParam());
  const Fixture bf16(GetParam(), runtime::Placement{torch::kCPU, torch::kBFloat16});
  const auto exact = segment_image(f.backbone, *f.tokenizer, f.images[0], f.classes[0], f.settings);
  const auto reduced = segment_image(bf16.backbone, *f.tokenizer, f.images[0], f.classes[0], f.settings);
  ASSERT_EQ(exact.labels.size(), reduced.labels.size());
  const auto& a = exact.dropout.iterations[0];
  const auto& b = reduced.dropout.iterations[0];
  EXPECT_EQ(b.attn_probs.scalar_type(), torch::kFloat32);  // results come back as fp32
  EXPECT_LT((a.attn_probs - b.attn_probs).abs().max().item<double>(), 0.1);
  EXPECT_LT((a.attn_grad - b.attn_grad).abs().max().item<double>(), 0.1);
  EXPECT_TRUE(torch::isfinite(reduced.dropout.final_maps).all().item<bool>());
  const torch::Tensor both = torch::stack({exact.dropout.final_maps.flatten(), reduced.dropout.final_maps.flatten()});
  EXPECT_GT(torch::corrcoef(both)[0][1].item<double>(), 0.8);
}

}  // namespace
