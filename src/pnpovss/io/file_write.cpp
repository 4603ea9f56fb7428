#include "pnpovss/io/file_write.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace pnpovss::io {
namespace {

namespace fs = std::filesystem;

// PNPOVSS_TEST_KILL_AT_WRITE=N[:TEXT] (see the header): the write that kills the process.
class KillHook {
 public:
  KillHook() {
    const char* value = std::getenv("PNPOVSS_TEST_KILL_AT_WRITE");
    if (value == nullptr || *value == '\0') return;
    char* end = nullptr;
    const long n = std::strtol(value, &end, 10);
    if (end == value || n <= 0 || (*end != '\0' && *end != ':')) return;  // not of the test form: off
    at_ = n;
    if (*end == ':') text_ = end + 1;
  }

  // Counts a write of `path`; true when it is the one that must be cut off.
  bool fires(const std::string& path) {
    if (at_ <= 0) return false;
    if (!text_.empty() && path.find(text_) == std::string::npos) return false;
    return seen_.fetch_add(1) + 1 == at_;
  }

 private:
  long at_ = 0;
  std::string text_;
  std::atomic<long> seen_{0};
};

KillHook& kill_hook() {
  static KillHook hook;
  return hook;
}

// Writes every byte or returns the errno value of the failure (0 on success).
int write_fully(int fd, const void* data, size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

// fsync, where a file system that cannot sync (EINVAL: pipes, some special file systems) is not
// an error. Returns the errno value of a failure, 0 otherwise.
int sync_file(int fd) {
  if (::fsync(fd) == 0 || errno == EINVAL || errno == EROFS) return 0;
  return errno;
}

// The folder entry of a renamed file reaches the disk; failures only lose durability, not data.
void sync_folder(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  const int fd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

// Writes half of the bytes of a write that the test hook cuts off, then kills this process.
[[noreturn]] void die_half_way(int fd, const std::vector<BytesView>& pieces) {
  size_t total = 0;
  for (const auto& p : pieces) total += p.size;
  size_t left = total / 2;
  for (const auto& p : pieces) {
    const size_t n = std::min(left, p.size);
    if (n > 0) (void)write_fully(fd, p.data, n);
    left -= n;
  }
  ::kill(::getpid(), SIGKILL);
  std::abort();  // not reached: SIGKILL cannot be caught
}

// The process id of a `<name>.tmp<digits>` file name, or 0 when the name is not of that form.
long temporary_owner(const std::string& name) {
  const size_t dot = name.rfind(".tmp");
  if (dot == std::string::npos || dot == 0) return 0;
  const std::string digits = name.substr(dot + 4);
  if (digits.empty() || digits.size() > 10 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  const long long pid = std::stoll(digits);
  return pid > 0 && pid <= INT_MAX ? static_cast<long>(pid) : 0;
}

bool process_running(long pid) {
  if (pid == static_cast<long>(::getpid())) return true;
  // EPERM: the process exists but belongs to another user.
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

bool WriteError::affects_every_file() const {
  return code_ == ENOSPC || code_ == EDQUOT || code_ == EROFS || code_ == EIO || code_ == EFBIG;
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  write_file_atomic(path, std::vector<BytesView>{{data, size}});
}

void write_file_atomic(const std::string& path, const std::vector<BytesView>& pieces) {
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int err = errno;
    throw WriteError("cannot create '" + tmp + "': " + std::strerror(err), err);
  }
  if (kill_hook().fires(path)) die_half_way(fd, pieces);
  int err = 0;
  for (const auto& p : pieces)
    if (err == 0 && p.size > 0) err = write_fully(fd, p.data, p.size);
  if (err == 0) err = sync_file(fd);
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw WriteError("cannot write '" + path + "': " + std::strerror(err), err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    throw WriteError("cannot move '" + tmp + "' to '" + path + "': " + std::strerror(err), err);
  }
  sync_folder(path);
}

size_t remove_stale_temporaries(const std::string& folder) {
  size_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const long pid = temporary_owner(it->path().filename().string());
    if (pid == 0) continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec) || it->is_symlink(type_ec) || process_running(pid)) continue;
    std::error_code remove_ec;
    if (fs::remove(it->path(), remove_ec)) ++removed;
  }
  return removed;
}

AppendFile::AppendFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  if (fd_ < 0) {
    const int err = errno;
    throw WriteError("cannot open '" + path + "' for appending: " + std::strerror(err), err);
  }
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AppendFile::append(const std::string& text) {
  struct stat before {};
  if (::fstat(fd_, &before) != 0) {
    const int err = errno;
    throw WriteError("cannot write '" + path_ + "': " + std::strerror(err), err);
  }
  if (kill_hook().fires(path_)) die_half_way(fd_, {{text.data(), text.size()}});
  int err = write_fully(fd_, text.data(), text.size());
  if (err == 0) err = sync_file(fd_);
  if (err != 0) {
    // A part of the record may be in the file: cut it off, so that the file ends in a whole
    // record (shrinking needs no space).
    (void)::ftruncate(fd_, before.st_size);
    throw WriteError("cannot write '" + path_ + "': " + std::strerror(err), err);
  }
}

}  // namespace pnpovss::io
