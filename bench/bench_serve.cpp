// What the HTTP server costs over the runner it wraps, on a random-weight model with a real
// checkpoint's shapes:
//   1. one image: the bare runner (decode, model, record and PNGs in memory) against the same
//      image posted to an in-process server over loopback (multipart in, JSON with base64 out);
//   2. a folder: the runner over every image with --workers auto, as `segment` runs a folder,
//      against the same images posted by 2-4 concurrent clients: images/s and the clients'
//      p50/p99 latency.
//
//   bench_serve [--images 8] [--clients 2,4] [--size 336] [--runs 3] [--postprocess blur+crf]
//               [--threads N] [--manifest M] [--cache DIR]
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "pnpovss/cpu/blas_threads.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/crop.h"
#include "pnpovss/run/record.h"
#include "pnpovss/segment/batching.h"
#include "pnpovss/serve/server.h"
#include "pnpovss/settings/settings_json.h"
#include "pnpovss/version.h"

using namespace pnpovss;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string manifest = bench::default_manifest();
  std::string cache = bench::default_cache();
  int images = 8;
  std::vector<int64_t> clients = {2, 4};
  int size = 336;
  int runs = 3;
  std::string postprocess = "blur+crf";
  int threads = 0;
};

const std::string kClasses = "cat, couch, remote control";

// The random checkpoint with the tokenizer and preprocessor files of the tiny fixture model
// beside it, so that it loads as a model directory (the random weights ignore which words are which).
std::string model_dir(const Args& a, std::string& checkpoint) {
  checkpoint = bench::prepare_model(a.manifest, a.cache, a.threads).checkpoint;
  const std::string fixture = std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/blip_itm/";
  for (const char* f : {"vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json"})
    if (!fs::exists(a.cache + "/" + f)) fs::copy_file(fixture + f, a.cache + "/" + f);
  return a.cache;
}

// Crops of the bundled photo, PNG-encoded: each request carries a file, as a client sends it.
std::vector<std::string> encoded_images(int count) {
  const Image photo = image::decode_image_file(std::string(PNPOVSS_SOURCE_DIR) + "/tests/data/images/coco_000000039769.png");
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    const run::Bytes png = image::encode_png_rgb(image::center_crop(photo, photo.width - 8 * (i % 10), photo.height - 6 * (i % 7)));
    out.emplace_back(png.begin(), png.end());
  }
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

// The runner as `segment` drives it, with the outputs built in memory.
double bare_run(const segment::Segmenter& model, const MethodSettings& settings, const run::RunIdentity& identity,
                const std::vector<std::string>& images, int workers) {
  const auto start = Clock::now();
  std::vector<Image> decoded;
  for (const auto& bytes : images)
    decoded.push_back(image::decode_image_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "image"));
  std::vector<run::Item> items(decoded.size());
  for (size_t i = 0; i < decoded.size(); ++i) {
    items[i].path = "image";
    items[i].image = &decoded[i];
    items[i].classes = run::all_classes(run::split_class_list(kClasses));
  }
  run::Runner runner(model, settings, {segment::BatchSize{1, false}, workers});
  size_t bytes = 0;
  runner.run(items, [&](run::Outcome& o) {
    if (!o.ok()) throw Error(o.problem);
    bytes += run::image_outputs(identity, "image", items[o.index], o, 3).record.dump().size();
  });
  if (bytes == 0) throw Error("no outputs");
  return bench::seconds_since(start);
}

double post_image(httplib::Client& client, const std::string& png) {
  const auto start = Clock::now();
  const httplib::MultipartFormDataItems form = {{"image", png, "image.png", "image/png"}, {"classes", kClasses, "", ""}};
  const auto res = client.Post("/v1/segment", form);
  if (!res || res->status != 200)
    throw Error("the server answered " + (res ? std::to_string(res->status) + ": " + res->body : std::string("nothing")));
  return bench::seconds_since(start);
}

// `clients` threads post the images, each taking the next one not yet posted.
void serve_folder(int port, const std::vector<std::string>& images, int clients, double& wall, std::vector<double>& latencies) {
  std::atomic<size_t> next{0};
  std::mutex mutex;
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(600);
      for (size_t i = next++; i < images.size(); i = next++) {
        const double t = post_image(client, images[i]);
        std::lock_guard<std::mutex> lock(mutex);
        latencies.push_back(t);
      }
    });
  for (auto& t : threads) t.join();
  wall = bench::seconds_since(start);
}

int bench_main(int argc, char** argv) {
  Args a;
  bench::parse_options(argc, argv, [&](const std::string& k, const std::string& v) {
    if (k == "--images") a.images = std::stoi(v);
    else if (k == "--clients") a.clients = bench::parse_int_list(v);
    else if (k == "--size") a.size = std::stoi(v);
    else if (k == "--runs") a.runs = std::stoi(v);
    else if (k == "--postprocess") a.postprocess = v;
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--manifest") a.manifest = v;
    else if (k == "--cache") a.cache = v;
    else return false;
    return true;
  });
  std::string checkpoint;
  const segment::Segmenter model = segment::Segmenter::load(model_dir(a, checkpoint));
  SettingChoices choices;
  choices.size = a.size;
  choices.postprocess = a.postprocess;
  const MethodSettings settings = resolve_settings(choices, "blip");
  const int workers = segment::parse_workers("auto", model.placement(), {a.size, 3});
  const run::RunIdentity identity{model.model_dir(), "cpu/fp32", nlohmann::ordered_json::parse(to_json(settings).dump()),
                                  program_version()};
  const std::vector<std::string> images = encoded_images(a.images);
  std::printf("model: random weights with the shapes of %s, %d px, postprocess %s; %d BLAS threads, workers auto = %d\n",
              checkpoint.c_str(), a.size, a.postprocess.c_str(), cpu::blas_threads(), workers);

  serve::ServeConfig config;
  config.port = 0;
  serve::Server server(model, settings, {segment::BatchSize{1, false}, workers}, config, identity);
  const int port = server.bind();
  std::thread serving([&] { server.run(); });
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(600);

  // 1. One image, alternating so that both see the same machine state.
  post_image(client, images[0]);  // warm-up
  std::vector<double> bare, served;
  for (int r = 0; r < a.runs; ++r) {
    bare.push_back(bare_run(model, settings, identity, {images[0]}, 1));
    served.push_back(post_image(client, images[0]));
  }
  const bench::Timing b = bench::summarize(bare), s = bench::summarize(served);
  std::printf("one image (%d runs): runner %.1f ms (min %.1f), server %.1f ms (min %.1f): overhead %.1f ms = %.2f%% (median)\n",
              a.runs, b.median * 1e3, b.min * 1e3, s.median * 1e3, s.min * 1e3, (s.median - b.median) * 1e3,
              100.0 * (s.median - b.median) / b.median);

  // 2. A folder.
  const double folder = bare_run(model, settings, identity, images, workers);
  std::printf("folder of %d images, runner with %d workers: %.3f images/s (%.1f s)\n", a.images, workers,
              a.images / folder, folder);
  for (int64_t clients : a.clients) {
    double wall = 0;
    std::vector<double> latencies;
    serve_folder(port, images, static_cast<int>(clients), wall, latencies);
    std::printf("folder of %d images, server with %lld clients: %.3f images/s (%.1f s, %.1f%% of the runner's), "
                "latency p50 %.2f s, p99 %.2f s\n",
                a.images, static_cast<long long>(clients), a.images / wall, wall, 100.0 * folder / wall,
                percentile(latencies, 50), percentile(latencies, 99));
  }
  std::printf("peak RSS %.2f GiB\n", bench::peak_rss_gib());
  server.stop();
  serving.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::guarded_main([&] { return bench_main(argc, argv); });
}
