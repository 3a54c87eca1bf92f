// SPDX-License-Identifier: MIT
// Load through one real ejabberd: many rooms of members chatting at once, every client in this
// process. Sizes come from the environment so CI and a developer can choose:
//   MPOTR_LOAD_ROOMS (20), MPOTR_LOAD_MEMBERS (10), MPOTR_LOAD_MESSAGES (1000 sent by each member).
// Asserts: every message decrypted by every other member of its room (0 lost, 0
// undecryptable), no warning or alert anywhere, and a consistent transcript for every member
// when the rooms close.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>

#include "support/testserver.h"
#include "support/xmpp_room.h"

using namespace mpotr;
using namespace mpotr::test;

namespace {

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return static_cast<std::size_t>(std::strtoull(v, nullptr, 10));
}

// Messages in flight per room (sent but not yet delivered to every member): keeps the
// server's queues short, as a room of people would.
constexpr std::size_t kWindow = 20;

}  // namespace

TEST_CASE("load: rooms of members chat through one ejabberd with nothing lost", "[load]") {
  const std::size_t n_rooms = env_size("MPOTR_LOAD_ROOMS", 20);
  const std::size_t n_members = env_size("MPOTR_LOAD_MEMBERS", 10);
  const std::size_t per_member = env_size("MPOTR_LOAD_MESSAGES", 1000);
  REQUIRE(n_members >= 2);
  const std::size_t n_messages = per_member * n_members;  // per room

  TestServer server;
  std::vector<std::pair<std::string, std::string>> users;
  std::vector<std::string> room_names;
  for (std::size_t i = 0; i < n_members; ++i) {
    users.emplace_back("m" + std::to_string(i), "pw-m" + std::to_string(i));
  }
  for (std::size_t r = 0; r < n_rooms; ++r) {
    room_names.push_back("load" + std::to_string(r));
  }
  server.register_users(users);
  server.create_rooms(room_names);

  XmppRoomOptions options;
  options.port = server.c2s_port();
  options.keep_all_notices = false;
  // Under load a heartbeat or confirmation can be late without anything being wrong.
  options.timeouts.confirm = 120'000;
  options.timeouts.gap = 60'000;
  options.timeouts.setup = 120'000;
  XmppRooms rooms(options);
  struct RoomLoad {
    std::string jid;
    std::vector<XmppMember*> members;
    std::size_t sent = 0;
  };
  std::vector<RoomLoad> loads;
  for (const auto& name : room_names) {
    RoomLoad load{name + "@conference.localhost", {}, 0};
    for (const auto& [user, pw] : users) {
      load.members.push_back(&rooms.add(user, load.jid));
    }
    loads.push_back(std::move(load));
  }
  const TimeMs t0 = XmppRooms::now_ms();
  for (auto& m : rooms.members()) {
    rooms.start(*m);
  }
  std::vector<std::string> nicks;
  for (const auto& u : users) nicks.push_back(u.first);
  const bool secure = rooms.run_until(
      [&] {
        for (const auto& l : loads) {
          if (!rooms.secure_together(nicks, l.jid)) return false;
        }
        return true;
      },
      180'000);
  if (!secure) {
    for (auto& m : rooms.members()) UNSCOPED_INFO(m->room << " " << rooms.problems(*m));
  }
  REQUIRE(secure);
  const TimeMs t_secure = XmppRooms::now_ms();

  // Delivered to every member = received by each other member (own echoes are not counted,
  // so each member's count is compared with what the others sent).
  auto received = [&](const XmppMember& m) { return rooms.count(m, "message"); };
  auto sent_by = [&](const XmppMember& m) { return m.client->host().sent().empty() ? 0 : rooms.count(m, "sent"); };
  auto delivered_everywhere = [&](const RoomLoad& l) {
    std::size_t lowest = l.sent;
    for (const XmppMember* m : l.members) {
      lowest = std::min(lowest, received(*m) + sent_by(*m));
    }
    return lowest;
  };
  const bool done = rooms.run_until(
      [&] {
        bool all = true;
        for (auto& l : loads) {
          const std::size_t everywhere = delivered_everywhere(l);
          while (l.sent < n_messages && l.sent - everywhere < kWindow) {
            XmppMember& m = *l.members[l.sent % l.members.size()];
            m.client->send_text("room " + m.room + " message " + std::to_string(l.sent) + " from " + m.nick,
                                XmppRooms::now_ms());
            ++l.sent;
          }
          all = all && everywhere == n_messages;
        }
        return all;
      },
      1'800'000);
  const TimeMs t_chat = XmppRooms::now_ms();
  REQUIRE(done);

  // Close every room: all members leave, which runs the transcript check.
  for (auto& m : rooms.members()) {
    m->client->leave(XmppRooms::now_ms());
  }
  const bool closed = rooms.run_until(
      [&] {
        for (auto& m : rooms.members()) {
          if (m->client->state() != transport::ClientState::Closed) return false;
        }
        return true;
      },
      180'000);
  const TimeMs t_closed = XmppRooms::now_ms();
  REQUIRE(closed);

  std::size_t total_received = 0;
  for (auto& m : rooms.members()) {
    INFO(m->room << " " << m->nick << "\n" << rooms.problems(*m));
    total_received += received(*m);
    CHECK(rooms.count(*m, "transcript_consistent") == 1);
    CHECK(rooms.count(*m, "key_published") == 1);
    for (const char* bad : {"lost", "gap", "tampered", "malformed", "replay", "spoofed", "split_view",
                            "transcript_mismatch", "rejected", "not_sent", "unconfirmed", "overload", "stanza_dropped"}) {
      CHECK(rooms.count(*m, bad) == 0);
    }
  }
  const std::size_t expected = n_rooms * n_messages * (n_members - 1);
  CHECK(total_received == expected);
  std::printf("load: %zu rooms x %zu members x %zu messages each (%zu per room): %zu decryptions; setup %.2f s, chat %.2f s "
              "(%.0f msg/s, %.0f decryptions/s), close %.2f s\n",
              n_rooms, n_members, per_member, n_messages, total_received, (t_secure - t0) / 1000.0, (t_chat - t_secure) / 1000.0,
              n_rooms * n_messages * 1000.0 / static_cast<double>(std::max<TimeMs>(1, t_chat - t_secure)),
              total_received * 1000.0 / static_cast<double>(std::max<TimeMs>(1, t_chat - t_secure)),
              (t_closed - t_chat) / 1000.0);
}
