// SPDX-License-Identifier: MIT
// Shared by the proxy tests: loopback sockets the test drives itself, some XMPP traffic, and
// the Rig (`client` talks to the proxy, `server` is the connection the proxy opened to a
// listener standing in for ejabberd). Every wait is bounded by poll() with a generous timeout.
#pragma once

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "mpotr/store/unique_fd.h"
#include "support/fault_proxy.h"

namespace mpotr::test::rig {

using namespace std::chrono_literals;
using mpotr::store::UniqueFd;

inline constexpr auto kTimeout = 2000ms;

// ---- Socket helpers ------------------------------------------------------------------------

inline UniqueFd listen_loopback(std::uint16_t& port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0);
  REQUIRE(::listen(fd.get(), 8) == 0);
  REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  port = ntohs(addr.sin_port);
  return fd;
}

inline UniqueFd connect_loopback(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

inline UniqueFd accept_within(int listener) {
  pollfd p{listener, POLLIN, 0};
  REQUIRE(::poll(&p, 1, static_cast<int>(kTimeout.count())) == 1);
  UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(fd.valid());
  return fd;
}

inline void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    REQUIRE(n > 0);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads until `done(received)`, the peer closes, or kTimeout passes.
inline std::string read_until(int fd, const std::function<bool(const std::string&)>& done) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (!done(got)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

inline std::string read_bytes(int fd, std::size_t n) {
  return read_until(fd, [n](const std::string& got) { return got.size() >= n; });
}

inline std::string read_through(int fd, std::string_view marker) {
  return read_until(
      fd, [marker](const std::string& got) { return got.find(marker) != std::string::npos; });
}

// True when the peer's close (FIN or RST) shows within kTimeout; data before it is skipped.
inline bool closed_within(int fd) {
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
  return false;
}

inline bool silent_for(int fd, std::chrono::milliseconds how_long) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(how_long.count())) == 0;
}

// ---- XMPP traffic --------------------------------------------------------------------------

inline const std::string kClientHeader =
    "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
inline const std::string kServerHeader =
    "<?xml version='1.0'?>\n<stream:stream id='s1' from='localhost' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

// A groupchat message; with `mpotr`, it carries a payload element in the urn:mpotr: namespace.
inline std::string message(int n, bool mpotr = true) {
  const std::string id = std::to_string(n);
  std::string s = "<message to='room@conference.localhost' type='groupchat' id='m" + id + "'>";
  if (mpotr) {
    s +=
        "<body>[mpotr]</body><mpotr xmlns='urn:mpotr:2'>QUJDREVGR0hJSktMTU5PUFFS" + id + "</mpotr>";
  } else {
    s += "<body>plain " + id + "</body>";
  }
  return s + "</message>";
}

inline const std::string kSentinel = "<iq type='get' id='sentinel'><ping xmlns='urn:xmpp:ping'/></iq>";

// A proxy between a test-driven client socket and a test-driven fake server socket.
struct Rig {
  explicit Rig(std::uint64_t seed = 1)
      : listener(listen_loopback(server_port)),
        proxy("127.0.0.1", server_port, seed),
        client(connect_loopback(proxy.port())),
        server(accept_within(listener.get())) {}

  // Both sides open their streams, so stanzas follow at depth 1.
  void open_streams() {
    send_all(client.get(), kClientHeader);
    REQUIRE(read_bytes(server.get(), kClientHeader.size()) == kClientHeader);
    send_all(server.get(), kServerHeader);
    REQUIRE(read_bytes(client.get(), kServerHeader.size()) == kServerHeader);
  }

  std::uint16_t server_port = 0;
  UniqueFd listener;
  FaultProxy proxy;
  UniqueFd client;
  UniqueFd server;
};

inline constexpr std::size_t kUp = index(Direction::ToServer);
inline constexpr std::size_t kDown = index(Direction::ToClient);

}  // namespace mpotr::test::rig
