// Image decoding from memory (image/codec): the format sniffing, the checks made before the
// decoder (the JPEG Huffman-table guard, the PNG and BMP declared sizes, the BMP pixel array
// against the file size) and stb_image's JPEG, PNG and BMP decoders; and read_image_size, the
// header-only size the server checks before decoding.
//
// An image of the library's maximum size (kMaxImagePixels) takes seconds and gigabytes to
// decode, which the fuzzer's -timeout and -malloc_limit_mb would report as findings. Inputs
// that declare more than kFuzzPixels are therefore only sized, not decoded, the way the server
// refuses images over --max-pixels before decoding them.
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "pnpovss/image/codec.h"

namespace {
constexpr int64_t kFuzzPixels = int64_t{1} << 18;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pnpovss;
  std::pair<int64_t, int64_t> declared{0, 0};
  const bool sized = fuzz::accepts([&] { declared = image::read_image_size(data, size, "fuzz input"); });
  if (sized && (declared.first > kFuzzPixels || declared.second > kFuzzPixels ||
                declared.first * declared.second > kFuzzPixels))
    return 0;
  fuzz::accepts([&] {
    const Image decoded = image::decode_image_memory(data, size, "fuzz input");
    fuzz::expect(decoded.width > 0 && decoded.height > 0, "a decoded image without pixels");
    fuzz::expect(decoded.rgb.size() == static_cast<size_t>(decoded.width) * decoded.height * 3,
                 "the pixels do not match the decoded size");
    fuzz::expect(sized, "read_image_size refuses an image that decodes");
    fuzz::expect(declared.first == decoded.width && declared.second == decoded.height,
                 "read_image_size disagrees with the decoded size");
  });
  return 0;
}
