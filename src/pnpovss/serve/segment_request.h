// What a POST /v1/segment asks for, read from either of its two forms (docs/server.md):
// multipart/form-data (image file, classes, settings, maps fields) or a JSON object (image as
// base64). Only the request's shape is checked here; the image, the classes and the settings
// are checked where they are used, so that each error gets its own status.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace httplib {
struct Request;
}

namespace pnpovss::serve {

struct SegmentRequest {
  std::vector<uint8_t> image;        // the encoded file
  std::string image_name = "upload";  // the upload's file name, for the record
  std::vector<std::string> classes;  // in the given order
  nlohmann::json settings = nlohmann::json::object();  // overrides, named as the record's settings
  bool maps = false;                 // add the explanation maps
  bool png_only = false;             // Accept: image/png: the label PNG alone
};

// Throws HttpError 400 for a malformed request (a missing field, bad JSON or base64) and 422
// for a class list that is empty or has an empty name.
SegmentRequest parse_segment_request(const httplib::Request& request);

}  // namespace pnpovss::serve
