#include "pnpovss/tune/journal.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "pnpovss/error.h"
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
  const bool exists = std::filesystem::exists(path);
  if (exists && !restart) {
    const std::string text = io::read_text_file(path);
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) lines.push_back(line);
    const bool torn_tail = !text.empty() && text.back() != '\n';
    for (size_t n = 0; n < lines.size(); ++n) {
      const std::string where = "journal '" + path + "' line " + std::to_string(n + 1);
      json j = json::parse(lines[n], nullptr, false);
      if (j.is_discarded()) {
        if (torn_tail && n + 1 == lines.size()) break;  // the write that was cut off
        throw Error(where + " is not JSON: delete the journal or run with --restart");
      }
      const std::string kind = string_field(j, "kind", where);
      if (n == 0) {
        if (kind != "run") throw Error(where + ": the first line must describe the run");
        const std::string diff = util::describe_difference(field(j, "run", where), run);
        if (!diff.empty())
          throw Error("journal '" + path + "' belongs to a different tuning run (" + diff +
                      "): choose another --out, or --restart to discard it");
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
    }
    if (lines.empty()) restart = true;
  }
  if (!exists || restart) {
    out_.open(path, std::ios::out | std::ios::trunc);
    if (!out_) throw Error("cannot write the journal '" + path + "'");
    write_line({{"kind", "run"}, {"run", run}});
    return;
  }
  // Rewrite without a torn tail before appending, so every line stays whole.
  std::string text = io::read_text_file(path);
  if (!text.empty() && text.back() != '\n') text.erase(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
  out_.open(path, std::ios::out | std::ios::trunc);
  if (!out_) throw Error("cannot write the journal '" + path + "'");
  out_ << text;
  out_.flush();
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

void Journal::write_line(const ojson& line) {
  out_ << line.dump() << '\n';
  out_.flush();
  if (!out_) throw Error("cannot append to the journal '" + path_ + "'");
}

}  // namespace pnpovss::tune
