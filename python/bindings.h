// Pieces of the `pnpovss` Python module (module.cpp puts them together).
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "pnpovss/segment/settings.h"

namespace pnpovss::python {

namespace py = pybind11;

// The Segmenter class and its Result.
void register_segmenter(py::module_& m);
// run_cli, cli_args, eval, tune, resolve_model.
void register_cli(py::module_& m);

// Keyword arguments that are not method settings but are accepted next to them.
struct FrontEndOptions {
  int threads = 1;  // libtorch threads, as the CLI's --threads
};

// The preset named by kwargs["preset"] (default "paper") with every other setting applied on
// top, exactly as `pnp-ovss segment` applies its options. Raises TypeError for an unknown key
// (listing the valid ones) and ValueError for a bad value.
segment::MethodSettings settings_from_kwargs(const py::kwargs& kwargs, FrontEndOptions& front,
                                             const std::string& backbone);

// Runs `fn` and turns any C++ exception into a Python exception carrying the one-line message
// the command line prints (ValueError when `value_error`, RuntimeError otherwise).
template <typename Fn>
auto translate_errors(Fn&& fn, bool value_error = false) -> decltype(fn());

// The one-line message of the exception being handled (call inside a catch block).
std::string current_message();

template <typename Fn>
auto translate_errors(Fn&& fn, bool value_error) -> decltype(fn()) {
  try {
    return fn();
  } catch (const py::error_already_set&) {
    throw;
  } catch (const py::builtin_exception&) {
    throw;
  } catch (const std::exception&) {
    const std::string message = current_message();
    if (value_error) throw py::value_error(message);
    throw std::runtime_error(message);
  }
}

}  // namespace pnpovss::python
