// The folder of one evaluation run, written so that a run killed at any point can be resumed
// by the same command without losing or double-counting an image:
//
//   run.json              what the run is (dataset, data root, protocol, classes, settings,
//                         model or predictions folder, limit, shard, the image stems); a
//                         second run into the folder must match it
//   images/<stem>.json    per-image counts, written atomically after the image's prediction;
//                         an image is done exactly when this file exists
//   pred/<stem>.png       the predicted label map of a model run (evaluation classes 0..C-1,
//                         255, or 65535 above 254 classes, for no class)
//   metrics.json, per_class.md, per_class.csv, examples/   written at the end
//
// Every file is written whole through a temporary file and renamed into place, the prediction
// before the record, each flushed to the disk; the next run removes the temporary file that a
// kill left behind.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "pnpovss/eval/metrics.h"

namespace pnpovss::eval {

struct ImageRecord {
  std::string stem;
  Counts counts;
  double seconds = 0;
};

class RunDir {
 public:
  // Creates `dir` (and its subfolders) and writes `identity` as run.json, or reopens a folder
  // whose run.json equals `identity`. Throws pnpovss::Error naming the first field that differs
  // (a folder of another dataset, protocol or settings), or when the folder cannot be written.
  static RunDir open(const std::string& dir, const nlohmann::json& identity);
  // Removes what an evaluation wrote into `dir` (run.json, images/, pred/, the metrics, tables
  // and examples) and nothing else, so that the next open() starts afresh (--restart).
  static void discard(const std::string& dir);
  // Removes the temporary files that a killed run left half-written in `dir` and its images/,
  // pred/ and examples/ (io::remove_stale_temporaries). Call it from one process before the
  // others open the folder: the ranks of a run may be on other machines, whose writes it cannot
  // tell from a dead process's. Returns how many were removed.
  static size_t remove_stale_temporaries(const std::string& dir);
  // Reads an existing run folder (for --merge); throws when it has no run.json.
  static RunDir existing(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const nlohmann::json& identity() const { return identity_; }
  std::string pred_path(const std::string& stem) const { return dir_ + "/pred/" + stem + ".png"; }
  std::string record_path(const std::string& stem) const { return dir_ + "/images/" + stem + ".json"; }

  // The record of `stem` if the image is done. A damaged record (not JSON, cut short, another
  // image's, counts of another size) counts as absent and sets `*damaged` when given: a write
  // killed half-way is simply computed again.
  std::optional<ImageRecord> read_record(const std::string& stem, int num_classes, bool* damaged = nullptr) const;
  void write_record(const ImageRecord& record) const;
  // How many image records the folder holds (every rank's, under MPI).
  long count_records() const;

 private:
  std::string dir_;
  nlohmann::json identity_;
};

}  // namespace pnpovss::eval
