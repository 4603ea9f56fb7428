// pnpovss.Segmenter and pnpovss.Result: the method on numpy images. The model is loaded once;
// segment() runs without the GIL, and the result's arrays point into the C++ buffers (no copy).
#include <ATen/Parallel.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>
#include <torch/cuda.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings.h"
#include "pnpovss/cli/method_options.h"
#include "pnpovss/error.h"
#include "pnpovss/io/model_location.h"
#include "pnpovss/segment/batching.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/segment/segmenter.h"

namespace pnpovss::python {
namespace {

// A numpy array viewing `owner`'s data; the array keeps `owner` alive.
template <typename T, typename Owner>
py::array_t<T> view_array(std::vector<py::ssize_t> shape, Owner owner, const T* data) {
  auto* held = new Owner(std::move(owner));
  py::capsule keep(held, [](void* p) { delete static_cast<Owner*>(p); });
  return py::array_t<T>(std::move(shape), data, keep);
}

struct Result {
  std::vector<std::string> classes, channel_names;
  bool has_background = false;
  py::array_t<int32_t> labels;
  py::array_t<float> scores;
  py::dict timings;
};

py::object json_to_python(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(j.dump());
}

class PySegmenter {
 public:
  PySegmenter(const std::string& model, const std::string& device, const std::string& dtype,
              const py::kwargs& kwargs) {
    std::string dir;
    {
      py::gil_scoped_release release;  // resolving may download the model
      dir = translate_errors([&] { return io::resolve_model_dir(model); });
    }
    FrontEndOptions front;
    // The defaults follow the model's backbone (BLIP and BridgeTower have their own).
    settings_ = settings_from_kwargs(kwargs, front, translate_errors([&] { return cli::backbone_of(dir); }));
    // A malformed name is a ValueError; a device this build or machine lacks a RuntimeError.
    const models::Placement placement{translate_errors([&] { return models::parse_device(device); }, true),
                                      translate_errors([&] { return models::parse_dtype(dtype); }, true)};
    translate_errors([&] {
      models::check_placement(placement);
      return 0;
    });
    at::set_num_threads(front.threads);
    py::gil_scoped_release release;
    translate_errors([&] {
      model_ = std::make_unique<segment::Segmenter>(
          segment::Segmenter::load(dir, settings_.input_position_resize, placement));
      model_->check_settings(settings_);
      return 0;
    });
  }

  Result segment(const py::array& image, const std::vector<std::string>& classes) const {
    io::Image input = to_image(image);
    segment::SegmentationResult r;
    std::vector<int32_t> labels;
    {
      py::gil_scoped_release release;
      translate_errors([&] {
        model_->check_classes(classes, settings_);
        r = model_->segment(input, classes, settings_);
        labels = labels_of(r, classes);
        return 0;
      });
    }
    return translate_errors([&] { return to_result(r, std::move(labels), classes); });
  }

  // Several images, each with the shared class list or its own; batches and workers as the
  // command line's --batch-size and --workers. The first failing image fails the call.
  std::vector<Result> segment_many(const std::vector<py::array>& images, const py::list& classes,
                                   const std::string& workers, const std::string& batch_size) const {
    std::vector<io::Image> inputs;
    for (const auto& image : images) inputs.push_back(to_image(image));
    const std::vector<std::vector<std::string>> lists = class_lists(classes, inputs.size());
    const models::Placement& placement = model_->placement();
    segment::BatchSize size = translate_errors(
        [&] { return segment::parse_batch_size(batch_size, placement, settings_.input_size); }, true);
    const int count =
        translate_errors([&] { return segment::parse_workers(workers, placement, load_of(lists)); }, true);
    std::vector<segment::SegmentationResult> results;
    std::vector<std::vector<int32_t>> labels;
    {
      py::gil_scoped_release release;
      translate_errors([&] {
        std::vector<segment::ImageTask> tasks;
        for (size_t i = 0; i < inputs.size(); ++i) {
          model_->check_classes(lists[i], settings_);
          tasks.push_back({&inputs[i], &lists[i]});
        }
        results = segment::segment_in_batches(*model_, tasks, settings_, size, count);
        for (size_t i = 0; i < results.size(); ++i) labels.push_back(labels_of(results[i], lists[i]));
        return 0;
      });
    }
    std::vector<Result> out;
    for (size_t i = 0; i < results.size(); ++i)
      out.push_back(translate_errors([&] { return to_result(results[i], std::move(labels[i]), lists[i]); }));
    return out;
  }

  py::object settings() const { return json_to_python(segment::to_json(settings_)); }
  std::string model_dir() const { return model_->model_dir(); }
  std::string model_type() const { return model_->model_type(); }

 private:
  segment::WorkerLoad load_of(const std::vector<std::vector<std::string>>& lists) const {
    segment::WorkerLoad load{settings_.input_size, 1};
    for (const auto& classes : lists) load.classes = std::max(load.classes, classes.size());
    return load;
  }

  // Labels as the label PNG has them: 0 background, k = classes[k - 1].
  std::vector<int32_t> labels_of(const segment::SegmentationResult& r, const std::vector<std::string>& classes) const {
    std::vector<int32_t> class_labels;
    for (size_t k = 0; k < classes.size(); ++k) class_labels.push_back(static_cast<int32_t>(k + 1));
    return segment::dataset_label_map(r, class_labels, 0, settings_.labels_official_inplace_remap);
  }

  // One list of names for every image, or a list of such lists, one per image.
  static std::vector<std::vector<std::string>> class_lists(const py::list& classes, size_t images) {
    const bool per_image = !classes.empty() && !py::isinstance<py::str>(classes[0]);
    if (!per_image) return std::vector<std::vector<std::string>>(images, classes.cast<std::vector<std::string>>());
    if (classes.size() != images)
      throw py::value_error("classes holds " + std::to_string(classes.size()) + " lists for " +
                            std::to_string(images) + " images: give one list per image, or one list of names for all");
    return classes.cast<std::vector<std::vector<std::string>>>();
  }

  static Result to_result(const segment::SegmentationResult& r, std::vector<int32_t> labels,
                          const std::vector<std::string>& classes) {
    Result out;
    out.classes = classes;
    out.channel_names = r.channel_names;
    out.has_background = r.has_background;
    const int32_t* label_data = labels.data();
    out.labels = view_array<int32_t>({r.height, r.width}, std::move(labels), label_data);
    // The maps the labels were decided from: blurred when blurring applies (before the CRF).
    const torch::Tensor& decided = r.blurred.defined() ? r.blurred : r.maps.stack;
    torch::Tensor scores = decided.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    // The shape is read before the tensor moves into the array's owner.
    std::vector<py::ssize_t> shape(scores.sizes().begin(), scores.sizes().end());
    const float* score_data = scores.data_ptr<float>();
    out.scores = view_array<float>(std::move(shape), std::move(scores), score_data);
    for (const auto& t : r.timings) out.timings[py::str(t.stage)] = t.seconds;
    return out;
  }

  static io::Image to_image(const py::array& image) {
    if (!py::isinstance<py::array_t<uint8_t>>(image) || image.dtype().kind() != 'u' || image.itemsize() != 1)
      throw py::type_error("image must be a numpy array of dtype uint8, got dtype " +
                           std::string(py::str(image.dtype())));
    if (image.ndim() != 3 || image.shape(2) != 3 || image.shape(0) < 1 || image.shape(1) < 1)
      throw py::value_error("image must have shape [height, width, 3] (RGB), got " +
                            std::string(py::str(py::tuple(py::cast(std::vector<py::ssize_t>(
                                image.shape(), image.shape() + image.ndim()))))));
    const auto contiguous = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(image);
    io::Image out;
    out.height = static_cast<int>(image.shape(0));
    out.width = static_cast<int>(image.shape(1));
    if (static_cast<int64_t>(out.height) * out.width > io::kMaxImagePixels)
      throw py::value_error("image of " + std::to_string(out.width) + "x" + std::to_string(out.height) +
                            " pixels is too large");
    out.rgb.assign(contiguous.data(), contiguous.data() + contiguous.size());
    return out;
  }

  segment::MethodSettings settings_;
  std::unique_ptr<segment::Segmenter> model_;
};

}  // namespace

void register_segmenter(py::module_& m) {
  py::class_<Result>(m, "Result", "What Segmenter.segment() returns.")
      .def_readonly("labels", &Result::labels,
                    "int32 [H, W]: 0 background, k = classes[k-1] (as the label PNG of `pnp-ovss segment`)")
      .def_readonly("scores", &Result::scores,
                    "float32 [C, H, W]: the channel maps the labels are decided from (blurred when blur "
                    "applies, before the CRF), in the order of channel_names")
      .def_readonly("channel_names", &Result::channel_names, "'background' first when used, then the classes")
      .def_readonly("classes", &Result::classes)
      .def_readonly("has_background", &Result::has_background)
      .def_readonly("timings", &Result::timings, "seconds per stage")
      .def("__repr__", [](const Result& r) {
        return "<pnpovss.Result " + std::to_string(r.labels.shape(1)) + "x" + std::to_string(r.labels.shape(0)) +
               ", " + std::to_string(r.classes.size()) + " classes>";
      });

  py::class_<PySegmenter>(m, "Segmenter",
                          "A loaded model ready to segment.\n\n"
                          "Segmenter(model='Salesforce/blip-itm-large-flickr', device='cpu', dtype='fp32', "
                          "**settings)\n\n"
                          "device: cpu, cuda or cuda:N; dtype: fp32, bf16 or fp16 (CUDA only). "
                          "model: a model directory or a hub id org/name[@revision] (downloaded into the Hugging "
                          "Face cache when missing). settings: the options of `pnp-ovss segment`: preset, "
                          "settings (a JSON file or dict), size, layer, head, threshold, blur, iterations, "
                          "postprocess, background; and threads.")
      .def(py::init<const std::string&, const std::string&, const std::string&, const py::kwargs&>(),
           py::arg("model") = "Salesforce/blip-itm-large-flickr", py::arg("device") = "cpu",
           py::arg("dtype") = "fp32")
      .def("segment", &PySegmenter::segment, py::arg("image"), py::arg("classes"),
           "Segments an RGB image (uint8 array [H, W, 3]) into `classes` (list of names).")
      .def("segment_many", &PySegmenter::segment_many, py::arg("images"), py::arg("classes"),
           py::arg("workers") = "auto", py::arg("batch_size") = "auto",
           "Segments a list of RGB images; `classes` is one list of names for all of them or one list per "
           "image. Returns a list of Results in image order, the same as segment() on each. workers and "
           "batch_size as `pnp-ovss segment --workers/--batch-size` (str: 'auto' or a count): on the CPU, "
           "auto segments one image per core side by side, about 1.2x the images per second of one at a "
           "time on 2 cores. The first failing image raises.")
      .def_property_readonly("settings", &PySegmenter::settings, "every resolved setting (layers and heads from 1)")
      .def_property_readonly("model_dir", &PySegmenter::model_dir)
      .def_property_readonly("model_type", &PySegmenter::model_type);
}

}  // namespace pnpovss::python
