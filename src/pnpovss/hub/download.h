// Files of one hub repository, from the local cache or downloaded into it (hub_cache.h) the way
// Python's huggingface_hub does:
//
//   HEAD {endpoint}/{repo}/resolve/{revision}/{file}  -> X-Repo-Commit, ETag or X-Linked-Etag
//        (sha256 for Git LFS files, the git blob id otherwise), X-Linked-Size or Content-Length
//   GET  the same URL, following the redirect to the storage of large files, with a Range
//        header to resume blobs/<etag>.incomplete
//
// A file already in the cache costs no request. Downloads are checked against the announced
// size and hash before they are renamed into place, so a complete-looking blob is complete.
// Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN or the token file
// ($HF_TOKEN_PATH, else $HF_HOME/token, else ~/.cache/huggingface/token), HF_HUB_OFFLINE=1.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "pnpovss/hub/cache.h"

namespace pnpovss::hub {

// Where a download stands, for a progress display. Start comes once the server has answered
// (so resumed_from is what it really resumes from); each transfer ends in Done, in Retry (followed
// by another Start when the server answers again) or, when the download gives up with an error,
// in Stopped (the .incomplete file stays for a rerun).
struct DownloadProgress {
  enum class Event { Start, Update, Retry, Done, Stopped };
  Event event = Event::Start;
  std::string repo, file;
  int64_t done = 0;          // bytes on disk
  int64_t total = -1;        // announced size; -1 when unknown
  int64_t resumed_from = 0;  // bytes already on disk when this transfer started
  int64_t discarded = 0;     // Start: bytes on disk dropped because the server ignored the Range request
  double seconds = 0;        // since this transfer started
  std::string note;          // Retry: why
};
using DownloadProgressFn = std::function<void(const DownloadProgress&)>;

// Installs the process-wide progress callback (none by default: the library prints nothing).
// Front ends install one (console::download_display()).
void set_download_progress(DownloadProgressFn fn);

struct HubSettings {
  std::string endpoint = "https://huggingface.co";
  std::string token;
  bool offline = false;
  static HubSettings from_environment();
};

class HubRepo {
 public:
  HubRepo(HubId id, const std::string& cache_root, HubSettings settings);

  // The path of `file` in the snapshot, downloaded when missing; nothing when the hub does not
  // have it. Throws pnpovss::Error when `required` and absent, and for every failure (offline
  // without the file, unknown repository, refused access, network, disk, hash mismatch).
  std::optional<std::string> get(const std::string& file, bool required);

  // The snapshot folder (after a first get()).
  std::string snapshot_dir() const;
  const HubId& id() const { return id_; }
  bool offline() const { return settings_.offline; }

 private:
  struct Meta;
  std::optional<Meta> head(const std::string& file);
  void download(const Meta& meta, const std::string& file);
  std::string file_url(const std::string& file) const;
  [[noreturn]] void fail_status(long status, const std::string& error_code, const std::string& file) const;
  [[noreturn]] void fail_network(const std::string& what, const std::string& why) const;

  HubId id_;
  RepoCache cache_;
  HubSettings settings_;
  std::optional<std::string> commit_;
};

}  // namespace pnpovss::hub
