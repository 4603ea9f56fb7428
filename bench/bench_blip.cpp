// BLIP ITM runtime benchmark on a random-weight model with a real checkpoint's shapes.
//
//   bench_blip [--manifest tests/data/manifests/Salesforce__blip-itm-large-flickr.json]
//              [--cache DIR] [--runs N] [--tokens T] [--layer L]
//
// Prints, per input size (the checkpoint's own and 336): vision-encoder forward, text-encoder
// forward (ITM logits, no gradient), text forward + backward from the match logit to the
// cross-attention of layer L (1-based), and peak resident memory. Weights are written once to
// a safetensors file in the cache folder and memory-mapped, as real checkpoints are.
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "bench_util.h"
#include "pnpovss/models/blip_itm.h"
#include "pnpovss/models/random_checkpoint.h"

using namespace pnpovss;
using bench::Timing;
using bench::time_runs;

namespace {

struct Args {
  std::string manifest = bench::default_manifest();
  std::string cache = bench::default_cache();
  int runs = 3;
  int tokens = 60;
  int layer = 8;
  int threads = 0;  // libtorch threads; 0: one (see bench_util.h)
};
Args parse(int argc, char** argv) {
  Args a;
  bench::parse_options(argc, argv, [&](const std::string& k, const std::string& v) {
    if (k == "--manifest") a.manifest = v;
    else if (k == "--cache") a.cache = v;
    else if (k == "--runs") a.runs = std::stoi(v);
    else if (k == "--tokens") a.tokens = std::stoi(v);
    else if (k == "--layer") a.layer = std::stoi(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else return false;
    return true;
  });
  return a;
}

}  // namespace

int bench_main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  const auto bench_model = bench::prepare_model(args.manifest, args.cache, args.threads);
  const auto& model = bench_model.model;
  const auto& config = model.config();
  std::printf("model: random weights with the shapes of %s\n", bench_model.checkpoint.c_str());
  std::printf("threads: %d (torch intra-op)\n", torch::get_num_threads());
  std::printf("fp32 GEMM 2048^3: %.0f GFLOP/s\n", bench::gemm_rate_2048() / 1e9);
  std::printf("parameters: %.1f M, weights %.2f GiB (memory-mapped)\n", model.parameter_count() / 1e6,
              model.parameter_count() * 4.0 / (1 << 30));

  torch::manual_seed(0);
  const int64_t T = args.tokens;
  torch::Tensor ids = torch::randint(1000, 30000, {1, T}, torch::kInt64);
  ids.select(1, 0).fill_(config.enc_token_id);
  ids.select(1, T - 1).fill_(102);
  torch::Tensor mask = torch::ones({1, T}, torch::kInt64);

  std::printf("\n%-6s %-10s %-22s %-22s %-26s %-10s\n", "size", "tokens", "vision fwd s (GFLOP/s)", "text fwd s",
              "text fwd+bwd to L s", "sum s");
  for (int64_t size : {config.vision.image_size, int64_t{336}}) {
    torch::Tensor pixels = torch::randn({1, 3, size, size});
    torch::Tensor image;
    auto vision = time_runs(args.runs, [&] { image = model.encode_image(pixels, PositionResize::SizeBased); });
    auto text = time_runs(args.runs, [&] { model.itm_logits(ids, mask, image); });
    auto grad = time_runs(args.runs, [&] { model.itm_attention_gradients(ids, mask, image, {args.layer - 1}); });
    const int64_t n_tokens = (size / config.vision.patch_size) * (size / config.vision.patch_size) + 1;
    const double gflops = bench::vision_flops(config.vision, n_tokens) / vision.median / 1e9;
    char vision_col[64];
    std::snprintf(vision_col, sizeof vision_col, "%.3f (%.0f)", vision.median, gflops);
    std::printf("%-6lld %-10lld %-22s %-22.3f %-26.3f %-10.3f\n", static_cast<long long>(size), static_cast<long long>(T),
                vision_col, text.median, grad.median, vision.median + grad.median);
  }
  std::printf("\npeak RSS: %.2f GiB\n", bench::peak_rss_gib());
  std::printf("(medians of %d runs; 'sum' = vision forward + text forward and backward to layer %d, the work of one "
              "GradCAM pass)\n",
              args.runs, args.layer);
  return 0;
}

int main(int argc, char** argv) {
  return bench::guarded_main([&] { return bench_main(argc, argv); });
}
