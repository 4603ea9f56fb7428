// pnpovss::Segmenter (include/pnpovss/segmenter.h): the public face of the runner.
#include <ATen/Parallel.h>

#include <algorithm>

#include "pnpovss/run/model.h"
#include "pnpovss/run/runner.h"
#include "pnpovss/runtime/placement.h"
#include "pnpovss/segmenter.h"
#include "pnpovss/settings/settings_json.h"

namespace pnpovss {

struct Segmenter::Impl {
  run::ModelChoice choice;
  std::unique_ptr<segment::Segmenter> model;

  // The runner's outcomes for `images`, each with classes[i] (or classes[0] for all).
  std::vector<run::Outcome> run(const std::vector<const Image*>& images,
                                const std::vector<std::vector<std::string>>& classes, const ManyChoices& many) const {
    if (classes.size() != 1 && classes.size() != images.size())
      throw InvalidArgument("classes holds " + std::to_string(classes.size()) + " lists for " +
                            std::to_string(images.size()) +
                            " images: give one list per image, or one list of names for all");
    const MethodSettings& settings = choice.settings;
    segment::WorkerLoad load{settings.input_size, 1};
    for (const auto& list : classes) load.classes = std::max(load.classes, list.size());
    const run::RunOptions options{segment::parse_batch_size(many.batch_size, model->placement(), settings.input_size),
                                  segment::parse_workers(many.workers, model->placement(), load)};
    std::vector<run::Item> items;
    for (size_t i = 0; i < images.size(); ++i) {
      run::Item item;
      item.path = "image " + std::to_string(i + 1);
      item.image = images[i];
      item.classes = run::all_classes(classes.size() == 1 ? classes[0] : classes[i]);
      items.push_back(std::move(item));
    }
    run::Runner runner(*model, settings, options);
    return runner.run_all(std::move(items));
  }
};

namespace {

// The maps the labels were decided from, viewed without a copy: the pointer keeps the tensor.
std::shared_ptr<const float> decided_scores(const segment::SegmentationResult& r) {
  const torch::Tensor& decided = r.blurred.defined() ? r.blurred : r.maps.stack;
  const torch::Tensor scores = decided.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return std::shared_ptr<const float>(scores.data_ptr<float>(), [scores](const float*) {});
}

Result to_result(run::Outcome& o, const std::vector<std::string>& classes) {
  Result r;
  r.width = o.result.width;
  r.height = o.result.height;
  r.classes = classes;
  r.labels = std::move(o.labels);
  r.channel_names = o.result.channel_names;
  r.has_background = o.result.has_background;
  r.scores = decided_scores(o.result);
  for (const auto& t : o.result.timings) r.timings.emplace_back(t.stage, t.seconds);
  return r;
}

}  // namespace

Segmenter::Segmenter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Segmenter::Segmenter(Segmenter&&) noexcept = default;
Segmenter& Segmenter::operator=(Segmenter&&) noexcept = default;
Segmenter::~Segmenter() = default;

Segmenter Segmenter::load(const std::string& model, const SettingChoices& choices, const ComputeChoices& compute) {
  auto impl = std::make_unique<Impl>();
  const runtime::Placement placement = runtime::parse_placement(compute.device, compute.dtype);
  runtime::check_placement(placement);
  if (compute.threads < 0) throw SettingError("threads", std::to_string(compute.threads), "must be 1 or more");
  if (compute.threads > 0) at::set_num_threads(compute.threads);
  impl->choice = run::choose_model(model, choices);
  impl->choice.settings.post_crf.device = run::postprocess_device(compute.postprocess_device, placement);
  impl->model = std::make_unique<segment::Segmenter>(run::load_model(impl->choice, placement, choices));
  return Segmenter(std::move(impl));
}

Result Segmenter::segment(const Image& image, const std::vector<std::string>& classes) const {
  std::vector<run::Outcome> outcomes = impl_->run({&image}, {classes}, {"1", "1"});
  run::Outcome& o = outcomes.front();
  if (!o.ok()) std::rethrow_exception(o.error);  // the library's own exception, not a copy
  return to_result(o, classes);
}

std::vector<Segmented> Segmenter::segment_many(const std::vector<const Image*>& images,
                                               const std::vector<std::vector<std::string>>& classes,
                                               const ManyChoices& many) const {
  std::vector<run::Outcome> outcomes = impl_->run(images, classes, many);
  std::vector<Segmented> out(outcomes.size());
  for (size_t i = 0; i < outcomes.size(); ++i) {
    run::Outcome& o = outcomes[i];
    if (o.ok()) {
      out[i].result = to_result(o, classes.size() == 1 ? classes[0] : classes[i]);
      continue;
    }
    out[i].error = o.problem;
    try {
      std::rethrow_exception(o.error);
    } catch (const InvalidArgument&) {
      out[i].invalid_argument = true;
    } catch (...) {
    }
  }
  return out;
}

const MethodSettings& Segmenter::settings() const { return impl_->choice.settings; }
std::string Segmenter::settings_json() const { return to_json(impl_->choice.settings).dump(); }
const std::string& Segmenter::model_dir() const { return impl_->choice.dir; }
const std::string& Segmenter::model_type() const { return impl_->model->model_type(); }

}  // namespace pnpovss
