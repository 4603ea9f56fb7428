#include "pnpovss/eval/metrics.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "pnpovss/error.h"

namespace pnpovss::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double ratio(int64_t a, int64_t b) { return b == 0 ? kNaN : static_cast<double>(a) / static_cast<double>(b); }

nlohmann::ordered_json number_or_null(double v) {
  if (std::isnan(v)) return nullptr;
  return v;
}

std::string fixed2(double percent) {
  if (std::isnan(percent)) return "nan";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", percent);
  return text;
}

// CSV field: quoted when it holds a comma, quote or newline.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

Counts::Counts(int num_classes)
    : intersect(static_cast<size_t>(num_classes), 0),
      pred(static_cast<size_t>(num_classes), 0),
      label(static_cast<size_t>(num_classes), 0) {}

Counts& Counts::operator+=(const Counts& o) {
  if (o.num_classes() != num_classes())
    throw Error("cannot add counts of " + std::to_string(o.num_classes()) + " classes to counts of " +
                std::to_string(num_classes()));
  for (size_t k = 0; k < label.size(); ++k) {
    intersect[k] += o.intersect[k];
    pred[k] += o.pred[k];
    label[k] += o.label[k];
  }
  return *this;
}

nlohmann::json Counts::to_json() const {
  nlohmann::json out = nlohmann::json::array();
  for (size_t k = 0; k < label.size(); ++k)
    if (intersect[k] || pred[k] || label[k]) out.push_back({k, intersect[k], pred[k], label[k]});
  return out;
}

Counts Counts::from_json(const nlohmann::json& j, int num_classes, const std::string& where) {
  Counts c(num_classes);
  if (!j.is_array()) throw Error(where + ": counts must be a list of [class, intersect, pred, label]");
  for (const auto& row : j) {
    bool ok = row.is_array() && row.size() == 4;
    for (size_t i = 0; ok && i < 4; ++i) ok = row[i].is_number_integer() && row[i].get<int64_t>() >= 0;
    if (!ok) throw Error(where + ": malformed counts entry " + row.dump());
    const int64_t k = row[0].get<int64_t>();
    if (k >= num_classes) throw Error(where + ": class " + std::to_string(k) + " is outside 0.." + std::to_string(num_classes - 1));
    c.intersect[static_cast<size_t>(k)] = row[1].get<int64_t>();
    c.pred[static_cast<size_t>(k)] = row[2].get<int64_t>();
    c.label[static_cast<size_t>(k)] = row[3].get<int64_t>();
  }
  return c;
}

Counts count_image(const Scoring& scoring, const LabelMap& gt, const std::vector<int32_t>& pred, int pred_width,
                   int pred_height, const std::string& gt_origin, const std::string& pred_origin) {
  if (pred_width != gt.width || pred_height != gt.height)
    throw Error("'" + pred_origin + "' is " + std::to_string(pred_width) + "x" + std::to_string(pred_height) +
                " but its label PNG '" + gt_origin + "' is " + std::to_string(gt.width) + "x" +
                std::to_string(gt.height));
  const int n = scoring.num_classes();
  Counts c(n);
  for (size_t i = 0; i < gt.values.size(); ++i) {
    const int32_t g = scoring.gt(gt.values[i]);
    if (g == kIgnore) continue;
    if (g == kInvalid) {
      throw Error("'" + gt_origin + "' holds the label value " + std::to_string(gt.values[i]) + " at pixel (" +
                  std::to_string(i % static_cast<size_t>(gt.width)) + ", " +
                  std::to_string(i / static_cast<size_t>(gt.width)) + "), outside the dataset's classes");
    }
    ++c.label[static_cast<size_t>(g)];
    const int32_t p = scoring.pred(pred[i]);
    if (p < 0 || p >= n) continue;  // no class: lowers recall only
    ++c.pred[static_cast<size_t>(p)];
    if (p == g) ++c.intersect[static_cast<size_t>(g)];
  }
  return c;
}

Summary summarize(const Scoring& scoring, const Counts& totals) {
  Summary s;
  double iou_sum = 0, acc_sum = 0;
  int iou_n = 0, acc_n = 0;
  int64_t all_intersect = 0, all_label = 0;
  for (int k = 0; k < totals.num_classes(); ++k) {
    const size_t i = static_cast<size_t>(k);
    ClassScore c;
    c.name = i < scoring.names.size() ? scoring.names[i] : "";
    c.intersect = totals.intersect[i];
    c.pred = totals.pred[i];
    c.label = totals.label[i];
    c.union_ = c.pred + c.label - c.intersect;
    c.iou = ratio(c.intersect, c.union_);
    c.acc = ratio(c.intersect, c.label);
    all_intersect += c.intersect;
    all_label += c.label;
    if (scoring.mean_over_present_labels) {
      // The released code: IoU and accuracy averaged over classes with ground-truth pixels.
      c.in_mean = c.label > 0;
      if (c.in_mean) {
        iou_sum += c.iou;
        acc_sum += c.acc;
        ++iou_n;
        ++acc_n;
      }
    } else {
      // MMSegmentation: nanmean, i.e. over the classes where the ratio is defined.
      c.in_mean = c.union_ > 0;
      if (!std::isnan(c.iou)) iou_sum += c.iou, ++iou_n;
      if (!std::isnan(c.acc)) acc_sum += c.acc, ++acc_n;
    }
    s.classes.push_back(c);
  }
  s.miou = iou_n ? iou_sum / iou_n : kNaN;
  s.macc = acc_n ? acc_sum / acc_n : kNaN;
  s.aacc = ratio(all_intersect, all_label);
  return s;
}

double percent2(double fraction) {
  if (std::isnan(fraction)) return fraction;
  // numpy.round(x, 2): scale, round half to even, scale back.
  return std::nearbyint(fraction * 100.0 * 100.0) / 100.0;
}

nlohmann::ordered_json summary_json(const Summary& s) {
  nlohmann::ordered_json j;
  j["mIoU"] = number_or_null(percent2(s.miou));
  j["mAcc"] = number_or_null(percent2(s.macc));
  j["aAcc"] = number_or_null(percent2(s.aacc));
  j["exact"] = {{"mIoU", number_or_null(s.miou * 100.0)},
                {"mAcc", number_or_null(s.macc * 100.0)},
                {"aAcc", number_or_null(s.aacc * 100.0)}};
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (size_t k = 0; k < s.classes.size(); ++k) {
    const ClassScore& c = s.classes[k];
    if (c.name.empty()) continue;
    rows.push_back({{"class", k},
                    {"name", c.name},
                    {"IoU", number_or_null(percent2(c.iou))},
                    {"Acc", number_or_null(percent2(c.acc))},
                    {"in_mean", c.in_mean},
                    {"intersect", c.intersect},
                    {"union", c.union_},
                    {"pred", c.pred},
                    {"label", c.label}});
  }
  j["per_class"] = rows;
  return j;
}

std::string summary_markdown(const Summary& s) {
  std::string out = "| class | name | IoU | Acc | label pixels |\n| ---: | --- | ---: | ---: | ---: |\n";
  for (size_t k = 0; k < s.classes.size(); ++k) {
    const ClassScore& c = s.classes[k];
    if (c.name.empty()) continue;
    out += "| " + std::to_string(k) + " | " + c.name + " | " + fixed2(percent2(c.iou)) + " | " +
           fixed2(percent2(c.acc)) + " | " + std::to_string(c.label) + " |\n";
  }
  out += "\nmIoU " + fixed2(percent2(s.miou)) + ", mAcc " + fixed2(percent2(s.macc)) + ", aAcc " +
         fixed2(percent2(s.aacc)) + "\n";
  return out;
}

std::string summary_csv(const Summary& s) {
  std::string out = "class,name,IoU,Acc,intersect,union,pred,label\n";
  for (size_t k = 0; k < s.classes.size(); ++k) {
    const ClassScore& c = s.classes[k];
    if (c.name.empty()) continue;
    out += std::to_string(k) + "," + csv_field(c.name) + "," + fixed2(percent2(c.iou)) + "," +
           fixed2(percent2(c.acc)) + "," + std::to_string(c.intersect) + "," + std::to_string(c.union_) + "," +
           std::to_string(c.pred) + "," + std::to_string(c.label) + "\n";
  }
  return out;
}

}  // namespace pnpovss::eval
