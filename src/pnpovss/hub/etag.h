// The hub's promise about a file's content, its ETag: the SHA-256 of the content for files
// stored with Git LFS (the weights), the git blob id for the others (configs, vocabularies), or
// something opaque. Downloads are checked against it before they are moved into place.
#pragma once

#include <string>

namespace pnpovss::hub {

enum class EtagKind { Sha256, GitSha1, Opaque };
EtagKind etag_kind(const std::string& etag);

// The hash of the file at `path` in the form of `kind` (empty for Opaque). Throws
// pnpovss::Error when the file cannot be read.
std::string file_etag_hash(const std::string& path, EtagKind kind);

}  // namespace pnpovss::hub
