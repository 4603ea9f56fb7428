// `pnp-ovss segment`: the whole method on image files, with label PNGs, overlays and a JSON
// record per image. Everything that can be checked before the model runs (classes, settings,
// the output folder, the tags file, layer and head against the model) is checked first, so a
// mistake costs seconds, not a folder's worth of compute. Per image, a failure is reported and
// the next image goes on. A rerun into the same --out keeps the images an earlier run already
// segmented the same way (earlier_outputs.h), so an interrupted folder goes on where it stopped.
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "pnpovss/cli/commands.h"
#include "pnpovss/cli/compute_options.h"
#include "pnpovss/cli/earlier_outputs.h"
#include "pnpovss/cli/failure.h"
#include "pnpovss/cli/method_options.h"
#include "pnpovss/cli/output_dir.h"
#include "pnpovss/error.h"
#include "pnpovss/io/image.h"
#include "pnpovss/io/json_file.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/io/model_location.h"
#include "pnpovss/io/overlay.h"
#include "pnpovss/io/palette.h"
#include "pnpovss/io/png_writer.h"
#include "pnpovss/io/safetensors.h"
#include "pnpovss/io/tensor_bridge.h"
#include "pnpovss/models/placement.h"
#include "pnpovss/segment/batching.h"
#include "pnpovss/segment/pipeline.h"
#include "pnpovss/segment/prompt.h"
#include "pnpovss/segment/segmenter.h"
#include "pnpovss/segment/settings.h"
#include "pnpovss/side_by_side.h"
#include "pnpovss/text/wordpiece.h"
#include "pnpovss/text/ascii.h"

#ifndef PNPOVSS_VERSION
#define PNPOVSS_VERSION "unknown"
#endif

namespace pnpovss::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using ojson = nlohmann::ordered_json;
using models::cpu_float;

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

double rounded(double v, double scale) { return std::round(v * scale) / scale; }

// --classes "cat, sofa, remote control" or --classes-file (one name per line, blank lines
// skipped). An empty entry of --classes ("cat,,dog", a trailing comma) is an error, since it is
// almost always a typo.
std::vector<std::string> read_classes(const SegmentOptions& o) {
  const bool inline_given = o.classes_opt->count() > 0, file_given = o.classes_file_opt->count() > 0;
  if (inline_given && file_given) throw Error("give the classes with --classes or --classes-file, not both");
  if (!inline_given && !file_given)
    throw Error("no classes: give them with --classes \"cat, sofa, remote control\" or --classes-file FILE");
  std::vector<std::string> names;
  if (inline_given) {
    size_t start = 0;
    while (true) {
      const size_t comma = o.classes.find(',', start);
      const std::string name = text::trim_ascii(o.classes.substr(start, comma == std::string::npos ? comma : comma - start));
      if (name.empty())
        throw Error("--classes has an empty class name (entry " + std::to_string(names.size() + 1) +
                    "): separate names with single commas, e.g. \"cat, sofa\"");
      names.push_back(name);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  } else {
    const std::string text = io::read_text_file(o.classes_file);
    size_t start = 0;
    while (start <= text.size()) {
      const size_t end = std::min(text.find('\n', start), text.size());
      const std::string name = text::trim_ascii(text.substr(start, end - start));
      if (!name.empty()) names.push_back(name);
      start = end + 1;
    }
    if (names.empty()) throw Error("no classes: '" + o.classes_file + "' has no class names (one per line)");
  }
  return names;
}

bool is_image_name(const fs::path& p) {
  const std::string ext = text::lower_ascii(p.extension().string());
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

// --class-tags: {"image stem": ["cat", 2, ...]} -> 0-based class indices per stem, in the order
// listed (the order of the prompt). Names compare case-insensitively with the class list.
std::map<std::string, std::vector<int>> read_class_tags(const std::string& path,
                                                        const std::vector<std::string>& classes) {
  std::map<std::string, std::vector<int>> tags;
  if (path.empty()) return tags;
  const nlohmann::json doc = io::read_json_file(path);
  const std::string where = "class tags '" + path + "'";
  if (!doc.is_object())
    throw Error(where + " must be a JSON object mapping image file stems to lists of class names or indices");
  std::map<std::string, int> by_name;
  for (size_t k = 0; k < classes.size(); ++k) by_name.emplace(text::lower_ascii(classes[k]), static_cast<int>(k));
  for (const auto& [stem, list] : doc.items()) {
    const std::string entry = where + ", image '" + stem + "'";
    if (!list.is_array()) throw Error(entry + ": expected a list of class names or 0-based indices");
    if (list.empty()) throw Error(entry + ": the list is empty (remove the entry to use every class)");
    std::vector<int> indices;
    for (const auto& item : list) {
      int index = -1;
      if (item.is_string()) {
        const auto it = by_name.find(text::lower_ascii(text::trim_ascii(item.get<std::string>())));
        if (it == by_name.end())
          throw Error(entry + ": '" + item.get<std::string>() + "' is not one of the " +
                      std::to_string(classes.size()) + " classes");
        index = it->second;
      } else if (item.is_number_integer()) {
        const int64_t v = item.get<int64_t>();
        if (v < 0 || v >= static_cast<int64_t>(classes.size()))
          throw Error(entry + ": class index " + std::to_string(v) + " is outside 0.." +
                      std::to_string(classes.size() - 1));
        index = static_cast<int>(v);
      } else {
        throw Error(entry + ": " + item.dump() + " is neither a class name nor a 0-based class index");
      }
      if (std::find(indices.begin(), indices.end(), index) != indices.end())
        throw Error(entry + ": class '" + classes[index] + "' is listed twice");
      indices.push_back(index);
    }
    tags[stem] = indices;
  }
  return tags;
}

// Letters, digits, '-' and '_' of a class name, the rest as '_' (file names of heatmaps).
std::string file_safe(const std::string& name) {
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    out += (std::isalnum(u) && u < 0x80) || c == '-' || c == '_' ? c : '_';
  }
  return out;
}

// "#rrggbb".
std::string hex_color(io::Rgb c) {
  char text[8];
  std::snprintf(text, sizeof text, "#%02x%02x%02x", c.r, c.g, c.b);
  return text;
}

// `minmax` false: the values are already in [0, 1] and keep their meaning across files.
void write_heatmap(const std::string& path, const torch::Tensor& map2d, bool minmax = true) {
  const torch::Tensor m = cpu_float(map2d);
  io::write_png_rgb(path, io::heatmap(m.data_ptr<float>(), static_cast<int>(m.size(0)), static_cast<int>(m.size(1)),
                                      256, minmax));
}

// --save-maps: every intermediate tensor, and per class the maps a person looks at first.
void save_maps(const std::string& out_dir, const Job& job, const segment::SegmentationResult& r,
               const std::vector<std::string>& names, const std::vector<int>& labels, const ojson& record) {
  std::vector<std::pair<std::string, torch::Tensor>> named = r.named_tensors();
  std::vector<io::TensorView> views;
  for (auto& [name, tensor] : named) {
    tensor = tensor.detach().to(torch::kCPU).contiguous();
    views.push_back(io::view_of(name, tensor));
  }
  io::write_safetensors(out_dir + "/" + job.output + ".maps.safetensors", views,
                        {{"pnp_ovss", record.dump()}});

  const std::string dir = out_dir + "/" + job.output + ".maps";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create '" + dir + "': " + ec.message());
  // File names: the class name made safe, with the label added when two names collide.
  std::vector<std::string> files;
  std::set<std::string> used;
  for (size_t k = 0; k < names.size(); ++k) {
    std::string f = file_safe(names[k]);
    if (f.empty() || !used.insert(f).second) f += "_" + std::to_string(labels[k]);
    used.insert(f);
    files.push_back(f);
  }
  const auto& iterations = r.dropout.iterations;
  for (size_t k = 0; k < names.size(); ++k) {
    const std::string base = dir + "/" + files[k];
    if (!iterations.empty()) {
      // The attention itself, before GradCAM: iteration 0's rows of the class's wordpieces.
      const segment::ClassSpan span = r.prompt.spans[k];
      write_heatmap(base + ".attn.png",
                    cpu_float(iterations[0].attn_probs).slice(0, span.begin, span.end).mean(0));
    }
    for (size_t t = 0; t < iterations.size(); ++t)
      write_heatmap(base + ".iter" + std::to_string(t) + ".gradcam.png",
                    iterations[t].class_maps[static_cast<int64_t>(k)]);
    write_heatmap(base + ".final.png", r.dropout.final_maps[static_cast<int64_t>(k)]);
  }
  // Dropped patches are shared by all classes: 0 kept, 0.5 zeroed in this iteration's input,
  // 1 chosen by this iteration (zeroed from the next one on).
  for (size_t t = 0; t < iterations.size(); ++t) {
    torch::Tensor m = cpu_float(iterations[t].dropped_before) * 0.5f;
    float* p = m.data_ptr<float>();
    for (int64_t idx : iterations[t].new_dropped)
      if (idx >= 0 && idx < m.numel()) p[idx] = 1.0f;
    write_heatmap(dir + "/dropped.iter" + std::to_string(t) + ".png", m, false);
  }
}

// The classes of one image's prompt: all, or the image's --class-tags.
struct PromptClasses {
  std::vector<std::string> names;      // in prompt order
  std::vector<int32_t> class_labels;   // label of each: its 1-based place in the full list
};

PromptClasses prompt_classes(const std::vector<std::string>& classes,
                             const std::map<std::string, std::vector<int>>& tags, const Job& job) {
  PromptClasses p;
  std::vector<int> indices;  // 0-based into `classes`, in prompt order
  if (const auto it = tags.find(job.stem); it != tags.end()) {
    indices = it->second;
  } else {
    for (size_t k = 0; k < classes.size(); ++k) indices.push_back(static_cast<int>(k));
  }
  for (int k : indices) {
    p.names.push_back(classes[k]);
    p.class_labels.push_back(k + 1);
  }
  return p;
}

// One image ready for the model: its prompt classes and the decoded pixels.
struct PreparedJob : PromptClasses {
  const Job* job = nullptr;
  io::Image image;
  std::string image_sha256;  // recorded, so that a rerun knows the image is unchanged
  double decode_seconds = 0;
};

// The classes and the decoded image; throws on failure.
PreparedJob prepare_job(const std::vector<std::string>& classes, const std::map<std::string, std::vector<int>>& tags,
                        const Job& job) {
  PreparedJob p;
  static_cast<PromptClasses&>(p) = prompt_classes(classes, tags, job);
  p.job = &job;
  const auto t = Clock::now();
  p.image = io::decode_image_file(job.path, p.image_sha256);
  p.decode_seconds = seconds_since(t);
  return p;
}

// The files `segment` writes for one image, its JSON record last.
std::vector<std::string> output_files(const SegmentOptions& o, const Job& job) {
  const std::string base = o.out + "/" + job.output;
  std::vector<std::string> files = {base + ".labels.png", base + ".overlay.png"};
  if (o.save_maps) {
    files.push_back(base + ".maps.safetensors");
    files.push_back(base + ".maps");
  }
  files.push_back(base + ".json");
  return files;
}

RunIdentity run_identity(const segment::Segmenter& model, const segment::MethodSettings& settings) {
  return {model.model_dir(), model.placement().describe(), ojson::parse(segment::to_json(settings).dump()),
          std::string("pnp-ovss ") + PNPOVSS_VERSION};
}

// The jobs whose outputs in --out an earlier run wrote the same way (see earlier_outputs.h)
// are dropped from `jobs` and counted.
size_t drop_written_earlier(const SegmentOptions& o, const RunIdentity& run, const std::vector<std::string>& classes,
                            const std::map<std::string, std::vector<int>>& tags, std::vector<Job>& jobs) {
  const size_t before = jobs.size();
  jobs.erase(std::remove_if(jobs.begin(), jobs.end(),
                            [&](const Job& job) {
                              const PromptClasses p = prompt_classes(classes, tags, job);
                              const ojson identity = record_identity(run, job.path, "", p.names, p.class_labels);
                              return written_earlier(o.out + "/" + job.output + ".json", output_files(o, job),
                                                     identity);
                            }),
             jobs.end());
  return before - jobs.size();
}

// The images [begin, begin + count) decoded, and the ones that could not be, with why.
struct PreparedGroup {
  std::vector<PreparedJob> ready;
  std::vector<std::pair<const Job*, std::string>> failed;
  size_t end = 0;  // one past the last job of the group
};

PreparedGroup prepare_group(const std::vector<Job>& jobs, size_t begin, size_t count,
                            const std::vector<std::string>& classes,
                            const std::map<std::string, std::vector<int>>& tags) {
  PreparedGroup g;
  g.end = std::min(jobs.size(), begin + std::max<size_t>(count, 1));
  for (size_t i = begin; i < g.end; ++i) {
    try {
      g.ready.push_back(prepare_job(classes, tags, jobs[i]));
    } catch (const std::exception&) {
      g.failed.emplace_back(&jobs[i], current_failure().message);
    }
  }
  return g;
}

// Writes the label PNG, overlay, JSON record (and --save-maps) of one segmented image.
void write_outputs(const SegmentOptions& o, const RunIdentity& run, const segment::MethodSettings& settings,
                   const std::vector<std::string>& classes, const PreparedJob& p,
                   const segment::SegmentationResult& r, double model_seconds) {
  const Job& job = *p.job;
  const io::Image& image = p.image;
  const std::vector<std::string>& names = p.names;
  const std::vector<int32_t>& class_labels = p.class_labels;
  // Labels are places in the full class list, so the same class has the same label in every
  // image whatever --class-tags kept.
  const std::vector<int32_t> labels =
      segment::dataset_label_map(r, class_labels, 0, settings.labels_official_inplace_remap);

  const auto t = Clock::now();
  const int max_label = static_cast<int>(classes.size());
  std::vector<int64_t> counts(static_cast<size_t>(max_label) + 1, 0);
  for (int32_t v : labels) ++counts[static_cast<size_t>(v)];
  const double pixels = static_cast<double>(labels.size());
  const std::string base = o.out + "/" + job.output;
  io::write_file_atomic(base + ".labels.png", io::encode_label_png(labels, image.width, image.height, max_label));

  // Classes in label order: background (when its channel was used), then the prompt's classes.
  std::vector<std::pair<int32_t, std::string>> present;
  if (r.has_background) present.emplace_back(0, segment::kBackgroundName);
  std::vector<std::pair<int32_t, std::string>> sorted;
  for (size_t k = 0; k < names.size(); ++k) sorted.emplace_back(class_labels[k], names[k]);
  std::sort(sorted.begin(), sorted.end());
  present.insert(present.end(), sorted.begin(), sorted.end());

  ojson class_list = ojson::array();
  std::vector<io::LegendEntry> legend;
  for (const auto& [label, name] : present) {
    const io::Rgb c = io::label_color(label);
    const int64_t n = counts[static_cast<size_t>(label)];
    class_list.push_back({{"label", label},
                          {"name", name},
                          {"pixel_share", rounded(static_cast<double>(n) / pixels, 1e6)},
                          {"color", hex_color(c)}});
    if (n > 0) legend.push_back({name, c});
  }
  io::write_png_rgb(base + ".overlay.png", io::overlay_with_legend(image, labels, legend));

  ojson record = record_identity(run, job.path, p.image_sha256, names, class_labels);
  record["width"] = image.width;
  record["height"] = image.height;
  record["classes"] = class_list;
  if (o.save_maps) save_maps(o.out, job, r, names, class_labels, record);

  ojson timings;
  timings["decode"] = rounded(p.decode_seconds, 1e4);
  for (const auto& stage : r.timings) timings[stage.stage] = rounded(stage.seconds, 1e4);
  timings["outputs"] = rounded(seconds_since(t), 1e4);
  timings["total"] = rounded(p.decode_seconds + model_seconds + seconds_since(t), 1e4);
  record["timings"] = timings;
  io::write_file_atomic(base + ".json", record.dump(2) + "\n");
}

// Counts and reports per image, with the run's numbering.
struct Report {
  size_t total = 0, done = 0;
  int failed = 0;
  void success(const Job& job, double seconds) {
    std::fprintf(stderr, "[%zu/%zu] %s %.1f s\n", ++done, total, job.path.c_str(), seconds);
  }
  void failure(const Job& job, const std::string& problem) {
    ++done;
    ++failed;
    std::fprintf(stderr, "error: %s: %s\n", Error(job.path).what(), problem.c_str());
  }
};

// What happened to one image of a group, in input order: segmented (outputs still to be
// written) or failed, with why.
struct Outcome {
  const Job* job = nullptr;
  std::string problem;  // empty when segmented
  PreparedJob prepared;
  segment::SegmentationResult result;
  double model_seconds = 0;  // its share of its batch's time
};

// The model on a group of prepared images; when the batch fails as a whole (not for memory,
// which segment_in_batches handles), each image runs alone so that one bad image fails alone.
void segment_group(const segment::Segmenter& model, const segment::MethodSettings& settings,
                   std::vector<PreparedJob>& group, segment::BatchSize& batch, int workers, std::vector<Outcome>& out) {
  if (group.empty()) return;
  std::vector<segment::ImageTask> tasks;
  for (const auto& p : group) tasks.push_back({&p.image, &p.names});
  const auto start = Clock::now();
  std::vector<segment::SegmentationResult> results;
  try {
    results = segment::segment_in_batches(model, tasks, settings, batch, workers);
  } catch (const std::exception&) {
    if (group.size() == 1) {
      out.push_back({group.front().job, current_failure().message, {}, {}, 0});
      return;
    }
    for (auto& p : group) {
      std::vector<PreparedJob> one;
      one.push_back(std::move(p));
      segment_group(model, settings, one, batch, 1, out);
    }
    return;
  }
  const double model_seconds = seconds_since(start) / static_cast<double>(group.size());
  for (size_t i = 0; i < group.size(); ++i)
    out.push_back({group[i].job, "", std::move(group[i]), std::move(results[i]), model_seconds});
}

// Reports the outcomes in order, writing the outputs of the segmented images.
void write_outcomes(const SegmentOptions& o, const RunIdentity& run, const segment::MethodSettings& settings,
                    const std::vector<std::string>& classes, const std::vector<Outcome>& outcomes, Report& report) {
  for (const Outcome& outcome : outcomes) {
    if (!outcome.problem.empty()) {
      report.failure(*outcome.job, outcome.problem);
      continue;
    }
    const auto write_start = Clock::now();
    const PreparedJob& p = outcome.prepared;
    try {
      write_outputs(o, run, settings, classes, p, outcome.result, outcome.model_seconds);
      report.success(*p.job, p.decode_seconds + outcome.model_seconds + seconds_since(write_start));
    } catch (const std::exception&) {
      report.failure(*p.job, current_failure().message);
    }
  }
}

int run_segment(const SegmentOptions& o) {
  const auto start = Clock::now();
  const std::string dir = io::resolve_model_dir(o.model);
  const segment::MethodSettings settings = resolve_method_settings(o.method, backbone_of(dir));
  const models::Placement placement = resolve_placement(o.compute);
  segment::BatchSize batch = resolve_batch_size(o.compute, placement, settings.input_size);
  const std::vector<std::string> classes = read_classes(o);
  const int workers = resolve_workers(o.compute, placement, {settings.input_size, classes.size()});
  if (o.inputs.empty()) throw Error("no images: give image files or folders");
  prepare_output_dir(o.out);
  const auto tags = read_class_tags(o.class_tags, classes);
  std::vector<Job> jobs = list_jobs(o.inputs);

  // The weights are memory-mapped, so loading costs little before the classes are checked.
  const auto model = segment::Segmenter::load(dir, settings.input_position_resize, placement);
  model.check_classes(classes, settings);
  check_settings_fit(o.method, model, settings);
  // What every record of this run names (model, device, settings, version), built once.
  const RunIdentity run = run_identity(model, settings);
  const size_t kept = o.restart ? 0 : drop_written_earlier(o, run, classes, tags, jobs);

  std::printf("settings: %s\n", settings.describe().c_str());
  const size_t lanes = side_by_side_lanes(jobs.size(), workers);
  const std::string side_by_side = lanes > 1 ? ", " + std::to_string(lanes) + " side by side" : "";
  std::printf("model %s on %s, %zu classes, %zu images%s -> %s/\n", dir.c_str(), placement.describe().c_str(),
              classes.size(), jobs.size(), side_by_side.c_str(), o.out.c_str());
  if (kept > 0)
    std::printf("kept %zu images that an earlier run segmented the same way in %s/ (--restart segments them again)\n",
                kept, o.out.c_str());
  note_cpu_speed(placement);
  std::fflush(stdout);

  Report report;
  report.total = jobs.size();
  // The next group's images decode on a worker thread while the model runs this group.
  auto decode = [&](size_t begin, size_t count) {
    return std::async(std::launch::async, prepare_group, std::cref(jobs), begin, count, std::cref(classes),
                      std::cref(tags));
  };
  // And its outputs are written on another while the model runs the next group; reports
  // still come in input order.
  auto write = [&](std::shared_ptr<const std::vector<Outcome>> outcomes) {
    return std::async(std::launch::async,
                      [&, outcomes] { write_outcomes(o, run, settings, classes, *outcomes, report); });
  };
  // A group: a batch for every worker, or on a GPU several batches, post-processed while the
  // model runs the next (batches shrink when the GPU runs out of memory).
  auto group_size = [&] { return segment::images_per_group(batch, workers, placement); };
  std::future<PreparedGroup> next;
  if (!jobs.empty()) next = decode(0, group_size());
  std::future<void> writing;
  while (next.valid()) {
    PreparedGroup group = next.get();
    if (group.end < jobs.size()) next = decode(group.end, group_size());
    auto outcomes = std::make_shared<std::vector<Outcome>>();
    for (const auto& [job, problem] : group.failed) outcomes->push_back({job, problem, {}, {}, 0});
    segment_group(model, settings, group.ready, batch, workers, *outcomes);
    if (writing.valid()) writing.get();
    writing = write(std::move(outcomes));
  }
  if (writing.valid()) writing.get();
  const std::string kept_text = kept > 0 ? ", " + std::to_string(kept) + " kept from an earlier run" : "";
  std::printf("segmented %zu images, %d failed%s, %.1f s\n", jobs.size() - static_cast<size_t>(report.failed),
              report.failed, kept_text.c_str(), seconds_since(start));
  return report.failed == 0 ? 0 : 1;
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
