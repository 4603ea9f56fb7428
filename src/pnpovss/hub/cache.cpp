#include "pnpovss/hub/cache.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>

#include "pnpovss/error.h"
#include "pnpovss/io/file_write.h"
#include "pnpovss/io/mapped_file.h"

namespace pnpovss::hub {
namespace {

namespace fs = std::filesystem;

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.';
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 96 || s == "." || s == ".." || s.find("..") != std::string::npos) return false;
  for (char c : s)
    if (!name_char(c)) return false;
  return true;
}

// Branch or tag names may hold '/', never "..", control characters or spaces.
bool valid_revision(const std::string& s) {
  if (s.empty() || s.size() > 255 || s.find("..") != std::string::npos || s.front() == '/' || s.back() == '/')
    return false;
  for (char c : s)
    if (!(name_char(c) || c == '/')) return false;
  return true;
}

bool is_commit_hash(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::optional<HubId> parse_hub_id(const std::string& spec) {
  HubId id;
  const auto at = spec.find('@');
  id.repo = spec.substr(0, at);
  if (at != std::string::npos) id.revision = spec.substr(at + 1);
  const auto slash = id.repo.find('/');
  if (slash == std::string::npos || id.repo.find('/', slash + 1) != std::string::npos) return std::nullopt;
  if (!valid_name(id.repo.substr(0, slash)) || !valid_name(id.repo.substr(slash + 1))) return std::nullopt;
  if (!valid_revision(id.revision)) return std::nullopt;
  return id;
}

std::string hub_cache_root() {
  if (auto v = env("HF_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HUGGINGFACE_HUB_CACHE"); !v.empty()) return v;  // older name, still honoured
  if (auto v = env("HF_HOME"); !v.empty()) return v + "/hub";
  if (auto v = env("XDG_CACHE_HOME"); !v.empty()) return v + "/huggingface/hub";
  return env("HOME") + "/.cache/huggingface/hub";
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error("cannot create the cache folder '" + dir + "'" + (ec ? " (" + ec.message() + ")" : std::string()) +
                ": set HF_HUB_CACHE to a writable folder");
}

RepoCache::RepoCache(std::string root, const std::string& repo) : root_(std::move(root)) {
  const auto slash = repo.find('/');
  folder_ = "models--" + repo.substr(0, slash) + "--" + repo.substr(slash + 1);
  dir_ = root_ + "/" + folder_;
}

std::optional<std::string> RepoCache::commit_of(const std::string& revision) const {
  const std::string ref = dir_ + "/refs/" + revision;
  if (io::file_exists(ref)) {
    const std::string commit = trim(io::read_text_file(ref));
    if (is_commit_hash(commit)) return commit;
  }
  std::error_code ec;
  if (is_commit_hash(revision) && fs::is_directory(snapshot_dir(revision), ec)) return revision;
  return std::nullopt;
}

void RepoCache::set_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return;
  const std::string ref = dir_ + "/refs/" + revision;
  make_dirs(fs::path(ref).parent_path().string());
  io::write_file_atomic(ref, commit);
}

std::vector<std::string> RepoCache::cached_revisions() const {
  std::vector<std::string> refs, commits;
  std::set<std::string> named;
  std::error_code ec;
  const fs::path refs_dir = dir_ + "/refs";
  for (fs::recursive_directory_iterator it(refs_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().lexically_relative(refs_dir).generic_string();
    const auto commit = commit_of(name);
    if (!commit) continue;
    refs.push_back(name);
    named.insert(*commit);
  }
  ec.clear();
  for (fs::directory_iterator it(dir_ + "/snapshots", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (is_commit_hash(name) && !named.count(name) && it->is_directory(ec)) commits.push_back(name);
  }
  std::sort(refs.begin(), refs.end());
  std::sort(commits.begin(), commits.end());
  refs.insert(refs.end(), commits.begin(), commits.end());
  return refs;
}

CacheEntry RepoCache::lookup(const std::string& commit, const std::string& file) const {
  const std::string link_path = snapshot_path(commit, file);
  std::error_code ec;
  const auto link_status = fs::symlink_status(link_path, ec);
  if (!ec && fs::exists(link_status)) {
    // A snapshot entry is a symlink to a blob (or, where symlinks are not possible, a copy).
    if (fs::is_regular_file(fs::status(link_path, ec))) return CacheEntry::Present;
    return CacheEntry::BlobMissing;
  }
  if (fs::exists(dir_ + "/.no_exist/" + commit + "/" + file, ec)) return CacheEntry::Absent;
  return CacheEntry::Unknown;
}

std::string RepoCache::snapshot_dir(const std::string& commit) const { return dir_ + "/snapshots/" + commit; }

std::string RepoCache::snapshot_path(const std::string& commit, const std::string& file) const {
  return snapshot_dir(commit) + "/" + file;
}

std::string RepoCache::blob_path(const std::string& etag) const { return dir_ + "/blobs/" + etag; }

std::string RepoCache::lock_path(const std::string& etag) const {
  return root_ + "/.locks/" + folder_ + "/" + etag + ".lock";
}

void RepoCache::link(const std::string& commit, const std::string& file, const std::string& etag) const {
  const fs::path link_path = snapshot_path(commit, file);
  make_dirs(link_path.parent_path().string());
  // Relative, so that the cache folder can be moved or mounted elsewhere.
  const fs::path target = fs::path(blob_path(etag)).lexically_relative(link_path.parent_path());
  const std::string temp = link_path.string() + ".tmp." + std::to_string(::getpid());
  ::unlink(temp.c_str());
  if (::symlink(target.c_str(), temp.c_str()) != 0 || ::rename(temp.c_str(), link_path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    throw Error("cannot create the cache entry '" + link_path.string() + "': " + reason);
  }
}

void RepoCache::mark_absent(const std::string& commit, const std::string& file) const {
  const fs::path marker = dir_ + "/.no_exist/" + commit + "/" + file;
  make_dirs(marker.parent_path().string());
  io::write_file_atomic(marker.string(), std::string());
}

}  // namespace pnpovss::hub
