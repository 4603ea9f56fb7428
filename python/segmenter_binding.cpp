// pnpovss.Segmenter and pnpovss.Result: the library's Segmenter on numpy images. The model is
// loaded once; segment() runs without the GIL, and the result's arrays point into the C++
// buffers (no copy).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings.h"
#include "pnpovss/run/class_lists.h"
#include "pnpovss/segmenter.h"
#include "pnpovss/settings/choice_fields.h"

namespace pnpovss::python {
namespace {

// A numpy array viewing `owner`'s data; the array keeps `owner` alive.
template <typename T, typename Owner>
py::array_t<T> view_array(std::vector<py::ssize_t> shape, Owner owner, const T* data) {
  auto* held = new Owner(std::move(owner));
  py::capsule keep(held, [](void* p) { delete static_cast<Owner*>(p); });
  return py::array_t<T>(std::move(shape), data, keep);
}

struct PyResult {
  std::vector<std::string> classes, channel_names;
  bool has_background = false;
  py::array_t<int32_t> labels;
  py::array_t<float> scores;
  py::dict timings;
};

PyResult to_python(Result r) {
  PyResult out;
  out.classes = r.classes;
  out.channel_names = r.channel_names;
  out.has_background = r.has_background;
  const std::vector<py::ssize_t> plane = {r.height, r.width};
  const int32_t* label_data = r.labels.data();
  out.labels = view_array<int32_t>(plane, std::move(r.labels), label_data);
  const float* score_data = r.scores.get();
  out.scores = view_array<float>({static_cast<py::ssize_t>(r.channel_names.size()), r.height, r.width},
                                 std::move(r.scores), score_data);
  for (const auto& [stage, seconds] : r.timings) out.timings[py::str(stage)] = seconds;
  return out;
}

// ---- arguments, checked in one line each ------------------------------------------------

Image to_image(const py::handle& value, const std::string& what) {
  if (!py::isinstance<py::array>(value))
    throw py::type_error(what + " must be a numpy array of dtype uint8 and shape [height, width, 3], got " +
                         type_name(value));
  const auto array = py::reinterpret_borrow<py::array>(value);
  if (array.dtype().kind() != 'u' || array.itemsize() != 1)
    throw py::type_error(what + " must have dtype uint8, got " + std::string(py::str(array.dtype())));
  if (array.ndim() != 3 || array.shape(2) != 3 || array.shape(0) < 1 || array.shape(1) < 1) {
    std::string shape;
    for (py::ssize_t d = 0; d < array.ndim(); ++d) shape += (d ? ", " : "") + std::to_string(array.shape(d));
    throw py::value_error(what + " must have shape [height, width, 3] (RGB), got [" + shape + "]");
  }
  if (array.shape(0) * array.shape(1) > kMaxImagePixels)
    throw py::value_error(what + " of " + std::to_string(array.shape(1)) + "x" + std::to_string(array.shape(0)) +
                          " pixels is too large");
  const auto contiguous = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(array);
  Image out;
  out.height = static_cast<int>(array.shape(0));
  out.width = static_cast<int>(array.shape(1));
  out.rgb.assign(contiguous.data(), contiguous.data() + contiguous.size());
  return out;
}

bool is_names(const py::handle& value) {
  return py::isinstance<py::str>(value) || py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value);
}

// A class list: names (list or tuple of str) or "cat, sofa" as on the command line.
std::vector<std::string> to_classes(const py::handle& value, const std::string& what) {
  if (py::isinstance<py::str>(value)) return run::split_class_list(value.cast<std::string>());
  if (!py::isinstance<py::list>(value) && !py::isinstance<py::tuple>(value))
    throw py::type_error(what + " must be a list of class names or a comma-separated str, got " + type_name(value));
  std::vector<std::string> names;
  size_t k = 0;
  for (const auto& item : value) {
    if (!py::isinstance<py::str>(item))
      throw py::type_error(what + "[" + std::to_string(k) + "] must be a str (a class name), got " + type_name(item));
    names.push_back(item.cast<std::string>());
    ++k;
  }
  return names;
}

// One class list for every image, or one per image.
std::vector<std::vector<std::string>> to_class_lists(const py::handle& value, size_t images) {
  if (!is_names(value))
    throw py::type_error("classes must be a list of class names (for every image), a comma-separated str, or a "
                         "list of those (one per image), got " + type_name(value));
  const bool per_image = !py::isinstance<py::str>(value) && py::len(value) > 0 &&
                         !py::isinstance<py::str>(*py::iter(value));
  if (!per_image) return {to_classes(value, "classes")};
  std::vector<std::vector<std::string>> lists;
  size_t i = 0;
  for (const auto& item : value) {
    if (!is_names(item))
      throw py::type_error("classes[" + std::to_string(i) + "] must be a list of class names or a str, got " +
                           type_name(item));
    lists.push_back(to_classes(item, "classes[" + std::to_string(i) + "]"));
    ++i;
  }
  if (lists.size() != images)
    throw py::value_error("classes holds " + std::to_string(lists.size()) + " lists for " + std::to_string(images) +
                          " images: give one list per image, or one list of names for all");
  return lists;
}

// workers= / batch_size=: "auto", or a count as int or str.
std::string to_count(const py::handle& value, const char* what) {
  if (py::isinstance<py::bool_>(value) || (!py::isinstance<py::int_>(value) && !py::isinstance<py::str>(value)))
    throw py::type_error(std::string(what) + " must be 'auto' or a number of images (int), got " + type_name(value));
  return py::str(value);
}

// ---- settings as keywords ----------------------------------------------------------------

std::string keyword_list() {
  std::string out;
  for (const ChoiceField& f : choice_fields()) out += std::string(out.empty() ? "" : ", ") + f.name;
  return out + ", threads";
}

[[noreturn]] void wrong_type(const std::string& key, const char* wanted, const py::handle& value) {
  throw py::type_error("setting '" + key + "' must be " + wanted + ", got " + type_name(value));
}

// Segmenter(**settings): the keywords of choice_fields() (the command line's options) and threads.
SettingChoices choices_from_kwargs(const py::kwargs& kwargs, ComputeChoices& compute) {
  SettingChoices c;
  for (const auto& item : kwargs) {
    const std::string key = py::str(item.first);
    const py::handle value = item.second;
    if (value.is_none()) continue;
    if (key == "threads") {
      if (py::isinstance<py::bool_>(value) || !py::isinstance<py::int_>(value)) wrong_type(key, "an int", value);
      compute.threads = value.cast<int>();
      if (compute.threads < 1) throw py::value_error("threads=" + std::to_string(compute.threads) + " must be 1 or more");
      continue;
    }
    if (key == "postprocess_device") {
      if (!py::isinstance<py::str>(value)) wrong_type(key, "a str", value);
      compute.postprocess_device = value.cast<std::string>();
      continue;
    }
    const auto field = std::find_if(choice_fields().begin(), choice_fields().end(),
                                    [&](const ChoiceField& f) { return key == f.name; });
    if (field == choice_fields().end())
      throw py::type_error("unknown setting '" + key + "'; valid settings: " + keyword_list());
    if (key == "settings" && py::isinstance<py::dict>(value)) {
      c.settings_json = py::str(py::module_::import("json").attr("dumps")(value));
      continue;
    }
    // bool is an int in Python; size=True is a mistake, not 1.
    const bool is_bool = py::isinstance<py::bool_>(value);
    switch (field->kind) {
      case ChoiceField::Kind::Integer:
        if (is_bool || !py::isinstance<py::int_>(value)) wrong_type(key, "an int", value);
        c.*field->integer = value.cast<int>();
        break;
      case ChoiceField::Kind::Number:
        if (is_bool || !(py::isinstance<py::int_>(value) || py::isinstance<py::float_>(value)))
          wrong_type(key, "a number", value);
        c.*field->number = value.cast<double>();
        break;
      case ChoiceField::Kind::Text:
        if (!py::isinstance<py::str>(value))
          wrong_type(key, key == "settings" ? "a str (a settings file) or a dict" : "a str", value);
        c.*field->text = value.cast<std::string>();
        break;
    }
  }
  return c;
}

// ---- the class ---------------------------------------------------------------------------

class PySegmenter {
 public:
  PySegmenter(const std::string& model, const std::string& device, const std::string& dtype,
              const py::kwargs& kwargs) {
    ComputeChoices compute;
    compute.device = device;
    compute.dtype = dtype;
    compute.threads = 1;
    const SettingChoices choices = choices_from_kwargs(kwargs, compute);
    InterruptibleCall call;
    py::gil_scoped_release release;  // finding the model may download it
    segmenter_ = std::make_unique<Segmenter>(Segmenter::load(model, choices, compute));
  }

  PyResult segment(const py::object& image, const py::object& classes) const {
    const Image input = to_image(image, "image");
    const std::vector<std::string> names = to_classes(classes, "classes");
    Result r;
    {
      InterruptibleCall call;
      py::gil_scoped_release release;
      r = segmenter_->segment(input, names);
    }
    return to_python(std::move(r));
  }

  // Several images, each with the shared class list or its own. A failing image fails alone:
  // on_error='raise' raises for the first one (after every image ran), 'none' puts None there.
  py::list segment_many(const py::object& images, const py::object& classes, const py::object& workers,
                        const py::object& batch_size, const std::string& on_error) const {
    if (on_error != "raise" && on_error != "none")
      throw py::value_error("on_error must be 'raise' or 'none', got '" + on_error + "'");
    if (!py::isinstance<py::list>(images) && !py::isinstance<py::tuple>(images))
      throw py::type_error("images must be a list of numpy arrays, got " + type_name(images));
    std::vector<Image> inputs;
    size_t i = 0;
    for (const auto& image : images) inputs.push_back(to_image(image, "images[" + std::to_string(i++) + "]"));
    const std::vector<std::vector<std::string>> lists = to_class_lists(classes, inputs.size());
    const ManyChoices many{to_count(batch_size, "batch_size"), to_count(workers, "workers")};
    std::vector<const Image*> pointers;
    for (const Image& image : inputs) pointers.push_back(&image);
    std::vector<Segmented> done;
    {
      InterruptibleCall call;
      py::gil_scoped_release release;
      if (!inputs.empty()) done = segmenter_->segment_many(pointers, lists, many);
    }
    py::list out;
    for (size_t k = 0; k < done.size(); ++k) {
      if (done[k].ok()) {
        out.append(py::cast(to_python(std::move(done[k].result))));
        continue;
      }
      if (on_error == "none") {
        out.append(py::none());
        continue;
      }
      const std::string message = "images[" + std::to_string(k) + "]: " + done[k].error;
      if (done[k].invalid_argument) throw py::value_error(message);
      throw std::runtime_error(message);
    }
    return out;
  }

  py::object settings() const { return py::module_::import("json").attr("loads")(segmenter_->settings_json()); }
  std::string model_dir() const { return segmenter_->model_dir(); }
  std::string model_type() const { return segmenter_->model_type(); }

 private:
  std::unique_ptr<Segmenter> segmenter_;
};

}  // namespace

void register_segmenter(py::module_& m) {
  py::class_<PyResult>(m, "Result", "What Segmenter.segment() returns.")
      .def_readonly("labels", &PyResult::labels,
                    "int32 [H, W]: 0 background, k = classes[k-1] (as the label PNG of `pnp-ovss segment`)")
      .def_readonly("scores", &PyResult::scores,
                    "float32 [C, H, W]: the channel maps the labels are decided from (blurred when blur "
                    "applies, before the CRF), in the order of channel_names")
      .def_readonly("channel_names", &PyResult::channel_names, "'background' first when used, then the classes")
      .def_readonly("classes", &PyResult::classes)
      .def_readonly("has_background", &PyResult::has_background)
      .def_readonly("timings", &PyResult::timings, "seconds per stage")
      .def("__repr__", [](const PyResult& r) {
        return "<pnpovss.Result " + std::to_string(r.labels.shape(1)) + "x" + std::to_string(r.labels.shape(0)) +
               ", " + std::to_string(r.classes.size()) + " classes>";
      });

  py::class_<PySegmenter>(m, "Segmenter",
                          ("A loaded model ready to segment.\n\n"
                           "Segmenter(model='Salesforce/blip-itm-large-flickr', device='cpu', dtype='fp32', "
                           "**settings)\n\n"
                           "model: a model directory or a hub id org/name[@revision] (downloaded into the Hugging "
                           "Face cache when missing). device: cpu, cuda or cuda:N; dtype: fp32, bf16 or fp16 "
                           "(CUDA only); postprocess_device='auto' runs the Dense CRF on the model's device (cpu: the exact "
                           "CRF). settings: the options of `pnp-ovss segment` as keywords (" +
                           keyword_list() +
                           "); settings= takes a settings JSON file or the same as a dict. A bad value raises "
                           "ValueError naming the keyword, an unknown keyword TypeError.")
                              .c_str())
      .def(py::init<const std::string&, const std::string&, const std::string&, const py::kwargs&>(),
           py::arg("model") = "Salesforce/blip-itm-large-flickr", py::arg("device") = "cpu",
           py::arg("dtype") = "fp32")
      .def("segment", &PySegmenter::segment, py::arg("image"), py::arg("classes"),
           "Segments an RGB image (uint8 array [H, W, 3]) into `classes` (a list of names, or one str "
           "'cat, sofa' as on the command line). Ctrl-C stops it with KeyboardInterrupt.")
      .def("segment_many", &PySegmenter::segment_many, py::arg("images"), py::arg("classes"),
           py::arg("workers") = "auto", py::arg("batch_size") = "auto", py::arg("on_error") = "raise",
           "Segments a list of RGB images; `classes` is one class list for all of them or one per image. "
           "Returns a list of Results in image order, each equal to segment() on its image. workers and "
           "batch_size as `pnp-ovss segment --workers/--batch-size` ('auto' or a count): on the CPU, auto "
           "segments one image per core side by side, about 1.2x the images per second of one at a time on 2 "
           "cores. A failing image fails alone: on_error='raise' raises (ValueError for a bad class list, else "
           "RuntimeError) for the first one once every image has run, naming it; 'none' puts None in its place.")
      .def_property_readonly("settings", &PySegmenter::settings, "every resolved setting (layers and heads from 1)")
      .def_property_readonly("model_dir", &PySegmenter::model_dir)
      .def_property_readonly("model_type", &PySegmenter::model_type);
}

}  // namespace pnpovss::python
