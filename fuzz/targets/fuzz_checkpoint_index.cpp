// A sharded checkpoint: model.safetensors.index.json and the shards it names, through
// io::Checkpoint::open_dir (which reads files, so the input is written to a scratch folder).
// Input: the index JSON, NUL, the bytes of model-00001-of-00002.safetensors, then optionally
// kShardSeparator and the bytes of model-00002-of-00002.safetensors (a missing part is a missing
// file; shards hold NUL bytes, so a text separator parts them).
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "pnpovss/io/checkpoint.h"

namespace {
const std::string kShardSeparator = "\n--shard--\n";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pnpovss;
  const std::vector<std::string> parts = fuzz::split_parts(data, size, 2);
  const fuzz::ScratchDir& dir = fuzz::ScratchDir::get();
  dir.reset();
  dir.write("model.safetensors.index.json", parts[0]);
  if (parts.size() > 1) {
    const size_t cut = parts[1].find(kShardSeparator);
    dir.write("model-00001-of-00002.safetensors", parts[1].substr(0, cut));
    if (cut != std::string::npos)
      dir.write("model-00002-of-00002.safetensors", parts[1].substr(cut + kShardSeparator.size()));
  }
  fuzz::accepts([&] {
    const io::Checkpoint checkpoint = io::Checkpoint::open_dir(dir.path());
    size_t tensors = 0;
    for (const auto& file : checkpoint.files()) tensors += file.tensors().size();
    const std::vector<std::string> names = checkpoint.names();
    fuzz::expect(names.size() == tensors, "names() does not list every tensor of the shards once");
    for (const auto& name : names) {
      const io::TensorView* view = checkpoint.find(name);
      fuzz::expect(view != nullptr && view->name == name, "find() misses a listed tensor");
      fuzz::touch(view->data, view->nbytes);
    }
  });
  return 0;
}
