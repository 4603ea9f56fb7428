// The trials journal: one JSON object per line, appended and flushed to the disk as each trial
// (or, in the exhaustive mode, each image) finishes, so an interrupted tuning run resumes where it
// stopped, losing at most the trial in progress.
// The first line describes the run; a journal written for another run (other model, images,
// scorer or method options) is refused rather than mixed in.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pnpovss/io/file_write.h"
#include "pnpovss/tune/search.h"
#include "pnpovss/tune/trial.h"

namespace pnpovss::tune {

// Tuning stages in the paper's order.
constexpr const char* kStageLayerHead = "layer_head_threshold";
constexpr const char* kStageBlur = "blur";

struct TrialRecord {
  std::string stage;
  MaskSource masks = MaskSource::GradCam;
  Candidate setting;
  RewardTally tally;
  double seconds = 0.0;
  bool resumed = false;  // read back from the journal, not computed in this run
};

nlohmann::ordered_json to_json(const TrialRecord& t);
// Throws pnpovss::Error naming `where` for a malformed record.
TrialRecord trial_from_json(const nlohmann::json& j, const std::string& where);
// The identity of a trial: stage, masks and setting (values as written, 1-based).
std::string trial_key(const std::string& stage, MaskSource masks, const Candidate& c);

class Journal {
 public:
  // Opens `path` for `run` (any JSON describing what the rewards depend on). An existing journal
  // is read back when its run equals `run`; with `restart` it is replaced; otherwise a different
  // run is an error. A torn last line (a kill mid-append) is dropped and cut from the file before
  // anything is appended; the file is only ever replaced whole (write_file_atomic), so a kill
  // while opening loses nothing. Throws pnpovss::Error.
  Journal(const std::string& path, const nlohmann::json& run, bool restart);

  const std::string& path() const { return path_; }
  const TrialRecord* find(const std::string& stage, MaskSource masks, const Candidate& c) const;
  void append(const TrialRecord& trial);

  // Exhaustive mode: per image, the win flags of every stage-1 candidate.
  const std::vector<std::vector<bool>>* grid_image(size_t image) const;
  void append_grid_image(size_t image, const std::string& name, const std::vector<std::vector<bool>>& wins,
                         double seconds);
  double grid_image_seconds(size_t image) const;

 private:
  void write_line(const nlohmann::ordered_json& line);

  std::string path_;
  std::unique_ptr<io::AppendFile> out_;
  std::map<std::string, TrialRecord> trials_;
  std::map<size_t, std::vector<std::vector<bool>>> grid_;
  std::map<size_t, double> grid_seconds_;
};

}  // namespace pnpovss::tune
