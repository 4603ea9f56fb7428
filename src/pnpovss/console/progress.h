// Progress of a long run on stderr: on a terminal one bar redrawn in place with images/s and
// the time left; otherwise (logs, CI, batch jobs) a plain line at most every `interval`
// seconds and at the end, so a log shows that the run is alive without growing by a line per
// image.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace pnpovss::console {

class Progress {
 public:
  // `total` images to do in this process, `already` done before it started (resumed).
  Progress(long total, long already, std::FILE* stream = stderr, double interval_seconds = 30.0);
  // Whether the bar is drawn in place (the stream is a terminal).
  bool interactive() const { return interactive_; }
  void step(bool failed);  // one image finished
  // `finished` images done in all, counted elsewhere (the records of every MPI rank), and
  // whether the image just finished here failed.
  void show_finished(long finished, bool failed);
  void finish();           // final line
  // "1:02:03", "4:05" for a number of seconds.
  static std::string clock(double seconds);

 private:
  void draw(bool final_line);
  long total_, already_, done_ = 0, failed_ = 0;
  std::FILE* stream_;
  bool interactive_;
  double interval_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace pnpovss::console
