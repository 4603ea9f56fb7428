// Whether the client of a request is still connected. The HTTP library hands a handler the
// peer's address but not its socket, so the socket is found by that address among this
// process's open sockets (getpeername), once per request; then poll() (POLLRDHUP) tells
// whether the client closed its end. Used while a request waits for the model, so that a
// client that gave up frees its place in the queue.
#pragma once

#include <string>

namespace pnpovss::serve {

class PeerWatch {
 public:
  // The socket connected to `address`:`port` (IPv4 or IPv6); none found leaves the watch
  // blind (gone() stays false).
  PeerWatch(const std::string& address, int port);
  // True once the peer has closed the connection or it broke.
  bool gone() const;

 private:
  int fd_ = -1;
};

}  // namespace pnpovss::serve
