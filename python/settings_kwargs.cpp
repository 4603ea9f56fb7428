// Segmenter(**settings): the options of `pnp-ovss segment` as keyword arguments, applied the
// same way, so that the module and the command line give the same results for the same words.
#include <algorithm>
#include <string>
#include <vector>

#include "bindings.h"
#include "pnpovss/error.h"
#include "pnpovss/segment/settings_json.h"

namespace pnpovss::python {
namespace {

const std::vector<std::string>& valid_keys() {
  static const std::vector<std::string> keys = {"preset",     "settings",   "size",        "layer",
                                                "head",       "threshold",  "blur",        "iterations",
                                                "postprocess", "background", "threads"};
  return keys;
}

std::string key_list() {
  std::string out;
  for (const auto& k : valid_keys()) out += (out.empty() ? "" : ", ") + k;
  return out;
}

template <typename T>
T value_of(const py::handle& value, const std::string& key, const char* type_name) {
  // bool is an int in Python; size=True is a mistake, not 1.
  if (py::isinstance<py::bool_>(value) || (std::is_arithmetic<T>::value && py::isinstance<py::str>(value)))
    throw py::type_error("setting '" + key + "' must be " + type_name + ", got " +
                         std::string(py::str(value.get_type().attr("__name__"))));
  try {
    return value.cast<T>();
  } catch (const py::cast_error&) {
    throw py::type_error("setting '" + key + "' must be " + type_name + ", got " +
                         std::string(py::str(value.get_type().attr("__name__"))));
  }
}

}  // namespace

segment::MethodSettings settings_from_kwargs(const py::kwargs& kwargs, FrontEndOptions& front,
                                             const std::string& backbone) {
  for (const auto& item : kwargs) {
    const std::string key = py::str(item.first);
    if (std::find(valid_keys().begin(), valid_keys().end(), key) == valid_keys().end())
      throw py::type_error("unknown setting '" + key + "'; valid settings: " + key_list());
  }
  const auto given = [&](const char* key) { return kwargs.contains(key) && !kwargs[key].is_none(); };
  const auto integer = [&](const char* key) { return value_of<int>(kwargs[key], key, "an int"); };
  const auto real = [&](const char* key) { return value_of<double>(kwargs[key], key, "a number"); };
  const auto text = [&](const char* key) { return value_of<std::string>(kwargs[key], key, "a str"); };

  const std::string preset = given("preset") ? text("preset") : "paper";
  // settings=: a settings JSON file (as --settings) or the same as a dict.
  std::string settings_path;
  nlohmann::json settings_doc;
  if (given("settings")) {
    const py::handle v = kwargs["settings"];
    if (py::isinstance<py::dict>(v))
      settings_doc = nlohmann::json::parse(std::string(py::str(py::module_::import("json").attr("dumps")(v))));
    else
      settings_path = text("settings");
  }
  return translate_errors(
      [&] {
        if (given("settings") && given("preset"))
          throw Error("give --preset or --settings, not both (the settings file names its preset)");
        segment::MethodSettings s = !settings_path.empty()    ? segment::read_settings_file(settings_path)
                                    : !settings_doc.is_null() ? segment::settings_from_json(settings_doc, "settings")
                                                              : segment::preset(preset, backbone);
        if (given("size")) s.input_size = integer("size");
        if (given("layer")) {
          const int layer = integer("layer");
          if (layer < 1) throw Error("--layer " + std::to_string(layer) + " is out of range: layers count from 1");
          s.attention_layer = layer - 1;
        }
        if (given("head")) {
          const int head = integer("head");
          if (head < 1) throw Error("--head " + std::to_string(head) + " is out of range: heads count from 1");
          s.attention_head = head - 1;
        }
        if (given("iterations")) s.dropout_iterations = integer("iterations");
        if (given("threshold")) s.mask_threshold = real("threshold");
        if (given("blur")) s.post_blur = real("blur");
        if (given("postprocess")) s.post_mode = segment::parse_postprocess(text("postprocess"));
        if (given("background")) s.background_mode = segment::parse_background_mode(text("background"));
        if (given("threads")) {
          front.threads = integer("threads");
          if (front.threads < 1) throw Error("threads must be at least 1");
        }
        s.validate();
        return s;
      },
      true);
}

}  // namespace pnpovss::python
