#include "pnpovss/eval/evaluation.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <set>
#include <system_error>

#include "pnpovss/error.h"
#include "pnpovss/eval/picture.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/palette.h"
#include "pnpovss/image/png.h"
#include "pnpovss/io/file_write.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/util/failure.h"
#include "pnpovss/util/interrupt.h"
#include "pnpovss/util/json_diff.h"

namespace pnpovss::eval {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

void check_ground_truth(const Scoring& scoring, const LabelMap& gt, const std::string& origin) {
  for (size_t i = 0; i < gt.values.size(); ++i)
    if (scoring.gt(gt.values[i]) == kInvalid)
      throw Error("'" + origin + "' holds the label value " + std::to_string(gt.values[i]) + " at pixel (" +
                  std::to_string(i % static_cast<size_t>(gt.width)) + ", " +
                  std::to_string(i / static_cast<size_t>(gt.width)) + "), outside the dataset's classes");
}

LoopResult run_samples(const RunDir& run, const Dataset& dataset, const Scoring& scoring,
                       const std::vector<Sample>& samples, const Predictor& predict, bool write_predictions,
                       const LoopObserver& observer) {
  const auto start = Clock::now();
  LoopResult result;
  result.totals = Counts(scoring.num_classes());
  std::vector<const Sample*> todo;
  for (const auto& s : samples) {
    bool damaged = false;
    auto record = run.read_record(s.stem, scoring.num_classes(), &damaged);
    if (record && write_predictions && !io::file_exists(run.pred_path(s.stem))) record.reset();
    if (record) {
      result.totals += record->counts;
      ++result.resumed;
      continue;
    }
    if (damaged && observer.on_note)
      observer.on_note("the record of image '" + s.stem + "' was damaged (a write cut short?): computing it again");
    todo.push_back(&s);
  }
  if (observer.on_start) observer.on_start(todo, result.resumed);
  const std::vector<int32_t> colour_labels = dataset.segment_labels();
  for (const Sample* s : todo) {
    util::interruption_point();
    const auto image_start = Clock::now();
    std::string problem;
    try {
      const LabelMap gt = read_label_png(s->label);
      check_ground_truth(scoring, gt, s->label);
      const Prediction p = predict(*s, gt);
      const Counts counts = count_image(scoring, gt, p.classes, p.width, p.height, s->label, p.origin);
      if (write_predictions) io::write_file_atomic(run.pred_path(s->stem), encode_prediction_png(p, dataset.num_classes(), colour_labels));
      run.write_record({s->stem, counts, seconds_since(image_start)});
      result.totals += counts;
      ++result.computed;
    } catch (const io::WriteError& e) {
      // A full disk fails every image after this one too: the run stops with the finished
      // images recorded, to go on once there is room.
      if (e.affects_every_file()) throw;
      problem = util::current_failure().message;
      result.failures.push_back({s->stem, problem});
    } catch (const std::exception&) {
      problem = util::current_failure().message;
      result.failures.push_back({s->stem, problem});
    }
    if (observer.on_image) observer.on_image(*s, problem);
  }
  result.seconds = seconds_since(start);
  return result;
}

std::vector<uint8_t> encode_prediction_png(const Prediction& p, int num_classes,
                                           const std::vector<int32_t>& colour_labels) {
  const size_t pixels = static_cast<size_t>(p.width) * p.height;
  if (p.classes.size() != pixels) throw Error("prediction map does not match its size");
  const auto in_range = [&](int32_t v) { return v >= 0 && v < num_classes; };
  if (num_classes <= 255) {
    std::vector<uint8_t> indices(pixels);
    for (size_t i = 0; i < pixels; ++i) indices[i] = in_range(p.classes[i]) ? static_cast<uint8_t>(p.classes[i]) : 255;
    // Entry k shows class k in the colour of its label (as the pictures); 255 (no class) black.
    std::vector<uint8_t> palette(256 * 3, 0);
    for (int k = 0; k < num_classes; ++k) {
      const image::Rgb c = image::label_color(colour_labels.empty() ? k + 1 : colour_labels.at(static_cast<size_t>(k)));
      palette[static_cast<size_t>(k) * 3] = c.r;
      palette[static_cast<size_t>(k) * 3 + 1] = c.g;
      palette[static_cast<size_t>(k) * 3 + 2] = c.b;
    }
    return image::encode_png_indexed(indices.data(), p.width, p.height, palette);
  }
  std::vector<uint16_t> values(pixels);
  for (size_t i = 0; i < pixels; ++i) values[i] = in_range(p.classes[i]) ? static_cast<uint16_t>(p.classes[i]) : 65535;
  return image::encode_png_gray16(values.data(), p.width, p.height);
}

Prediction read_prediction_png(const std::string& path, int num_classes) {
  LabelMap m = read_label_png(path);
  Prediction p;
  p.width = m.width;
  p.height = m.height;
  p.classes = std::move(m.values);
  p.origin = path;
  for (int32_t& v : p.classes)
    if (v >= num_classes) v = -1;
  return p;
}

std::vector<Sample> select_samples(const std::vector<Sample>& all, long limit, int index, int count) {
  const size_t n = limit > 0 ? std::min(all.size(), static_cast<size_t>(limit)) : all.size();
  std::vector<Sample> out;
  for (size_t i = static_cast<size_t>(index); i < n; i += static_cast<size_t>(count)) out.push_back(all[i]);
  return out;
}

Summary write_metrics(const std::string& dir, const Scoring& scoring, const Counts& totals,
                      const std::vector<Failure>& failures, const nlohmann::ordered_json& extra) {
  const Summary s = summarize(scoring, totals);
  nlohmann::ordered_json j = summary_json(s);
  for (const auto& [key, value] : extra.items()) j[key] = value;
  nlohmann::ordered_json failed = nlohmann::ordered_json::array();
  for (const auto& f : failures) failed.push_back({{"stem", f.stem}, {"error", f.message}});
  j["failed"] = failed;
  io::write_file_atomic(dir + "/metrics.json", j.dump(2) + "\n");
  io::write_file_atomic(dir + "/per_class.md", summary_markdown(s));
  io::write_file_atomic(dir + "/per_class.csv", summary_csv(s));
  return s;
}

void write_examples(const std::string& dir, const Dataset& dataset, const std::vector<Sample>& samples, int count,
                    const std::function<std::string(const std::string&)>& prediction_path) {
  const Scoring shown = dataset.scoring(Protocol::Mmseg);  // evaluation classes, ignore as -1
  int written = 0;
  for (const auto& s : samples) {
    if (written >= count) break;
    try {
      const std::string pred_file = prediction_path(s.stem);
      if (!io::file_exists(pred_file)) continue;
      const Image image = image::decode_image_file(s.image);
      const LabelMap gt = read_label_png(s.label);
      const Prediction p = read_prediction_png(pred_file, dataset.num_classes());
      if (gt.width != image.width || gt.height != image.height || p.width != image.width || p.height != image.height)
        continue;
      std::vector<int32_t> truth(gt.values.size());
      for (size_t i = 0; i < truth.size(); ++i) {
        const int32_t g = shown.gt(gt.values[i]);
        truth[i] = g >= 0 ? g : -1;
      }
      // The VOC/Context/ADE background is not an evaluation class: shown black like ignore.
      std::error_code ec;
      std::filesystem::create_directories(dir + "/examples", ec);
      image::write_png_rgb(dir + "/examples/" + s.stem + ".png",
                        comparison_picture(image, truth, p.classes, dataset.classes, dataset.segment_labels()));
      ++written;
    } catch (const io::WriteError& e) {
      if (e.affects_every_file()) throw;
    } catch (const std::exception&) {
      continue;
    }
  }
}

namespace {

// What --merge reads from a shard's run.json. The file may be damaged or edited by hand, so
// every field is checked here and named in a pnpovss::Error, before anything uses it.
struct ShardIdentity {
  nlohmann::json rest;  // without shard and stems: the same in every shard of one run
  int index = 0, count = 0;
  std::vector<std::string> stems;
  int num_classes = 0;
};

ShardIdentity read_shard_identity(const std::string& dir, nlohmann::json id) {
  const std::string where = "'" + dir + "/run.json'";
  if (!id.is_object()) throw Error(where + " is not a JSON object (not an evaluation run folder?)");
  const auto shard = id.find("shard");
  if (shard == id.end() || !shard->is_object() || !shard->contains("index") || !shard->contains("count"))
    throw Error(where + " has no shard (run it with --shard k/N to merge it)");
  const nlohmann::json& index = shard->at("index");
  const nlohmann::json& count = shard->at("count");
  const auto whole = [](const nlohmann::json& v, int64_t low, int64_t high) {
    return v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{INT32_MAX}) &&
           v.get<int64_t>() >= low && v.get<int64_t>() <= high;
  };
  if (!whole(count, 1, INT32_MAX) || !whole(index, 0, count.get<int64_t>() - 1))
    throw Error(where + ": shard " + index.dump() + "/" + count.dump() + " is not k/N with 0 <= k < N");
  ShardIdentity out;
  out.index = static_cast<int>(index.get<int64_t>());
  out.count = static_cast<int>(count.get<int64_t>());
  const auto stems = id.find("stems");
  if (stems == id.end() || !stems->is_array()) throw Error(where + ": 'stems' is not the list of the run's images");
  for (const auto& stem : *stems) {
    if (!stem.is_string()) throw Error(where + ": 'stems' holds " + stem.dump() + ", not an image stem");
    out.stems.push_back(stem.get<std::string>());
  }
  // The classes the counts are kept for; the metrics name them and score by the protocol.
  const auto classes = id.find("num_scored_classes");
  if (classes == id.end() || !whole(*classes, 1, 65535))
    throw Error(where + ": 'num_scored_classes' is not a class count from 1 to 65535");
  out.num_classes = static_cast<int>(classes->get<int64_t>());
  const auto names = id.find("scored_classes");
  if (names == id.end() || !names->is_array() || names->size() != static_cast<size_t>(out.num_classes) ||
      !std::all_of(names->begin(), names->end(), [](const nlohmann::json& n) { return n.is_string(); }))
    throw Error(where + ": 'scored_classes' is not a list of " + std::to_string(out.num_classes) + " class names");
  const auto protocol = id.find("protocol");
  if (protocol == id.end() || !protocol->is_string()) throw Error(where + ": 'protocol' is not a protocol name");
  id.erase("shard");
  id.erase("stems");
  out.rest = std::move(id);
  return out;
}

}  // namespace

Merged merge_runs(const std::vector<std::string>& dirs) {
  if (dirs.empty()) throw Error("--merge needs the run folders of the shards");
  Merged m;
  std::set<int> seen;
  int shard_count = -1;
  for (const auto& dir : dirs) {
    const RunDir run = RunDir::existing(dir);
    ShardIdentity shard = read_shard_identity(dir, run.identity());
    const int index = shard.index, count = shard.count;
    const std::vector<std::string>& stems = shard.stems;
    nlohmann::json& id = shard.rest;
    if (m.identity.is_null()) {
      m.identity = id;
      shard_count = count;
      m.totals = Counts(shard.num_classes);
    } else {
      const std::string diff = util::first_difference(m.identity, id);
      if (!diff.empty())
        throw Error("'" + dir + "' is not a shard of the same run as '" + dirs.front() + "' (" + diff + " differs)");
      if (count != shard_count)
        throw Error("'" + dir + "' is shard " + std::to_string(index) + "/" + std::to_string(count) + " but '" +
                    dirs.front() + "' is one of " + std::to_string(shard_count) + " shards");
    }
    if (!seen.insert(index).second) throw Error("shard " + std::to_string(index) + " is given twice ('" + dir + "')");
    long missing = 0;
    for (const auto& stem : stems) {
      const auto record = run.read_record(stem, m.totals.num_classes());
      if (!record) {
        ++missing;
        continue;
      }
      m.totals += record->counts;
      ++m.images;
    }
    if (missing)
      throw Error("shard '" + dir + "' has " + std::to_string(missing) + " of " + std::to_string(stems.size()) +
                  " images without results (failed or not run yet): finish it with its eval command first");
  }
  for (int k = 0; k < shard_count; ++k)
    if (!seen.count(k))
      throw Error("shard " + std::to_string(k) + "/" + std::to_string(shard_count) + " is missing from --merge");
  return m;
}

}  // namespace pnpovss::eval
