// `pnp-ovss serve`: loads a model once and answers segmentation requests over HTTP, with a web
// page at / (docs/server.md). The server itself is the serve layer; this file reads the options,
// loads the model as `segment` does, and turns SIGINT/SIGTERM into a graceful stop: no new
// connections, the requests already taken answered, exit status 0.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "pnpovss/cli/commands.h"
#include "pnpovss/cli/compute_options.h"
#include "pnpovss/cli/method_options.h"
#include "pnpovss/console/download_progress.h"
#include "pnpovss/error.h"
#include "pnpovss/run/model.h"
#include "pnpovss/settings/settings_json.h"
#include "pnpovss/version.h"
#if PNPOVSS_WITH_SERVER
#include "pnpovss/serve/server.h"
#endif

namespace pnpovss::cli {
namespace {

#if PNPOVSS_WITH_SERVER

// The classes a request is assumed to bring when --workers auto sizes the workers by memory.
constexpr size_t kTypicalClasses = 10;

struct ServeOptions {
  std::string model = kDefaultModel;
  MethodOptions method;
  ComputeOptions compute;
  serve::ServeConfig config;
  double max_upload_mb = 20;
};

// SIGINT and SIGTERM, turned into a stop: the handler only records the signal (all a handler may
// safely do), and a thread of its own acts on it. (Blocking the signals instead would not do:
// OpenBLAS starts its threads when the library loads, before main, and any thread that does not
// block a signal may receive it.) Before a stop action is set (while the model loads) a signal
// ends the process as usual.
volatile std::sig_atomic_t g_signal = 0;

extern "C" void record_signal(int sig) { g_signal = sig; }

class SignalWatch {
 public:
  SignalWatch() {
    struct sigaction action {};
    action.sa_handler = record_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_int_);
    sigaction(SIGTERM, &action, &previous_term_);
    watcher_ = std::thread([this] { watch(); });
  }
  ~SignalWatch() {
    done_ = true;
    watcher_.join();
    sigaction(SIGINT, &previous_int_, nullptr);
    sigaction(SIGTERM, &previous_term_, nullptr);
  }
  void on_signal(std::function<void()> stop) {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = std::move(stop);
  }

 private:
  void watch() {
    while (!done_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const int sig = g_signal;
      if (sig == 0) continue;
      g_signal = 0;
      std::lock_guard<std::mutex> lock(mutex_);
      if (!stop_) {
        if (sig == SIGINT) console::report_interrupted_download();  // the model may be downloading
        std::_Exit(128 + sig);
      }
      std::fprintf(stderr, "\n%s: finishing the requests in flight, then stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
      stop_();
    }
  }

  struct sigaction previous_int_ {}, previous_term_ {};
  std::atomic<bool> done_{false};
  std::mutex mutex_;
  std::function<void()> stop_;
  std::thread watcher_;
};

std::string url_of(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos;
  return "http://" + (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/";
}

int run_serve(ServeOptions& o) {
  SignalWatch signals;
  serve::ServeConfig& config = o.config;
  config.limits.max_upload_bytes = static_cast<size_t>(o.max_upload_mb * (1 << 20));
  const SettingChoices choices = setting_choices(o.method);
  run::ModelChoice choice = run::choose_model(o.model, choices);
  const runtime::Placement placement = resolve_placement(o.compute);
  choice.settings.post_crf.device = resolve_postprocess_device(o.compute, placement);
  const MethodSettings& settings = choice.settings;
  const segment::BatchSize batch = resolve_batch_size(o.compute, placement, settings.input_size);
  const int workers = resolve_workers(o.compute, placement, {settings.input_size, kTypicalClasses});
  const segment::Segmenter model = run::load_model(choice, placement, choices);
  run::RunIdentity identity{model.model_dir(), placement.describe(),
                            nlohmann::ordered_json::parse(to_json(settings).dump()), program_version()};

  std::printf("settings: %s\n", settings.describe().c_str());
  for (const auto& note : choice.notes) std::printf("note: %s\n", note.c_str());
  note_cpu_speed(placement);
  serve::Server server(model, settings, {batch, workers}, config, std::move(identity));
  const int port = server.bind();
  std::printf("serving %s (%s, %s) at %s  (Ctrl-C stops)\n", choice.dir.c_str(), settings.backbone.c_str(),
              placement.describe().c_str(), url_of(config.host, port).c_str());
  std::fflush(stdout);
  signals.on_signal([&server] { server.stop(); });
  server.run();
  std::printf("stopped\n");
  return 0;
}

void add_server_options(CLI::App* cmd, ServeOptions& o) {
  serve::ServeConfig& c = o.config;
  serve::Limits& l = c.limits;
  cmd->add_option("--host", c.host, "address to listen on (0.0.0.0: every interface, open to the network)")
      ->capture_default_str();
  cmd->add_option("--port", c.port, "port to listen on; 0 picks a free one")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--max-queue", l.max_queue, "requests that may wait for the model; more get 503 with Retry-After")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--max-upload-mb", o.max_upload_mb, "largest request body in MB; more gets 413")
      ->check(CLI::Range(0.001, 4096.0))
      ->capture_default_str();
  cmd->add_option("--max-pixels", l.max_pixels, "largest image (width x height), checked before decoding; more gets 413")
      ->check(CLI::Range(int64_t{1}, kMaxImagePixels))
      ->capture_default_str();
  cmd->add_option("--timeout", l.timeout_seconds, "seconds a request may wait and run; longer gets 504")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  cmd->add_option("--api-key", c.api_key,
                  "key that /v1/* and /metrics require (Authorization: Bearer KEY or X-API-Key: KEY); "
                  "the environment variable PNPOVSS_API_KEY keeps it out of the process list")
      ->envname("PNPOVSS_API_KEY");
}

#endif  // PNPOVSS_WITH_SERVER

}  // namespace

Command add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve the model over HTTP: a JSON API under /v1 and a web page at / to segment, explore and explain "
      "(docs/server.md).\n"
      "Example: pnp-ovss serve --model Salesforce/blip-itm-large-flickr --port 8080\n"
      "         curl -F image=@photo.jpg -F classes='cat, sofa' http://127.0.0.1:8080/v1/segment");
#if PNPOVSS_WITH_SERVER
  auto o = std::make_shared<ServeOptions>();
  cmd->add_option("-m,--model", o->model,
                  "model directory, or hub id org/name[@revision] (downloaded into the Hugging Face cache once)")
      ->capture_default_str();
  add_server_options(cmd, *o);
  add_compute_options(cmd, o->compute, ComputeOptionSet::WithBatchAndWorkers);
  add_method_options(cmd, o->method, MethodOptionSet::All);
  return [o]() { return run_serve(*o); };
#else
  cmd->allow_extras();
  return []() -> int {
    throw Error("this pnp-ovss was built without the HTTP server: install libcpp-httplib-dev and build again");
  };
#endif
}

}  // namespace pnpovss::cli
