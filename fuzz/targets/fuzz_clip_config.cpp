// The CLIP model config reader (models/clip_config.h) on a config.json: JSON syntax, model
// type and architectures, every size and its limits. An accepted config must survive its own
// to_json(): read back, it gives the same JSON.
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "pnpovss/models/clip_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pnpovss;
  const nlohmann::json doc = fuzz::parse_json(std::string(reinterpret_cast<const char*>(data), size));
  if (doc.is_discarded()) return 0;  // read_json_file refuses it before the reader sees it
  fuzz::accepts([&] {
    const models::ClipConfig config = models::ClipConfig::from_json(doc, "config.json");
    const nlohmann::json written = config.to_json();
    fuzz::expect(models::ClipConfig::from_json(written, "written").to_json() == written,
                 "to_json() of an accepted config does not read back to the same config");
    fuzz::expect(config.vision.grid() > 0 && config.vision.num_positions() > 1, "an empty vision grid");
    fuzz::expect(models::is_clip_config(written), "to_json() of a CLIP config is not recognised as CLIP");
  });
  return 0;
}
