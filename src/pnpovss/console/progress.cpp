#include "pnpovss/console/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace pnpovss::console {
namespace {

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

Progress::Progress(long total, long already, std::FILE* stream, double interval_seconds)
    : total_(total),
      already_(already),
      stream_(stream),
      interactive_(::isatty(::fileno(stream)) != 0),
      interval_(interval_seconds),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

std::string Progress::clock(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(text, sizeof text, "%ld:%02ld", s / 60, s % 60);
  return text;
}

void Progress::step(bool failed) {
  ++done_;
  if (failed) ++failed_;
  const auto now = std::chrono::steady_clock::now();
  if (interactive_ || seconds_between(last_, now) >= interval_) {
    last_ = now;
    draw(false);
  }
}

void Progress::show_finished(long finished, bool failed) {
  done_ = std::max(done_, finished - already_ - 1);
  step(failed);
}

void Progress::finish() { draw(true); }

void Progress::draw(bool final_line) {
  const double elapsed = seconds_between(start_, std::chrono::steady_clock::now());
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const long all = total_ + already_, finished = done_ + already_;
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : NAN;
  const std::string failures = failed_ ? ", " + std::to_string(failed_) + " failed" : "";
  const std::string left = final_line ? "0:00" : clock(eta);
  char counts[160];
  std::snprintf(counts, sizeof counts, "%ld/%ld images%s, %.2f img/s, %s elapsed, ETA %s", finished, all,
                failures.c_str(), rate, clock(elapsed).c_str(), left.c_str());
  if (interactive_) {
    constexpr int kWidth = 30;
    const int filled = all > 0 ? static_cast<int>(kWidth * finished / all) : kWidth;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stream_, "\r[%s] %s\033[K%s", bar.c_str(), counts, final_line ? "\n" : "");
  } else {
    std::fprintf(stream_, "eval: %s\n", counts);
  }
  std::fflush(stream_);
}

}  // namespace pnpovss::console
