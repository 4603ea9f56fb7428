#include "pnpovss/serve/metrics.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace pnpovss::serve {
namespace {

// A float as Prometheus reads it ("+Inf" aside): shortest round trip is not needed.
std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

// Label values are paths the server routes, but an unknown path comes from the client.
std::string escaped_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

}  // namespace

void Metrics::count_request(const std::string& path, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{path, status}];
}

void Metrics::observe_latency(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  ++bucket_counts_[b];
  latency_sum_ += seconds;
  ++latency_count_;
}

double Metrics::mean_latency() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return latency_count_ == 0 ? 0.0 : latency_sum_ / static_cast<double>(latency_count_);
}

void Metrics::count_image(bool failed) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++(failed ? failures_ : images_);
}

std::string Metrics::render(const Gauges& g) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  header(out, "pnpovss_requests_total", "counter", "Requests answered, by path and HTTP status.");
  for (const auto& [key, count] : requests_)
    out << "pnpovss_requests_total{path=\"" << escaped_label(key.first) << "\",status=\"" << key.second << "\"} "
        << count << '\n';
  header(out, "pnpovss_request_duration_seconds", "histogram", "Time from arrival to answer of POST /v1/segment.");
  uint64_t cumulative = 0;
  for (size_t b = 0; b < kBuckets.size(); ++b) {
    cumulative += bucket_counts_[b];
    out << "pnpovss_request_duration_seconds_bucket{le=\"" << number(kBuckets[b]) << "\"} " << cumulative << '\n';
  }
  cumulative += bucket_counts_.back();
  out << "pnpovss_request_duration_seconds_bucket{le=\"+Inf\"} " << cumulative << '\n';
  out << "pnpovss_request_duration_seconds_sum " << number(latency_sum_) << '\n';
  out << "pnpovss_request_duration_seconds_count " << latency_count_ << '\n';
  header(out, "pnpovss_queue_depth", "gauge", "Requests waiting for the model.");
  out << "pnpovss_queue_depth " << g.queue_depth << '\n';
  header(out, "pnpovss_queue_capacity", "gauge", "Requests that may wait (--max-queue).");
  out << "pnpovss_queue_capacity " << g.queue_capacity << '\n';
  header(out, "pnpovss_images_in_flight", "gauge", "Images the model is segmenting now.");
  out << "pnpovss_images_in_flight " << g.images_in_flight << '\n';
  header(out, "pnpovss_images_segmented_total", "counter", "Images segmented.");
  out << "pnpovss_images_segmented_total " << images_ << '\n';
  header(out, "pnpovss_segment_failures_total", "counter", "Requests whose image failed in the model.");
  out << "pnpovss_segment_failures_total " << failures_ << '\n';
  header(out, "process_resident_memory_bytes", "gauge", "Resident memory of the server process.");
  out << "process_resident_memory_bytes " << resident_memory_bytes() << '\n';
  return out.str();
}

uint64_t resident_memory_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

}  // namespace pnpovss::serve
