#include "pnpovss/console/download_progress.h"

#include <unistd.h>

#include <cstdio>
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

}  // namespace

hub::DownloadProgressFn download_display() {
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  return [terminal](const hub::DownloadProgress& p) {
    using Event = hub::DownloadProgress::Event;
    const bool small = p.total >= 0 && p.total < kSmallFile;
    switch (p.event) {
      case Event::Start:
        if (small) break;
        if (p.resumed_from > 0)
          std::fprintf(stderr, "downloading %s %s: resuming at %s of %s MB\n", p.repo.c_str(), p.file.c_str(),
                       mb(p.resumed_from).c_str(), mb(p.total).c_str());
        else
          std::fprintf(stderr, "downloading %s %s (%s MB)\n", p.repo.c_str(), p.file.c_str(), mb(p.total).c_str());
        if (terminal) draw_bar(p);
        break;
      case Event::Update:
        if (terminal && !small) draw_bar(p);
        break;
      case Event::Retry:
        std::fprintf(stderr, "%sconnection lost at %s MB (%s); resuming\n", terminal ? "\n" : "", mb(p.done).c_str(),
                     p.note.c_str());
        break;
      case Event::Done:
        if (small) {
          std::fprintf(stderr, "downloaded %s %s (%s)\n", p.repo.c_str(), p.file.c_str(), size_text(p.done).c_str());
          break;
        }
        if (terminal) {
          draw_bar(p);
          std::fprintf(stderr, "\n");
        }
        std::fprintf(stderr, "downloaded %s (%s, %.1f MB/s)\n", p.file.c_str(), size_text(p.done).c_str(), speed(p));
        break;
    }
    std::fflush(stderr);
  };
}

}  // namespace pnpovss::console
