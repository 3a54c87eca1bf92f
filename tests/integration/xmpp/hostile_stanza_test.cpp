// SPDX-License-Identifier: MIT
// A hostile server, played by bob's fault proxy, sends him stanzas built to hurt an XML parser:
// a million nested elements (libstrophe alone overflows its stack rendering and freeing them)
// and ten megabytes (libstrophe alone reads them 4 KiB per loop turn while no timer runs). bob's
// guard must drop both unread, say so, keep his timers running meanwhile and keep him in the
// room; legitimate large payloads must still pass. Each client talks to ejabberd through its
// own proxy, and no chat line may ever cross the wire readable.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "support/hostile_stanzas.h"
#include "support/proxied_room.h"

using namespace mpotr;
using namespace mpotr::test;
using transport::ClientState;

namespace {

const std::string kRoom = "hostile@conference.localhost";
constexpr std::size_t kTenMb = 10u << 20;
constexpr std::size_t kDown = index(Direction::ToClient);

Timeouts with_heartbeat(TimeMs heartbeat_ms) {
  Timeouts t;
  t.heartbeat = heartbeat_ms;
  return t;
}

struct Hostile : ProxiedRoom {
  explicit Hostile(TimeMs heartbeat_ms = kDefaultHeartbeatMs) : ProxiedRoom("hostile", with_heartbeat(heartbeat_ms)) {}
  bool injected(const std::string& nick) { return proxies[nick]->stats().injections[kDown] >= 1; }
  std::string notice_text(const XmppMember& m, std::string_view kind) {
    for (const auto& n : m.notices) {
      if (n.kind == kind) return n.text;
    }
    return {};
  }
};

// Steps the rooms until pred() holds, recording the largest time between two pump() turns.
struct Turns {
  TimeMs largest_gap = 0;
  std::size_t count = 0;
};
bool run_measured(XmppRooms& rooms, const std::function<bool()>& pred, TimeMs timeout, Turns& turns) {
  const TimeMs deadline = XmppRooms::now_ms() + timeout;
  TimeMs last = XmppRooms::now_ms();
  while (!pred()) {
    if (XmppRooms::now_ms() >= deadline) return false;
    rooms.step(2);  // libstrophe and the guards, then every client's pump()
    const TimeMs now = XmppRooms::now_ms();
    turns.largest_gap = std::max(turns.largest_gap, now - last);
    last = now;
    ++turns.count;
  }
  return true;
}

}  // namespace

TEST_CASE("hostile: a stanza nested a million levels deep is dropped and the room chats on",
          "[integration][xmpp][hostile]") {
  Hostile h;
  XmppMember& bob = h.get("bob");
  h.proxies["bob"]->inject_stream(Direction::ToClient, hostile::nested_stanza(1'000'000, kRoom, "alice"));
  h.require_until([&] { return h.rooms->count(bob, "stanza_dropped") >= 1; }, 60000);
  INFO(h.rooms->dump(bob));
  CHECK(h.notice_text(bob, "stanza_dropped").find("nested deeper than 64 elements") != std::string::npos);
  CHECK(bob.client->state() == ClientState::InRoom);
  CHECK(h.rooms->count(bob, "connection_lost") == 0);
  CHECK(h.rooms->secure_together({"alice", "bob", "carol"}, kRoom));
  h.say("alice", "after the deep stanza");
  h.require_until([&] { return h.has("bob", "alice", "after the deep stanza"); }, 10000);
  CHECK(h.proxies["bob"]->stats().injected_bytes[kDown] > 7'000'000);
}

TEST_CASE("hostile: a 10 MB stanza at full speed is skipped in short turns while lines flow",
          "[integration][xmpp][hostile]") {
  Hostile h;
  XmppMember& bob = h.get("bob");
  const TimeMs t0 = XmppRooms::now_ms();
  h.proxies["bob"]->inject_stream(Direction::ToClient, hostile::sized_stanza(kTenMb, kRoom, "alice"));
  h.say("alice", "sent while ten megabytes stream to bob");
  Turns turns;
  const bool dropped = run_measured(*h.rooms, [&] { return h.rooms->count(bob, "stanza_dropped") >= 1; }, 60000, turns);
  const TimeMs took = XmppRooms::now_ms() - t0;
  std::printf("hostile: 10 MB stanza skipped by bob's guard in %.3f s over %zu loop turns; largest gap between two "
              "pump() turns: %llu ms\n",
              static_cast<double>(took) / 1000.0, turns.count, static_cast<unsigned long long>(turns.largest_gap));
  INFO(h.rooms->dump(bob));
  REQUIRE(dropped);
  CHECK(h.notice_text(bob, "stanza_dropped").find("larger than 256 KiB (10485760 bytes)") != std::string::npos);
  // Generous for a loaded machine: each turn moves at most 512 KiB per direction.
  CHECK(turns.largest_gap < 500);
  h.require_until([&] { return h.has("bob", "alice", "sent while ten megabytes stream to bob"); }, 10000);
  CHECK(bob.client->state() == ClientState::InRoom);
  CHECK(h.rooms->count(bob, "connection_lost") == 0);
}

TEST_CASE("hostile: while a slow 10 MB stanza streams, bob's timers run and his lines go out",
          "[integration][xmpp][hostile]") {
  Hostile h(300);  // bob acknowledges what he received after 300 ms without sending
  XmppMember& alice = h.get("alice");
  XmppMember& bob = h.get("bob");
  h.say("alice", "before the big stanza");
  h.require_until([&] { return h.has("bob", "alice", "before the big stanza"); }, 10000);
  const std::size_t alice_seen = alice.notices.size();
  // A slow link: 64 KiB every 20 ms, about 3.2 s for the whole stanza. The generator runs on
  // bob's proxy thread, so sleeping there slows only bob's stream.
  h.proxies["bob"]->inject_stream(Direction::ToClient,
                                  [inner = hostile::sized_stanza(kTenMb, kRoom, "alice")]() mutable {
                                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                                    return inner();
                                  });
  Turns turns;
  // bob's heartbeat timer acknowledges alice's line: alice sees it while his stream is stuck.
  const auto bob_confirmed = [&] {
    for (std::size_t i = alice_seen; i < alice.notices.size(); ++i) {
      const auto& n = alice.notices[i];
      if (n.kind == "confirmed" && n.text.starts_with("bob confirmed")) return true;
    }
    return false;
  };
  REQUIRE(run_measured(*h.rooms, bob_confirmed, 10000, turns));
  CHECK_FALSE(h.injected("bob"));  // the stanza was still streaming
  h.say("bob", "bob types during the transfer");
  h.say("alice", "alice types during the transfer");
  REQUIRE(run_measured(*h.rooms, [&] { return h.has("carol", "bob", "bob types during the transfer"); }, 10000, turns));
  CHECK_FALSE(h.injected("bob"));
  REQUIRE(run_measured(*h.rooms, [&] { return h.rooms->count(bob, "stanza_dropped") >= 1; }, 60000, turns));
  std::printf("hostile: slow 10 MB stanza, %zu loop turns; largest gap between two pump() turns: %llu ms\n", turns.count,
              static_cast<unsigned long long>(turns.largest_gap));
  CHECK(turns.largest_gap < 500);
  // What alice said meanwhile waited behind the stanza in bob's stream, and arrives now.
  h.require_until([&] { return h.has("bob", "alice", "alice types during the transfer"); }, 10000);
  CHECK(h.rooms->count(bob, "connection_lost") == 0);
}

TEST_CASE("hostile: legitimate large payloads pass the guard", "[integration][xmpp][hostile]") {
  Hostile h;
  XmppMember& bob = h.get("bob");
  std::string line(kMaxTextLen, 'L');
  line.replace(0, 14, "sixteen KiB: ");
  h.say("alice", line);
  h.require_until([&] { return h.has("bob", "alice", line) && h.has("carol", "alice", line); }, 10000);
  // The largest payload text a member may send (64 KiB of wire message, 87,384 characters of
  // base64): the guard passes it and the engine judges it.
  const std::uint64_t before = bob.client->stats().payloads_received;
  h.proxies["bob"]->inject(Direction::ToClient,
                           hostile::payload_message(kRoom, "alice", std::string(87'380, 'A') + "AA==", "largest"));
  h.require_until([&] { return bob.client->stats().payloads_received > before; }, 10000);
  CHECK(h.rooms->count(bob, "stanza_dropped") == 0);
  CHECK(bob.client->state() == ClientState::InRoom);
}
