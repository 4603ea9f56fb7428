// The `pnpovss` Python module: segmentation with numpy arrays in and out, and the command line
// in-process. Models are named as on the command line: a directory or a hub id, downloaded into
// the Hugging Face cache shared with Python's huggingface_hub.
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "pnpovss/cli/failure.h"
#include "pnpovss/io/hub_download.h"

#ifndef PNPOVSS_VERSION
#define PNPOVSS_VERSION "unknown"
#endif

namespace pnpovss::python {

std::string current_message() { return cli::current_failure().message; }

}  // namespace pnpovss::python

PYBIND11_MODULE(pnpovss, m) {
  m.doc() =
      "PnP-OVSS: training-free open-vocabulary segmentation with a frozen image-text matching model.\n\n"
      "    seg = pnpovss.Segmenter(model='Salesforce/blip-itm-large-flickr')\n"
      "    result = seg.segment(image, ['cat', 'couch'])  # image: uint8 array [H, W, 3]\n"
      "    result.labels  # int32 [H, W]: 0 background, k = classes[k-1]\n";
  m.attr("__version__") = PNPOVSS_VERSION;
  // Downloads report on stderr, as on the command line.
  pnpovss::io::set_download_progress(pnpovss::io::stderr_download_progress());
  pnpovss::python::register_segmenter(m);
  pnpovss::python::register_cli(m);
}
