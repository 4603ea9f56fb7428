#include "pnpovss/check/densecrf_fixture.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "pnpovss/crf/densecrf.h"
#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/safetensors.h"

namespace pnpovss::check {

namespace {

using nlohmann::json;

// The fixture README's recommendation, used when reference.json gives no figure.
constexpr double kDefaultQAtol = 1e-3;
constexpr double kDefaultQMeanAtol = 1e-5;
constexpr double kDefaultMarginThreshold = 1e-3;
// Recomputing the unary from the stored float32 scores in double differs from the reference's
// float32 (PnP-OVSS) or float64 (CutLER) softmax by float rounding only; U is at most ~11.5.
constexpr double kUnaryAtol = 1e-4;
constexpr double kUnaryRtol = 1e-5;

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

TensorCheck failed_check(const std::string& name, const std::string& why) {
  TensorCheck c;
  c.name = name;
  c.skipped = true;
  c.max_abs_error = INFINITY;
  c.note = why;
  return c;
}

template <typename T>
std::vector<T> copy_data(const io::TensorView& t) {
  std::vector<T> out(t.nbytes / sizeof(T));
  std::memcpy(out.data(), t.data, out.size() * sizeof(T));
  return out;
}

// The named tensor if it exists with the expected dtype and shape; otherwise records why in
// a failed check and returns null.
const io::TensorView* expect_tensor(const io::SafetensorsFile& file, const json& names, const char* role,
                                    io::DType dtype, const std::vector<int64_t>& shape, const std::string& check_name,
                                    std::vector<TensorCheck>& checks) {
  const std::string name = io::json_string(names, role, "", check_name);
  if (name.empty()) {
    checks.push_back(failed_check(check_name, std::string("case names no '") + role + "' tensor"));
    return nullptr;
  }
  const io::TensorView* t = file.find(name);
  if (t == nullptr) {
    checks.push_back(failed_check(check_name, "tensor '" + name + "' missing from " + file.origin()));
    return nullptr;
  }
  if (t->dtype != dtype) {
    checks.push_back(failed_check(check_name, "tensor '" + name + "' is " + io::dtype_name(t->dtype) + ", expected " +
                                                  io::dtype_name(dtype)));
    return nullptr;
  }
  if (t->shape != shape) {
    checks.push_back(shape_mismatch(check_name, t->shape, shape));
    return nullptr;
  }
  return t;
}

// Std-dev of a kernel: a number, or [sx, sy] with sx == sy (the only form DenseCrfParams has).
bool read_std(const json& kernel, const char* key, float& out) {
  if (!kernel.contains(key)) return false;
  const json& v = kernel[key];
  if (v.is_number()) {
    out = v.get<float>();
    return true;
  }
  if (v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number() && v[0] == v[1]) {
    out = v[0].get<float>();
    return true;
  }
  return false;
}

// Parameters of a case, or an explanation of what this implementation does not support.
bool read_params(const json& c, DenseCrfParams& p, std::string& why) {
  const std::string where = "densecrf case " + io::json_string(c, "name", "?", "densecrf case");
  p.iterations = static_cast<int>(io::json_int(c, "n_iter", 10, where));
  const json params = c.value("params", json::object());
  const std::string kernel = io::json_string(params, "kernel", "DIAG_KERNEL", where);
  const std::string normalization = io::json_string(params, "normalization", "NORMALIZE_SYMMETRIC", where);
  const std::string compat = io::json_string(params, "compatibility", "PottsCompatibility", where);
  if (kernel != "DIAG_KERNEL" || normalization != "NORMALIZE_SYMMETRIC" || compat.rfind("Potts", 0) != 0) {
    why = "unsupported options " + kernel + "/" + normalization + "/" + compat;
    return false;
  }
  const json gaussian = params.value("gaussian", json::object());
  const json bilateral = params.value("bilateral", json::object());
  if (!read_std(gaussian, "sxy", p.gaussian_sxy) || !read_std(bilateral, "sxy", p.bilateral_sxy) ||
      !read_std(bilateral, "srgb", p.bilateral_srgb)) {
    why = "kernel std-devs missing or anisotropic";
    return false;
  }
  p.gaussian_weight = static_cast<float>(io::json_number(gaussian, "compat", 0.0, where));
  p.bilateral_weight = static_cast<float>(io::json_number(bilateral, "compat", 0.0, where));
  return true;
}

// Threshold named by a "n_pixels_with_margin_below_<t>" field of the tolerance block.
double margin_threshold(const json& tolerance, int64_t& documented) {
  static const std::string prefix = "n_pixels_with_margin_below_";
  documented = -1;
  if (tolerance.is_object())
    for (auto it = tolerance.begin(); it != tolerance.end(); ++it)
      if (it.key().rfind(prefix, 0) == 0) {
        try {
          const double t = std::stod(it.key().substr(prefix.size()));
          if (it.value().is_number_integer()) documented = it.value().get<int64_t>();
          return t;
        } catch (const std::exception&) {
          // not a number: keep looking
        }
      }
  return kDefaultMarginThreshold;
}

void check_unary(const std::string& name, const json& c, const io::SafetensorsFile& file, const json& names,
                 const std::vector<int64_t>& shape, const std::vector<float>& unary, std::vector<TensorCheck>& checks) {
  if (!names.contains("scores")) return;
  const std::string check_name = name + ".unary_from_scores";
  const io::TensorView* t = expect_tensor(file, names, "scores", io::DType::F32, shape, check_name, checks);
  if (t == nullptr) return;
  std::vector<float> scores = copy_data<float>(*t);
  const float scale = static_cast<float>(io::json_number(c, "score_scale", 1.0, name));
  for (float& s : scores) s *= scale;  // float32, as numpy scales a float32 array
  const int labels = static_cast<int>(shape[0]);
  const int64_t pixels = shape[1] * shape[2];
  try {
    const std::vector<float> got = crf::unary_from_probabilities(scores.data(), labels, pixels);
    TensorCheck check = compare_floats(check_name, got.data(), unary.data(), pixels * labels,
                                       Tolerance{kUnaryAtol, kUnaryRtol});
    check.note = "softmax(" + fmt(scale) + " * scores) -> -log(clip(p, 1e-5, 1))";
    checks.push_back(check);
  } catch (const Error& e) {
    checks.push_back(failed_check(check_name, e.what()));
  }
}

void check_case(const json& c, const io::SafetensorsFile& file, const DenseCrfSolver& solve,
                std::vector<TensorCheck>& checks) {
  const std::string name = io::json_string(c, "name", "case" + std::to_string(checks.size()), "densecrf fixture");
  const std::string where = "densecrf case " + name;
  const int64_t height = io::json_int(c, "H", 0, where);
  const int64_t width = io::json_int(c, "W", 0, where);
  const int64_t labels = io::json_int(c, "n_labels", 0, where);
  if (height < 1 || width < 1 || labels < 1 || height > std::numeric_limits<int>::max() ||
      width > std::numeric_limits<int>::max() || labels > std::numeric_limits<int>::max()) {
    checks.push_back(failed_check(name + ".Q", "bad H/W/n_labels in reference.json"));
    return;
  }
  const int64_t pixels = height * width;
  const json names = c.value("tensors", json::object());
  const std::vector<int64_t> stack_shape = {labels, height, width};

  const io::TensorView* image = expect_tensor(file, names, "image", io::DType::U8, {height, width, 3}, name + ".Q", checks);
  const io::TensorView* unary_t = image ? expect_tensor(file, names, "unary", io::DType::F32, stack_shape, name + ".Q", checks) : nullptr;
  const io::TensorView* q_t = unary_t ? expect_tensor(file, names, "Q", io::DType::F32, stack_shape, name + ".Q", checks) : nullptr;
  const io::TensorView* labels_t =
      expect_tensor(file, names, "labels", io::DType::I32, {height, width}, name + ".labels", checks);
  if (q_t == nullptr) return;
  const std::vector<float> unary = copy_data<float>(*unary_t);
  check_unary(name, c, file, names, stack_shape, unary, checks);

  DenseCrfParams params;
  std::string why;
  if (!read_params(c, params, why)) {
    checks.push_back(failed_check(name + ".Q", why));
    return;
  }
  crf::DenseCrfResult got;
  try {
    const std::vector<uint8_t> rgb = copy_data<uint8_t>(*image);
    got = solve(rgb.data(), static_cast<int>(height), static_cast<int>(width), unary.data(), static_cast<int>(labels),
                params);
  } catch (const Error& e) {
    checks.push_back(failed_check(name + ".Q", e.what()));
    return;
  }

  const json tolerance = c.value("tolerance", json::object());
  const double q_atol = io::json_number(tolerance, "Q_max_abs_atol_same_lattice",
                                        io::json_number(tolerance, "Q_max_abs_atol", kDefaultQAtol, where), where);
  const double mean_atol = io::json_number(tolerance, "Q_mean_abs_atol", kDefaultQMeanAtol, where);
  const std::vector<float> ref_q = copy_data<float>(*q_t);
  TensorCheck q_check = compare_floats(name + ".Q", got.q.data(), ref_q.data(), pixels * labels, Tolerance{q_atol, 0.0});
  double mean = 0.0;
  for (int64_t k = 0; k < pixels * labels; ++k) mean += std::fabs(static_cast<double>(got.q[k]) - ref_q[k]);
  mean /= static_cast<double>(pixels * labels);
  const bool mean_ok = mean <= mean_atol;  // false for NaN too
  q_check.note = "mean_abs_err=" + fmt(mean) + (mean_ok ? " <= " : " > ") + fmt(mean_atol) + ", " +
                 std::to_string(params.iterations) + " iterations";
  q_check.passed = q_check.passed && mean_ok;
  checks.push_back(q_check);

  if (labels_t == nullptr) return;
  int64_t documented = -1;
  const double threshold = margin_threshold(tolerance, documented);
  std::vector<uint8_t> ambiguous(pixels, 0);
  for (int64_t i = 0; i < pixels; ++i) {
    float top1 = -INFINITY, top2 = -INFINITY;
    for (int64_t l = 0; l < labels; ++l) {
      const float v = ref_q[l * pixels + i];
      if (v > top1) {
        top2 = top1;
        top1 = v;
      } else if (v > top2) {
        top2 = v;
      }
    }
    ambiguous[i] = labels > 1 && static_cast<double>(top1) - top2 < threshold;
  }
  const std::vector<int32_t> ref_labels32 = copy_data<int32_t>(*labels_t);
  const std::vector<int64_t> ref_labels(ref_labels32.begin(), ref_labels32.end());
  const std::vector<int64_t> got_labels(got.labels.begin(), got.labels.end());
  TensorCheck l_check = compare_ints_masked(name + ".labels", got_labels.data(), ref_labels.data(), ambiguous.data(), pixels);
  int64_t skipped = 0;
  for (uint8_t a : ambiguous) skipped += a;
  l_check.note += " (reference margin < " + fmt(threshold) + ")";
  if (documented >= 0 && documented != skipped)
    l_check.note += "; reference.json lists " + std::to_string(documented);
  checks.push_back(l_check);
}

}  // namespace

bool is_densecrf_fixture(const json& reference) {
  if (!reference.is_object() || !reference.contains("cases")) return false;
  const json& cases = reference["cases"];
  if (!cases.is_array() || cases.empty()) return false;
  for (const json& c : cases) {
    if (!c.is_object() || !c.contains("tensors") || !c.contains("params")) return false;
    const json& t = c["tensors"];
    const json& p = c["params"];
    if (!t.is_object() || !p.is_object()) return false;
    for (const char* key : {"image", "unary", "Q", "labels"})
      if (!t.contains(key)) return false;
    if (!p.contains("gaussian") || !p.contains("bilateral")) return false;
  }
  return true;
}

std::vector<TensorCheck> check_densecrf_fixture(const std::string& dir, const DenseCrfSolver& solve) {
  const json reference = io::read_json_file(dir + "/reference.json");
  if (!is_densecrf_fixture(reference))
    throw Error("'" + dir + "/reference.json' does not describe Dense CRF cases (no cases with image/unary/Q/labels)");
  const io::SafetensorsFile file = io::SafetensorsFile::open(dir + "/reference.safetensors");
  std::vector<TensorCheck> checks;
  for (const json& c : reference["cases"]) check_case(c, file, solve, checks);
  return checks;
}

}  // namespace pnpovss::check
