// The command line in-process: pnpovss.run_cli(["segment", ...]) and keyword wrappers for the
// subcommands (eval, tune), plus the model lookup on its own.
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bindings.h"
#include "pnpovss/command_line.h"
#include "pnpovss/hub/model_location.h"

namespace pnpovss::python {
namespace {

// CLI11 reports parse errors with exit codes from 100 on.
constexpr int kFirstParseErrorStatus = 100;

int run_cli(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"pnp-ovss"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::string error;
  int status = 0;
  {
    InterruptibleCall call;
    py::gil_scoped_release release;
    status = run_command_line(static_cast<int>(argv.size()), argv.data(), &error);
  }
  if (!error.empty()) {
    if (status >= kFirstParseErrorStatus) throw py::value_error(error);
    throw std::runtime_error(error);
  }
  return status;
}

// ["eval", positional..., "--key", "value", ...]: underscores in keys become dashes; True is a
// bare flag, False and None are left out, a list or tuple repeats the option per item.
std::vector<std::string> cli_args(const std::string& command, const py::args& args, const py::kwargs& kwargs) {
  std::vector<std::string> out = {command};
  for (const auto& a : args) out.push_back(py::str(a));
  for (const auto& item : kwargs) {
    std::string key = py::str(item.first);
    for (char& c : key)
      if (c == '_') c = '-';
    const std::string flag = "--" + key;
    const py::handle value = item.second;
    if (value.is_none() || (py::isinstance<py::bool_>(value) && !value.cast<bool>())) continue;
    if (py::isinstance<py::bool_>(value)) {
      out.push_back(flag);
    } else if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
      for (const auto& v : value) {
        out.push_back(flag);
        out.push_back(py::str(v));
      }
    } else {
      out.push_back(flag);
      out.push_back(py::str(value));
    }
  }
  return out;
}

}  // namespace

void register_cli(py::module_& m) {
  m.def("run_cli", &run_cli, py::arg("args"),
        "Runs `pnp-ovss ARGS...` in this process and returns its exit status. A failed run raises "
        "RuntimeError (ValueError for a usage error) with the message the command line prints; "
        "per-image failures of `segment` are printed and give status 1.");
  m.def("cli_args", &cli_args, py::arg("command"),
        "The argument list eval()/tune() pass to run_cli: cli_args('eval', dataset='voc20', limit=5) -> "
        "['eval', '--dataset', 'voc20', '--limit', '5'].");
  m.def(
      "eval", [](const py::args& args, const py::kwargs& kwargs) { return run_cli(cli_args("eval", args, kwargs)); },
      "`pnp-ovss eval` with keyword arguments as options (see cli_args); returns the exit status.");
  m.def(
      "tune", [](const py::args& args, const py::kwargs& kwargs) { return run_cli(cli_args("tune", args, kwargs)); },
      "`pnp-ovss tune` with keyword arguments as options (see cli_args); returns the exit status.");
  m.def(
      "resolve_model",
      [](const std::string& spec) {
        py::gil_scoped_release release;
        return hub::resolve_model_dir(spec);
      },
      py::arg("model"),
      "The local folder of a model directory or hub id, downloading the hub id into the Hugging Face "
      "cache when missing.");
}

}  // namespace pnpovss::python
