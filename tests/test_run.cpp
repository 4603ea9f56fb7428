// The run layer every front end stands on, on the tiny random-weight BLIP model
// (tests/data/blip_itm: input 64, 3 text layers, 4 heads; settings size 64, layer 2, head 3):
//   - run::Runner and run::Stream: outcomes in input order, a file that cannot be decoded and an
//     image whose class list is refused each fail alone while the others get exactly the result
//     they get alone, labels mapped through the item's labels, the file's SHA-256, the pull and
//     push interfaces agreeing, `take` in input order and its exception ending the run;
//   - interruption (util::Interrupted) ends a run instead of failing one image;
//   - class lists and class tags; choosing the model and resolving its settings, with the
//     errors that name a setting and where its value came from;
//   - util::describe on libtorch's and pnp-ovss's errors;
//   - the public pnpovss::Segmenter against the method underneath.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/crop.h"
#include "pnpovss/run/class_lists.h"
#include "pnpovss/run/model.h"
#include "pnpovss/run/runner.h"
#include "pnpovss/segment/segmenter.h"
#include "pnpovss/segmenter.h"
#include "pnpovss/settings.h"
#include "pnpovss/settings/settings_json.h"
#include "pnpovss/util/failure.h"
#include "pnpovss/util/hash.h"
#include "pnpovss/util/interrupt.h"

namespace pnpovss {
namespace {

namespace fs = std::filesystem;

const std::string kData = PNPOVSS_TEST_DATA;
const std::string kModel = kData + "/blip_itm";
const std::string kPhoto = kData + "/images/coco_000000039769.png";
const std::string kOtherPhoto = kData + "/images/coco_000000004016.png";
const std::vector<std::string> kClasses = {"cat", "couch", "remote control"};

// The tiny model's settings (size 64, layer 2, head 3, 1-based) with blur and no Dense CRF, so
// that each image takes a fraction of a second.
SettingChoices tiny_choices() {
  SettingChoices c;
  c.size = 64;
  c.layer = 2;
  c.head = 3;
  c.postprocess = "blur";
  return c;
}

// The model, loaded once per test process.
const segment::Segmenter& tiny_model() {
  static const segment::Segmenter model = segment::Segmenter::load(kModel);
  return model;
}
const MethodSettings& tiny_settings() {
  static const MethodSettings settings = resolve_settings(tiny_choices(), "blip");
  return settings;
}

const Image& photo() {
  static const Image image = image::decode_image_file(kPhoto);
  return image;
}

// A folder in the temporary directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_((fs::temp_directory_path() / ("pnpovss_run_" + std::to_string(::getpid()) + "_" + name)).string()) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  // Writes `text` to the file `name` in the folder and returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }

 private:
  std::string path_;
};

// Every test that installs an interrupt check removes it again, whatever happens.
struct InterruptCheckReset {
  ~InterruptCheckReset() { util::set_interrupt_check({}); }
};

// The message of `e` when it is (or derives from) E; fails the test otherwise.
template <typename E>
std::string message_if(const std::exception_ptr& e) {
  if (!e) {
    ADD_FAILURE() << "no exception recorded";
    return "";
  }
  try {
    std::rethrow_exception(e);
  } catch (const E& error) {
    return error.what();
  } catch (const std::exception& other) {
    ADD_FAILURE() << "unexpected exception type: " << other.what();
  }
  return "";
}

// The two results have the same bits: labels, channels and the maps the labels came from.
void expect_same_bits(const segment::SegmentationResult& got, const segment::SegmentationResult& want,
                      const std::string& what) {
  EXPECT_EQ(got.width, want.width) << what;
  EXPECT_EQ(got.height, want.height) << what;
  EXPECT_EQ(got.channel_names, want.channel_names) << what;
  EXPECT_TRUE(got.labels == want.labels) << what << ": labels differ";
  EXPECT_TRUE(got.channels == want.channels) << what << ": channels differ";
  ASSERT_EQ(got.blurred.defined(), want.blurred.defined()) << what;
  if (want.blurred.defined()) {
    EXPECT_TRUE(torch::equal(got.blurred, want.blurred)) << what << ": blurred maps differ";
  } else {
    EXPECT_TRUE(torch::equal(got.maps.stack, want.maps.stack)) << what << ": channel stacks differ";
  }
}

// `labels` is the result's labels with class k (1-based) written as class_labels[k - 1].
void expect_mapped_labels(const std::vector<int32_t>& labels, const segment::SegmentationResult& r,
                          const std::vector<int32_t>& class_labels, const std::string& what) {
  ASSERT_EQ(labels.size(), r.labels.size()) << what;
  size_t wrong = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const int32_t want = r.labels[i] == 0 ? 0 : class_labels.at(static_cast<size_t>(r.labels[i] - 1));
    if (labels[i] != want) ++wrong;
  }
  EXPECT_EQ(wrong, 0u) << what << ": pixels not mapped through the item's labels";
}

// ---- Runner: failures stay with their image -------------------------------------------------

struct RunShape {
  int batch, workers;
};
void PrintTo(const RunShape& shape, std::ostream* os) {
  *os << "batch " << shape.batch << ", workers " << shape.workers;
}

class RunnerFailures : public ::testing::TestWithParam<RunShape> {};

// Five items, in-memory and files: a file (hashed), an image whose class list is refused
// ("cat" and "Cat"), a missing file, and two good in-memory images, one with labels 7, 9, 11.
TEST_P(RunnerFailures, BadItemsFailAloneAndTheOthersGetTheirOwnResults) {
  const RunShape shape = GetParam();
  const segment::Segmenter& model = tiny_model();
  const MethodSettings& settings = tiny_settings();
  const Image crop = image::center_crop(photo(), 200, 150);
  const Image other = image::decode_image_file(kOtherPhoto);
  const Image small = image::center_crop(other, 160, 120);
  const std::string missing = (fs::temp_directory_path() / "pnpovss_run_no_such_image.png").string();

  std::vector<run::Item> items(5);
  items[0].path = kPhoto;
  items[0].hash_file = true;
  items[0].classes = run::all_classes(kClasses);
  items[1].path = "refused";
  items[1].image = &crop;
  items[1].classes = run::all_classes({"cat", "Cat"});
  items[2].path = missing;
  items[2].classes = run::all_classes(kClasses);
  items[3].path = "labelled";
  items[3].image = &other;
  items[3].classes = run::PromptClasses{kClasses, {7, 9, 11}};
  items[4].path = "small";
  items[4].image = &small;
  items[4].classes = run::chosen_classes(kClasses, {2, 0});

  run::Runner runner(model, settings, {segment::BatchSize{shape.batch, false}, shape.workers});
  const std::vector<run::Outcome> out = runner.run_all(items);
  ASSERT_EQ(out.size(), items.size());
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i].index, i) << "outcomes not in input order";

  // The refused class list: InvalidArgument, alone.
  EXPECT_FALSE(out[1].ok());
  EXPECT_NE(message_if<InvalidArgument>(out[1].error), "");
  EXPECT_EQ(util::describe(out[1].error).message, out[1].problem);
  EXPECT_TRUE(out[1].labels.empty());
  // The missing file: a message naming it.
  EXPECT_FALSE(out[2].ok());
  EXPECT_NE(out[2].problem.find(missing), std::string::npos) << out[2].problem;
  EXPECT_NE(message_if<Error>(out[2].error).find(missing), std::string::npos);
  EXPECT_EQ(out[2].image.width, 0);

  // The others: the results they get alone, bit for bit.
  const Image* images[] = {&photo(), nullptr, nullptr, &other, &small};
  for (size_t i : {size_t{0}, size_t{3}, size_t{4}}) {
    const std::string what = "item " + std::to_string(i);
    ASSERT_TRUE(out[i].ok()) << what << ": " << out[i].problem;
    EXPECT_EQ(out[i].error, nullptr) << what;
    const segment::SegmentationResult alone = model.segment(*images[i], items[i].classes.names, settings);
    expect_same_bits(out[i].result, alone, what);
    expect_mapped_labels(out[i].labels, alone, items[i].classes.labels, what);
  }
  // The file item carries its decoded pixels and the file's SHA-256; the others no hash.
  EXPECT_EQ(out[0].image.width, photo().width);
  EXPECT_TRUE(out[0].image.rgb == photo().rgb);
  EXPECT_EQ(out[0].image_sha256, util::file_sha256(kPhoto));
  EXPECT_EQ(out[0].image_sha256.size(), 64u);
  EXPECT_EQ(out[3].image_sha256, "");
  // Labels 7, 9, 11: nothing else appears, and at least one class does.
  const std::set<int32_t> seen(out[3].labels.begin(), out[3].labels.end());
  for (int32_t v : seen) EXPECT_TRUE(v == 0 || v == 7 || v == 9 || v == 11) << "label " << v << " appears";
  EXPECT_TRUE(seen.count(7) || seen.count(9) || seen.count(11)) << "no class label at all";
  // chosen_classes {2, 0}: remote control is 3, cat is 1.
  const std::set<int32_t> seen_small(out[4].labels.begin(), out[4].labels.end());
  for (int32_t v : seen_small) EXPECT_TRUE(v == 0 || v == 1 || v == 3) << "label " << v << " appears";
}

INSTANTIATE_TEST_SUITE_P(Shapes, RunnerFailures, ::testing::Values(RunShape{2, 1}, RunShape{1, 2}, RunShape{2, 2}),
                         [](const ::testing::TestParamInfo<RunShape>& info) {
                           return "batch" + std::to_string(info.param.batch) + "_workers" +
                                  std::to_string(info.param.workers);
                         });

// ---- Stream, run and take ------------------------------------------------------------------------

// Three in-memory crops and, second, a missing file.
std::vector<run::Item> four_items(std::vector<Image>& keep) {
  keep = {image::center_crop(photo(), 120, 90), image::center_crop(photo(), 96, 96),
          image::center_crop(photo(), 80, 100)};
  std::vector<run::Item> items(4);
  for (size_t i = 0; i < 3; ++i) {
    items[i].path = "image " + std::to_string(i);
    items[i].image = &keep[i];
    items[i].classes = run::all_classes(kClasses);
  }
  items[3].path = (fs::temp_directory_path() / "pnpovss_run_missing.png").string();
  items[3].classes = run::all_classes(kClasses);
  std::swap(items[1], items[3]);  // the missing file second
  return items;
}

void expect_same_outcome(const run::Outcome& got, const run::Outcome& want) {
  const std::string what = "outcome " + std::to_string(want.index);
  EXPECT_EQ(got.index, want.index) << what;
  EXPECT_EQ(got.problem, want.problem) << what;
  EXPECT_TRUE(got.labels == want.labels) << what;
  if (want.ok()) expect_same_bits(got.result, want.result, what);
}

TEST(RunStream, NextAndNextGroupGiveWhatRunAllGives) {
  std::vector<Image> keep;
  const std::vector<run::Item> items = four_items(keep);
  run::Runner runner(tiny_model(), tiny_settings(), {segment::BatchSize{2, false}, 1});
  ASSERT_EQ(runner.group_size(), 2u);
  const std::vector<run::Outcome> all = runner.run_all(items);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_FALSE(all[1].ok());

  run::Stream one(runner, items);
  for (size_t i = 0; i < items.size(); ++i) {
    ASSERT_FALSE(one.done()) << "done after " << i << " outcomes";
    expect_same_outcome(one.next(), all[i]);
  }
  EXPECT_TRUE(one.done());
  EXPECT_THROW(one.next(), Error);

  run::Stream groups(runner, items);
  size_t seen = 0, group_count = 0;
  for (std::vector<run::Outcome> g = groups.next_group(); !g.empty(); g = groups.next_group()) {
    EXPECT_LE(g.size(), runner.group_size());
    ++group_count;
    for (const auto& o : g) expect_same_outcome(o, all.at(seen++));
  }
  EXPECT_EQ(seen, items.size());
  EXPECT_EQ(group_count, 2u);
  EXPECT_TRUE(groups.done());

  // A next() and then the rest of its group.
  run::Stream mixed(runner, items);
  expect_same_outcome(mixed.next(), all[0]);
  const std::vector<run::Outcome> rest = mixed.next_group();
  ASSERT_EQ(rest.size(), 1u);
  expect_same_outcome(rest[0], all[1]);

  // No items: nothing to give.
  run::Stream empty(runner, {});
  EXPECT_TRUE(empty.done());
  EXPECT_TRUE(empty.next_group().empty());
  EXPECT_THROW(empty.next(), Error);
  EXPECT_TRUE(runner.run_all({}).empty());
}

TEST(RunTake, CalledInInputOrderAndItsExceptionEndsTheRun) {
  std::vector<Image> keep;
  const std::vector<run::Item> items = four_items(keep);
  for (int batch : {1, 2}) {
    run::Runner runner(tiny_model(), tiny_settings(), {segment::BatchSize{batch, false}, 1});
    std::vector<size_t> order;
    runner.run(items, [&](run::Outcome& o) { order.push_back(o.index); });
    EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 3})) << "batch " << batch;

    // `take` fails on the second outcome: run() throws that exception, and no later outcome is
    // taken (the run ends after the group in hand).
    order.clear();
    try {
      runner.run(items, [&](run::Outcome& o) {
        order.push_back(o.index);
        if (o.index == 1) throw std::runtime_error("take failed on outcome 1");
      });
      ADD_FAILURE() << "batch " << batch << ": the exception of take did not leave run";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "take failed on outcome 1");
    }
    EXPECT_EQ(order, (std::vector<size_t>{0, 1})) << "batch " << batch;
  }
}

// ---- interruption ---------------------------------------------------------------------------------

// Interrupted at every point where a run asks (before each group, at each Salience DropOut
// pass of each image, the last image's included, where nothing after it would ask again), the
// run throws util::Interrupted: no image reports it as its failure.
TEST(RunInterrupt, AnInterruptedRunThrowsInsteadOfFailingAnImage) {
  std::vector<Image> keep;
  std::vector<run::Item> items = four_items(keep);
  items.erase(items.begin() + 1);  // in-memory images only: every one would succeed
  for (int workers : {1, 2}) {
    const run::Runner runner(tiny_model(), tiny_settings(), {segment::BatchSize{1, false}, workers});
    InterruptCheckReset reset;
    // How often an uninterrupted run asks.
    std::atomic<int> calls{0};
    util::set_interrupt_check([&calls] {
      ++calls;
      return false;
    });
    run::Runner counting = runner;
    const std::vector<run::Outcome> all = counting.run_all(items);
    ASSERT_EQ(all.size(), items.size());
    for (const auto& o : all) EXPECT_TRUE(o.ok()) << o.problem;
    const int asked = calls.load();
    ASSERT_GE(asked, 1 + static_cast<int>(items.size()) * tiny_settings().dropout_iterations) << "workers " << workers;
    for (int after = 0; after < asked; ++after) {
      // True from call `after` + 1 on, as Python's check is once Ctrl-C was pressed.
      calls = 0;
      util::set_interrupt_check([&calls, after] { return ++calls > after; });
      run::Runner interrupted = runner;
      EXPECT_THROW(interrupted.run_all(items), util::Interrupted) << "workers " << workers << ", after " << after;
      EXPECT_GT(calls.load(), after) << "the check was not consulted";
    }
    util::set_interrupt_check({});
  }
}

TEST(RunInterrupt, DescribeLetsInterruptedThrough) {
  EXPECT_THROW(util::describe(std::make_exception_ptr(util::Interrupted())), util::Interrupted);
  try {
    throw util::Interrupted();
  } catch (...) {
    EXPECT_THROW(util::current_failure(), util::Interrupted);
  }
  // A check installed and removed: interruption_point is quiet again.
  {
    InterruptCheckReset reset;
    util::set_interrupt_check([] { return true; });
    EXPECT_THROW(util::interruption_point(), util::Interrupted);
  }
  EXPECT_NO_THROW(util::interruption_point());
}

// ---- util::describe ---------------------------------------------------------------------------------

TEST(DescribeFailure, LibtorchErrorIsOneLineWithoutBacktrace) {
  std::string raw;
  util::Failure f;
  try {
    const torch::Tensor t = torch::zeros({2}).view({3});
    ADD_FAILURE() << "no libtorch error (" << t.numel() << ")";
  } catch (const std::exception& e) {
    raw = e.what();
    f = util::current_failure();
  }
  EXPECT_TRUE(f.internal);
  EXPECT_FALSE(f.message.empty());
  EXPECT_EQ(f.message.find("Exception raised from"), std::string::npos) << f.message;
  EXPECT_EQ(f.message.find('\n'), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("[3]"), std::string::npos) << f.message;  // "shape '[3]' is invalid ..."
  // The message is the start of libtorch's own.
  EXPECT_EQ(raw.compare(0, f.message.size(), f.message), 0) << raw;
}

// libtorch appends its C++ backtrace to what() ("\nException raised from <function> at
// <file>:<line> (most recent call first):\nframe #0: ..."), where backtraces are built in (the
// Debian libtorch 1.13 here builds none, so the error above may carry none): the backtrace goes.
TEST(DescribeFailure, LibtorchBacktraceIsCutOff) {
  const c10::Error error("shape '[3]' is invalid for input of size 2",
                         "Exception raised from view at aten/src/ATen/native/TensorShape.cpp:1234 (most recent call "
                         "first):\nframe #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x3e\nframe #1: "
                         "at::native::view(at::Tensor const&, c10::ArrayRef<long>) + 0x12\n");
  ASSERT_NE(std::string(error.what()).find("\nException raised from view"), std::string::npos) << error.what();
  const util::Failure f = util::describe(std::make_exception_ptr(error));
  EXPECT_TRUE(f.internal);
  EXPECT_EQ(f.message, "shape '[3]' is invalid for input of size 2");
}

TEST(DescribeFailure, OwnErrorsAreNotInternalAndControlCharactersAreEscaped) {
  const util::Failure own = util::describe(std::make_exception_ptr(InvalidArgument("bad class 'a\x1b[2J'")));
  EXPECT_FALSE(own.internal);
  EXPECT_EQ(own.message, "bad class 'a\\x1b[2J'");
  const util::Failure setting = util::describe(std::make_exception_ptr(SettingError("layer", "9", "is too large")));
  EXPECT_FALSE(setting.internal);
  EXPECT_EQ(setting.message, "layer 9 is too large");
  const util::Failure std_error = util::describe(std::make_exception_ptr(std::runtime_error("line one\nline\ttwo\r")));
  EXPECT_TRUE(std_error.internal);
  EXPECT_EQ(std_error.message, "line one\\nline\\ttwo\\r");
  const util::Failure unknown = util::describe(std::make_exception_ptr(42));
  EXPECT_TRUE(unknown.internal);
  EXPECT_FALSE(unknown.message.empty());
}

// ---- class lists and class tags ---------------------------------------------------------------------

TEST(ClassLists, SplitTrimsAndRefusesEmptyEntries) {
  EXPECT_EQ(run::split_class_list("cat, couch,remote control"), kClasses);
  EXPECT_EQ(run::split_class_list("  cat\t,  couch ,\tremote control  "), kClasses);
  EXPECT_EQ(run::split_class_list("sofa"), std::vector<std::string>{"sofa"});
  for (const char* bad : {"", "   ", "cat,,dog", "cat, , dog", "cat,", "cat, couch, ", ",cat"})
    EXPECT_THROW(run::split_class_list(bad), InvalidArgument) << "'" << bad << "'";
}

TEST(ClassLists, ReadClassFileTrimsAndSkipsBlankLines) {
  TempDir dir("class_file");
  EXPECT_EQ(run::read_class_file(dir.write("c.txt", "  cat \n\ncouch\r\n\tremote control\n\n")), kClasses);
  EXPECT_THROW(run::read_class_file(dir.write("blank.txt", "\n  \n\t\n")), InvalidArgument);
  EXPECT_THROW(run::read_class_file(dir.path() + "/none.txt"), Error);
}

TEST(ClassLists, AllAndChosenClassesAndTheirLabels) {
  const run::PromptClasses all = run::all_classes(kClasses);
  EXPECT_EQ(all.names, kClasses);
  EXPECT_EQ(all.labels, (std::vector<int32_t>{1, 2, 3}));
  const run::PromptClasses chosen = run::chosen_classes(kClasses, {2, 0});
  EXPECT_EQ(chosen.names, (std::vector<std::string>{"remote control", "cat"}));
  EXPECT_EQ(chosen.labels, (std::vector<int32_t>{3, 1}));  // index + 1, in prompt order
}

// The InvalidArgument that read_class_tags throws for `text`; "" when it throws nothing.
std::string tags_refusal(const TempDir& dir, const std::string& text, const std::vector<int>& promptable = {}) {
  const std::string path = dir.write("tags.json", text);
  try {
    run::read_class_tags(path, kClasses, promptable, "the 3 classes");
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST(ClassTags, NamesMatchTrimmedWithoutCaseAndIndicesFromZero) {
  TempDir dir("tags");
  const std::string path = dir.write("tags.json", R"({"a": [" Cat ", "COUCH"], "b": [2, 0], "c": ["Remote Control"]})");
  const run::ClassTags tags = run::read_class_tags(path, kClasses, {}, "the 3 classes");
  ASSERT_EQ(tags.size(), 3u);
  EXPECT_EQ(tags.at("a"), (std::vector<int>{0, 1}));
  EXPECT_EQ(tags.at("b"), (std::vector<int>{2, 0}));
  EXPECT_EQ(tags.at("c"), (std::vector<int>{2}));
  // classes_of: an image's tags, or every class when it has none.
  const std::vector<int> every = {0, 1, 2};
  EXPECT_EQ(run::classes_of(tags, "b", every), (std::vector<int>{2, 0}));
  EXPECT_EQ(&run::classes_of(tags, "zzz", every), &every);
  EXPECT_TRUE(run::read_class_tags(dir.write("empty.json", "{}"), kClasses, {}, "x").empty());
}

TEST(ClassTags, PromptableSubsetRefusesOtherIndicesAndNames) {
  TempDir dir("tags_subset");
  const std::vector<int> promptable = {0, 2};
  const run::ClassTags ok =
      run::read_class_tags(dir.write("ok.json", R"({"a": [2, "cat"]})"), kClasses, promptable, "the 2 prompted");
  EXPECT_EQ(ok.at("a"), (std::vector<int>{2, 0}));
  std::string why = tags_refusal(dir, R"({"img7": [1]})", promptable);
  EXPECT_NE(why.find("img7"), std::string::npos) << why;
  EXPECT_NE(why.find("1"), std::string::npos) << why;
  why = tags_refusal(dir, R"({"img8": ["couch"]})", promptable);
  EXPECT_NE(why.find("img8"), std::string::npos) << why;
  EXPECT_NE(why.find("couch"), std::string::npos) << why;
}

TEST(ClassTags, BadEntriesAreRefusedNamingTheImage) {
  TempDir dir("tags_bad");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"repeated name", R"({"stem1": ["cat", "couch", "Cat"]})"},
      {"repeated name and index", R"({"stem1": ["cat", 0]})"},
      {"empty list", R"({"stem1": []})"},
      {"not a list", R"({"stem1": "cat"})"},
      {"object entry", R"({"stem1": {"cat": 1}})"},
      {"unknown name", R"({"stem1": ["giraffe"]})"},
      {"index past the end", R"({"stem1": [3]})"},
      {"negative index", R"({"stem1": [-1]})"},
      {"fractional index", R"({"stem1": [1.5]})"},
      {"null entry", R"({"stem1": [null]})"},
  };
  for (const auto& [what, text] : cases) {
    const std::string why = tags_refusal(dir, R"({"good": [0], )" + text.substr(1));
    EXPECT_NE(why, "") << what << ": not refused";
    EXPECT_NE(why.find("'stem1'"), std::string::npos) << what << ": " << why;
  }
  // A file that is not an object: refused, naming the file.
  for (const char* text : {R"(["cat"])", "3", R"("cat")"}) {
    const std::string why = tags_refusal(dir, text);
    EXPECT_NE(why.find("tags.json"), std::string::npos) << text << ": " << why;
  }
  // An unreadable file is an Error.
  EXPECT_THROW(run::read_class_tags(dir.path() + "/none.json", kClasses, {}, "x"), Error);
}

// ---- choosing the model and its settings ------------------------------------------------------------

TEST(ChooseModel, TinyModelIsBlipAndEveryChoiceLands) {
  SettingChoices c = tiny_choices();
  c.iterations = 2;
  c.threshold = 0.3;
  c.blur = 0.1;
  c.background = "never";
  c.arithmetic = "fast";
  const run::ModelChoice choice = run::choose_model(kModel, c);
  EXPECT_EQ(choice.dir, kModel);
  EXPECT_EQ(run::backbone_of(kModel), "blip");
  EXPECT_EQ(run::backbone_of(kData + "/bridgetower_itm"), "bridgetower");
  EXPECT_TRUE(choice.notes.empty());
  const MethodSettings& s = choice.settings;
  EXPECT_EQ(s.backbone, "blip");
  EXPECT_EQ(s.preset, "paper");
  EXPECT_EQ(s.input_size, 64);
  EXPECT_EQ(s.attention_layer, 1);  // layer 2, 1-based
  EXPECT_EQ(s.attention_head, 2);   // head 3
  EXPECT_EQ(s.dropout_iterations, 2);
  EXPECT_DOUBLE_EQ(s.mask_threshold, 0.3);
  EXPECT_DOUBLE_EQ(s.post_blur, 0.1);
  EXPECT_EQ(s.post_mode, Postprocess::Blur);
  EXPECT_EQ(s.background_mode, BackgroundMode::Never);
  EXPECT_EQ(s.post_arithmetic, PostArithmetic::Fast);
  // Unchosen values keep the preset's.
  const MethodSettings paper = preset("paper", "blip");
  EXPECT_EQ(s.dropout_rule, paper.dropout_rule);
  EXPECT_EQ(s.prompt_first_token, paper.prompt_first_token);
  SettingChoices official;
  official.preset = "official";
  EXPECT_EQ(run::choose_model(kModel, official).settings.preset, "official");
}

TEST(ChooseModel, DatasetRulesApply) {
  SettingChoices official;
  official.preset = "official";
  const MethodSettings ade = resolve_settings(official, "blip", DatasetRule::Ade);
  EXPECT_TRUE(ade.ade_unnormalized_input);
  EXPECT_EQ(ade.background_dataset, DatasetRule::Ade);
  EXPECT_FALSE(ade.mask_rescale_after_upsample);
  const MethodSettings coco = resolve_settings(official, "blip", DatasetRule::CocoObject);
  EXPECT_TRUE(coco.mask_rescale_after_upsample);
  EXPECT_FALSE(coco.ade_unnormalized_input);
  // The paper preset has no script quirks, only the background rule.
  const MethodSettings paper_ade = resolve_settings({}, "blip", DatasetRule::Ade);
  EXPECT_FALSE(paper_ade.ade_unnormalized_input);
  EXPECT_EQ(paper_ade.background_dataset, DatasetRule::Ade);
  // Without a dataset: user images.
  EXPECT_EQ(resolve_settings(official, "blip").background_dataset, DatasetRule::UserImages);
  EXPECT_EQ(run::choose_model(kModel, official, DatasetRule::Ade).settings.ade_unnormalized_input, true);
}

TEST(ChooseModel, SettingsFileAndJsonText) {
  TempDir dir("settings");
  MethodSettings tuned = preset("paper", "blip");
  tuned.input_size = 64;
  tuned.attention_layer = 2;
  tuned.attention_head = 0;
  tuned.mask_threshold = 0.35;
  tuned.post_mode = Postprocess::Blur;
  const std::string text = to_json(tuned).dump();
  SettingChoices from_file, from_json;
  from_file.settings_file = dir.write("tuned.json", text);
  from_json.settings_json = text;
  const MethodSettings a = resolve_settings(from_file, "blip"), b = resolve_settings(from_json, "blip");
  EXPECT_EQ(to_json(a), to_json(tuned));
  EXPECT_EQ(to_json(b), to_json(tuned));
  // A chosen value on top of the file.
  from_json.layer = 1;
  EXPECT_EQ(resolve_settings(from_json, "blip").attention_layer, 0);

  // A preset together with settings: refused.
  SettingChoices both = from_file;
  both.preset = "paper";
  EXPECT_THROW(resolve_settings(both, "blip"), InvalidArgument);
  SettingChoices file_and_json = from_file;
  file_and_json.settings_json = text;
  EXPECT_THROW(resolve_settings(file_and_json, "blip"), InvalidArgument);
  SettingChoices broken;
  broken.settings_json = "{not json";
  EXPECT_THROW(resolve_settings(broken, "blip"), InvalidArgument);

  // A settings file made for BridgeTower on the BLIP model: refused, naming the file.
  SettingChoices bridgetower;
  bridgetower.settings_file = dir.write("bridgetower.json", to_json(preset("paper", "bridgetower")).dump());
  try {
    run::choose_model(kModel, bridgetower);
    ADD_FAILURE() << "a bridgetower settings file was accepted for a blip model";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(*bridgetower.settings_file), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bridgetower"), std::string::npos) << e.what();
  }
}

TEST(ChooseModel, OutOfRangeValuesNameTheSetting) {
  SettingChoices c = tiny_choices();
  c.layer = 0;
  try {
    resolve_settings(c, "blip");
    ADD_FAILURE() << "layer 0 accepted";
  } catch (const SettingError& e) {
    EXPECT_EQ(e.setting(), "layer");
    EXPECT_EQ(e.value(), "0");
    EXPECT_EQ(e.problem(), "is out of range: layers count from 1");
    EXPECT_EQ(e.origin(), "");
    EXPECT_EQ(e.message_naming("--layer 0"), "--layer 0 is out of range: layers count from 1");
    EXPECT_STREQ(e.what(), "layer 0 is out of range: layers count from 1");
  }
  c = tiny_choices();
  c.threshold = 1.5;
  try {
    resolve_settings(c, "blip");
    ADD_FAILURE() << "threshold 1.5 accepted";
  } catch (const SettingError& e) {
    EXPECT_EQ(e.setting(), "threshold");
    EXPECT_EQ(e.value(), "1.5");
    EXPECT_EQ(e.problem().rfind("must be in [0, 1]", 0), 0u) << e.problem();
    EXPECT_EQ(e.message_naming("threshold=1.5").rfind("threshold=1.5 must be in [0, 1]", 0), 0u);
  }
  c = tiny_choices();
  c.postprocess = "sharpen";
  try {
    resolve_settings(c, "blip");
    ADD_FAILURE() << "postprocess sharpen accepted";
  } catch (const SettingError& e) {
    EXPECT_EQ(e.setting(), "postprocess");
    EXPECT_EQ(e.value(), "'sharpen'");
    EXPECT_EQ(e.problem().rfind("is unknown (valid: ", 0), 0u) << e.problem();
    EXPECT_NE(e.problem().find("blur"), std::string::npos) << e.problem();
  }
  c = tiny_choices();
  c.size = 0;
  EXPECT_THROW(resolve_settings(c, "blip"), SettingError);
}

TEST(LoadModel, SettingsThatDoNotFitTheModelNameTheirOrigin) {
  // Layer 9 chosen by the caller: no origin.
  SettingChoices c = tiny_choices();
  c.layer = 9;
  const run::ModelChoice chosen = run::choose_model(kModel, c);
  try {
    run::load_model(chosen, {}, c);
    ADD_FAILURE() << "layer 9 accepted for a 3-layer model";
  } catch (const SettingError& e) {
    EXPECT_EQ(e.setting(), "layer");
    EXPECT_EQ(e.value(), "9");
    EXPECT_EQ(e.origin(), "");
    EXPECT_NE(e.problem().find("3 text layers"), std::string::npos) << e.problem();
    EXPECT_EQ(e.message_naming("--layer 9").rfind("--layer 9 is out of range", 0), 0u) << e.message_naming("--layer 9");
  }
  // No layer chosen: the paper preset's layer 8 does not fit, and the message says whose it is.
  c = tiny_choices();
  c.layer.reset();
  const run::ModelChoice preset_layer = run::choose_model(kModel, c);
  try {
    run::load_model(preset_layer, {}, c);
    ADD_FAILURE() << "the paper preset's layer 8 accepted for a 3-layer model";
  } catch (const SettingError& e) {
    EXPECT_EQ(e.setting(), "layer");
    EXPECT_EQ(e.value(), "8");
    EXPECT_NE(e.origin().find("paper preset"), std::string::npos) << e.origin();
    EXPECT_NE(std::string(e.what()).find("(" + e.origin() + ")"), std::string::npos) << e.what();
    EXPECT_EQ(e.message_naming("--layer 8"), e.what());
  }
  // From a settings file: the file is named.
  TempDir dir("load");
  MethodSettings s = preset("paper", "blip");
  s.input_size = 64;
  SettingChoices file;
  file.settings_file = dir.write("paper64.json", to_json(s).dump());
  try {
    run::load_model(run::choose_model(kModel, file), {}, file);
    ADD_FAILURE() << "a settings file's layer 8 accepted for a 3-layer model";
  } catch (const SettingError& e) {
    EXPECT_NE(e.origin().find(*file.settings_file), std::string::npos) << e.origin();
  }
  // Settings that fit load.
  const segment::Segmenter ok = run::load_model(run::choose_model(kModel, tiny_choices()), {}, tiny_choices());
  EXPECT_EQ(ok.model_type(), "blip");
}

TEST(ChooseModel, NotesSettingsTunedForAnotherModel) {
  TempDir dir("tuned_for");
  MethodSettings s = preset("paper", "blip");
  s.input_size = 64;
  s.attention_layer = 1;
  s.attention_head = 2;
  const std::string other = dir.write("tuned_other.json", tuned_settings_json(s, "/models/some_other_blip").dump());
  const std::string same = dir.write("tuned_same.json", tuned_settings_json(s, kModel).dump());
  const std::string spelled = dir.write("tuned_spelled.json", tuned_settings_json(s, kModel + "/../blip_itm/").dump());
  const std::string untagged = dir.write("untagged.json", to_json(s).dump());
  // What tuned_settings_json wrote, read back (best_settings.json -> segment's note).
  EXPECT_EQ(tuned_for_model(other), "/models/some_other_blip") << "tuned_for_model lost the model of " << other;
  EXPECT_EQ(tuned_for_model(same), kModel) << "tuned_for_model lost the model of " << same;
  EXPECT_EQ(tuned_for_model(untagged), "");
  EXPECT_EQ(tuned_for_model(dir.path() + "/none.json"), "");
  EXPECT_EQ(tuned_for_model(dir.write("broken.json", "{")), "");
  EXPECT_EQ(tuned_for_model(dir.write("odd.json", R"({"tuned_for": "x"})")), "");

  SettingChoices c;
  c.settings_file = other;
  const run::ModelChoice noted = run::choose_model(kModel, c);
  ASSERT_EQ(noted.notes.size(), 1u) << "no note for settings tuned for another model";
  EXPECT_NE(noted.notes[0].find("was tuned for the model /models/some_other_blip"), std::string::npos)
      << noted.notes[0];
  EXPECT_NE(noted.notes[0].find(other), std::string::npos) << noted.notes[0];
  EXPECT_EQ(noted.settings.attention_layer, 1);  // the settings are still used
  for (const std::string& file : {same, spelled, untagged}) {
    c.settings_file = file;
    EXPECT_TRUE(run::choose_model(kModel, c).notes.empty()) << file;
  }
}

// ---- the public Segmenter -------------------------------------------------------------------------

TEST(PublicSegmenter, SegmentEqualsTheMethodUnderneath) {
  const Segmenter seg = Segmenter::load(kModel, tiny_choices());
  EXPECT_EQ(seg.model_type(), "blip");
  EXPECT_EQ(to_json(seg.settings()), to_json(tiny_settings()));
  const Image crop = image::center_crop(photo(), 160, 120);
  const Result r = seg.segment(crop, kClasses);
  const segment::SegmentationResult want = tiny_model().segment(crop, kClasses, tiny_settings());
  EXPECT_EQ(r.width, crop.width);
  EXPECT_EQ(r.height, crop.height);
  EXPECT_EQ(r.classes, kClasses);
  EXPECT_TRUE(r.labels == want.labels);
  EXPECT_EQ(r.channel_names, want.channel_names);
  EXPECT_EQ(r.has_background, want.has_background);
  ASSERT_TRUE(r.has_background);  // user images: background first
  EXPECT_EQ(r.channel_names.front(), "background");
  // Scores: channel_names.size() x H x W floats, the blurred maps.
  ASSERT_TRUE(want.blurred.defined());
  const torch::Tensor blurred = want.blurred.contiguous();
  ASSERT_EQ(blurred.numel(), static_cast<int64_t>(r.channel_names.size()) * r.width * r.height);
  ASSERT_NE(r.scores, nullptr);
  EXPECT_EQ(std::memcmp(r.scores.get(), blurred.data_ptr<float>(), sizeof(float) * blurred.numel()), 0);
  EXPECT_FALSE(r.timings.empty());
  // A refused class list: InvalidArgument from segment().
  EXPECT_THROW(seg.segment(crop, {"cat", "Cat"}), InvalidArgument);
}

TEST(PublicSegmenter, SegmentManyReportsTheFailingImageAlone) {
  const Segmenter seg = Segmenter::load(kModel, tiny_choices());
  const Image a = image::center_crop(photo(), 160, 120), b = image::center_crop(photo(), 100, 100),
              c = image::center_crop(photo(), 90, 120);
  const std::vector<std::vector<std::string>> classes = {kClasses, {"cat", "Cat"}, {"couch", "cat"}};
  for (const char* batch : {"1", "2"}) {
    const std::vector<Segmented> out = seg.segment_many({&a, &b, &c}, classes, {batch, "1"});
    ASSERT_EQ(out.size(), 3u);
    EXPECT_FALSE(out[1].ok()) << "batch " << batch;
    EXPECT_TRUE(out[1].invalid_argument);
    EXPECT_FALSE(out[1].error.empty());
    ASSERT_TRUE(out[0].ok()) << out[0].error;
    ASSERT_TRUE(out[2].ok()) << out[2].error;
    EXPECT_FALSE(out[0].invalid_argument);
    EXPECT_TRUE(out[0].result.labels == seg.segment(a, kClasses).labels) << "batch " << batch;
    EXPECT_TRUE(out[2].result.labels == seg.segment(c, classes[2]).labels) << "batch " << batch;
    EXPECT_EQ(out[2].result.classes, classes[2]);
  }
  // One list for every image.
  const std::vector<Segmented> shared = seg.segment_many({&a, &c}, {kClasses}, {"1", "2"});
  ASSERT_EQ(shared.size(), 2u);
  ASSERT_TRUE(shared[1].ok()) << shared[1].error;
  EXPECT_EQ(shared[1].result.classes, kClasses);
  EXPECT_TRUE(shared[1].result.labels == seg.segment(c, kClasses).labels);
  // Neither one list nor one per image.
  EXPECT_THROW(seg.segment_many({&a, &b, &c}, {kClasses, kClasses}), InvalidArgument);
}

}  // namespace
}  // namespace pnpovss
