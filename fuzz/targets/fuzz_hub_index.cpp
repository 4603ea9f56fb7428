// The model.safetensors.index.json a hub download brings (hub/model_files): its weight map
// names the shard files to fetch next, which must stay inside the snapshot folder.
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "pnpovss/hub/model_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pnpovss;
  const nlohmann::json doc = fuzz::parse_json(std::string(reinterpret_cast<const char*>(data), size));
  if (doc.is_discarded()) return 0;  // read_json_file refuses it before the reader sees it
  fuzz::accepts([&] {
    for (const std::string& shard : hub::index_shard_files(doc, "model.safetensors.index.json")) {
      fuzz::expect(!shard.empty() && shard.front() != '/' && shard.find("..") == std::string::npos &&
                       shard.find('\\') == std::string::npos,
                   "a shard name that leaves the snapshot folder");
    }
  });
  return 0;
}
