// Helpers shared by the model benchmarks: a random-weight checkpoint with a real model's
// shapes, thread setup, timing and peak memory.
#pragma once

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "pnpovss/cpu/blas_threads.h"
#include "pnpovss/error.h"
#include "pnpovss/eval/class_names.h"
#include "pnpovss/models/blip_itm.h"
#include "pnpovss/models/random_checkpoint.h"

namespace bench {

// Runs a benchmark's body: an error (a bad option value, an unreadable file, settings the model
// refuses) becomes one "error: ..." line and exit status 1 instead of an abort.
template <typename Body>
int guarded_main(Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

// The prompt classes of a benchmark as eval uses them (COCO-Object: its 80 things). Throws
// pnpovss::Error naming the known ones.
inline std::vector<std::string> dataset_classes(const std::string& name) {
  namespace eval = pnpovss::eval;
  if (name == "voc20") return eval::voc20_classes();
  if (name == "context59") return eval::context59_classes();
  if (name == "coco_object") return eval::coco_thing_classes();
  if (name == "coco_stuff171") return eval::coco_stuff171_classes();
  if (name == "ade150") return eval::ade150_classes();
  throw pnpovss::Error("unknown dataset " + name + " (voc20, context59, coco_object, coco_stuff171, ade150)");
}

inline std::string default_manifest() {
  return std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/manifests/Salesforce__blip-itm-large-flickr.json";
}

inline std::string default_cache() {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/pnpovss-bench-blip";
}

// libtorch threads (0: one). Matrix products use OpenBLAS's own threads, one per CPU; a
// second pool competing with them on a small machine slows the model down (see main.cpp).
inline void set_threads(int threads) { at::set_num_threads(threads > 0 ? threads : 1); }

// Writes the random checkpoint in a child process, so that generating 1.7 GiB of weights
// does not count in this process's peak memory. Reuses an existing one.
inline void ensure_checkpoint(const pnpovss::models::BlipConfig& config, const std::string& dir) {
  const pid_t pid = fork();
  if (pid == 0) {
    pnpovss::models::write_random_blip_checkpoint(config, dir, 1234);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "could not write the random checkpoint to %s\n", dir.c_str());
    std::exit(1);
  }
}

struct BenchModel {
  std::string checkpoint;  // the real checkpoint whose shapes the random weights take
  pnpovss::models::BlipItm model;
};

// The random-weight model of `manifest_path` (written once to `cache`, then memory-mapped),
// with the thread count set (0: the CPUs available).
inline BenchModel prepare_model(const std::string& manifest_path, const std::string& cache, int threads) {
  pnpovss::cpu::sleep_idle_blas_threads();  // as the command line does
  const auto manifest = pnpovss::models::read_manifest(manifest_path);
  const auto config = pnpovss::models::BlipConfig::from_json(manifest.config, manifest_path);
  ensure_checkpoint(config, cache);
  set_threads(threads);
  return {manifest.checkpoint, pnpovss::models::BlipItm::load(cache)};
}

// Multiply-adds x 2 of one vision-encoder pass over `tokens` tokens: the four linear layers and
// the two attention products of every layer.
inline double vision_flops(const pnpovss::models::BlipVisionConfig& v, int64_t tokens) {
  const double D = static_cast<double>(v.hidden_size), N = static_cast<double>(tokens);
  const double M = static_cast<double>(v.intermediate_size);
  const double per_layer = 2 * N * D * 3 * D + 2 * N * N * D * 2 + 2 * N * D * D + 2 * 2 * N * D * M;
  return per_layer * static_cast<double>(v.num_hidden_layers);
}

// Multiply-adds x 2 of one text-encoder forward pass over `tokens` text tokens attending to
// `image_tokens` image tokens (self-attention, cross-attention with the image's keys and values
// projected in every layer, MLP). The backward pass is not counted: a lower bound of the work.
inline double text_forward_flops(const pnpovss::models::BlipConfig& c, int64_t tokens, int64_t image_tokens) {
  const double H = static_cast<double>(c.text.hidden_size), T = static_cast<double>(tokens);
  const double N = static_cast<double>(image_tokens), E = static_cast<double>(c.vision.hidden_size);
  const double M = static_cast<double>(c.text.intermediate_size);
  const double self = 2 * T * H * H * 4 + 4 * T * T * H;
  const double cross = 2 * T * H * H * 2 + 2 * N * E * H * 2 + 4 * T * N * H;
  const double mlp = 2 * 2 * T * H * M;
  return (self + cross + mlp) * static_cast<double>(c.text.num_hidden_layers);
}

// The BLAS's rate on an [m, k] x [k, n] product into a kept output, in FLOP/s (the least time
// of `runs` after a warm-up).
inline double gemm_rate(int64_t m, int64_t k, int64_t n, int runs = 3) {
  const auto a = torch::randn({m, k}), b = torch::randn({k, n});
  auto out = torch::empty({m, n});
  double best = 1e30;
  for (int i = 0; i <= runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    at::mm_out(out, a, b);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i > 0) best = std::min(best, s);
  }
  return 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n) / best;
}

inline double gemm_rate_2048() { return gemm_rate(2048, 2048, 2048); }

// Reads "--key value" pairs: `set(key, value)` returns false for a key it does not know, which
// ends the program with status 2, as does a key without a value.
template <typename F>
void parse_options(int argc, char** argv, F&& set) {
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "option %s has no value\n", argv[i]);
      std::exit(2);
    }
    if (!set(std::string(argv[i]), std::string(argv[i + 1]))) {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      std::exit(2);
    }
  }
}

// "336,768" -> {336, 768} (empty items skipped).
inline std::vector<int64_t> parse_int_list(const std::string& text) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    if (comma > start) out.push_back(std::stoll(text.substr(start, comma - start)));
    start = comma + 1;
  }
  return out;
}

inline double peak_rss_gib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Timing {
  double min = 0, median = 0;
};

// The least and the median of `seconds` (the mean of the middle two for an even count); zeros
// when empty.
inline Timing summarize(std::vector<double> seconds) {
  if (seconds.empty()) return {};
  std::sort(seconds.begin(), seconds.end());
  const size_t n = seconds.size();
  return {seconds.front(), n % 2 ? seconds[n / 2] : 0.5 * (seconds[n / 2 - 1] + seconds[n / 2])};
}

// One warm-up call, then `runs` timed calls.
template <typename F>
Timing time_runs(int runs, F&& f) {
  f();
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    auto start = std::chrono::steady_clock::now();
    f();
    t.push_back(seconds_since(start));
  }
  return summarize(std::move(t));
}

}  // namespace bench
