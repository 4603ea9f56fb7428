// BridgeTower ITM runtime benchmark on a random-weight model with a real checkpoint's shapes.
//
//   bench_bridgetower [--manifest tests/data/manifests/BridgeTower__bridgetower-large-itm-mlm-itc.json]
//                     [--cache DIR] [--runs N] [--tokens T] [--layer L] [--size S] [--threads N]
//                     [--device cpu|cuda[:N]] [--dtype fp32|bf16|fp16]
//
// Prints, for the checkpoint's own input size (294 for bridgetower-large, the size its position
// table was trained for) and for --size when given: the whole forward pass without gradients
// (ITM logits), the forward pass plus the backward pass from the match logit to the cross-modal
// text layer L (1-based; what one GradCAM pass of the method costs), and peak resident memory.
// Weights are written once to a safetensors file in the cache folder and memory-mapped (then
// copied to the device and type when those are not cpu/fp32). Each timed call ends with the
// results copied to the CPU, so GPU work is waited for.
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "bench_util.h"
#include "pnpovss/cpu/blas_threads.h"
#include "pnpovss/models/bridgetower_itm.h"
#include "pnpovss/models/random_checkpoint.h"
#include "pnpovss/runtime/placement.h"

using namespace pnpovss;
using bench::time_runs;

namespace {

struct Args {
  std::string manifest =
      std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/manifests/BridgeTower__bridgetower-large-itm-mlm-itc.json";
  std::string cache = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/pnpovss-bench-bridgetower";
  int runs = 1;
  int tokens = 60;
  int layer = 2;
  int size = 0;     // an extra input size; 0: the checkpoint's only
  int threads = 0;  // libtorch threads; 0: one (see bench_util.h)
  std::string device = "cpu", dtype = "fp32";
};

Args parse(int argc, char** argv) {
  Args a;
  bench::parse_options(argc, argv, [&](const std::string& k, const std::string& v) {
    if (k == "--manifest") a.manifest = v;
    else if (k == "--cache") a.cache = v;
    else if (k == "--runs") a.runs = std::stoi(v);
    else if (k == "--tokens") a.tokens = std::stoi(v);
    else if (k == "--layer") a.layer = std::stoi(v);
    else if (k == "--size") a.size = std::stoi(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--device") a.device = v;
    else if (k == "--dtype") a.dtype = v;
    else return false;
    return true;
  });
  return a;
}

// Writes the random checkpoint in a child process, so that generating the weights does not
// count in this process's peak memory. Reuses an existing one.
void ensure_checkpoint(const models::BridgeTowerConfig& config, const std::string& dir) {
  const pid_t pid = fork();
  if (pid == 0) {
    models::write_random_bridgetower_checkpoint(config, dir, 1234);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "could not write the random checkpoint to %s\n", dir.c_str());
    std::exit(1);
  }
}

}  // namespace

int bench_main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  cpu::sleep_idle_blas_threads();  // as the command line does
  const auto manifest = models::read_manifest(args.manifest);
  const auto config = models::BridgeTowerConfig::from_json(manifest.config, args.manifest);
  ensure_checkpoint(config, args.cache);
  bench::set_threads(args.threads);
  const runtime::Placement placement = runtime::parse_placement(args.device, args.dtype);
  auto model = models::BridgeTowerItm::load(args.cache);
  if (!placement.is_default()) model.to(placement);
  std::printf("model: random weights with the shapes of %s, on %s\n", manifest.checkpoint.c_str(),
              placement.describe().c_str());
  std::printf("threads: %d (torch intra-op)\n", torch::get_num_threads());
  std::printf("parameters: %.1f M, checkpoint weights %.2f GiB (memory-mapped%s)\n", model.parameter_count() / 1e6,
              model.parameter_count() * 4.0 / (1 << 30), placement.is_default() ? "" : ", then copied");

  torch::manual_seed(0);
  const int64_t T = args.tokens;
  torch::Tensor ids = torch::randint(1000, 30000, {1, T}, torch::kInt64);
  ids.select(1, 0).fill_(config.text.bos_token_id);
  ids.select(1, T - 1).fill_(config.text.eos_token_id);
  const torch::Tensor mask = torch::ones({1, T}, torch::kInt64);

  std::vector<int64_t> sizes{config.vision.image_size};
  if (args.size > 0 && args.size != config.vision.image_size) sizes.push_back(args.size);
  std::printf("\n%-6s %-8s %-8s %-16s %-24s\n", "size", "grid", "tokens", "forward s", "forward+backward to L s");
  for (int64_t size : sizes) {
    const torch::Tensor pixels = torch::randn({1, 3, size, size});
    const auto forward = time_runs(args.runs, [&] { model.forward(pixels, ids, mask).itm_logits.cpu(); });
    const auto both = time_runs(args.runs, [&] {
      model.itm_attention_gradients(pixels, ids, mask, {args.layer - 1}).grads[0].cpu();
    });
    const int64_t grid = size / config.vision.patch_size;
    char grid_col[32];
    std::snprintf(grid_col, sizeof grid_col, "%lldx%lld", static_cast<long long>(grid), static_cast<long long>(grid));
    std::printf("%-6lld %-8s %-8lld %-16.3f %-24.3f\n", static_cast<long long>(size), grid_col,
                static_cast<long long>(T), forward.median, both.median);
  }
  std::printf("\npeak RSS: %.2f GiB\n", bench::peak_rss_gib());
  std::printf("(medians of %d runs after one warm-up; 'forward+backward' = both towers, the bridge and the cross-modal "
              "encoder, and the backward pass to cross-modal layer %d, the work of one GradCAM pass)\n",
              args.runs, args.layer);
  return 0;
}

int main(int argc, char** argv) {
  return bench::guarded_main([&] { return bench_main(argc, argv); });
}
