#include "pnpovss/eval/run_dir.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "pnpovss/error.h"
#include "pnpovss/io/file_write.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/util/json_diff.h"

namespace pnpovss::eval {
namespace {

namespace fs = std::filesystem;

void make_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error("cannot create the run folder '" + dir + "'" + (ec ? " (" + ec.message() + ")" : std::string()) +
                ": choose another with --out");
}

}  // namespace

RunDir RunDir::open(const std::string& dir, const nlohmann::json& identity) {
  make_dir(dir + "/images");
  make_dir(dir + "/pred");
  RunDir r;
  r.dir_ = dir;
  r.identity_ = identity;
  const std::string path = dir + "/run.json";
  if (io::file_exists(path)) {
    const nlohmann::json old = io::read_json_file(path);
    const std::string diff = util::describe_difference(old, identity);
    if (!diff.empty())
      throw Error("the run folder '" + dir + "' holds a run with other settings (" + diff +
                  "): resume with the same command, or use another --out");
    return r;
  }
  try {
    io::write_file_atomic(path, identity.dump(2) + "\n");
  } catch (const Error& e) {
    throw Error("cannot write into the run folder '" + dir + "' (" + e.what() + "): choose another with --out");
  }
  return r;
}

size_t RunDir::remove_stale_temporaries(const std::string& dir) {
  size_t removed = 0;
  for (const char* sub : {"", "/images", "/pred", "/examples"}) removed += io::remove_stale_temporaries(dir + sub);
  return removed;
}

void RunDir::discard(const std::string& dir) {
  for (const char* name : {"images", "pred", "examples", "run.json", "metrics.json", "per_class.md", "per_class.csv"}) {
    std::error_code ec;
    fs::remove_all(fs::path(dir) / name, ec);
    if (ec) throw Error("cannot clear '" + (fs::path(dir) / name).string() + "' for --restart: " + ec.message());
  }
}

RunDir RunDir::existing(const std::string& dir) {
  const std::string path = dir + "/run.json";
  if (!io::file_exists(path)) throw Error("'" + dir + "' is not an evaluation run folder (no run.json)");
  RunDir r;
  r.dir_ = dir;
  r.identity_ = io::read_json_file(path);
  return r;
}

std::optional<ImageRecord> RunDir::read_record(const std::string& stem, int num_classes, bool* damaged) const {
  if (damaged) *damaged = false;
  const std::string path = record_path(stem);
  if (!io::file_exists(path)) return std::nullopt;
  try {
    const nlohmann::json j = io::read_json_file(path);
    if (!j.is_object() || !j.contains("counts") || j.value("stem", "") != stem)
      throw Error("the image record '" + path + "' is damaged");
    ImageRecord r;
    r.stem = stem;
    r.counts = Counts::from_json(j.at("counts"), num_classes, path);
    r.seconds = j.value("seconds", 0.0);
    return r;
  } catch (const std::exception&) {
    if (damaged) *damaged = true;
    return std::nullopt;
  }
}

long RunDir::count_records() const {
  long n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir_ + "/images", ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".json") ++n;
  return n;
}

void RunDir::write_record(const ImageRecord& record) const {
  const nlohmann::json j = {{"stem", record.stem}, {"counts", record.counts.to_json()}, {"seconds", record.seconds}};
  io::write_file_atomic(record_path(record.stem), j.dump() + "\n");
}

}  // namespace pnpovss::eval
