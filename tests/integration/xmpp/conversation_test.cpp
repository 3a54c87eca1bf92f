// SPDX-License-Identifier: MIT
// mpOTR through a real ejabberd on loopback: the in-process client (MucClient + RoomHost +
// engine) in real MUC rooms.
#include <catch2/catch.hpp>

#include "support/testserver.h"
#include "support/xmpp_room.h"

using namespace mpotr;
using namespace mpotr::test;

namespace {

const std::string kRoom = "chat@conference.localhost";

std::vector<std::pair<std::string, std::string>> users(std::initializer_list<const char*> nicks) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* n : nicks) {
    out.emplace_back(n, std::string("pw-") + n);
  }
  return out;
}

XmppRoomOptions options_for(const TestServer& server) {
  XmppRoomOptions o;
  o.port = server.c2s_port();
  return o;
}

void require_secure(XmppRooms& rooms, const std::vector<std::string>& nicks, TimeMs timeout = 15000) {
  const bool ok = rooms.run_until([&] { return rooms.secure_together(nicks, kRoom); }, timeout);
  if (!ok) {
    for (const auto& n : nicks) {
      UNSCOPED_INFO(rooms.dump(rooms.get(n, kRoom)));
    }
  }
  REQUIRE(ok);
}

}  // namespace

TEST_CASE("xmpp: three members set up, chat, confirm, and one leaves with a consistent transcript",
          "[integration][xmpp]") {
  TestServer server;
  server.register_users(users({"alice", "bob", "carol"}));
  server.create_rooms({"chat"});
  XmppRooms rooms(options_for(server));
  for (const char* n : {"alice", "bob", "carol"}) {
    rooms.start(rooms.add(n, kRoom));
  }
  require_secure(rooms, {"alice", "bob", "carol"});

  const std::vector<std::pair<std::string, std::string>> script = {
      {"alice", "hello from alice"}, {"bob", "bob here"}, {"carol", "carol too"},
      {"alice", "second line"},      {"bob", "ünïcödé ✓"}, {"carol", "last one"},
  };
  for (const auto& [who, text] : script) {
    rooms.get(who, kRoom).client->send_text(text, XmppRooms::now_ms());
    rooms.step(0);
  }
  auto all_delivered = [&] {
    for (const char* reader : {"alice", "bob", "carol"}) {
      for (const char* author : {"alice", "bob", "carol"}) {
        if (std::string(reader) == author) continue;
        std::vector<std::string> want;
        for (const auto& [who, text] : script) {
          if (who == author) want.push_back(text);
        }
        if (rooms.messages_from(rooms.get(reader, kRoom), author) != want) return false;
      }
    }
    return true;
  };
  REQUIRE(rooms.run_until(all_delivered, 10000));
  // Every message reaches full confirmation (heartbeats carry the acknowledgements).
  auto all_confirmed = [&] {
    for (const char* n : {"alice", "bob", "carol"}) {
      const auto& sent = rooms.get(n, kRoom).client->host().sent();
      if (sent.size() != 2) return false;
      for (const auto& s : sent) {
        if (!s.fully_confirmed) return false;
      }
    }
    return true;
  };
  REQUIRE(rooms.run_until(all_confirmed, 15000));

  // carol leaves: transcripts are compared, her key is published and checked by the others,
  // and alice and bob re-key.
  XmppMember& carol = rooms.get("carol", kRoom);
  carol.client->leave(XmppRooms::now_ms());
  REQUIRE(rooms.run_until([&] { return carol.client->state() == transport::ClientState::Closed; }, 20000));
  CHECK(rooms.count(carol, "transcript_consistent") == 1);
  CHECK(rooms.count(carol, "key_published") == 1);
  require_secure(rooms, {"alice", "bob"});
  for (const char* n : {"alice", "bob"}) {
    XmppMember& m = rooms.get(n, kRoom);
    REQUIRE(rooms.run_until([&] { return rooms.count(m, "peer_key_published") >= 2; }, 20000));
    CHECK(rooms.count(m, "transcript_consistent") >= 1);
    INFO(rooms.dump(m));
    for (const auto& n2 : m.notices) {
      CHECK(n2.severity != transport::Severity::Alert);
    }
  }
  // The published key is the one carol signed with.
  CHECK(rooms.count(carol, "transcript_mismatch") == 0);
}
