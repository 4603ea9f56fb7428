// Class lists and per-image class tags (run/class_lists, compiled into this target on its own:
// it needs no libtorch): the comma-separated list of --classes, the one-per-line list of
// --classes-file and the JSON of --class-tags (image stem -> class names or 0-based indices),
// whose indices then pick prompt classes. Input: the class list, NUL, the class-tags JSON.
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "pnpovss/run/class_lists.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pnpovss;
  const std::vector<std::string> parts = fuzz::split_parts(data, size, 2);
  const fuzz::ScratchDir& dir = fuzz::ScratchDir::get();
  dir.reset();
  std::vector<std::string> classes = {"cat", "sofa", "remote control"};
  fuzz::accepts([&] { classes = run::split_class_list(parts[0]); });
  fuzz::accepts([&] {
    const std::vector<std::string> lines = run::read_class_file(dir.write("classes.txt", parts[0]));
    for (const std::string& name : lines) fuzz::expect(!name.empty(), "an empty class name from a class file");
  });
  if (parts.size() < 2) return 0;
  const std::string tags_path = dir.write("tags.json", parts[1]);
  std::vector<int> all(classes.size());
  for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
  // Every class promptable (eval of own lists), or only some (a dataset's prompted classes).
  std::vector<int> every_other;
  for (size_t k = 0; k < classes.size(); k += 2) every_other.push_back(static_cast<int>(k));
  for (const std::vector<int>& promptable : {std::vector<int>(), every_other}) {
    fuzz::accepts([&] {
      const run::ClassTags tags = run::read_class_tags(tags_path, classes, promptable, "the fuzzed classes");
      for (const auto& [stem, indices] : tags) {
        const run::PromptClasses prompt = run::chosen_classes(classes, run::classes_of(tags, stem, all));
        fuzz::expect(prompt.names.size() == indices.size() && !indices.empty(), "tags and prompt classes disagree");
      }
    });
  }
  return 0;
}
