// The label PNG reader of evaluation (eval/label_png): its own chunk walk, IHDR checks, zlib
// inflation into a buffer of the exact size and the row filters, for gray and palette PNGs of
// every bit depth. In the fuzz build the chunk CRCs are not checked
// (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION), so that mutations reach the code behind them.
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "pnpovss/eval/label_png.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pnpovss;
  fuzz::accepts([&] {
    const eval::LabelMap map = eval::decode_label_png(data, size, "fuzz.png");
    fuzz::expect(map.width > 0 && map.height > 0, "a label map without pixels");
    fuzz::expect(map.values.size() == static_cast<size_t>(map.width) * map.height, "values do not match the size");
    for (int32_t v : map.values) fuzz::expect(v >= 0 && v <= 65535, "a label outside 0..65535");
  });
  return 0;
}
