// Segments a photo through the installed library's public headers (no libtorch header is
// needed) and checks every label against a label PNG that `pnp-ovss segment` wrote with the
// same model and settings.
//
// Usage: consumer MODEL_DIR IMAGE LABELS_PNG  (the tiny test model: 64-px input, layer 2, head 3;
// classes cat, couch, remote control)
#include <pnpovss/pnpovss.h>

#include <cstdio>
#include <cstdlib>

namespace {

// The colour of a label in pnp-ovss's label PNG palette: PASCAL VOC's bit-interleaved scheme.
void label_color(int label, uint8_t rgb[3]) {
  rgb[0] = rgb[1] = rgb[2] = 0;
  for (int j = 0; label > 0; ++j, label >>= 3)
    for (int c = 0; c < 3; ++c) rgb[c] |= static_cast<uint8_t>(((label >> c) & 1) << (7 - j));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL_DIR IMAGE LABELS_PNG\n", argv[0]);
    return 2;
  }
  try {
    pnpovss::SettingChoices choices;
    choices.size = 64;
    choices.layer = 2;
    choices.head = 3;
    const auto segmenter = pnpovss::Segmenter::load(argv[1], choices);
    const pnpovss::Image photo = pnpovss::read_image(argv[2]);
    const pnpovss::Result result = segmenter.segment(photo, {"cat", "couch", "remote control"});
    // The label PNG read as RGB: its palette colours stand for the labels.
    const pnpovss::Image expected = pnpovss::read_image(argv[3]);
    if (expected.width != result.width || expected.height != result.height) {
      std::fprintf(stderr, "the result is %dx%d, the label PNG %dx%d\n", result.width, result.height, expected.width,
                   expected.height);
      return 1;
    }
    size_t differ = 0, labelled = 0;
    for (size_t i = 0; i < result.labels.size(); ++i) {
      uint8_t rgb[3];
      label_color(result.labels[i], rgb);
      if (rgb[0] != expected.rgb[3 * i] || rgb[1] != expected.rgb[3 * i + 1] || rgb[2] != expected.rgb[3 * i + 2])
        ++differ;
      if (result.labels[i] != 0) ++labelled;
    }
    std::printf("pnp-ovss %s: %zu pixels, %zu labelled, %zu differ from the label PNG\n", pnpovss::version(),
                result.labels.size(), labelled, differ);
    return differ == 0 && labelled > 0 ? 0 : 1;
  } catch (const pnpovss::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
