// Writing output files so that a reader (or a rerun after a kill) never sees half a file: the
// bytes go to a temporary file beside the target, which is then renamed into place. A process
// killed mid-write leaves only its temporary `<path>.tmp<pid>`, which the next run in that
// folder removes (remove_stale_temporaries). Journals grow by whole records (AppendFile).
//
// For tests only: the environment variable PNPOVSS_TEST_KILL_AT_WRITE=N[:TEXT], read once per
// process, makes the N-th write of the process (counting write_file_atomic and
// AppendFile::append calls, or with ":TEXT" only those whose path contains TEXT) write half of
// its bytes and then kill the process with SIGKILL, before the rename. It lets tests kill a run
// exactly in the middle of a chosen file (tests/test_kill_resume.py).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "pnpovss/error.h"

namespace pnpovss::io {

// A file that could not be written, with the errno value that made it fail.
class WriteError : public Error {
 public:
  WriteError(const std::string& message, int code) : Error(message), code_(code) {}
  int code() const { return code_; }
  // True when the file system refuses every further write as well (full disk, quota, read-only,
  // I/O error), so that going on with other files would only fail the same way.
  bool affects_every_file() const;

 private:
  int code_;
};

// Bytes to write, one piece of a file.
struct BytesView {
  const void* data;
  size_t size;
};

// Writes `size` bytes to `path` through `<path>.tmp<pid>`. The temporary file is flushed to the
// disk before the rename and the folder after it, so that files written one after the other
// reach the disk in that order even across a power cut (a record written after its prediction
// never survives without it). Throws WriteError naming `path` (the temporary file is removed).
void write_file_atomic(const std::string& path, const void* data, size_t size);
// The concatenation of `pieces`, as above.
void write_file_atomic(const std::string& path, const std::vector<BytesView>& pieces);
inline void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}
inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

// Removes from `folder` (not its subfolders) the temporary files that write_file_atomic left
// when its process was killed: regular files named `<name>.tmp<digits>` whose number is not the
// id of a process running on this machine. A running process's temporary file is left alone,
// since another process may be writing into the same folder right now (a second run, an MPI
// rank on this machine). Processes on other machines (or in other pid namespaces) are not seen:
// a folder that several machines write into must be tidied by one process before the others
// start writing. A missing folder and files that cannot be removed are skipped. Returns how many
// files were removed.
size_t remove_stale_temporaries(const std::string& folder);

// A file that grows by whole records, such as a journal: each append reaches the disk before it
// returns, and an append that fails half-way (a full disk) is cut off again, so that the file
// only ever ends in a part of a record when the process was killed during the append.
class AppendFile {
 public:
  // Opens `path` for appending, creating it when missing. Throws WriteError.
  explicit AppendFile(const std::string& path);
  ~AppendFile();
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;

  const std::string& path() const { return path_; }
  // Appends `text` whole, or throws WriteError naming the file with the file as it was before.
  void append(const std::string& text);

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace pnpovss::io
