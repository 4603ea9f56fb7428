#include "pnpovss/serve/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <set>
#include <utility>

#include "pnpovss/image/codec.h"
#include "pnpovss/serve/answer.h"
#include "pnpovss/serve/http_error.h"
#include "pnpovss/serve/metrics.h"
#include "pnpovss/serve/page.h"
#include "pnpovss/serve/peer.h"
#include "pnpovss/serve/request_settings.h"
#include "pnpovss/serve/scheduler.h"
#include "pnpovss/serve/segment_request.h"
#include "pnpovss/settings/settings_json.h"
#include "pnpovss/util/failure.h"
#include "pnpovss/util/hash.h"

namespace pnpovss::serve {
namespace {

using nlohmann::json;

const std::set<std::string> kPaths = {"/", "/healthz", "/metrics", "/v1/info", "/v1/segment"};
constexpr int kClientClosed = 499;  // nginx's status for a client that left before its answer

// A POST /v1/segment on its way to the queue, from its headers (before the HTTP library reads
// the body) until its job is queued or it is answered otherwise: one request at a time per
// HTTP thread, so per thread.
thread_local std::optional<Scheduler::Arrival> t_arriving;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"error", message}});
}

// The answer to the exception in flight (call inside a catch block): its status, its one line.
void send_current_error(httplib::Response& res) {
  const int status = http_status_of_current();
  send_error(res, status, util::current_failure().message);
}

// Compares without stopping at the first difference, so that timing does not reveal a key.
bool same_key(const std::string& given, const std::string& key) {
  unsigned char diff = given.size() == key.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ key[i % key.size()]);
  return diff == 0;
}

// The words for statuses the HTTP library answers by itself (no handler ran).
std::string library_error_message(const httplib::Request& req, int status, const Limits& limits) {
  switch (status) {
    case 400: return "malformed request: the HTTP library could not read it (bad multipart body or headers)";
    case 404: return "no such path: " + req.method + " " + req.path + " (the API is under /v1; see GET /v1/info)";
    case 413:
      return "the request is larger than this server's limit of " + std::to_string(limits.max_upload_bytes >> 20) +
             " MB (--max-upload-mb)";
    case 414: return "the request's URL is too long";
    default: return "the request failed with HTTP status " + std::to_string(status);
  }
}

}  // namespace

struct Server::Impl {
  Impl(const segment::Segmenter& m, const MethodSettings& s, run::RunOptions options, const ServeConfig& c,
       run::RunIdentity id)
      : model(m), settings(s), config(c), identity(std::move(id)), scheduler(m, options, c.limits.max_queue),
        batch_size(options.batch.value), workers(options.workers) {}

  const segment::Segmenter& model;
  const MethodSettings settings;
  const ServeConfig config;
  const run::RunIdentity identity;
  Scheduler scheduler;
  const int batch_size, workers;
  Metrics metrics;
  httplib::Server http;
  std::atomic<bool> stopping{false};

  void install_routes();
  bool authorized(const httplib::Request& req) const;
  json info() const;
  void segment(const httplib::Request& req, httplib::Response& res);
  std::shared_ptr<Job> make_job(SegmentRequest& request, const MethodSettings& job_settings) const;
  HttpError queue_full(httplib::Response& res) const;
};

bool Server::Impl::authorized(const httplib::Request& req) const {
  const std::string& key = config.api_key;
  if (key.empty()) return true;
  const std::string bearer = req.get_header_value("Authorization");
  if (bearer.rfind("Bearer ", 0) == 0 && same_key(bearer.substr(7), key)) return true;
  return req.has_header("X-API-Key") && same_key(req.get_header_value("X-API-Key"), key);
}

json Server::Impl::info() const {
  const Limits& l = config.limits;
  return {{"version", identity.version},
          {"model", identity.model},
          {"backbone", settings.backbone},
          {"device", identity.device},
          {"dtype", runtime::dtype_name(model.placement().dtype)},
          {"settings", to_json(settings)},
          {"presets", {{"paper", to_json(preset("paper", settings.backbone))},
                       {"official", to_json(preset("official", settings.backbone))}}},
          {"limits", {{"max_upload_mb", static_cast<double>(l.max_upload_bytes) / (1 << 20)},
                      {"max_pixels", l.max_pixels},
                      {"max_queue", l.max_queue},
                      {"timeout_s", l.timeout_seconds},
                      {"workers", workers},
                      {"batch_size", batch_size}}},
          {"api_key_required", !config.api_key.empty()}};
}

// The refusal of a request that finds the queue full, with Retry-After set to about one
// request's time (from those answered so far; at least 1 s).
HttpError Server::Impl::queue_full(httplib::Response& res) const {
  const int retry_after = static_cast<int>(std::clamp(std::ceil(metrics.mean_latency()), 1.0, 60.0));
  res.set_header("Retry-After", std::to_string(retry_after));
  return HttpError(503, "the queue is full (" + std::to_string(scheduler.capacity()) + " requests wait): try again later");
}

std::shared_ptr<Job> Server::Impl::make_job(SegmentRequest& request, const MethodSettings& job_settings) const {
  auto job = std::make_shared<Job>();
  const auto start = Clock::now();
  try {
    job->image = image::decode_image_memory(request.image.data(), request.image.size(), "'" + request.image_name + "'");
  } catch (const Error& e) {
    throw HttpError(415, e.what());
  }
  job->decode_seconds = seconds_since(start);
  util::Sha256 sha;
  sha.update(request.image.data(), request.image.size());
  job->image_sha256 = sha.hex_digest();
  request.image.clear();
  request.image.shrink_to_fit();
  job->item.path = request.image_name;
  job->item.classes = run::all_classes(request.classes);
  job->settings = job_settings;
  job->settings_key = to_json(job_settings).dump();
  return job;
}

void Server::Impl::segment(const httplib::Request& req, httplib::Response& res) {
  const auto arrival = Clock::now();
  const Limits& limits = config.limits;
  if (stopping) throw HttpError(503, "the server is stopping");
  SegmentRequest request = parse_segment_request(req);
  std::pair<int64_t, int64_t> size;
  try {
    size = image::read_image_size(request.image.data(), request.image.size(), "'" + request.image_name + "'");
  } catch (const Error& e) {
    throw HttpError(415, e.what());
  }
  if (size.first * size.second > limits.max_pixels)
    throw HttpError(413, "image '" + request.image_name + "' is " + std::to_string(size.first) + "x" +
                             std::to_string(size.second) + " pixels, more than this server's limit of " +
                             std::to_string(limits.max_pixels) + " (--max-pixels): downscale it first");
  const MethodSettings job_settings = request_settings(request.settings, settings, model);
  try {
    model.check_classes(request.classes, job_settings);
  } catch (const Error& e) {
    throw HttpError(422, e.what());
  }
  // A full queue is refused before the image costs a decode.
  if (scheduler.depth() >= scheduler.capacity()) throw queue_full(res);
  std::shared_ptr<Job> job = make_job(request, job_settings);
  std::future<run::Outcome> done = job->done.get_future();
  switch (scheduler.submit(job)) {
    case Scheduler::Admission::Queued: break;
    case Scheduler::Admission::Stopping: throw HttpError(503, "the server is stopping");
    case Scheduler::Admission::Full: throw queue_full(res);
  }
  t_arriving.reset();
  const PeerWatch peer(req.remote_addr, req.remote_port);
  const auto deadline = arrival + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limits.timeout_seconds));
  while (done.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
    if (Clock::now() >= deadline) {
      scheduler.abandon(job);
      throw HttpError(504, "the request took longer than this server's limit of " +
                               std::to_string(static_cast<int>(limits.timeout_seconds)) + " s (--timeout)");
    }
    if (peer.gone()) {
      scheduler.abandon(job);
      res.status = kClientClosed;
      return;
    }
  }
  run::Outcome outcome = done.get();
  metrics.count_image(!outcome.ok());
  if (!outcome.ok()) std::rethrow_exception(outcome.error);  // answered by send_current_error
  run::RunIdentity job_identity = identity;
  job_identity.settings = nlohmann::ordered_json::parse(job->settings_key);
  const AnsweredImage answered{&job_identity, &job->item, &outcome, job->queue_seconds, request.maps};
  if (request.png_only) {
    const run::Bytes png = answer_label_png(answered);
    res.set_content(std::string(png.begin(), png.end()), "image/png");
  } else {
    res.set_content(answer_json(answered), "application/json");
  }
  res.status = 200;
}

void Server::Impl::install_routes() {
  // A thread per waiting or running request, and more for the quick endpoints and refusals and
  // for connections that stall (each holds a thread until the read timeout drops it).
  const size_t threads = config.limits.max_queue + scheduler.group_size() + 32;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(config.limits.max_upload_bytes);
  http.set_read_timeout(10);       // a client that stalls mid-request is dropped

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // A body announced over the limit is refused before it is read (the library would read it first).
    if (req.get_header_value<uint64_t>("Content-Length") > config.limits.max_upload_bytes) {
      res.set_header("Connection", "close");
      send_error(res, 413, library_error_message(req, 413, config.limits));
      return httplib::Server::HandlerResponse::Handled;
    }
    const bool guarded = req.path.rfind("/v1/", 0) == 0 || req.path == "/metrics";
    if (guarded && !authorized(req)) {
      res.set_header("WWW-Authenticate", "Bearer");
      send_error(res, 401, "this server needs its API key: send the header 'Authorization: Bearer KEY' (or 'X-API-Key: KEY')");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.method == "POST" && req.path == "/v1/segment" && !stopping) t_arriving.emplace(scheduler);
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (...) {
      send_current_error(res);
    }
  });
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty()) send_error(res, res.status, library_error_message(req, res.status, config.limits));
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    t_arriving.reset();  // answered without being queued (a refusal, a malformed body)
    metrics.count_request(kPaths.count(req.path) ? req.path : "other", res.status);
  });

  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    const std::string_view page = page_html();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  http.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    if (stopping) return send_json(res, 503, {{"status", "stopping"}});
    send_json(res, 200, {{"status", "ok"}});
  });
  http.Get("/v1/info", [this](const httplib::Request&, httplib::Response& res) { send_json(res, 200, info()); });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render({scheduler.depth(), scheduler.capacity(), scheduler.running()}),
                    "text/plain; version=0.0.4");
  });
  http.Post("/v1/segment", [this](const httplib::Request& req, httplib::Response& res) {
    const auto start = Clock::now();
    try {
      segment(req, res);
    } catch (...) {
      send_current_error(res);
    }
    metrics.observe_latency(seconds_since(start));
  });
  // A known path with another method: 405 with the methods it takes.
  const auto wrong_method = [](const httplib::Request& req, httplib::Response& res) {
    if (!kPaths.count(req.path)) return send_error(res, 404, "no such path: " + req.path + " (the API is under /v1; see GET /v1/info)");
    res.set_header("Allow", req.path == "/v1/segment" ? "POST" : "GET");
    send_error(res, 405, req.method + " is not allowed on " + req.path + " (" +
                             (req.path == "/v1/segment" ? "POST" : "GET") + " is)");
  };
  http.Get("/v1/segment", wrong_method);
  for (const char* path : {"/", "/healthz", "/metrics", "/v1/info"}) http.Post(path, wrong_method);
  http.Put(".*", wrong_method);
  http.Delete(".*", wrong_method);
  http.Patch(".*", wrong_method);
}

Server::Server(const segment::Segmenter& model, const MethodSettings& settings, run::RunOptions options,
               const ServeConfig& config, run::RunIdentity identity)
    : impl_(std::make_unique<Impl>(model, settings, options, config, std::move(identity))) {
  impl_->install_routes();
}

Server::~Server() {
  stop();
  impl_->scheduler.stop();
}

int Server::bind() {
  const ServeConfig& c = impl_->config;
  const int port = c.port == 0 ? impl_->http.bind_to_any_port(c.host) : (impl_->http.bind_to_port(c.host, c.port) ? c.port : -1);
  if (port < 0)
    throw Error("cannot listen on " + c.host + ":" + std::to_string(c.port) +
                " (is another server using the port, or is the address not this machine's?): choose another with --port or --host");
  return port;
}

void Server::run() {
  impl_->http.listen_after_bind();
  // Requests already taken were answered while the HTTP library drained its threads; the
  // scheduler has nothing left to run.
  impl_->scheduler.stop();
}

void Server::stop() {
  impl_->stopping = true;
  impl_->http.stop();
}

}  // namespace pnpovss::serve
