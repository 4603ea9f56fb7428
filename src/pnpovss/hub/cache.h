// The Hugging Face hub cache on disk, in the layout Python's huggingface_hub uses, so that both
// share downloads:
//
//   <root>/models--<org>--<name>/refs/<revision>          the commit a branch or tag pointed to
//   <root>/models--<org>--<name>/blobs/<etag>             file contents, named by their hub ETag
//   <root>/models--<org>--<name>/blobs/<etag>.incomplete  a download in progress (resumable)
//   <root>/models--<org>--<name>/snapshots/<commit>/<file>  relative symlink to ../../blobs/<etag>
//   <root>/models--<org>--<name>/.no_exist/<commit>/<file>  empty: the hub said the file is absent
//
// <root> is $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pnpovss::hub {

// A model on the hub: "org/name", optionally "@revision" (branch, tag or commit; default main).
struct HubId {
  std::string repo;
  std::string revision = "main";
  std::string text() const { return revision == "main" ? repo : repo + "@" + revision; }
};

// `spec` as a hub id, or nothing when it does not have the form org/name[@revision] with names
// made of letters, digits, '-', '_' and '.'.
std::optional<HubId> parse_hub_id(const std::string& spec);

// The cache root from the environment (see above).
std::string hub_cache_root();

// What the cache knows about one file of one commit.
enum class CacheEntry {
  Present,      // the snapshot link resolves to a blob
  Absent,       // recorded as not existing on the hub
  BlobMissing,  // the snapshot link exists but its blob does not
  Unknown,      // nothing recorded
};

class RepoCache {
 public:
  RepoCache(std::string root, const std::string& repo);

  const std::string& root() const { return root_; }
  const std::string& dir() const { return dir_; }
  // "models--org--name", also the folder of its lock files under <root>/.locks.
  const std::string& folder() const { return folder_; }

  // The commit of `revision`: refs/<revision>, or the revision itself when it is a commit hash
  // with a snapshot folder. Nothing when unknown.
  std::optional<std::string> commit_of(const std::string& revision) const;
  // Records refs/<revision> = commit (atomically; not for a revision that is the commit).
  void set_ref(const std::string& revision, const std::string& commit) const;
  // The revisions this repository can be used at from the cache alone, for messages: the names
  // under refs/ ("main", "refs/pr/1"), sorted, then the commits of snapshot folders no ref names.
  // Empty when the cache holds nothing of it.
  std::vector<std::string> cached_revisions() const;

  CacheEntry lookup(const std::string& commit, const std::string& file) const;
  std::string snapshot_dir(const std::string& commit) const;
  std::string snapshot_path(const std::string& commit, const std::string& file) const;
  std::string blob_path(const std::string& etag) const;
  std::string lock_path(const std::string& etag) const;

  // Points snapshots/<commit>/<file> at blobs/<etag> with a relative symlink, replacing any
  // earlier link atomically.
  void link(const std::string& commit, const std::string& file, const std::string& etag) const;
  // Records that the hub has no `file` at `commit`.
  void mark_absent(const std::string& commit, const std::string& file) const;

 private:
  std::string root_, folder_, dir_;
};

// Creates `dir` and its parents; throws pnpovss::Error on failure.
void make_dirs(const std::string& dir);

}  // namespace pnpovss::hub
