#include "pnpovss/eval/run_dir.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/io/png_writer.h"

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

std::string short_dump(const nlohmann::json& j) {
  std::string s = j.is_null() ? "(absent)" : j.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

}  // namespace

std::string first_difference(const nlohmann::json& a, const nlohmann::json& b, const std::string& path) {
  if (a.is_object() && b.is_object()) {
    for (const auto& [key, value] : a.items()) {
      const std::string sub = path.empty() ? key : path + "." + key;
      if (!b.contains(key)) return sub;
      const std::string d = first_difference(value, b.at(key), sub);
      if (!d.empty()) return d;
    }
    for (const auto& [key, value] : b.items())
      if (!a.contains(key)) return path.empty() ? key : path + "." + key;
    return "";
  }
  return a == b ? "" : (path.empty() ? "(document)" : path);
}

RunDir RunDir::open(const std::string& dir, const nlohmann::json& identity) {
  make_dir(dir + "/images");
  make_dir(dir + "/pred");
  RunDir r;
  r.dir_ = dir;
  r.identity_ = identity;
  const std::string path = dir + "/run.json";
  if (io::file_exists(path)) {
    const nlohmann::json old = io::read_json_file(path);
    const std::string diff = first_difference(old, identity);
    if (!diff.empty()) {
      // Resolve the dotted path for the message.
      nlohmann::json was = old, now = identity;
      size_t start = 0;
      while (start <= diff.size()) {
        const size_t dot = std::min(diff.find('.', start), diff.size());
        const std::string key = diff.substr(start, dot - start);
        was = was.is_object() && was.contains(key) ? was.at(key) : nlohmann::json();
        now = now.is_object() && now.contains(key) ? now.at(key) : nlohmann::json();
        start = dot + 1;
      }
      throw Error("the run folder '" + dir + "' holds a run with other settings (" + diff + ": " + short_dump(was) +
                  " there, " + short_dump(now) + " now): resume with the same command, or use another --out");
    }
    return r;
  }
  try {
    io::write_file_atomic(path, identity.dump(2) + "\n");
  } catch (const Error&) {
    throw Error("cannot write into the run folder '" + dir + "': choose another with --out");
  }
  return r;
}

RunDir RunDir::existing(const std::string& dir) {
  const std::string path = dir + "/run.json";
  if (!io::file_exists(path)) throw Error("'" + dir + "' is not an evaluation run folder (no run.json)");
  RunDir r;
  r.dir_ = dir;
  r.identity_ = io::read_json_file(path);
  return r;
}

std::optional<ImageRecord> RunDir::read_record(const std::string& stem, int num_classes) const {
  const std::string path = record_path(stem);
  if (!io::file_exists(path)) return std::nullopt;
  const nlohmann::json j = io::read_json_file(path);
  if (!j.is_object() || !j.contains("counts") || j.value("stem", "") != stem)
    throw Error("the image record '" + path + "' is damaged: delete it to recompute that image");
  ImageRecord r;
  r.stem = stem;
  r.counts = Counts::from_json(j.at("counts"), num_classes, path);
  r.seconds = j.value("seconds", 0.0);
  return r;
}

void RunDir::write_record(const ImageRecord& record) const {
  const nlohmann::json j = {{"stem", record.stem}, {"counts", record.counts.to_json()}, {"seconds", record.seconds}};
  io::write_file_atomic(record_path(record.stem), j.dump() + "\n");
}

}  // namespace pnpovss::eval
