// SPDX-License-Identifier: MIT
// Where an XMPP client connects (RFC 6120 §3.2): the _xmpp-client._tcp SRV records of the
// JID's domain, else the domain itself on port 5222. Lookups block, as libstrophe's did; they
// run once per connection attempt.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mpotr/result.h"

namespace mpotr::transport {

inline constexpr std::uint16_t kXmppClientPort = 5222;

struct ServerTarget {
  std::string host;
  std::uint16_t port = 0;
  bool operator==(const ServerTarget&) const = default;
};

struct SocketAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string label;  // "host:port" for messages
};

// The SRV targets in a DNS answer, in the order to try them: by priority, then by weight, the
// heavier first (RFC 2782 asks for a weighted random pick; a fixed order keeps reconnections
// predictable). nullopt: the answer cannot be parsed or holds no usable record (fall back to
// the domain). An empty list: a single target "." says the domain offers no XMPP service.
std::optional<std::vector<ServerTarget>> parse_srv_answer(std::span<const unsigned char> answer);

// host non-empty: just host:port (port 0: 5222). Otherwise the SRV targets of `domain`, or
// domain:5222 (port 0) / domain:port when there are none.
// Errors: InvalidArgument when the domain says it offers no XMPP service.
Result<std::vector<ServerTarget>> xmpp_client_targets(const std::string& domain, const std::string& host,
                                                      std::uint16_t port);

// Every address of every target, in order. Errors: InvalidArgument when none resolves.
Result<std::vector<SocketAddress>> resolve_targets(const std::vector<ServerTarget>& targets);

}  // namespace mpotr::transport
