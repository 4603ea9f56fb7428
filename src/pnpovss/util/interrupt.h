// Stopping long work at the user's request (Ctrl-C in Python). The Python module installs a
// check that reports a pending SIGINT; long loops (images of a run, Salience DropOut
// iterations, tuning trials, eval images) call interruption_point() between steps, which throws
// Interrupted when the check says so. Results already written stay written, so an interrupted
// run resumes like a killed one. The command line installs nothing: there SIGINT ends the
// process, as users expect.
#pragma once

#include <exception>
#include <functional>

namespace pnpovss::util {

// Not an Error: no loop that reports a failing image and goes on may swallow it.
class Interrupted : public std::exception {
 public:
  const char* what() const noexcept override { return "interrupted"; }
};

// `check` returns true when the work should stop; it may be called from any thread, often.
// An empty function removes the check. Not thread-safe against concurrent installs.
void set_interrupt_check(std::function<bool()> check);

// Throws Interrupted when the installed check returns true; otherwise does nothing (cheap
// when no check is installed).
void interruption_point();

}  // namespace pnpovss::util
