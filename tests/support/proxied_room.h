// SPDX-License-Identifier: MIT
// alice, bob and carol in one room of a private ejabberd, each through its own FaultProxy (the
// hostile server of the integration tests), secure together before the test starts. Whatever
// the test does, no line it sent may ever cross the wire readable: the destructor scans every
// recorded byte in both directions.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/fault_proxy.h"
#include "support/testserver.h"
#include "support/xmpp_room.h"

namespace mpotr::test {

struct ProxiedRoom {
  TestServer server;
  std::string room;  // bare JID
  std::map<std::string, std::unique_ptr<FaultProxy>> proxies;
  std::unique_ptr<XmppRooms> rooms;
  std::vector<std::string> plaintexts;

  // `name`: the room's local part on conference.localhost.
  explicit ProxiedRoom(const std::string& name, Timeouts timeouts = {}, std::uint64_t seed = 1)
      : room(name + "@conference.localhost") {
    server.register_users({{"alice", "pw-alice"}, {"bob", "pw-bob"}, {"carol", "pw-carol"}});
    server.create_rooms({name});
    XmppRoomOptions o;
    o.port = server.c2s_port();
    o.timeouts = timeouts;
    rooms = std::make_unique<XmppRooms>(o);
    for (const char* n : {"alice", "bob", "carol"}) {
      proxies[n] = std::make_unique<FaultProxy>("127.0.0.1", server.c2s_port(), seed++);
      rooms->start(rooms->add(n, room, proxies[n]->port()));
    }
    require_until([&] { return rooms->secure_together({"alice", "bob", "carol"}, room); }, 20000);
  }
  ~ProxiedRoom() {
    for (const auto& [nick, proxy] : proxies) {
      for (Direction d : {Direction::ToServer, Direction::ToClient}) {
        const std::string wire = proxy->recorded(d);
        for (const auto& p : plaintexts) {
          CHECK(wire.find(p) == std::string::npos);
        }
      }
      CHECK(proxy->stats().last_error.empty());
      CHECK_FALSE(proxy->stats().raw_passthrough);  // every stanza was seen, none skipped
    }
  }
  ProxiedRoom(const ProxiedRoom&) = delete;
  ProxiedRoom& operator=(const ProxiedRoom&) = delete;

  XmppMember& get(const std::string& nick) { return rooms->get(nick, room); }
  // REQUIRE that pred() becomes true in time; on failure, show what every member saw.
  void require_until(const std::function<bool()>& pred, TimeMs timeout) {
    const bool ok = rooms->run_until(pred, timeout);
    if (!ok) {
      for (auto& m : rooms->members()) UNSCOPED_INFO(rooms->dump(*m));
    }
    REQUIRE(ok);
  }
  void say(const std::string& who, const std::string& text) {
    plaintexts.push_back(text);
    get(who).client->send_text(text, XmppRooms::now_ms());
    rooms->step(0);
  }
  // `who` was shown `text` as a line of `author`.
  bool has(const std::string& who, const std::string& author, const std::string& text) {
    const auto got = rooms->messages_from(get(who), author);
    return std::find(got.begin(), got.end(), text) != got.end();
  }
};

}  // namespace mpotr::test
