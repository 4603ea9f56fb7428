// The trials journal of `pnp-ovss tune` read back on resume (tune/journal, in the tune_core
// layer): one JSON object per line, the first describing the run (compared with the run being
// resumed), then trial and grid_image records; a torn last line is dropped. The journal is
// written to a scratch file, since Journal reads, checks and rewrites it in place.
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "pnpovss/tune/journal.h"

namespace {

using namespace pnpovss;

// What the resumed run is: the "run" object of the journal's first line must equal it.
const nlohmann::json& run_description() {
  static const nlohmann::json run = {{"model", "tiny"}, {"images", {"a.png", "b.png"}}, {"scorer", "clip"},
                                     {"masks", "gradcam"}, {"seed", 0}};
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::ScratchDir& scratch = fuzz::ScratchDir::get();
  scratch.reset();
  const std::string path =
      scratch.write("trials.jsonl", std::string(reinterpret_cast<const char*>(data), size));
  fuzz::accepts([&] {
    tune::Journal journal(path, run_description(), false);
    for (size_t image = 0; image < 3; ++image) {
      if (const auto* grid = journal.grid_image(image))
        for (const auto& flags : *grid) fuzz::expect(flags.size() <= size, "more win flags than input bytes");
      (void)journal.grid_image_seconds(image);
    }
    const tune::Candidate c{8, 10, 0.15, 0.05};
    if (const tune::TrialRecord* t = journal.find(tune::kStageLayerHead, tune::MaskSource::GradCam, c))
      fuzz::expect(t->resumed, "a trial read back is not marked resumed");
    // The rewritten journal (torn tail dropped) must read back as the same journal.
    tune::Journal again(path, run_description(), false);
  });
  // Each line alone as a trial record.
  const std::string text(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = std::min(text.find('\n', start), text.size());
    const nlohmann::json line = fuzz::parse_json(text.substr(start, end - start));
    if (!line.is_discarded()) {
      fuzz::accepts([&] {
        const tune::TrialRecord t = tune::trial_from_json(line, "line");
        (void)tune::to_json(t).dump();
        (void)tune::trial_key(t.stage, t.masks, t.setting);
      });
    }
    start = end + 1;
  }
  return 0;
}
