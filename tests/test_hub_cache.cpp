// The pieces of hub downloads that need no network: the two ETag hashes (against published test
// vectors and git), hub id parsing, and the cache layout shared with Python's huggingface_hub.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pnpovss/hub/cache.h"
#include "pnpovss/hub/etag.h"
#include "pnpovss/util/hash.h"

namespace pnpovss::hub {
namespace {

namespace fs = std::filesystem;

std::string sha256(const std::string& s) {
  util::Sha256 h;
  h.update(s.data(), s.size());
  return h.hex_digest();
}

std::string sha1(const std::string& s) {
  util::Sha1 h;
  h.update(s.data(), s.size());
  return h.hex_digest();
}

// FIPS 180-2 examples (including the two-block 56-byte message and one million 'a').
TEST(HubHash, Sha256KnownVectors) {
  EXPECT_EQ(sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  util::Sha256 million;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(chunk.data(), chunk.size());
  EXPECT_EQ(million.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(HubHash, Sha1KnownVectors) {
  EXPECT_EQ(sha1(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(sha1("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

TEST(HubHash, FileHashesAsTheHubNamesThem) {
  const std::string path = fs::temp_directory_path() / ("pnpovss_hash_" + std::to_string(::getpid()));
  std::ofstream(path) << "hello world\n";
  // `printf 'hello world\n' | git hash-object --stdin`
  EXPECT_EQ(hub::file_etag_hash(path, hub::EtagKind::GitSha1), "3b18e512dba79e4c8300dd08aeb37f8e728b8dad");
  EXPECT_EQ(hub::file_etag_hash(path, hub::EtagKind::Sha256), sha256("hello world\n"));
  EXPECT_EQ(hub::file_etag_hash(path, hub::EtagKind::Opaque), "");
  std::remove(path.c_str());
  EXPECT_EQ(hub::etag_kind("3b18e512dba79e4c8300dd08aeb37f8e728b8dad"), hub::EtagKind::GitSha1);
  EXPECT_EQ(hub::etag_kind(sha256("x")), hub::EtagKind::Sha256);
  EXPECT_EQ(hub::etag_kind("W/\"abc\""), hub::EtagKind::Opaque);
}

TEST(HubId, Parses) {
  auto id = hub::parse_hub_id("Salesforce/blip-itm-large-flickr");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->repo, "Salesforce/blip-itm-large-flickr");
  EXPECT_EQ(id->revision, "main");
  id = hub::parse_hub_id("org/name.v2@refs/pr/1");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->repo, "org/name.v2");
  EXPECT_EQ(id->revision, "refs/pr/1");
  EXPECT_EQ(id->text(), "org/name.v2@refs/pr/1");
  for (const char* bad : {"name", "a/b/c", "../x", "a/..", "/abs", "a/b@", "a b/c", "a/b@../../etc", "./a", "a/b@x y"})
    EXPECT_FALSE(hub::parse_hub_id(bad)) << bad;
}

TEST(RepoCache, LayoutOfHuggingfaceHub) {
  const std::string root = fs::temp_directory_path() / ("pnpovss_cache_" + std::to_string(::getpid()));
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  hub::RepoCache cache(root, "org/name");
  EXPECT_EQ(cache.dir(), root + "/models--org--name");
  EXPECT_FALSE(cache.commit_of("main"));
  cache.set_ref("main", commit);
  EXPECT_EQ(cache.commit_of("main").value_or(""), commit);

  EXPECT_EQ(cache.lookup(commit, "config.json"), hub::CacheEntry::Unknown);
  hub::make_dirs(cache.dir() + "/blobs");
  std::ofstream(cache.blob_path("abc")) << "{}";
  cache.link(commit, "config.json", "abc");
  EXPECT_EQ(fs::read_symlink(cache.snapshot_path(commit, "config.json")).string(), "../../blobs/abc");
  EXPECT_EQ(cache.lookup(commit, "config.json"), hub::CacheEntry::Present);
  EXPECT_EQ(cache.commit_of(commit).value_or(""), commit);  // a commit with a snapshot

  fs::remove(cache.blob_path("abc"));
  EXPECT_EQ(cache.lookup(commit, "config.json"), hub::CacheEntry::BlobMissing);

  cache.mark_absent(commit, "special_tokens_map.json");
  EXPECT_TRUE(fs::is_regular_file(cache.dir() + "/.no_exist/" + commit + "/special_tokens_map.json"));
  EXPECT_EQ(cache.lookup(commit, "special_tokens_map.json"), hub::CacheEntry::Absent);
  fs::remove_all(root);
}

// What an offline message lists when the revision asked for is not cached.
TEST(RepoCache, CachedRevisions) {
  const std::string root = fs::temp_directory_path() / ("pnpovss_revisions_" + std::to_string(::getpid()));
  const std::string main_commit = "0123456789abcdef0123456789abcdef01234567";
  const std::string loose_commit = "89abcdef0123456789abcdef0123456789abcdef";
  hub::RepoCache cache(root, "org/name");
  EXPECT_TRUE(cache.cached_revisions().empty());  // no folder at all
  cache.set_ref("main", main_commit);
  cache.set_ref("refs/pr/1", main_commit);
  hub::make_dirs(cache.snapshot_dir(main_commit));
  hub::make_dirs(cache.snapshot_dir(loose_commit));  // downloaded as org/name@<commit>
  hub::make_dirs(cache.dir() + "/snapshots/not-a-commit");
  std::ofstream(cache.dir() + "/refs/broken") << "not a commit\n";
  EXPECT_EQ(cache.cached_revisions(), (std::vector<std::string>{"main", "refs/pr/1", loose_commit}));
  fs::remove_all(root);
}

TEST(RepoCache, RootFromEnvironment) {
  const char* home = std::getenv("HOME");
  const std::string saved_home = home ? home : "";
  ::setenv("HF_HUB_CACHE", "/x/hub", 1);
  EXPECT_EQ(hub::hub_cache_root(), "/x/hub");
  ::unsetenv("HF_HUB_CACHE");
  ::unsetenv("HUGGINGFACE_HUB_CACHE");
  ::setenv("HF_HOME", "/y", 1);
  EXPECT_EQ(hub::hub_cache_root(), "/y/hub");
  ::unsetenv("HF_HOME");
  ::unsetenv("XDG_CACHE_HOME");
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(hub::hub_cache_root(), "/home/u/.cache/huggingface/hub");
  ::setenv("HOME", saved_home.c_str(), 1);
}

}  // namespace
}  // namespace pnpovss::hub
