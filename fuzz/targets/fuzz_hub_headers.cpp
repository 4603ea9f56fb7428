// What a hub server answers to the HEAD request of a file (hub/response): the raw header lines
// as libcurl hands them over, one by one, and the commit, ETag and size read from them, whose
// commit and ETag become file names in the cache. Also the hub id parser (hub/cache) on the
// first line. Input: the header block, lines ending in "\n" (or "\r\n").
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>

#include "common.h"
#include "pnpovss/hub/cache.h"
#include "pnpovss/hub/etag.h"
#include "pnpovss/hub/response.h"

namespace {

bool plain(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pnpovss;
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> headers;
  fuzz::accepts([&] {
    size_t start = 0;
    while (start < text.size()) {
      const size_t end = std::min(text.find('\n', start), text.size());
      hub::add_header_line(text.substr(start, end + 1 - start), headers);
      start = end + 1;
    }
    for (const auto& [name, value] : headers)
      fuzz::expect(name.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos, "a header name not lower-cased");
    for (const auto& known : {std::optional<std::string>(), std::optional<std::string>("0123456789abcdef")}) {
      const std::optional<hub::FileHeaders> file = hub::read_file_headers(headers, known);
      if (!file) continue;
      // Both become file names in the cache: nothing that could leave its folder.
      fuzz::expect(plain(file->commit) && plain(file->etag), "a commit or ETag that is not a plain name");
      fuzz::expect(file->size >= -1, "a negative size");
      (void)hub::etag_kind(file->etag);
    }
  });
  const std::string first_line = text.substr(0, text.find('\n'));
  const std::optional<hub::HubId> id = hub::parse_hub_id(first_line);
  if (id) {
    fuzz::expect(id->repo.find("..") == std::string::npos && id->revision.find("..") == std::string::npos,
                 "a hub id with '..'");
    fuzz::expect(hub::parse_hub_id(id->text()).has_value(), "the text of a hub id does not parse");
  }
  return 0;
}
