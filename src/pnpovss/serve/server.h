// `pnp-ovss serve`'s HTTP server (docs/server.md): the routes of the API and the page, keys,
// limits and errors, over one loaded model. The model runs through the Scheduler, which feeds
// the same runner as `segment`; the server holds no method code of its own.
//
//   Server server(model, settings, {batch, workers}, config, identity);
//   int port = server.bind();   // throws Error when it cannot listen
//   server.run();               // until stop(); answers what it has before returning
#pragma once

#include <memory>
#include <string>

#include "pnpovss/run/record.h"
#include "pnpovss/serve/config.h"

namespace pnpovss::serve {

class Server {
 public:
  // `model` must outlive the server; `settings` are what a request without its own gets;
  // `identity` names model, device, settings and version in every record.
  Server(const segment::Segmenter& model, const MethodSettings& settings, run::RunOptions options,
         const ServeConfig& config, run::RunIdentity identity);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Listens on the configured host and port (0: a free one); returns the port.
  int bind();
  // Serves until stop(), then answers the requests already taken and returns.
  void run();
  // Stops accepting; safe from any thread, and more than once.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pnpovss::serve
