// An evaluation run folder read back (eval/run_dir, eval/evaluation): run.json compared with
// the run being resumed, the per-image records (images/<stem>.json) with their counts, and
// `eval --merge` of shard folders, which reads each run.json's shard, stems and class count and
// adds up the records. The folders are written to a scratch folder.
// Input: run.json, NUL, images/img.json of a first folder, then optionally NUL, run.json, NUL,
// images/img.json of a second (merged with the first).
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "pnpovss/eval/evaluation.h"
#include "pnpovss/eval/run_dir.h"

namespace {

using namespace pnpovss;

// What a resumed run would be: the identity an earlier run.json is compared with.
const nlohmann::json& identity() {
  static const nlohmann::json id = {{"dataset", "voc20"},  {"protocol", "mmseg"},   {"num_scored_classes", 21},
                                    {"limit", nullptr},    {"shard", nullptr},      {"stems", {"img"}},
                                    {"settings", {{"attention_layer_1based", 8}}}};
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts = fuzz::split_parts(data, size, 4);
  const fuzz::ScratchDir& scratch = fuzz::ScratchDir::get();
  scratch.reset();
  std::vector<std::string> dirs;
  for (size_t i = 0; i < parts.size(); i += 2) {
    const std::string dir = "run" + std::to_string(i / 2);
    scratch.write(dir + "/run.json", parts[i]);
    if (i + 1 < parts.size()) scratch.write(dir + "/images/img.json", parts[i + 1]);
    dirs.push_back(scratch.file(dir));
  }
  // A record as resume reads it: damaged records count as not done, never as an error.
  if (parts.size() > 1) {
    const nlohmann::json record = fuzz::parse_json(parts[1]);
    if (record.is_object() && record.contains("counts"))
      for (int classes : {1, 21, 150})
        fuzz::accepts([&] { eval::Counts::from_json(record.at("counts"), classes, "img.json"); });
  }
  fuzz::accepts([&] {
    const eval::RunDir run = eval::RunDir::open(dirs[0], identity());
    bool damaged = false;
    const auto record = run.read_record("img", 21, &damaged);
    fuzz::expect(!(record && damaged), "a record both read and damaged");
    if (record) fuzz::expect(record->counts.num_classes() == 21, "a record of another class count");
  });
  fuzz::accepts([&] {
    const eval::Merged merged = eval::merge_runs(dirs);
    fuzz::expect(merged.images >= 0, "a negative image count");
  });
  return 0;
}
