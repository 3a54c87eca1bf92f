// SPDX-License-Identifier: MIT
// Re-keying on membership changes through a real ejabberd: joins, concurrent joins, leaves,
// and a member whose connection drops and comes back.
#include <catch2/catch.hpp>

#include "support/testserver.h"
#include "support/xmpp_room.h"

using namespace mpotr;
using namespace mpotr::test;

namespace {

const std::string kRoom = "team@conference.localhost";

void require_secure(XmppRooms& rooms, const std::vector<std::string>& nicks, TimeMs timeout = 20000) {
  const bool ok = rooms.run_until([&] { return rooms.secure_together(nicks, kRoom); }, timeout);
  if (!ok) {
    for (auto& m : rooms.members()) {
      UNSCOPED_INFO(rooms.dump(*m));
    }
  }
  REQUIRE(ok);
}

void require_chat(XmppRooms& rooms, const std::string& author, const std::string& text,
                  const std::vector<std::string>& readers) {
  rooms.get(author, kRoom).client->send_text(text, XmppRooms::now_ms());
  const bool ok = rooms.run_until(
      [&] {
        for (const auto& r : readers) {
          const auto got = rooms.messages_from(rooms.get(r, kRoom), author);
          if (got.empty() || got.back() != text) return false;
        }
        return true;
      },
      10000);
  REQUIRE(ok);
}

struct Fixture {
  TestServer server;
  XmppRooms rooms;
  Fixture() : rooms(make_options()) {
    std::vector<std::pair<std::string, std::string>> users;
    for (const char* n : {"alice", "bob", "carol", "dave", "erin"}) {
      users.emplace_back(n, std::string("pw-") + n);
    }
    server.register_users(users);
    server.create_rooms({"team"});
    for (const char* n : {"alice", "bob", "carol", "dave", "erin"}) {
      rooms.add(n, kRoom);
    }
  }
  XmppRoomOptions make_options() const {
    XmppRoomOptions o;
    o.port = server.c2s_port();
    return o;
  }
};

}  // namespace

TEST_CASE("xmpp: a join re-keys, two joins at once converge, a leave re-keys", "[integration][xmpp]") {
  Fixture f;
  auto& rooms = f.rooms;
  rooms.start(rooms.get("alice"));
  rooms.start(rooms.get("bob"));
  require_secure(rooms, {"alice", "bob"});
  const auto first = *rooms.session_of(rooms.get("alice"));

  rooms.start(rooms.get("carol"));
  require_secure(rooms, {"alice", "bob", "carol"});
  const auto second = *rooms.session_of(rooms.get("alice"));
  CHECK(second != first);
  require_chat(rooms, "carol", "carol is in", {"alice", "bob"});

  // dave and erin join in the same instant: presence arrives interleaved at everyone.
  rooms.start(rooms.get("dave"));
  rooms.start(rooms.get("erin"));
  require_secure(rooms, {"alice", "bob", "carol", "dave", "erin"});
  require_chat(rooms, "erin", "five of us", {"alice", "bob", "carol", "dave"});

  rooms.get("bob").client->leave(XmppRooms::now_ms());
  require_secure(rooms, {"alice", "carol", "dave", "erin"});
  REQUIRE(rooms.run_until([&] { return rooms.get("bob").client->state() == transport::ClientState::Closed; }, 20000));
  CHECK(rooms.count(rooms.get("bob"), "key_published") >= 1);
  require_chat(rooms, "alice", "bob has gone", {"carol", "dave", "erin"});
  for (const char* n : {"alice", "carol", "dave", "erin"}) {
    INFO(rooms.dump(rooms.get(n)));
    CHECK(rooms.messages_from(rooms.get(n), "bob").empty());  // bob never sent anything
  }
}

TEST_CASE("xmpp: a member whose connection drops is re-keyed out, reconnects and is re-keyed in",
          "[integration][xmpp]") {
  Fixture f;
  auto& rooms = f.rooms;
  for (const char* n : {"alice", "bob", "carol"}) {
    rooms.start(rooms.get(n));
  }
  require_secure(rooms, {"alice", "bob", "carol"});
  XmppMember& carol = rooms.get("carol");
  carol.client->drop_connection();
  // The server notices the dead stream and sends carol's unavailable presence; alice and bob
  // re-key without her. carol reconnects (backoff 250 ms), joins again with a fresh engine,
  // and everyone re-keys with her.
  REQUIRE(rooms.run_until([&] { return rooms.count(carol, "connection_lost") >= 1; }, 10000));
  require_secure(rooms, {"alice", "bob", "carol"}, 30000);
  CHECK(carol.client->stats().reconnects >= 1);
  CHECK(rooms.count(carol, "disconnected") >= 1);
  require_chat(rooms, "carol", "back again", {"alice", "bob"});
  require_chat(rooms, "alice", "welcome back", {"bob", "carol"});
}
