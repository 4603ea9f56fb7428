#include "pnpovss/run/runner.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/util/failure.h"
#include "pnpovss/util/interrupt.h"

namespace pnpovss::run {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Records the exception being handled as the outcome's problem.
void fail(Outcome& o) {
  o.error = std::current_exception();
  o.problem = util::describe(o.error).message;
}

// Outcomes of items[begin, end): the files decoded, or why they could not be.
std::vector<Outcome> decode_items(const std::vector<Item>& items, size_t begin, size_t end) {
  std::vector<Outcome> out(end - begin);
  for (size_t i = begin; i < end; ++i) {
    Outcome& o = out[i - begin];
    o.index = i;
    const Item& item = items[i];
    if (item.image != nullptr) continue;
    const auto start = Clock::now();
    try {
      o.image = item.hash_file ? image::decode_image_file(item.path, o.image_sha256)
                               : image::decode_image_file(item.path);
    } catch (const std::exception&) {
      fail(o);
    }
    o.decode_seconds = seconds_since(start);
  }
  return out;
}

}  // namespace

Runner::Runner(const segment::Segmenter& model, const MethodSettings& settings, RunOptions options)
    : model_(model), settings_(settings), batch_(options.batch), workers_(std::max(options.workers, 1)) {}

size_t Runner::group_size() const { return segment::images_per_group(batch_, workers_, model_.placement()); }

void Runner::segment_group(const std::vector<Item>& items, std::vector<Outcome>& group) {
  std::vector<Outcome*> ready;
  for (Outcome& o : group)
    if (o.ok()) ready.push_back(&o);
  segment_ready(items, ready, workers_);
}

void Runner::segment_ready(const std::vector<Item>& items, const std::vector<Outcome*>& ready, int workers) {
  if (ready.empty()) return;
  std::vector<segment::ImageTask> tasks;
  for (const Outcome* o : ready) {
    const Item& item = items[o->index];
    tasks.push_back({&pixels_of(item, *o), &item.classes.names});
  }
  const auto start = Clock::now();
  std::vector<segment::SegmentationResult> results;
  try {
    results = segment::segment_in_batches(model_, tasks, settings_, batch_, workers);
  } catch (const util::Interrupted&) {
    throw;
  } catch (const std::exception&) {
    // Out of memory was handled inside (smaller batches); anything else may be one image's
    // fault: each image alone finds it, and the others still get their results.
    if (ready.size() == 1) {
      fail(*ready.front());
      return;
    }
    for (Outcome* o : ready) segment_ready(items, {o}, 1);
    return;
  }
  const double each = seconds_since(start) / static_cast<double>(ready.size());
  for (size_t i = 0; i < ready.size(); ++i) {
    Outcome& o = *ready[i];
    o.result = std::move(results[i]);
    o.labels = segment::dataset_label_map(o.result, items[o.index].classes.labels, 0,
                                          settings_.labels_official_inplace_remap);
    o.model_seconds = each;
  }
}

void Runner::run(std::vector<Item> items, const std::function<void(Outcome&)>& take) {
  Stream stream(*this, std::move(items));
  std::future<void> taking;
  while (true) {
    auto group = std::make_shared<std::vector<Outcome>>(stream.next_group());
    if (taking.valid()) taking.get();  // the previous group handed over; rethrows what `take` threw
    if (group->empty()) break;
    taking = std::async(std::launch::async, [group, &take] {
      for (Outcome& o : *group) take(o);
    });
  }
}

std::vector<Outcome> Runner::run_all(std::vector<Item> items) {
  std::vector<Outcome> out(items.size());
  run(std::move(items), [&out](Outcome& o) { out[o.index] = std::move(o); });
  return out;
}

Stream::Stream(Runner& runner, std::vector<Item> items) : runner_(runner), items_(std::move(items)) {
  decode_next_group();
}

Stream::~Stream() {
  if (decoding_.valid()) decoding_.wait();
}

void Stream::decode_next_group() {
  if (decoded_until_ >= items_.size()) return;
  const size_t begin = decoded_until_;
  const size_t end = std::min(items_.size(), begin + std::max<size_t>(runner_.group_size(), 1));
  decoded_until_ = end;
  decoding_ = std::async(std::launch::async, decode_items, std::cref(items_), begin, end);
}

std::vector<Outcome> Stream::next_group() {
  std::vector<Outcome> group;
  if (!buffer_.empty()) {
    group.assign(std::make_move_iterator(buffer_.begin()), std::make_move_iterator(buffer_.end()));
    buffer_.clear();
    return group;
  }
  if (!decoding_.valid()) return group;
  util::interruption_point();
  group = decoding_.get();
  decode_next_group();  // decodes while the model runs this group
  runner_.segment_group(items_, group);
  return group;
}

Outcome Stream::next() {
  if (buffer_.empty()) {
    std::vector<Outcome> group = next_group();
    buffer_.assign(std::make_move_iterator(group.begin()), std::make_move_iterator(group.end()));
  }
  if (buffer_.empty()) throw Error("no more images in this run");
  Outcome o = std::move(buffer_.front());
  buffer_.pop_front();
  return o;
}

}  // namespace pnpovss::run
