// The one way every front end segments a list of images: images decoded ahead while the model
// runs, several images per model pass (batches on a GPU, side by side on the CPU), a failing
// batch run again one image at a time so that a bad image fails alone, and outcomes handed back
// in input order with their labels already mapped. The runner prints nothing; front ends
// report progress and failures from the outcomes (`segment` writes files, `eval` counts pixels,
// Python returns arrays).
//
//   Runner runner(model, settings, {batch, workers});
//   runner.run(items, [&](Outcome& o) { ... });   // push: `take` overlaps the next model pass
//   Stream stream(runner, items); stream.next();   // pull: one outcome at a time (eval)
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include "pnpovss/image.h"
#include "pnpovss/run/class_lists.h"
#include "pnpovss/segment/batching.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/segment/segmenter.h"
#include "pnpovss/settings.h"

namespace pnpovss::run {

// One image to segment: a file to decode, or pixels already in memory, and its prompt classes.
struct Item {
  std::string path;              // the file to decode when `image` is null
  const Image* image = nullptr;  // pixels in memory (must outlive the run)
  PromptClasses classes;
  bool hash_file = false;        // also the SHA-256 of the file (read once for both)
};

// What became of one item.
struct Outcome {
  size_t index = 0;             // the item's place in the input
  std::string problem;          // empty when segmented, otherwise the one-line reason
  std::exception_ptr error;     // what was thrown, for front ends that map error types
  Image image;                  // the decoded pixels of a file item
  std::string image_sha256;     // with Item::hash_file
  segment::SegmentationResult result;  // every intermediate of the method
  std::vector<int32_t> labels;  // per pixel: 0 background, classes.labels[k] for class k
  double decode_seconds = 0;
  double model_seconds = 0;     // this image's share of its model pass
  bool ok() const { return problem.empty(); }
};

// The pixels an outcome was segmented from: the item's own when it had them in memory, else
// the outcome's decoded copy.
inline const Image& pixels_of(const Item& item, const Outcome& outcome) {
  return item.image != nullptr ? *item.image : outcome.image;
}

struct RunOptions {
  segment::BatchSize batch;  // images per model pass (halved on GPU out-of-memory when automatic)
  int workers = 1;           // images side by side on the CPU (segment::segment_in_batches)
};

class Runner {
 public:
  // `model` and `settings` must outlive the runner.
  Runner(const segment::Segmenter& model, const MethodSettings& settings, RunOptions options = {});

  const segment::Segmenter& model() const { return model_; }
  const MethodSettings& settings() const { return settings_; }
  // The images that go through the model together now (segment::images_per_group).
  size_t group_size() const;

  // Segments `items` and hands each outcome to `take` in input order, on a thread of its own:
  // while `take` handles a group (writes its files), the model runs the next group, whose
  // images were decoded while the model ran the one before. The first exception of `take`, or
  // util::Interrupted between groups, ends the run after the group in hand.
  void run(std::vector<Item> items, const std::function<void(Outcome&)>& take);
  // Every outcome, in input order.
  std::vector<Outcome> run_all(std::vector<Item> items);

  // The model on decoded outcomes of `items` (those with a problem are left as they are): one
  // batch for all, and when it fails, each image alone, so that it fails with its own message.
  void segment_group(const std::vector<Item>& items, std::vector<Outcome>& group);

 private:
  void segment_ready(const std::vector<Item>& items, const std::vector<Outcome*>& ready, int workers);

  const segment::Segmenter& model_;
  const MethodSettings& settings_;
  segment::BatchSize batch_;  // shrinks for good after a GPU ran out of memory
  int workers_;
};

// The outcomes of `items` one at a time or one group at a time, in input order; each group is
// decoded while the model runs the one before.
class Stream {
 public:
  Stream(Runner& runner, std::vector<Item> items);
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();  // waits for a decoding in flight

  bool done() const { return buffer_.empty() && !decoding_.valid(); }
  // The next outcome; throws pnpovss::Error when done(). util::Interrupted stops between groups.
  Outcome next();
  // The rest of the group in hand, or the next group; empty when done().
  std::vector<Outcome> next_group();

 private:
  void decode_next_group();

  Runner& runner_;
  std::vector<Item> items_;
  size_t decoded_until_ = 0;
  std::future<std::vector<Outcome>> decoding_;
  std::deque<Outcome> buffer_;
};

}  // namespace pnpovss::run
