// Pieces of the `pnpovss` Python module (module.cpp puts them together). The module is a front
// end like the command line: the segmenter is the library's public pnpovss::Segmenter, errors
// are the library's messages with settings named as keywords ("layer=9 ..." where the command
// line says "--layer 9 ...").
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "pnpovss/error.h"

namespace pnpovss::python {

namespace py = pybind11;

// The Segmenter class and its Result.
void register_segmenter(py::module_& m);
// run_cli, cli_args, eval, tune, resolve_model.
void register_cli(py::module_& m);

// Library errors as Python exceptions: InvalidArgument (a SettingError named by its keyword)
// as ValueError, util::Interrupted as KeyboardInterrupt, the rest as RuntimeError with the
// one-line message the command line prints.
void register_error_translation(py::module_& m);

// Ctrl-C during a long call: the library stops between images and iterations and the call
// raises KeyboardInterrupt (util::interruption_point). Installed once, at import.
void install_interrupt_check();
// Clears a Ctrl-C seen by an earlier call; every long call starts with one.
class InterruptibleCall {
 public:
  InterruptibleCall();
};

// The Python type name of `value`, for one-line TypeErrors.
std::string type_name(const py::handle& value);

}  // namespace pnpovss::python
