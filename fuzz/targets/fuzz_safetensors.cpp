// The safetensors reader on bytes in memory: the 8-byte header length, the JSON header (dtypes,
// shapes, data offsets, __metadata__) and the checks of every tensor's bytes against the data
// section. libFuzzer's input buffer has exactly the input's size, so a read past the end of
// the file shows up under AddressSanitizer.
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "pnpovss/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using pnpovss::io::SafetensorsFile;
  pnpovss::fuzz::accepts([&] {
    const SafetensorsFile file = SafetensorsFile::parse(data, size, "fuzz.safetensors");
    // Every byte of every tensor is read: a view outside the input is an ASan report.
    for (const auto& t : file.tensors()) {
      pnpovss::fuzz::expect(static_cast<size_t>(t.numel()) * pnpovss::io::dtype_size(t.dtype) == t.nbytes,
                            "a tensor's byte count disagrees with its shape and dtype");
      pnpovss::fuzz::touch(t.data, t.nbytes);
      pnpovss::fuzz::expect(file.find(t.name) == &t, "find() does not return the tensor of that name");
      (void)pnpovss::io::shape_string(t.shape);
      (void)pnpovss::io::dtype_name(t.dtype);
    }
    for (const auto& [key, value] : file.metadata())
      pnpovss::fuzz::touch(reinterpret_cast<const uint8_t*>(value.data()), value.size());
    file.at("no such tensor in any fuzz input \x01");
  });
  return 0;
}
