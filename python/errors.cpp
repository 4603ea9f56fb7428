// Errors and Ctrl-C between the library and Python.
#include <Python.h>

#include <pythread.h>

#include <atomic>

#include "bindings.h"
#include "pnpovss/util/failure.h"
#include "pnpovss/util/interrupt.h"

namespace pnpovss::python {
namespace {

// Python's main thread (threading.main_thread().ident), the one that runs signal handlers.
unsigned long python_main_thread = 0;
// A Ctrl-C seen by the main thread, for the worker threads of the same call.
std::atomic<bool> interrupted{false};

bool check_for_interrupt() {
  if (PyThread_get_thread_ident() != python_main_thread) return interrupted.load();
  // Python runs signal handlers only in its main thread, and only with the GIL.
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) {
    PyErr_Clear();  // raised again as KeyboardInterrupt when the call unwinds
    interrupted = true;
  }
  return interrupted.load();
}

}  // namespace

std::string type_name(const py::handle& value) { return py::str(value.get_type().attr("__name__")); }

void register_error_translation(py::module_&) {
  py::register_exception_translator([](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const util::Interrupted&) {
      PyErr_SetNone(PyExc_KeyboardInterrupt);
    } catch (const SettingError& e) {
      PyErr_SetString(PyExc_ValueError, e.message_naming(e.setting() + "=" + e.value()).c_str());
    } catch (const InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const py::builtin_exception&) {
      throw;  // pybind11's own (TypeError, ValueError, ...) translate themselves
    } catch (const py::error_already_set&) {
      throw;
    } catch (const std::exception&) {
      PyErr_SetString(PyExc_RuntimeError, util::current_failure().message.c_str());
    }
  });
}

void install_interrupt_check() {
  python_main_thread = py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
  util::set_interrupt_check(check_for_interrupt);
}

InterruptibleCall::InterruptibleCall() { interrupted = false; }

}  // namespace pnpovss::python
