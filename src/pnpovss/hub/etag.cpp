#include "pnpovss/hub/etag.h"

#include "pnpovss/util/hash.h"

namespace pnpovss::hub {
namespace {

bool all_hex(const std::string& s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

EtagKind etag_kind(const std::string& etag) {
  if (etag.size() == 64 && all_hex(etag)) return EtagKind::Sha256;
  if (etag.size() == 40 && all_hex(etag)) return EtagKind::GitSha1;
  return EtagKind::Opaque;
}

std::string file_etag_hash(const std::string& path, EtagKind kind) {
  switch (kind) {
    case EtagKind::Sha256:
      return util::file_sha256(path);
    case EtagKind::GitSha1:
      return util::file_git_blob_sha1(path);
    case EtagKind::Opaque:
      break;
  }
  return "";
}

}  // namespace pnpovss::hub
