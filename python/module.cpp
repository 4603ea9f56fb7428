// The `pnpovss` Python module: segmentation with numpy arrays in and out, and the command line
// in-process. Models are named as on the command line: a directory or a hub id, downloaded into
// the Hugging Face cache shared with Python's huggingface_hub.
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "pnpovss/console/download_progress.h"
#include "pnpovss/version.h"

PYBIND11_MODULE(pnpovss, m) {
  m.doc() =
      "PnP-OVSS: training-free open-vocabulary segmentation with a frozen image-text matching model.\n\n"
      "    seg = pnpovss.Segmenter(model='Salesforce/blip-itm-large-flickr')\n"
      "    result = seg.segment(image, ['cat', 'couch'])  # image: uint8 array [H, W, 3]\n"
      "    result.labels  # int32 [H, W]: 0 background, k = classes[k-1]\n";
  m.attr("__version__") = pnpovss::version();
  // Downloads report on stderr, as on the command line.
  pnpovss::hub::set_download_progress(pnpovss::console::download_display());
  pnpovss::python::register_error_translation(m);
  pnpovss::python::install_interrupt_check();
  pnpovss::python::register_segmenter(m);
  pnpovss::python::register_cli(m);
}
