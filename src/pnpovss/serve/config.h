// What `pnp-ovss serve` was told: where to listen and the limits that keep one client from
// taking the server down.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pnpovss::serve {

struct Limits {
  size_t max_queue = 16;                         // requests waiting for the model
  size_t max_upload_bytes = size_t{20} << 20;    // request body
  int64_t max_pixels = 40'000'000;               // width x height of an image
  double timeout_seconds = 300;                  // from arrival to answer
};

struct ServeConfig {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port
  Limits limits;
  std::string api_key;              // empty: no key needed
};

}  // namespace pnpovss::serve
