// The bounded queue between the server's request threads and the model. Request threads
// decode their image and submit a Job; one dispatcher thread takes the jobs in arrival order, a
// group at a time, and hands each group to the shared runner (run::Runner::segment_group): on
// the CPU the images of a group run side by side (--workers), on a GPU in one batch
// (--batch-size), and a failing group is retried one image at a time, as in `segment`. Jobs
// of a group share their settings; a job with other settings waits for the next group.
//
// Requests that arrive together should run together, but a request is read and decoded before
// it is queued: while one is on its way (Arrival) and the group is not full, the dispatcher
// waits for it, up to kGatherWait. A lone request never waits.
//
// A job whose client went away or ran out of time leaves the queue at once, so that it frees its
// place without costing model time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pnpovss/run/runner.h"

namespace pnpovss::serve {

using Clock = std::chrono::steady_clock;

struct Job {
  run::Item item;             // path: the image's name in the record; classes
  Image image;                // decoded by the request thread
  std::string image_sha256;
  double decode_seconds = 0;
  MethodSettings settings;
  std::string settings_key;   // equal keys can share a model pass
  Clock::time_point submitted = Clock::now();
  double queue_seconds = 0;   // from submit to the start of its group
  std::promise<run::Outcome> done;  // the outcome, problem set when the model failed
};

class Scheduler {
 public:
  enum class Admission { Queued, Full, Stopping };

  static constexpr std::chrono::milliseconds kGatherWait{100};

  // Held by a request thread from the moment it starts reading a request until it submits the
  // job or gives up.
  class Arrival {
   public:
    explicit Arrival(Scheduler& s) : s_(s) { ++s_.arriving_; }
    ~Arrival() {
      --s_.arriving_;
      s_.wake_.notify_all();
    }
    Arrival(const Arrival&) = delete;
    Arrival& operator=(const Arrival&) = delete;

   private:
    Scheduler& s_;
  };

  // `model` must outlive the scheduler. `capacity`: jobs waiting, not counting those running.
  Scheduler(const segment::Segmenter& model, run::RunOptions options, size_t capacity);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  ~Scheduler();  // stop()

  Admission submit(const std::shared_ptr<Job>& job);
  // The job's client left or ran out of time: it leaves the queue now, freeing its place (a job
  // already running finishes; nobody reads its outcome).
  void abandon(const std::shared_ptr<Job>& job);
  // Runs what is queued, then ends the dispatcher; later submits get Stopping.
  void stop();

  size_t depth() const;            // jobs waiting now
  size_t running() const { return running_; }
  size_t capacity() const { return capacity_; }
  size_t group_size() const { return group_size_; }

 private:
  void dispatch();
  std::vector<std::shared_ptr<Job>> take_group();  // with mutex_ held
  void run_group(const std::vector<std::shared_ptr<Job>>& jobs);

  const segment::Segmenter& model_;
  run::RunOptions options_;
  const size_t capacity_;
  const size_t group_size_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::atomic<size_t> running_{0};
  std::atomic<int> arriving_{0};
  std::thread dispatcher_;
};

}  // namespace pnpovss::serve
