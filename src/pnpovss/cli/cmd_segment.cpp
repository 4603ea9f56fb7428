// `pnp-ovss segment`: the whole method on image files, with label PNGs, overlays and a JSON
// record per image (segment_outputs.h). Everything that can be checked before the model runs
// (classes, settings, the output folder, the tags file, layer and head against the model) is
// checked first, so a mistake costs seconds, not a folder's worth of compute. Per image, a
// failure is reported and the next image goes on. A rerun into the same --out keeps the images
// an earlier run already segmented the same way (earlier_outputs.h), so an interrupted folder
// goes on where it stopped.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "pnpovss/cli/commands.h"
#include "pnpovss/cli/compute_options.h"
#include "pnpovss/cli/earlier_outputs.h"
#include "pnpovss/cli/method_options.h"
#include "pnpovss/cli/output_dir.h"
#include "pnpovss/cli/segment_outputs.h"
#include "pnpovss/cpu/side_by_side.h"
#include "pnpovss/error.h"
#include "pnpovss/io/file_write.h"
#include "pnpovss/run/class_lists.h"
#include "pnpovss/run/model.h"
#include "pnpovss/run/runner.h"
#include "pnpovss/settings/settings_json.h"
#include "pnpovss/util/ascii.h"
#include "pnpovss/util/failure.h"
#include "pnpovss/version.h"

namespace pnpovss::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct SegmentOptions {
  std::vector<std::string> inputs;
  std::string classes;
  std::string classes_file;
  std::string model = kDefaultModel;
  MethodOptions method;
  ComputeOptions compute;
  std::string class_tags;
  std::string out = "segment_out";
  bool save_maps = false;
  bool restart = false;
  CLI::Option *classes_opt = nullptr, *classes_file_opt = nullptr;
};

// One image to segment and the name its outputs get.
struct Job {
  std::string path;
  std::string stem;    // file name without extension: the key of --class-tags
  std::string output;  // output name: the stem, made unique within the run
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// --classes "cat, sofa, remote control" or --classes-file (one name per line).
std::vector<std::string> read_classes(const SegmentOptions& o) {
  const bool inline_given = o.classes_opt->count() > 0, file_given = o.classes_file_opt->count() > 0;
  if (inline_given && file_given) throw InvalidArgument("give the classes with --classes or --classes-file, not both");
  if (!inline_given && !file_given)
    throw InvalidArgument("no classes: give them with --classes \"cat, sofa, remote control\" or --classes-file FILE");
  return inline_given ? run::split_class_list(o.classes) : run::read_class_file(o.classes_file);
}

bool is_image_name(const fs::path& p) {
  const std::string ext = util::lower_ascii(p.extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

// Files as given; a folder stands for its images (sorted by name, not recursive). Output names
// are the stems, with "-2", "-3", ... for a stem already taken (a.jpg and a.png).
std::vector<Job> list_jobs(const std::vector<std::string>& inputs) {
  std::vector<Job> jobs;
  std::set<std::string> taken;
  auto add = [&](const std::string& path) {
    Job job;
    job.path = path;
    job.stem = fs::path(path).stem().string();
    if (job.stem.empty()) job.stem = "image";
    job.output = job.stem;
    for (int n = 2; !taken.insert(job.output).second; ++n) job.output = job.stem + "-" + std::to_string(n);
    jobs.push_back(job);
  };
  for (const auto& input : inputs) {
    std::error_code ec;
    if (!fs::is_directory(input, ec)) {
      add(input);  // a missing or unreadable file fails as that image
      continue;
    }
    std::vector<std::string> found;
    for (fs::directory_iterator it(input, ec), end; !ec && it != end; it.increment(ec))
      if (is_image_name(it->path()) && !fs::is_directory(it->path())) found.push_back(it->path().filename().string());
    if (ec) throw Error("cannot list the folder '" + input + "': " + ec.message());
    if (found.empty()) throw Error("the folder '" + input + "' holds no .jpg, .jpeg, .png or .bmp images");
    std::sort(found.begin(), found.end());
    const std::string prefix = input.back() == '/' ? input : input + "/";
    for (const auto& name : found) add(prefix + name);
  }
  return jobs;
}

// The runner's items for the jobs that an earlier run did not already write the same way
// (earlier_outputs.h); `kept` counts the others.
std::vector<run::Item> items_to_segment(const SegmentOptions& o, const OutputPlan& plan, const run::RunIdentity& identity,
                                        const std::vector<std::string>& classes, const run::ClassTags& tags,
                                        std::vector<Job>& jobs, size_t& kept) {
  std::vector<int> all(classes.size());
  for (size_t k = 0; k < classes.size(); ++k) all[k] = static_cast<int>(k);
  std::vector<run::Item> items;
  std::vector<Job> remaining;
  for (const Job& job : jobs) {
    run::Item item;
    item.path = job.path;
    item.classes = run::chosen_classes(classes, run::classes_of(tags, job.stem, all));
    item.hash_file = true;
    if (!o.restart && written_earlier(plan.dir + "/" + job.output + ".json", output_files(plan, job.output),
                                      run::record_identity(identity, job.path, "", item.classes.names, item.classes.labels)))
      continue;
    items.push_back(std::move(item));
    remaining.push_back(job);
  }
  kept = jobs.size() - remaining.size();
  jobs = std::move(remaining);
  return items;
}

int run_segment(const SegmentOptions& o) {
  const auto start = Clock::now();
  const SettingChoices choices = setting_choices(o.method);
  run::ModelChoice choice = run::choose_model(o.model, choices);
  const runtime::Placement placement = resolve_placement(o.compute);
  choice.settings.post_crf.device = resolve_postprocess_device(o.compute, placement);
  const MethodSettings& settings = choice.settings;
  const segment::BatchSize batch = resolve_batch_size(o.compute, placement, settings.input_size);
  const std::vector<std::string> classes = read_classes(o);
  const int workers = resolve_workers(o.compute, placement, {settings.input_size, classes.size()});
  if (o.inputs.empty()) throw InvalidArgument("no images: give image files or folders");
  prepare_output_dir(o.out);
  remove_stale_map_temporaries(o.out);
  const run::ClassTags tags = o.class_tags.empty()
                                  ? run::ClassTags{}
                                  : run::read_class_tags(o.class_tags, classes, {},
                                                         "the " + std::to_string(classes.size()) + " classes");
  std::vector<Job> jobs = list_jobs(o.inputs);

  // The weights are memory-mapped, so loading costs little before the classes are checked.
  const segment::Segmenter model = run::load_model(choice, placement, choices);
  model.check_classes(classes, settings);
  const run::RunIdentity identity{model.model_dir(), placement.describe(), nlohmann::ordered_json::parse(to_json(settings).dump()),
                             program_version()};
  const OutputPlan plan{o.out, o.save_maps, static_cast<int>(classes.size())};
  size_t kept = 0;
  std::vector<run::Item> items = items_to_segment(o, plan, identity, classes, tags, jobs, kept);

  std::printf("settings: %s\n", settings.describe().c_str());
  for (const auto& note : choice.notes) std::printf("note: %s\n", note.c_str());
  const size_t lanes = cpu::side_by_side_lanes(jobs.size(), workers);
  const std::string side_by_side = lanes > 1 ? ", " + std::to_string(lanes) + " side by side" : "";
  std::printf("model %s on %s, %zu classes, %zu images%s -> %s/\n", choice.dir.c_str(), placement.describe().c_str(),
              classes.size(), jobs.size(), side_by_side.c_str(), o.out.c_str());
  if (kept > 0)
    std::printf("kept %zu images that an earlier run segmented the same way in %s/ (--restart segments them again)\n",
                kept, o.out.c_str());
  note_cpu_speed(placement);
  std::fflush(stdout);

  // Outputs are written (and reported, in input order) while the model runs the next group.
  size_t done = 0;
  int failed = 0;
  const std::vector<run::Item>& all_items = items;
  auto take = [&](run::Outcome& outcome) {
    const Job& job = jobs[outcome.index];
    std::string problem = outcome.problem;
    const auto write_start = Clock::now();
    if (problem.empty()) {
      try {
        write_outputs(plan, identity, job.output, all_items[outcome.index], outcome);
      } catch (const io::WriteError& e) {
        // A full disk fails every image after this one too: the run stops (the runner ends with
        // this group), and a rerun keeps the images written so far.
        if (e.affects_every_file()) throw run_stopped_by(e);
        problem = util::current_failure().message;
      } catch (const std::exception&) {
        problem = util::current_failure().message;
      }
    }
    ++done;
    if (problem.empty()) {
      std::fprintf(stderr, "[%zu/%zu] %s %.1f s\n", done, jobs.size(), job.path.c_str(),
                   outcome.decode_seconds + outcome.model_seconds + seconds_since(write_start));
    } else {
      ++failed;
      std::fprintf(stderr, "error: %s: %s\n", Error(job.path).what(), problem.c_str());
    }
  };
  run::Runner runner(model, settings, {batch, workers});
  runner.run(items, take);
  const std::string kept_text = kept > 0 ? ", " + std::to_string(kept) + " kept from an earlier run" : "";
  std::printf("segmented %zu images, %d failed%s, %.1f s\n", jobs.size() - static_cast<size_t>(failed), failed,
              kept_text.c_str(), seconds_since(start));
  return failed == 0 ? 0 : 1;
}

}  // namespace

Command add_segment_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "segment",
      "Segment images into the given classes (PnP-OVSS): writes per image a label PNG, an overlay and a JSON record.\n"
      "Example: pnp-ovss segment photo.jpg --classes \"cat, sofa, remote control\" --out results");
  auto o = std::make_shared<SegmentOptions>();
  cmd->add_option("IMAGE", o->inputs, "image files (JPEG, PNG, BMP) or folders of them")->required();
  o->classes_opt = cmd->add_option("-c,--classes", o->classes, "class names separated by commas");
  o->classes_file_opt = cmd->add_option("--classes-file", o->classes_file, "file with one class name per line");
  cmd->add_option("-m,--model", o->model,
                  "model directory, or hub id org/name[@revision] (downloaded into the Hugging Face cache once)")
      ->capture_default_str();
  add_method_options(cmd, o->method, MethodOptionSet::All);
  add_compute_options(cmd, o->compute, ComputeOptionSet::WithBatchAndWorkers);
  cmd->add_option("--class-tags", o->class_tags,
                  "JSON file: image file stem -> list of class names or 0-based indices to use for that image");
  cmd->add_option("-o,--out", o->out, "output folder (created)")->capture_default_str();
  cmd->add_flag("--save-maps", o->save_maps, "also write every intermediate tensor and per-class heatmaps");
  cmd->add_flag("--restart", o->restart,
                "segment every image again, even those whose outputs in --out an earlier run wrote with the same "
                "image, model, device, settings and classes (a rerun otherwise keeps them, so an interrupted folder "
                "goes on)");
  return [o]() { return run_segment(*o); };
}

}  // namespace pnpovss::cli
