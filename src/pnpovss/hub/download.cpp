#include "pnpovss/hub/download.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/hub/etag.h"
#include "pnpovss/hub/http.h"
#include "pnpovss/hub/response.h"
#include "pnpovss/io/mapped_file.h"

namespace pnpovss::hub {

struct HubRepo::Meta {
  std::string commit, etag;
  int64_t size = -1;
};

namespace {

using Clock = std::chrono::steady_clock;

std::mutex progress_mutex;
DownloadProgressFn progress_fn;

void report(const DownloadProgress& p) {
  std::lock_guard<std::mutex> lock(progress_mutex);
  if (progress_fn) progress_fn(p);
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string strip(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

bool truthy(std::string v) {
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "1" || v == "on" || v == "yes" || v == "true";
}

std::string header(const HttpResult& r, const char* name) {
  const auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string() : it->second;
}

int64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) ? static_cast<int64_t>(st.st_size) : -1;
}

std::string megabytes(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

// For a revision the cache lacks while it holds others of the same repository: "the Hugging Face
// cache (ROOT) holds 'org/name' but not its revision 'v2' (cached: main, 0123...)". Empty when
// nothing of the repository is cached. `example` receives a cached id to suggest.
std::string revision_not_cached(const RepoCache& cache, const HubId& id, std::string& example) {
  const std::vector<std::string> cached = cache.cached_revisions();
  if (cached.empty()) return "";
  std::string list;
  const size_t shown = std::min<size_t>(cached.size(), 4);
  for (size_t i = 0; i < shown; ++i) list += (i ? ", " : "") + cached[i];
  if (cached.size() > shown) list += ", and " + std::to_string(cached.size() - shown) + " more";
  example = id.repo + "@" + cached.front();
  return "the Hugging Face cache (" + cache.root() + ") holds '" + id.repo + "' but not its revision '" + id.revision +
         "' (cached: " + list + ")";
}

// "1.0 of 7.3 MB", or "1.0 MB" when the size is unknown.
std::string megabytes_of(int64_t bytes, int64_t total) {
  if (total < 0) return megabytes(bytes);
  char text[64];
  std::snprintf(text, sizeof text, "%.1f of %.1f MB", static_cast<double>(bytes) / 1e6,
                static_cast<double>(total) / 1e6);
  return text;
}

// Branch names may hold '/', which must not split the URL path.
std::string url_segment(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '/' ? std::string("%2F") : std::string(1, c);
  return out;
}

// An exclusive lock on one blob, so that two processes do not write the same .incomplete.
class BlobLock {
 public:
  explicit BlobLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("cannot create the lock file '" + path + "': " + std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~BlobLock() { ::close(fd_); }
  BlobLock(const BlobLock&) = delete;
  BlobLock& operator=(const BlobLock&) = delete;

 private:
  int fd_ = -1;
};

// Writes a response body to the .incomplete file: appended after what is there when the server
// honoured the Range request (206), from the start otherwise (a server without resume support
// answers 200 with the whole file: what was on disk is overwritten). Reports Start once the
// server has answered, when it is known which of the two happens.
class IncompleteFile : public BodySink {
 public:
  IncompleteFile(std::string path, int64_t offset, DownloadProgress progress)
      : path_(std::move(path)), offset_(offset), progress_(std::move(progress)) {}
  ~IncompleteFile() override { close(); }

  bool begin(long status) override {
    const bool append = status == 206 && offset_ > 0;
    restarted_ = offset_ > 0 && !append;
    progress_.discarded = restarted_ ? offset_ : 0;
    if (!append) offset_ = 0;
    file_ = std::fopen(path_.c_str(), append ? "ab" : "wb");
    if (!file_) {
      errno_ = errno;
      return false;
    }
    written_ = offset_;
    progress_.event = DownloadProgress::Event::Start;
    progress_.done = progress_.resumed_from = offset_;
    report(progress_);
    progress_.discarded = 0;
    start_ = last_report_ = Clock::now();
    return true;
  }

  bool write(const char* data, size_t size) override {
    if (std::fwrite(data, 1, size, file_) != size) {
      errno_ = errno;
      return false;
    }
    written_ += static_cast<int64_t>(size);
    const auto now = Clock::now();
    if (now - last_report_ > std::chrono::milliseconds(200)) {
      last_report_ = now;
      progress_.event = DownloadProgress::Event::Update;
      progress_.done = written_;
      progress_.seconds = std::chrono::duration<double>(now - start_).count();
      report(progress_);
    }
    return true;
  }

  // Flushes and closes; false (with errno()) when the last bytes could not be written.
  bool close() {
    if (!file_) return true;
    const bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
    if (!ok) errno_ = errno;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    return ok && closed;
  }

  int error() const { return errno_; }
  int64_t written() const { return written_; }
  // Whether the server sent the whole file instead of the rest asked for.
  bool restarted() const { return restarted_; }

 private:
  std::string path_;
  int64_t offset_ = 0, written_ = 0;
  DownloadProgress progress_;
  std::FILE* file_ = nullptr;
  int errno_ = 0;
  bool restarted_ = false;
  Clock::time_point start_ = Clock::now(), last_report_ = Clock::now();
};

}  // namespace

void set_download_progress(DownloadProgressFn fn) {
  std::lock_guard<std::mutex> lock(progress_mutex);
  progress_fn = std::move(fn);
}

HubSettings HubSettings::from_environment() {
  HubSettings s;
  if (auto v = strip(env("HF_ENDPOINT")); !v.empty()) s.endpoint = v;
  while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();
  s.offline = truthy(env("HF_HUB_OFFLINE"));
  s.token = strip(env("HF_TOKEN"));
  if (s.token.empty()) s.token = strip(env("HUGGING_FACE_HUB_TOKEN"));
  if (s.token.empty()) {
    std::string path = env("HF_TOKEN_PATH");
    if (path.empty() && !env("HF_HOME").empty()) path = env("HF_HOME") + "/token";
    if (path.empty() && !env("XDG_CACHE_HOME").empty()) path = env("XDG_CACHE_HOME") + "/huggingface/token";
    if (path.empty()) path = env("HOME") + "/.cache/huggingface/token";
    if (io::file_exists(path)) s.token = strip(io::read_text_file(path));
  }
  return s;
}

HubRepo::HubRepo(HubId id, const std::string& cache_root, HubSettings settings)
    : id_(std::move(id)), cache_(cache_root, id_.repo), settings_(std::move(settings)) {}

std::string HubRepo::snapshot_dir() const { return commit_ ? cache_.snapshot_dir(*commit_) : std::string(); }

std::string HubRepo::file_url(const std::string& file) const {
  return settings_.endpoint + "/" + id_.repo + "/resolve/" + url_segment(commit_ ? *commit_ : id_.revision) + "/" +
         file;
}

std::optional<std::string> HubRepo::get(const std::string& file, bool required) {
  if (!commit_) commit_ = cache_.commit_of(id_.revision);
  const std::string where = "'" + id_.text() + "'";
  if (commit_) {
    const std::string path = cache_.snapshot_path(*commit_, file);
    switch (cache_.lookup(*commit_, file)) {
      case CacheEntry::Present:
        return path;
      case CacheEntry::Absent:
        if (required) throw Error(where + " has no " + file + " (recorded in " + cache_.dir() + "/.no_exist)");
        return std::nullopt;
      case CacheEntry::BlobMissing:
        if (settings_.offline)
          throw Error("the cache entry '" + path + "' points to a blob that is missing: delete '" + cache_.dir() +
                      "' and download again without HF_HUB_OFFLINE=1");
        break;  // downloaded again below
      case CacheEntry::Unknown:
        if (!settings_.offline) break;
        if (!required) return std::nullopt;
        throw Error("the Hugging Face cache holds " + where + " without its " + file + ", and HF_HUB_OFFLINE=1 " +
                    "forbids downloading it: run once with network access to complete it");
    }
  } else if (settings_.offline) {
    std::string example;
    const std::string other = revision_not_cached(cache_, id_, example);
    if (!other.empty())
      throw Error(other + ", and HF_HUB_OFFLINE=1 forbids downloading it: run once without HF_HUB_OFFLINE to get " +
                  "it, or pass a cached revision, e.g. " + example);
    throw Error(where + " is neither a local directory nor in the Hugging Face cache (" + cache_.root() +
                ") and HF_HUB_OFFLINE=1 forbids downloading it: unset HF_HUB_OFFLINE, or fetch it where there is "
                "network access and copy the cache, or pass a model directory");
  }
  if (!http_supported())
    throw Error(where + " is not complete in the Hugging Face cache (" + cache_.root() + ") and pnp-ovss was built " +
                "without download support: download it with `huggingface-cli download " + id_.repo +
                "` (it shares this cache), or give a model directory");

  const std::optional<Meta> meta = head(file);
  if (!meta) {
    if (commit_) cache_.mark_absent(*commit_, file);
    if (required) throw Error(where + " has no file " + file + " on " + settings_.endpoint);
    return std::nullopt;
  }
  if (!commit_) {
    commit_ = meta->commit;
    cache_.set_ref(id_.revision, *commit_);
  }
  download(*meta, file);
  cache_.link(*commit_, file, meta->etag);
  return cache_.snapshot_path(*commit_, file);
}

// The file's metadata, or nothing when the hub says the file does not exist.
std::optional<HubRepo::Meta> HubRepo::head(const std::string& file) {
  std::string url = file_url(file);
  HttpResult r;
  // Renamed repositories answer with a relative redirect; large files with an absolute one to
  // their storage, whose headers are not needed (X-Linked-* describe the file).
  for (int hop = 0;; ++hop) {
    r = http_perform({url, true, false, settings_.token, 0}, nullptr);
    if (!r.transfer_error.empty())
      fail_network("cannot reach " + settings_.endpoint + " to get " + file + " of '" + id_.text() + "'",
                   r.transfer_error);
    const std::string location = header(r, "location");
    const bool relative_redirect = r.status >= 300 && r.status < 400 && location.rfind("/", 0) == 0;
    if (!relative_redirect || header(r, "x-linked-etag").size() || hop == 5) break;
    url = settings_.endpoint + location;
  }
  const std::string code = header(r, "x-error-code");
  if (r.status == 404 && (code.empty() || code == "EntryNotFound")) return std::nullopt;
  if (r.status < 200 || r.status >= 400) fail_status(r.status, code, file);
  // The commit and ETag become file names in the cache: read_file_headers accepts only plain names.
  const std::optional<FileHeaders> described = read_file_headers(r.headers, commit_);
  if (!described)
    throw Error(settings_.endpoint + " did not describe " + file + " of '" + id_.text() + "' (no usable X-Repo-Commit or " +
                "ETag header): is HF_ENDPOINT a Hugging Face hub?");
  return Meta{described->commit, described->etag, described->size};
}

void HubRepo::download(const Meta& meta, const std::string& file) {
  const std::string blob = cache_.blob_path(meta.etag);
  if (file_size(blob) >= 0) return;  // shared with another file or revision
  make_dirs(cache_.dir() + "/blobs");
  make_dirs(cache_.root() + "/.locks/" + cache_.folder());
  BlobLock lock(cache_.lock_path(meta.etag));
  if (file_size(blob) >= 0) return;  // another process finished it meanwhile
  const std::string incomplete = blob + ".incomplete";
  const std::string what = file + " of '" + id_.text() + "'";

  if (meta.size > 0) {
    struct statvfs fs {};
    const int64_t have = std::max<int64_t>(file_size(incomplete), 0);
    if (::statvfs((cache_.dir() + "/blobs").c_str(), &fs) == 0) {
      const auto free_bytes = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
      if (meta.size - have > free_bytes)
        throw Error("not enough disk space for " + what + ": it needs " + megabytes(meta.size - have) + ", " +
                    megabytes(free_bytes) + " are free in " + cache_.root() +
                    "; free some space or set HF_HUB_CACHE to a folder on another disk");
    }
  }

  DownloadProgress progress;
  progress.repo = id_.text();
  progress.file = file;
  progress.total = meta.size;
  const auto first_start = Clock::now();
  int64_t kept = -1;  // bytes of an earlier run that this download keeps (for the speed)
  // A display learns that the transfer gave up (it ends its bar, forgets the file) when an error
  // leaves this function.
  struct StoppedReport {
    const DownloadProgress& progress;
    bool armed = true;
    ~StoppedReport() {
      if (!armed) return;
      DownloadProgress p = progress;
      p.event = DownloadProgress::Event::Stopped;
      try {
        report(p);
      } catch (...) {  // a display must not turn one error into termination
      }
    }
  } stopped_report{progress};
  // A dropped connection is resumed where it stopped; three failures in a row without progress
  // give up (the .incomplete file stays, so the next run resumes).
  for (int fruitless = 0;;) {
    int64_t offset = std::max<int64_t>(file_size(incomplete), 0);
    if (meta.size >= 0 && offset > meta.size) {
      std::remove(incomplete.c_str());
      offset = 0;
    }
    if (kept < 0) kept = offset;
    if (meta.size >= 0 && offset == meta.size && offset > 0) break;
    const auto start = Clock::now();
    IncompleteFile sink(incomplete, offset, progress);
    const HttpResult r = http_perform({file_url(file), false, true, settings_.token, offset}, &sink);
    const bool closed = sink.close();
    if (sink.restarted()) kept = 0;
    if (r.aborted_by_sink || !closed) {
      const int err = sink.error();
      if (err == ENOSPC || err == EDQUOT)
        throw Error("the disk is full: downloading " + what + " into " + cache_.root() + " stopped at " +
                    megabytes(sink.written()) + " of " + megabytes(meta.size) +
                    "; free some space (the download resumes) or set HF_HUB_CACHE to a folder on another disk");
      throw Error("cannot write '" + incomplete + "': " + std::strerror(err));
    }
    if (r.status == 416) {  // the partial file does not fit the server's file: start over
      std::remove(incomplete.c_str());
      continue;
    }
    if (r.transfer_error.empty() && r.status >= 200 && r.status < 300) break;
    if (r.transfer_error.empty()) fail_status(r.status, header(r, "x-error-code"), file);
    const int64_t now_have = std::max<int64_t>(file_size(incomplete), 0);
    fruitless = now_have > offset ? 0 : fruitless + 1;
    if (fruitless >= 3 && now_have == 0)
      fail_network("the download of " + what + " from " + settings_.endpoint + " keeps failing", r.transfer_error);
    // Once part of the file is on disk, network advice does not fit: what matters is that it is kept.
    if (fruitless >= 3)
      throw Error("the connection was cut after " + megabytes_of(now_have, meta.size) + " of " + what +
                  ", and reconnecting failed (" + r.transfer_error +
                  "); the partial download is kept: run the command again to resume it");
    progress.event = DownloadProgress::Event::Retry;
    progress.done = now_have;
    progress.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    progress.note = r.transfer_error;
    report(progress);
    if (fruitless > 0) std::this_thread::sleep_for(std::chrono::milliseconds(500 * fruitless));
  }
  const int64_t got = std::max<int64_t>(file_size(incomplete), 0);
  if (meta.size >= 0 && got != meta.size) {
    std::remove(incomplete.c_str());
    throw Error("the download of " + what + " has " + std::to_string(got) + " bytes, the hub announced " +
                std::to_string(meta.size) + "; the file was deleted, run again to download it anew");
  }
  const EtagKind kind = etag_kind(meta.etag);
  const std::string hash = file_etag_hash(incomplete, kind);
  if (kind != EtagKind::Opaque && hash != meta.etag) {
    std::remove(incomplete.c_str());
    throw Error("the download of " + what + " is corrupt: its " +
                (kind == EtagKind::Sha256 ? "sha256" : "git blob hash") + " is " + hash + ", the hub announced " +
                meta.etag + "; the file was deleted, run again to download it anew");
  }
  if (::chmod(incomplete.c_str(), 0644) != 0 || std::rename(incomplete.c_str(), blob.c_str()) != 0)
    throw Error("cannot move the download into '" + blob + "': " + std::strerror(errno));
  stopped_report.armed = false;
  progress.event = DownloadProgress::Event::Done;
  progress.done = got;
  progress.resumed_from = std::min(std::max<int64_t>(kept, 0), got);
  progress.seconds = std::chrono::duration<double>(Clock::now() - first_start).count();
  report(progress);
}

void HubRepo::fail_status(long status, const std::string& error_code, const std::string& file) const {
  const std::string repo = "'" + id_.repo + "'";
  const std::string login = "set HF_TOKEN to a token of an account with access (https://huggingface.co/settings/tokens)"
                            " or run `huggingface-cli login`";
  if (error_code == "RepoNotFound" || (status == 401 && error_code.empty() && settings_.token.empty()))
    throw Error("model " + repo + " not found on " + settings_.endpoint + " (HTTP " + std::to_string(status) +
                "), and there is no local directory '" + id_.text() + "': check the id (org/name); a private " +
                "repository also needs a token: " + login);
  if (error_code == "RevisionNotFound")
    throw Error("revision '" + id_.revision + "' of " + repo + " not found on " + settings_.endpoint +
                ": check the branch, tag or commit after '@'");
  if (error_code == "GatedRepo")
    throw Error(repo + " is a gated model (HTTP " + std::to_string(status) + "): accept its conditions at " +
                settings_.endpoint + "/" + id_.repo + " while logged in, then " + login +
                (settings_.token.empty() ? "" : " (the token in use has no access)"));
  if (status == 401 || status == 403)
    throw Error("access to " + repo + " was refused (HTTP " + std::to_string(status) + "): " +
                (settings_.token.empty() ? "it needs a token: " + login
                                         : "the token in use is invalid or lacks access: " + login));
  if (status == 404) throw Error(repo + " has no file " + file + " at revision '" + id_.revision + "'");
  throw Error(settings_.endpoint + " answered HTTP " + std::to_string(status) + " for " + file + " of " + repo +
              (status >= 500 || status == 429 ? ": try again later" : ""));
}

void HubRepo::fail_network(const std::string& what, const std::string& why) const {
  // Before anything is cached, "data/model" may have been meant as a folder: say that none exists.
  std::string example;
  const std::string other = commit_ ? "" : revision_not_cached(cache_, id_, example);
  // Advice to work offline would not help when the revision asked for is not cached.
  if (!other.empty())
    throw Error(what + " (" + why + "), and " + other + ": check the network (or proxy settings), or pass a " +
                "cached revision, e.g. " + example);
  const std::string no_dir = commit_ ? "" : " ('" + id_.text() + "' is no local directory either)";
  throw Error(what + " (" + why + ")" + no_dir +
              ": check the network (or proxy settings); with HF_HUB_OFFLINE=1 only the local cache is used, or "
              "pass a model directory");
}

}  // namespace pnpovss::hub
