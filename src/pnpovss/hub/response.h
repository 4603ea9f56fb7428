// Reading what a hub server answers, apart from the transfer itself so that it can be checked
// (and fuzzed) without a network: the header lines of a response, and the description of one
// file in the headers of its HEAD response. Nothing a server sends is trusted: the commit and
// ETag become file names in the cache, so only plain names are accepted.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace pnpovss::hub {

// Adds one raw header line as received ("Name: value\r\n") to `headers`, the name lower-cased
// and both sides trimmed. A status line ("HTTP/...") clears them: after a redirect only the
// headers of the last response count. Other lines (the blank end of the headers) are ignored.
void add_header_line(const std::string& line, std::map<std::string, std::string>& headers);

// What the HEAD response of a file says about it.
struct FileHeaders {
  std::string commit;  // X-Repo-Commit
  std::string etag;    // X-Linked-Etag (files in Git LFS) or ETag, unquoted, without W/
  int64_t size = -1;   // X-Linked-Size or Content-Length; -1 when neither is a plain number
};

// The file's description in `headers` (names lower-case, as add_header_line keeps them);
// `known_commit` stands in for a missing X-Repo-Commit. Nothing when the commit or the ETag is
// missing or not a plain name (letters, digits, '-' and '_', at most 128).
std::optional<FileHeaders> read_file_headers(const std::map<std::string, std::string>& headers,
                                             const std::optional<std::string>& known_commit);

}  // namespace pnpovss::hub
