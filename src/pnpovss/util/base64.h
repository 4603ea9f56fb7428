// Base64 (RFC 4648, standard alphabet, '=' padding): images travel inside JSON this way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pnpovss::util {

std::string base64_encode(const uint8_t* data, size_t size);
inline std::string base64_encode(const std::vector<uint8_t>& bytes) { return base64_encode(bytes.data(), bytes.size()); }

// The bytes of `text`; whitespace (line breaks of wrapped base64) is skipped, padding may be
// left out. Throws pnpovss::InvalidArgument for any other character or a length no encoder
// writes.
std::vector<uint8_t> base64_decode(const std::string& text);

}  // namespace pnpovss::util
