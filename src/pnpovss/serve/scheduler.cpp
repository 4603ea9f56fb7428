#include "pnpovss/serve/scheduler.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <utility>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "pnpovss/util/failure.h"

namespace pnpovss::serve {
namespace {

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// After a burst, glibc keeps the freed pages of its arenas; an idle server gives them back, so
// that its resident memory returns to its idle level.
void release_free_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace

Scheduler::Scheduler(const segment::Segmenter& model, run::RunOptions options, size_t capacity)
    : model_(model),
      options_(options),
      capacity_(std::max<size_t>(capacity, 1)),
      group_size_(std::max<size_t>(segment::images_per_group(options.batch, options.workers, model.placement()), 1)),
      dispatcher_([this] { dispatch(); }) {}

Scheduler::~Scheduler() { stop(); }

Scheduler::Admission Scheduler::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return Admission::Stopping;
    if (queue_.size() >= capacity_) return Admission::Full;
    job->submitted = Clock::now();
    queue_.push_back(job);
  }
  wake_.notify_one();
  return Admission::Queued;
}

void Scheduler::abandon(const std::shared_ptr<Job>& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  queue_.erase(std::remove(queue_.begin(), queue_.end(), job), queue_.end());
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (dispatcher_.joinable()) dispatcher_.join();
}

size_t Scheduler::depth() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void Scheduler::dispatch() {
  // libtorch's thread count (--threads, 1 by default) is a per-thread setting of its OpenMP pool:
  // a new thread starts with one thread per core, which on a small machine fights the BLAS's
  // threads and made a request 5% slower than `segment` on 2 cores.
  at::init_num_threads();
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued has run
    wake_.wait_for(lock, kGatherWait,
                   [this] { return stopping_ || queue_.size() >= group_size_ || arriving_ == 0; });
    std::vector<std::shared_ptr<Job>> group = take_group();
    if (group.empty()) continue;  // every waiting job was abandoned during the gathering
    running_ = group.size();
    lock.unlock();
    run_group(group);
    group.clear();
    lock.lock();
    running_ = 0;
    if (queue_.empty()) {
      lock.unlock();
      release_free_memory();
      lock.lock();
    }
  }
}

// The first job and the jobs after it with the same settings, up to a group.
std::vector<std::shared_ptr<Job>> Scheduler::take_group() {
  std::vector<std::shared_ptr<Job>> group;
  for (auto it = queue_.begin(); it != queue_.end() && group.size() < group_size_;) {
    const std::shared_ptr<Job>& job = *it;
    if (!group.empty() && job->settings_key != group.front()->settings_key) {
      ++it;
      continue;
    }
    group.push_back(job);
    it = queue_.erase(it);
  }
  return group;
}

void Scheduler::run_group(const std::vector<std::shared_ptr<Job>>& jobs) {
  const auto start = Clock::now();
  std::vector<run::Item> items;
  std::vector<run::Outcome> outcomes(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    Job& job = *jobs[i];
    job.queue_seconds = seconds_between(job.submitted, start);
    items.push_back(job.item);
    outcomes[i].index = i;
    outcomes[i].image = std::move(job.image);
    outcomes[i].image_sha256 = job.image_sha256;
    outcomes[i].decode_seconds = job.decode_seconds;
  }
  try {
    run::Runner runner(model_, jobs.front()->settings, options_);
    runner.segment_group(items, outcomes);
  } catch (const std::exception&) {
    // segment_group reports each image's failure in its outcome; what escapes is not one
    // image's fault, and every job of the group gets it.
    const util::Failure failure = util::current_failure();
    for (run::Outcome& o : outcomes) {
      o.problem = failure.message;
      o.error = std::current_exception();
    }
  }
  for (size_t i = 0; i < jobs.size(); ++i) jobs[i]->done.set_value(std::move(outcomes[i]));
}

}  // namespace pnpovss::serve
