#include "pnpovss/settings/settings_json.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "pnpovss/error.h"
#include "pnpovss/io/json_file.h"

namespace pnpovss {
namespace {

using json = nlohmann::json;

// The field of tune's best_settings.json that names the model (informational).
constexpr const char* kTunedFor = "tuned_for";

std::string format_number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

// Typed readers that name the field; all of them reject null and wrong types.
struct FieldReader {
  const std::string& where;

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw InvalidArgument(where + ": field '" + key + "' " + problem);
  }
  int integer(const json& v, const std::string& key, int64_t low, int64_t high) const {
    if (!v.is_number_integer()) fail(key, "must be an integer, got " + v.dump());
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(high))
      fail(key, "is " + v.dump() + ", above " + std::to_string(high));
    const int64_t x = v.get<int64_t>();
    if (x < low || x > high)
      fail(key, "is " + std::to_string(x) + ", outside " + std::to_string(low) + ".." + std::to_string(high));
    return static_cast<int>(x);
  }
  double number(const json& v, const std::string& key, double low, double high) const {
    if (!v.is_number()) fail(key, "must be a number, got " + v.dump());
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < low || x > high)
      fail(key, "is " + v.dump() + ", outside [" + format_number(low) + ", " + format_number(high) + "]");
    return x;
  }
  bool boolean(const json& v, const std::string& key) const {
    if (!v.is_boolean()) fail(key, "must be true or false, got " + v.dump());
    return v.get<bool>();
  }
  std::string text(const json& v, const std::string& key) const {
    if (!v.is_string()) fail(key, "must be a string, got " + v.dump());
    return v.get<std::string>();
  }
  // An enum through its parser; the parser's message lists the valid names.
  template <typename Parse>
  auto choice(const json& v, const std::string& key, Parse parse) const {
    const std::string name = text(v, key);
    try {
      return parse(name);
    } catch (const Error& e) {
      fail(key, std::string("is invalid: ") + e.what());
    }
  }
};

constexpr int64_t kIntMax = std::numeric_limits<int>::max();

using Setter = std::function<void(MethodSettings&, const json&, const FieldReader&)>;

const std::map<std::string, Setter>& crf_fields() {
  static const std::map<std::string, Setter> fields = {
      {"iterations", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.post_crf.iterations = r.integer(v, "post_crf.iterations", 1, 1000);
       }},
      {"gaussian_sxy", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.post_crf.gaussian_sxy = static_cast<float>(r.number(v, "post_crf.gaussian_sxy", 1e-6, 1e6));
       }},
      {"gaussian_weight", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.post_crf.gaussian_weight = static_cast<float>(r.number(v, "post_crf.gaussian_weight", 0, 1e6));
       }},
      {"bilateral_sxy", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.post_crf.bilateral_sxy = static_cast<float>(r.number(v, "post_crf.bilateral_sxy", 1e-6, 1e6));
       }},
      {"bilateral_srgb", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.post_crf.bilateral_srgb = static_cast<float>(r.number(v, "post_crf.bilateral_srgb", 1e-6, 1e6));
       }},
      {"bilateral_weight", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.post_crf.bilateral_weight = static_cast<float>(r.number(v, "post_crf.bilateral_weight", 0, 1e6));
       }},
  };
  return fields;
}

// Every key to_json() writes except preset and backbone (they choose the starting point).
const std::map<std::string, Setter>& fields() {
  static const std::map<std::string, Setter> table = {
      {"input_size", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.input_size = r.integer(v, "input_size", 1, 4096);
       }},
      {"input_position_resize", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.input_position_resize = r.choice(v, "input_position_resize", parse_position_resize);
       }},
      {"ade_unnormalized_input", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.ade_unnormalized_input = r.boolean(v, "ade_unnormalized_input");
       }},
      {"attention_layer_1based", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.attention_layer = r.integer(v, "attention_layer_1based", 1, 1024) - 1;
       }},
      {"attention_head_1based", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.attention_head = r.integer(v, "attention_head_1based", 1, 1024) - 1;
       }},
      {"prompt_first_token", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.prompt_first_token = r.choice(v, "prompt_first_token", parse_first_token);
       }},
      {"prompt_class_names", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.prompt_class_names = r.choice(v, "prompt_class_names", parse_class_name_style);
       }},
      {"dropout_iterations", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.dropout_iterations = r.integer(v, "dropout_iterations", 1, 1024);
       }},
      {"dropout_rule", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.dropout_rule = r.choice(v, "dropout_rule", parse_drop_rule);
       }},
      {"dropout_k", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.dropout_k = r.integer(v, "dropout_k", 1, kIntMax);
       }},
      {"dropout_first_iteration_twice", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.dropout_first_iteration_twice = r.boolean(v, "dropout_first_iteration_twice");
       }},
      {"dropout_u_over_wordpieces", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.dropout_u_over_wordpieces = r.boolean(v, "dropout_u_over_wordpieces");
       }},
      {"maps_last_class_sum", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.maps_last_class_sum = r.boolean(v, "maps_last_class_sum");
       }},
      {"mask_threshold", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.mask_threshold = r.number(v, "mask_threshold", 0.0, 1.0);
       }},
      {"mask_threshold_keeps_values", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.mask_threshold_keeps_values = r.boolean(v, "mask_threshold_keeps_values");
       }},
      {"mask_rescale_after_upsample", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.mask_rescale_after_upsample = r.boolean(v, "mask_rescale_after_upsample");
       }},
      {"background_mode", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.background_mode = r.choice(v, "background_mode", parse_background_mode);
       }},
      {"background_dataset", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.background_dataset = r.choice(v, "background_dataset", parse_dataset_rule);
       }},
      {"post_mode", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.post_mode = r.choice(v, "post_mode", parse_postprocess);
       }},
      {"post_blur", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.post_blur = r.number(v, "post_blur", 0.0, 1.0);
       }},
      {"post_arithmetic", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.post_arithmetic = r.choice(v, "post_arithmetic", parse_post_arithmetic);
       }},
      {"post_crf", [](MethodSettings& s, const json& v, const FieldReader& r) {
         if (!v.is_object()) r.fail("post_crf", "must be an object of CRF parameters, got " + v.dump());
         for (const auto& [key, value] : v.items()) {
           const auto it = crf_fields().find(key);
           if (it == crf_fields().end()) r.fail("post_crf." + key, "is not a CRF parameter");
           it->second(s, value, r);
         }
       }},
      {"labels_official_inplace_remap", [](MethodSettings& s, const json& v, const FieldReader& r) {
         s.labels_official_inplace_remap = r.boolean(v, "labels_official_inplace_remap");
       }},
  };
  return table;
}

// The settings object itself inside a tune results file or a segment record.
const json& settings_object(const json& doc, const std::string& where) {
  if (!doc.is_object()) throw InvalidArgument(where + ": expected a JSON object of settings");
  for (const char* wrapper : {"best_settings", "settings"})
    if (doc.contains(wrapper) && !doc.contains("preset")) {
      const json& inner = doc.at(wrapper);
      if (!inner.is_object()) throw InvalidArgument(where + ": field '" + wrapper + "' must be an object of settings");
      return inner;
    }
  return doc;
}

}  // namespace

MethodSettings settings_from_json(const json& doc, const std::string& where) {
  const json& obj = settings_object(doc, where);
  const FieldReader reader{where};
  const std::string preset_name = obj.contains("preset") ? reader.text(obj.at("preset"), "preset") : "paper";
  const std::string backbone = obj.contains("backbone") ? reader.text(obj.at("backbone"), "backbone") : "blip";
  MethodSettings s;
  try {
    s = preset(preset_name, backbone);
  } catch (const Error& e) {
    throw InvalidArgument(where + ": " + e.what());
  }
  for (const auto& [key, value] : obj.items()) {
    if (key == "preset" || key == "backbone" || key == kTunedFor) continue;
    const auto it = fields().find(key);
    if (it == fields().end())
      throw InvalidArgument(where + ": unknown field '" + key + "' (a typo? the fields are those pnp-ovss writes)");
    it->second(s, value, reader);
  }
  try {
    s.validate();
  } catch (const SettingError& e) {
    throw e.from(where);
  }
  return s;
}

MethodSettings read_settings_file(const std::string& path) {
  return settings_from_json(io::read_json_file(path), "settings file '" + path + "'");
}

nlohmann::json tuned_settings_json(const MethodSettings& settings, const std::string& model_dir) {
  json doc = to_json(settings);
  doc[kTunedFor] = {{"model", model_dir}};
  return doc;
}

std::string tuned_for_model(const std::string& path) {
  try {
    const json doc = io::read_json_file(path);  // settings_object() returns a reference into it
    const json& obj = settings_object(doc, path);
    const auto it = obj.find(kTunedFor);
    if (it == obj.end() || !it->is_object() || !it->contains("model") || !it->at("model").is_string()) return "";
    return it->at("model").get<std::string>();
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace pnpovss
