#include "pnpovss/tune/journal.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "pnpovss/error.h"
#include "pnpovss/io/file_write.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/util/json_diff.h"

namespace pnpovss::tune {
namespace {

using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

std::string format_value(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

const json& field(const json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) throw Error(where + ": no field '" + key + "'");
  return j.at(key);
}

int64_t int_field(const json& j, const char* key, const std::string& where) {
  const json& v = field(j, key, where);
  if (!v.is_number_integer()) throw Error(where + ": field '" + key + "' must be an integer");
  return v.get<int64_t>();
}

double number_field(const json& j, const char* key, const std::string& where) {
  const json& v = field(j, key, where);
  if (!v.is_number()) throw Error(where + ": field '" + key + "' must be a number");
  return v.get<double>();
}

std::string string_field(const json& j, const char* key, const std::string& where) {
  const json& v = field(j, key, where);
  if (!v.is_string()) throw Error(where + ": field '" + key + "' must be a string");
  return v.get<std::string>();
}

std::string flags_text(const std::vector<bool>& flags) {
  std::string s;
  for (bool b : flags) s += b ? '1' : '0';
  return s;
}

std::vector<bool> flags_from(const std::string& s, const std::string& where) {
  std::vector<bool> out;
  for (char c : s) {
    if (c != '0' && c != '1') throw Error(where + ": win flags must be a string of 0 and 1");
    out.push_back(c == '1');
  }
  return out;
}

}  // namespace

std::string trial_key(const std::string& stage, MaskSource masks, const Candidate& c) {
  return stage + "|" + to_string(masks) + "|" + std::to_string(c.layer) + "|" + std::to_string(c.head) + "|" +
         format_value(c.threshold) + "|" + format_value(c.blur);
}

ojson to_json(const TrialRecord& t) {
  ojson per_class = ojson::array();
  for (const auto& c : t.tally.per_class)
    per_class.push_back({{"name", c.name}, {"wins", c.wins}, {"images", c.images}});
  return {{"kind", "trial"},
          {"stage", t.stage},
          {"masks", to_string(t.masks)},
          {"layer", t.setting.layer},
          {"head", t.setting.head},
          {"threshold", t.setting.threshold},
          {"blur", t.setting.blur},
          {"reward", t.tally.reward},
          {"max_reward", t.tally.max_reward},
          {"per_class", per_class},
          {"seconds", std::round(t.seconds * 1e4) / 1e4}};
}

TrialRecord trial_from_json(const json& j, const std::string& where) {
  TrialRecord t;
  t.stage = string_field(j, "stage", where);
  t.masks = parse_mask_source(string_field(j, "masks", where));
  t.setting.layer = static_cast<int>(int_field(j, "layer", where));
  t.setting.head = static_cast<int>(int_field(j, "head", where));
  t.setting.threshold = number_field(j, "threshold", where);
  t.setting.blur = number_field(j, "blur", where);
  t.tally.reward = int_field(j, "reward", where);
  t.tally.max_reward = int_field(j, "max_reward", where);
  t.seconds = number_field(j, "seconds", where);
  const json& per_class = field(j, "per_class", where);
  if (!per_class.is_array()) throw Error(where + ": field 'per_class' must be a list");
  for (const auto& c : per_class)
    t.tally.per_class.push_back({string_field(c, "name", where), int_field(c, "wins", where),
                                 int_field(c, "images", where)});
  t.resumed = true;
  return t;
}

Journal::Journal(const std::string& path, const json& run, bool restart) : path_(path) {
  bool fresh = restart || !std::filesystem::exists(path);
  if (!fresh) {
    const std::string text = io::read_text_file(path);
    // Lines are appended whole (io::AppendFile), so only the last one can be cut short, by a
    // kill during its append: it is dropped, and the file cut back to the lines before it. A
    // last line that is whole but lacks its newline is kept and given one.
    std::string kept;  // the file as it should be: whole lines, each ending in a newline
    bool has_run = false;
    size_t n = 0;
    for (size_t begin = 0; begin < text.size(); ++n) {
      const size_t newline = text.find('\n', begin);
      const size_t end = newline == std::string::npos ? text.size() : newline;
      const std::string line = text.substr(begin, end - begin);
      begin = end + 1;
      if (line.empty()) continue;
      const std::string where = "journal '" + path + "' line " + std::to_string(n + 1);
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded()) {
        if (newline == std::string::npos) break;  // the last line, whose append was cut off
        throw Error(where + " is not JSON: delete the journal or run with --restart");
      }
      const std::string kind = string_field(j, "kind", where);
      if (!has_run) {
        if (kind != "run") throw Error(where + ": the first line must describe the run");
        const std::string diff = util::describe_difference(field(j, "run", where), run);
        if (!diff.empty())
          throw Error("journal '" + path + "' belongs to a different tuning run (" + diff +
                      "): choose another --out, or --restart to discard it");
        has_run = true;
      } else if (kind == "trial") {
        const TrialRecord t = trial_from_json(j, where);
        trials_[trial_key(t.stage, t.masks, t.setting)] = t;
      } else if (kind == "grid_image") {
        const auto image = static_cast<size_t>(int_field(j, "image", where));
        std::vector<std::vector<bool>> wins;
        for (const auto& entry : field(j, "wins", where)) {
          if (!entry.is_string()) throw Error(where + ": 'wins' must be a list of 0/1 strings");
          wins.push_back(flags_from(entry.get<std::string>(), where));
        }
        grid_[image] = wins;
        grid_seconds_[image] = number_field(j, "seconds", where);
      } else {
        throw Error(where + ": unknown record kind '" + kind + "'");
      }
      kept += line + "\n";
    }
    if (!has_run) {
      fresh = true;  // empty, or only the cut-off first line: nothing to keep
    } else if (kept != text) {
      io::write_file_atomic(path, kept);
    }
  }
  // A new journal appears with its run line or not at all.
  if (fresh) io::write_file_atomic(path, ojson({{"kind", "run"}, {"run", run}}).dump() + "\n");
  out_ = std::make_unique<io::AppendFile>(path);
}

const TrialRecord* Journal::find(const std::string& stage, MaskSource masks, const Candidate& c) const {
  const auto it = trials_.find(trial_key(stage, masks, c));
  return it == trials_.end() ? nullptr : &it->second;
}

void Journal::append(const TrialRecord& trial) {
  TrialRecord stored = trial;
  stored.resumed = true;
  trials_[trial_key(trial.stage, trial.masks, trial.setting)] = stored;
  write_line(to_json(trial));
}

const std::vector<std::vector<bool>>* Journal::grid_image(size_t image) const {
  const auto it = grid_.find(image);
  return it == grid_.end() ? nullptr : &it->second;
}

double Journal::grid_image_seconds(size_t image) const {
  const auto it = grid_seconds_.find(image);
  return it == grid_seconds_.end() ? 0.0 : it->second;
}

void Journal::append_grid_image(size_t image, const std::string& name, const std::vector<std::vector<bool>>& wins,
                                double seconds) {
  grid_[image] = wins;
  grid_seconds_[image] = seconds;
  ojson list = ojson::array();
  for (const auto& w : wins) list.push_back(flags_text(w));
  write_line({{"kind", "grid_image"},
              {"image", image},
              {"path", name},
              {"seconds", std::round(seconds * 1e4) / 1e4},
              {"wins", list}});
}

void Journal::write_line(const ojson& line) { out_->append(line.dump() + "\n"); }

}  // namespace pnpovss::tune
