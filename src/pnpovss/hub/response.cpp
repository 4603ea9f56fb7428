#include "pnpovss/hub/response.h"

#include <cctype>
#include <cstdlib>

#include "pnpovss/util/ascii.h"

namespace pnpovss::hub {
namespace {

// ETags come quoted and sometimes weak: W/"abc" -> abc.
std::string normalize_etag(std::string e) {
  e = util::trim_ascii(e);
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

std::string header(const std::map<std::string, std::string>& headers, const char* name) {
  const auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

int64_t to_size(const std::string& s) {
  if (s.empty()) return -1;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  return end && *end == '\0' && v >= 0 ? static_cast<int64_t>(v) : -1;
}

// Letters, digits, '-' and '_' (hashes and commit ids), at most 128.
bool plain_name(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  return true;
}

}  // namespace

void add_header_line(const std::string& line, std::map<std::string, std::string>& headers) {
  if (line.rfind("HTTP/", 0) == 0) {
    headers.clear();
  } else if (const auto colon = line.find(':'); colon != std::string::npos) {
    headers[util::lower_ascii(util::trim_ascii(line.substr(0, colon)))] = util::trim_ascii(line.substr(colon + 1));
  }
}

std::optional<FileHeaders> read_file_headers(const std::map<std::string, std::string>& headers,
                                             const std::optional<std::string>& known_commit) {
  FileHeaders file;
  file.commit = util::trim_ascii(header(headers, "x-repo-commit"));
  if (file.commit.empty() && known_commit) file.commit = *known_commit;
  file.etag = normalize_etag(header(headers, "x-linked-etag"));
  if (file.etag.empty()) file.etag = normalize_etag(header(headers, "etag"));
  file.size = to_size(header(headers, "x-linked-size"));
  if (file.size < 0) file.size = to_size(header(headers, "content-length"));
  if (!plain_name(file.commit) || !plain_name(file.etag)) return std::nullopt;
  return file;
}

}  // namespace pnpovss::hub
