#include "pnpovss/serve/peer.h"

#include <arpa/inet.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>
#include <system_error>
#include <vector>

namespace pnpovss::serve {
namespace {

// The numeric address and port of the peer of socket `fd`; false when it is not a connected
// IP socket.
bool peer_of(int fd, std::string& address, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    if (!inet_ntop(AF_INET, &in->sin_addr, text, sizeof text)) return false;
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (!inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text)) return false;
    port = ntohs(in6->sin6_port);
  } else {
    return false;
  }
  address = text;
  return true;
}

// This process's open descriptors (from /proc; without it, the first 1024).
std::vector<int> open_descriptors() {
  std::vector<int> fds;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) fds.push_back(std::stoi(name));
  }
  if (fds.empty())
    for (int fd = 0; fd < 1024; ++fd) fds.push_back(fd);
  return fds;
}

}  // namespace

PeerWatch::PeerWatch(const std::string& address, int port) {
  for (int fd : open_descriptors()) {
    std::string a;
    int p = 0;
    if (peer_of(fd, a, p) && p == port && a == address) {
      fd_ = fd;
      return;
    }
  }
}

bool PeerWatch::gone() const {
  if (fd_ < 0) return false;
  // POLLRDHUP: the client closed its end, even when bytes it sent are still unread.
  pollfd p{fd_, POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace pnpovss::serve
