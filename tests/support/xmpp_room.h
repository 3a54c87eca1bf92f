// SPDX-License-Identifier: MIT
// Many mpOTR clients in one process, each with its own libstrophe connection to a real
// server, sharing one event loop: for integration tests and the XMPP benchmark.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mpotr/transport/xmpp_client.h"

namespace mpotr::test {

struct XmppMember {
  std::string nick;
  std::string room;
  std::unique_ptr<Rng> rng;
  std::unique_ptr<TrustStore> trust;
  std::unique_ptr<transport::MucClient> client;
  std::vector<transport::Notice> notices;  // what the client reported, in order (see keep_all_notices)
  std::map<std::string, std::size_t, std::less<>> counts;  // notices per kind, always kept
};

struct XmppRoomOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  transport::TlsPolicy tls{transport::TlsMode::Disabled, {}, {}, false};
  Timeouts timeouts{};
  TimeMs roster_settle_ms = 0;
  bool reconnect = true;
  bool deterministic_keys = false;  // seeded RNGs: reproducible identities (not nonces' timing)
  // Load tests: keep only counts, plus notices of Warning severity and above (memory).
  bool keep_all_notices = true;
};

class XmppRooms {
 public:
  explicit XmppRooms(XmppRoomOptions options);
  ~XmppRooms();

  // Adds a client for user `nick` (password "pw-<nick>", JID nick@localhost) in `room`
  // (bare JID). port_override: connect through a proxy instead of the server.
  XmppMember& add(const std::string& nick, const std::string& room, std::uint16_t port_override = 0);
  XmppMember& get(const std::string& nick, const std::string& room = {});
  std::vector<std::unique_ptr<XmppMember>>& members() { return m_members; }
  void start(XmppMember& m);

  static TimeMs now_ms();
  // One pass: libstrophe I/O (waiting at most wait_ms), then every client's pump().
  void step(TimeMs wait_ms = 2);
  // Steps until pred() holds or timeout_ms passes; returns pred().
  bool run_until(const std::function<bool()>& pred, TimeMs timeout_ms);
  void run_for(TimeMs ms);

  // Everyone in `nicks` (same room) has one established session whose members are exactly `nicks`.
  bool secure_together(const std::vector<std::string>& nicks, const std::string& room = {});
  std::optional<Hash32> session_of(const XmppMember& m) const;

  std::size_t count(const XmppMember& m, std::string_view kind) const;
  std::vector<std::string> messages_from(const XmppMember& m, const std::string& author) const;
  // Notices at or above Warning severity, as "kind: text" lines (for test failure output).
  std::string problems(const XmppMember& m) const;
  std::string dump(const XmppMember& m) const;

  transport::XmppLoop& loop() { return m_loop; }

 private:
  XmppRoomOptions m_options;
  transport::XmppLoop m_loop;
  std::vector<std::unique_ptr<XmppMember>> m_members;
};

}  // namespace mpotr::test
