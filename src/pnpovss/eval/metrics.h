// MMSegmentation's IoU metric with exact integer counts: per scored class the intersection,
// prediction area and label area, summed over a whole split; union = pred + label - intersect.
// IoU = intersect / union, Acc = intersect / label, aAcc = sum intersect / sum label.
// MMSegmentation sums float32 histograms, which can round counts above 2^24; the integer sums
// here are the exact values those approximate.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pnpovss/eval/dataset.h"
#include "pnpovss/eval/label_png.h"

namespace pnpovss::eval {

struct Counts {
  std::vector<int64_t> intersect, pred, label;  // one entry per scored class

  Counts() = default;
  explicit Counts(int num_classes);
  int num_classes() const { return static_cast<int>(label.size()); }
  Counts& operator+=(const Counts& other);  // throws pnpovss::Error for a different class count
  bool operator==(const Counts& o) const { return intersect == o.intersect && pred == o.pred && label == o.label; }

  // Sparse JSON: [[class, intersect, pred, label], ...] for the classes with any count.
  nlohmann::json to_json() const;
  // Throws pnpovss::Error naming `where` for malformed input or a class outside 0..n-1.
  static Counts from_json(const nlohmann::json& j, int num_classes, const std::string& where);
};

// Counts of one image: `gt` raw ground-truth values, `pred` evaluation classes (anything
// outside 0..C-1 is "no class"). Throws pnpovss::Error when the sizes differ or a ground-truth
// value is not defined by the dataset (naming `gt_origin` and the value).
Counts count_image(const Scoring& scoring, const LabelMap& gt, const std::vector<int32_t>& pred, int pred_width,
                   int pred_height, const std::string& gt_origin, const std::string& pred_origin);

struct ClassScore {
  std::string name;
  int64_t intersect = 0, union_ = 0, pred = 0, label = 0;
  double iou = 0, acc = 0;          // fractions; NaN where undefined
  bool in_mean = false;             // counted in mIoU / mAcc
};

struct Summary {
  double miou = 0, macc = 0, aacc = 0;  // fractions; NaN when no class counts
  std::vector<ClassScore> classes;
};

Summary summarize(const Scoring& scoring, const Counts& totals);

// MMSegmentation's printed value: percent rounded to 2 decimals (NaN stays NaN).
double percent2(double fraction);

// {"mIoU", "mAcc", "aAcc" (percent, 2 decimals), "exact" (full precision percent),
// "per_class": [{"class", "name", "IoU", "Acc", "intersect", "union", "pred", "label"}]}.
// Undefined values are null. Classes without a name (unused ids) are left out.
nlohmann::ordered_json summary_json(const Summary& s);
// The per-class table as Markdown and as CSV (IoU and Acc in percent, 2 decimals).
std::string summary_markdown(const Summary& s);
std::string summary_csv(const Summary& s);

}  // namespace pnpovss::eval
