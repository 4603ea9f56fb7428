// The server's counters in the Prometheus text format (GET /metrics): requests by path and
// status, the latency of segment requests, images segmented and failed. Gauges that belong to
// others (queue depth, images running, resident memory) are read when the page is rendered.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace pnpovss::serve {

struct Gauges {
  size_t queue_depth = 0;
  size_t queue_capacity = 0;
  size_t images_in_flight = 0;
};

class Metrics {
 public:
  // One answered request.
  void count_request(const std::string& path, int status);
  // The time from arrival to answer of one POST /v1/segment.
  void observe_latency(double seconds);
  void count_image(bool failed);
  // The mean of the observed latencies (0 before the first).
  double mean_latency() const;

  std::string render(const Gauges& gauges) const;

  // Upper bounds of the latency buckets, in seconds (+Inf follows).
  static constexpr std::array<double, 12> kBuckets = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::array<uint64_t, kBuckets.size() + 1> bucket_counts_{};  // the last one: above every bound
  double latency_sum_ = 0;
  uint64_t latency_count_ = 0;
  uint64_t images_ = 0, failures_ = 0;
};

// This process's resident memory in bytes (0 where /proc is not there).
uint64_t resident_memory_bytes();

}  // namespace pnpovss::serve
