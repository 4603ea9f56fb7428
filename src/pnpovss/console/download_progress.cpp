#include "pnpovss/console/download_progress.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace pnpovss::console {
namespace {

std::string mb(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", static_cast<double>(bytes) / 1e6);
  return text;
}

// "727 bytes", "12.4 kB", "7.3 MB".
std::string size_text(int64_t bytes) {
  char text[32];
  if (bytes < 1000)
    std::snprintf(text, sizeof text, "%lld bytes", static_cast<long long>(bytes));
  else if (bytes < 1000000)
    std::snprintf(text, sizeof text, "%.1f kB", static_cast<double>(bytes) / 1e3);
  else
    std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

// " of 7.3 MB", or " MB" when the server did not say the size.
std::string of_total(int64_t total) { return total >= 0 ? " of " + mb(total) + " MB" : " MB"; }

// Files under this size get one line when done, no bar.
constexpr int64_t kSmallFile = 1000000;

double speed(const hub::DownloadProgress& p) {
  return p.seconds > 0 ? static_cast<double>(p.done - p.resumed_from) / 1e6 / p.seconds : 0.0;
}

void draw_bar(const hub::DownloadProgress& p) {
  const double fraction = p.total > 0 ? static_cast<double>(p.done) / static_cast<double>(p.total) : 0.0;
  const int width = 24, filled = static_cast<int>(fraction * width);
  std::fprintf(stderr, "\r%s %3d%% [%s%s] %s/%s MB %6.1f MB/s ", p.file.c_str(), static_cast<int>(fraction * 100),
               std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(width - filled), ' ').c_str(), mb(p.done).c_str(),
               p.total >= 0 ? mb(p.total).c_str() : "?", speed(p));
}

// ---- Ctrl-C during a download ----------------------------------------------------------------
// The command line leaves SIGINT its default action: the process ends, silently. While a file
// downloads, a handler first says what became of the download (kept, resumed by a rerun), then
// ends the process the same way, so the exit status stays that of any interrupt (130 in a shell).
// It is installed only where SIGINT has its default action: the Python module and `serve` handle
// SIGINT themselves (serve calls report_interrupted_download()).

// A signal handler may only write(2) text prepared before: the words around the megabytes done.
// Two copies, so that a new file's text goes into the one a handler is not reading.
struct InterruptNote {
  char head[768];  // "interrupted: the download of FILE of 'REPO' stopped at "
  char tail[256];  // " of 7.3 MB; the partial file is kept, ...\n"
  size_t head_size = 0, tail_size = 0;
};
InterruptNote notes[2];
std::atomic<int> current_note{0};
std::atomic<bool> downloading{false};
std::atomic<long long> downloaded{0};
static_assert(std::atomic<long long>::is_always_lock_free, "read in a signal handler");
// Changed only by the progress callback, which the library calls one report at a time.
bool handler_installed = false;
struct sigaction previous_action {};

void copy_text(const std::string& text, char* to, size_t capacity, size_t& size) {
  size = std::min(text.size(), capacity);
  std::memcpy(to, text.data(), size);
}

void write_all(const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(STDERR_FILENO, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    size -= static_cast<size_t>(n);
  }
}

// Async-signal-safe: no allocation, no stdio. The megabytes as "%.1f" would print them.
void write_interrupt_note() {
  if (!downloading.load()) return;
  const InterruptNote& note = notes[current_note.load()];
  const long long tenths = (downloaded.load() + 50000) / 100000;
  char digits[32];
  size_t n = 0;
  digits[n++] = static_cast<char>('0' + tenths % 10);
  digits[n++] = '.';
  for (long long whole = tenths / 10;; whole /= 10) {
    digits[n++] = static_cast<char>('0' + whole % 10);
    if (whole < 10) break;
  }
  char number[32];
  for (size_t i = 0; i < n; ++i) number[i] = digits[n - 1 - i];
  write_all(note.head, note.head_size);
  write_all(number, n);
  write_all(note.tail, note.tail_size);
}

extern "C" void on_interrupt(int) {
  const int saved_errno = errno;
  write_interrupt_note();
  errno = saved_errno;
  // SA_RESETHAND restored the default action; the signal, blocked while this handler runs, ends
  // the process as soon as it returns.
  ::raise(SIGINT);
}

// Called when a file's transfer starts: prepares the note and installs the handler.
void arm_interrupt_note(const hub::DownloadProgress& p, bool bar_open) {
  const int next = 1 - current_note.load();
  copy_text(std::string(bar_open ? "\n" : "") + "interrupted: the download of " + p.file + " of '" + p.repo +
                "' stopped at ",
            notes[next].head, sizeof notes[next].head, notes[next].head_size);
  copy_text(of_total(p.total) + "; the partial file is kept, and running the command again resumes it\n",
            notes[next].tail, sizeof notes[next].tail, notes[next].tail_size);
  current_note.store(next);
  downloaded.store(p.done);
  downloading.store(true);
  if (handler_installed) return;
  struct sigaction now {};
  if (::sigaction(SIGINT, nullptr, &now) != 0 || (now.sa_flags & SA_SIGINFO) || now.sa_handler != SIG_DFL) return;
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND | SA_RESTART;
  handler_installed = ::sigaction(SIGINT, &action, &previous_action) == 0;
}

// Called when no transfer runs any more (done, or given up with an error).
void disarm_interrupt_note() {
  downloading.store(false);
  if (!handler_installed) return;
  ::sigaction(SIGINT, &previous_action, nullptr);
  handler_installed = false;
}

}  // namespace

void report_interrupted_download() { write_interrupt_note(); }

hub::DownloadProgressFn download_display() {
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  // Whether the last thing on stderr is a bar without its newline.
  auto bar_open = std::make_shared<bool>(false);
  return [terminal, bar_open](const hub::DownloadProgress& p) {
    using Event = hub::DownloadProgress::Event;
    const bool small = p.total >= 0 && p.total < kSmallFile;
    const char* end_bar = *bar_open ? "\n" : "";
    switch (p.event) {
      case Event::Start:
        arm_interrupt_note(p, terminal && !small);
        if (small) break;
        if (p.discarded > 0)
          std::fprintf(stderr,
                       "%sdownloading %s %s (%s MB): the server does not support resuming, so the download restarts "
                       "and the %s MB downloaded before are discarded\n",
                       end_bar, p.repo.c_str(), p.file.c_str(), mb(p.total).c_str(), mb(p.discarded).c_str());
        else if (p.resumed_from > 0)
          std::fprintf(stderr, "%sdownloading %s %s: resuming at %s%s\n", end_bar, p.repo.c_str(), p.file.c_str(),
                       mb(p.resumed_from).c_str(), of_total(p.total).c_str());
        else
          std::fprintf(stderr, "%sdownloading %s %s (%s)\n", end_bar, p.repo.c_str(), p.file.c_str(),
                       p.total >= 0 ? (mb(p.total) + " MB").c_str() : "size unknown");
        *bar_open = false;
        if (terminal) {
          draw_bar(p);
          *bar_open = true;
        }
        break;
      case Event::Update:
        downloaded.store(p.done);
        if (terminal && !small) {
          draw_bar(p);
          *bar_open = true;
        }
        break;
      case Event::Retry:
        downloaded.store(p.done);
        std::fprintf(stderr, "%sconnection lost at %s MB (%s); resuming\n", end_bar, mb(p.done).c_str(),
                     p.note.c_str());
        *bar_open = false;
        break;
      case Event::Stopped:
        // The error that follows gets a line of its own.
        disarm_interrupt_note();
        std::fprintf(stderr, "%s", end_bar);
        *bar_open = false;
        break;
      case Event::Done:
        disarm_interrupt_note();
        if (small) {
          std::fprintf(stderr, "%sdownloaded %s %s (%s)\n", end_bar, p.repo.c_str(), p.file.c_str(),
                       size_text(p.done).c_str());
          *bar_open = false;
          break;
        }
        if (terminal) draw_bar(p);
        std::fprintf(stderr, "%s", terminal ? "\n" : "");
        std::fprintf(stderr, "downloaded %s (%s, %.1f MB/s)\n", p.file.c_str(), size_text(p.done).c_str(), speed(p));
        *bar_open = false;
        break;
    }
    std::fflush(stderr);
  };
}

}  // namespace pnpovss::console
