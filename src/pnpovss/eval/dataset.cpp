#include "pnpovss/eval/dataset.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>

#include "pnpovss/error.h"
#include "pnpovss/eval/class_names.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/util/ascii.h"

namespace pnpovss::eval {
namespace {

namespace fs = std::filesystem;

void require_dir(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    throw Error(what + " '" + path + "' does not exist or is not a folder" +
                " (the dataset must be laid out as MMSegmentation prepares it; see pnp-ovss eval --help)");
}

void require_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error(what + " '" + path + "' does not exist");
}

// Ids of a split file, one per line.
std::vector<std::string> read_split(const std::string& path) {
  require_file(path, "the split file");
  std::vector<std::string> ids = util::nonblank_lines(io::read_text_file(path));
  if (ids.empty()) throw Error("the split file '" + path + "' lists no images");
  return ids;
}

bool has_extension(const fs::path& p, const std::vector<std::string>& extensions) {
  const std::string ext = util::lower_ascii(p.extension().string());
  return std::find(extensions.begin(), extensions.end(), ext) != extensions.end();
}

// Image files of a folder, sorted by name, not recursive.
std::vector<std::string> list_images(const std::string& dir, const std::vector<std::string>& extensions) {
  require_dir(dir, "the image folder");
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (has_extension(it->path(), extensions) && !it->is_directory()) names.push_back(it->path().filename().string());
  if (ec) throw Error("cannot list the image folder '" + dir + "': " + ec.message());
  std::sort(names.begin(), names.end());
  if (names.empty()) throw Error("the image folder '" + dir + "' holds no images");
  return names;
}

// Samples from a split file: <images>/<id><image_ext>, <labels>/<id>.png.
std::vector<Sample> split_samples(const std::string& split, const std::string& images, const std::string& labels) {
  require_dir(images, "the image folder");
  require_dir(labels, "the label folder");
  std::vector<Sample> samples;
  for (const auto& id : read_split(split)) samples.push_back({id, images + "/" + id + ".jpg", labels + "/" + id + ".png"});
  return samples;
}

// Samples from an image folder: labels named <stem><label_suffix>.
std::vector<Sample> folder_samples(const std::string& images, const std::string& labels,
                                   const std::string& label_suffix, const std::vector<std::string>& extensions) {
  const std::vector<std::string> names = list_images(images, extensions);
  require_dir(labels, "the label folder");
  std::vector<Sample> samples;
  std::set<std::string> stems;
  for (const auto& name : names) {
    const std::string stem = fs::path(name).stem().string();
    if (!stems.insert(stem).second)
      throw Error("two images in '" + images + "' share the name '" + stem + "': results are keyed by file stem");
    samples.push_back({stem, images + "/" + name, labels + "/" + stem + label_suffix});
  }
  return samples;
}

std::vector<int32_t> plus_one(int count) {
  std::vector<int32_t> ids;
  for (int k = 0; k < count; ++k) ids.push_back(k + 1);
  return ids;
}

std::vector<int32_t> identity(int count) {
  std::vector<int32_t> ids;
  for (int k = 0; k < count; ++k) ids.push_back(k);
  return ids;
}

// A table of `size` raw values, all kInvalid.
std::vector<int32_t> invalid_table(size_t size) { return std::vector<int32_t>(size, kInvalid); }

Scoring mmseg_scoring(const Dataset& d) {
  Scoring s;
  s.protocol = Protocol::Mmseg;
  s.names = d.classes;
  const int c = d.num_classes();
  const bool reduce_zero = d.name == "voc20" || d.name == "context59" || d.name == "ade150";
  const int32_t ignore_value = c <= 255 ? 255 : 65535;
  s.gt_table = invalid_table(static_cast<size_t>(std::max(c + (reduce_zero ? 1 : 0), ignore_value + 1)));
  if (reduce_zero) {
    // MMSegmentation's reduce_zero_label: 0 -> 255, k -> k - 1.
    s.gt_table[0] = kIgnore;
    for (int k = 1; k <= c; ++k) s.gt_table[static_cast<size_t>(k)] = k - 1;
  } else {
    for (int k = 0; k < c; ++k) s.gt_table[static_cast<size_t>(k)] = k;
  }
  s.gt_table[static_cast<size_t>(ignore_value)] = kIgnore;
  s.pred_table = identity(c);
  // The method's background is "no class" unless the dataset scores a background class.
  s.pred_none = kIgnore;
  return s;
}

// The released code's scoring: background (or ADE's "other") is class 0 and counted, VOC's void
// 255 is background, COCO is scored by category id; ground truth outside 0..n-1 is excluded.
Scoring pnp_ovss_scoring(const Dataset& d) {
  Scoring s;
  s.protocol = Protocol::PnpOvss;
  s.mean_over_present_labels = true;
  s.pred_none = 0;
  s.pred_table = d.native_ids;
  const int c = d.num_classes();
  s.gt_table = invalid_table(256);
  s.gt_table[255] = kIgnore;
  if (d.name == "voc20" || d.name == "context59" || d.name == "ade150") {
    s.names.push_back(d.name == "ade150" ? "other" : "background");
    s.names.insert(s.names.end(), d.classes.begin(), d.classes.end());
    for (int k = 0; k <= c; ++k) s.gt_table[static_cast<size_t>(k)] = k;
    if (d.name == "voc20") s.gt_table[255] = 0;  // void counted as background
  } else if (d.name == "coco_object" || d.name == "coco_stuff171") {
    const int n = d.name == "coco_object" ? 91 : 183;
    s.names.assign(static_cast<size_t>(n), "");
    s.names[0] = d.name == "coco_object" ? "background" : "unlabeled";
    for (int k = 0; k < c; ++k) {
      s.names[static_cast<size_t>(d.native_ids[static_cast<size_t>(k)])] = d.classes[static_cast<size_t>(k)];
      s.gt_table[static_cast<size_t>(k)] = d.native_ids[static_cast<size_t>(k)];
    }
  } else {
    throw Error("--protocol pnp-ovss is the released code's scoring of the five benchmarks; the '" + d.name +
                "' dataset is scored with --protocol mmseg");
  }
  return s;
}

const std::map<std::string, DatasetRule>& rules() {
  static const std::map<std::string, DatasetRule> table = {
      {"voc20", DatasetRule::Voc},           {"context59", DatasetRule::Context},
      {"coco_object", DatasetRule::CocoObject}, {"coco_stuff171", DatasetRule::CocoStuff},
      {"ade150", DatasetRule::Ade},          {"folder", DatasetRule::UserImages}};
  return table;
}

// folder: classes.txt, and "background" (any case) is the method's background.
void open_folder(Dataset& d) {
  const std::string class_file = d.root + "/classes.txt";
  require_file(class_file, "the class-name file");
  d.classes = util::nonblank_lines(io::read_text_file(class_file));
  if (d.classes.empty()) throw Error("the class-name file '" + class_file + "' has no class names (one per line)");
  if (d.classes.size() > 65535) throw Error("the class-name file '" + class_file + "' has more than 65535 classes");
  std::set<std::string> seen;
  for (size_t k = 0; k < d.classes.size(); ++k) {
    if (!seen.insert(util::lower_ascii(d.classes[k])).second)
      throw Error("the class-name file '" + class_file + "' lists '" + d.classes[k] + "' twice");
    if (util::lower_ascii(d.classes[k]) == "background") d.background_class = static_cast<int>(k);
  }
  if (d.background_class >= 0 && d.classes.size() == 1)
    throw Error("the class-name file '" + class_file + "' has only 'background': nothing to segment");
  d.native_ids = plus_one(d.num_classes());
  d.samples = folder_samples(d.root + "/images", d.root + "/labels", ".png", {".jpg", ".jpeg", ".png", ".bmp"});
}

}  // namespace

Protocol parse_protocol(const std::string& name) {
  if (name == "mmseg") return Protocol::Mmseg;
  if (name == "pnp-ovss") return Protocol::PnpOvss;
  throw Error("unknown protocol '" + name + "' (valid: mmseg, pnp-ovss)");
}

std::string to_string(Protocol p) { return p == Protocol::Mmseg ? "mmseg" : "pnp-ovss"; }

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"voc20", "context59", "coco_object", "coco_stuff171", "ade150",
                                                 "folder"};
  return names;
}

DatasetRule dataset_rule(const std::string& name) {
  const auto it = rules().find(name);
  if (it == rules().end()) {
    std::string valid;
    for (const auto& n : dataset_names()) valid += (valid.empty() ? "" : ", ") + n;
    throw Error("unknown dataset '" + name + "' (valid: " + valid + ")");
  }
  return it->second;
}

std::vector<int> Dataset::prompt_classes() const {
  std::vector<int> out;
  for (int k = 0; k < num_classes(); ++k)
    if (k != background_class) out.push_back(k);
  return out;
}

std::vector<int32_t> Dataset::segment_labels() const {
  std::vector<int32_t> labels(classes.size(), 0);
  int32_t next = 1;
  for (int k : prompt_classes()) labels[static_cast<size_t>(k)] = next++;
  return labels;
}

Scoring Dataset::scoring(Protocol protocol) const {
  return protocol == Protocol::Mmseg ? mmseg_scoring(*this) : pnp_ovss_scoring(*this);
}

int32_t Dataset::eval_class_of_native(int32_t native) const {
  if (native == 0) return background_class;
  for (size_t k = 0; k < native_ids.size(); ++k)
    if (native_ids[k] == native) return static_cast<int32_t>(k);
  return -1;
}

Dataset open_dataset(const std::string& name, const std::string& data_root) {
  Dataset d;
  d.name = name;
  d.rule = dataset_rule(name);
  d.root = data_root;
  require_dir(data_root, "the data root");
  const std::string& r = data_root;
  if (name == "voc20") {
    d.classes = voc20_classes();
    d.native_ids = plus_one(20);
    const std::string base = r + "/VOCdevkit/VOC2012";
    d.samples = split_samples(base + "/ImageSets/Segmentation/val.txt", base + "/JPEGImages",
                              base + "/SegmentationClass");
  } else if (name == "context59") {
    d.classes = context59_classes();
    d.native_ids = plus_one(59);
    const std::string base = r + "/VOCdevkit/VOC2010";
    d.samples = split_samples(base + "/ImageSets/SegmentationContext/val.txt", base + "/JPEGImages",
                              base + "/SegmentationClassContext");
  } else if (name == "ade150") {
    d.classes = ade150_classes();
    d.native_ids = plus_one(150);
    const std::string base = r + "/ADEChallengeData2016";
    d.samples = folder_samples(base + "/images/validation", base + "/annotations/validation", ".png", {".jpg"});
  } else if (name == "coco_stuff171" || name == "coco_object") {
    const std::string base = r + "/coco_stuff164k";
    const auto& ids = coco_stuff171_category_ids();
    if (name == "coco_stuff171") {
      d.classes = coco_stuff171_classes();
      d.native_ids.assign(ids.begin(), ids.end());
    } else {
      d.classes = {"background"};
      const auto& things = coco_thing_classes();
      d.classes.insert(d.classes.end(), things.begin(), things.end());
      d.background_class = 0;
      d.native_ids = {0};
      d.native_ids.insert(d.native_ids.end(), ids.begin(), ids.begin() + 80);
    }
    const std::string suffix = name == "coco_stuff171" ? "_labelTrainIds.png" : "_instanceTrainIds.png";
    d.samples = folder_samples(base + "/images/val2017", base + "/annotations/val2017", suffix, {".jpg"});
  } else {
    open_folder(d);
  }
  return d;
}

}  // namespace pnpovss::eval
