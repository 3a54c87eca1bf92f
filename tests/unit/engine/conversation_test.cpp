// SPDX-License-Identifier: MIT
// End-to-end behaviour of the engine over a well-behaved in-memory room.
#include <catch2/catch.hpp>

#include "support/room.h"

using namespace mpotr;
using mpotr::test::Room;

namespace {
std::vector<std::string> texts_from(const Room& room, const test::SimMember& m, std::string_view author) {
  std::vector<std::string> out;
  for (const auto& e : room.events_of(m, EventKind::MessageReceived)) {
    if (e.nick == author) {
      out.push_back(e.text);
    }
  }
  return out;
}
}  // namespace

TEST_CASE("three members set up a session and agree on it", "[engine]") {
  Room room(3);
  room.run();
  REQUIRE(room.all_established());
  const auto sid = room.member(0).engine->session()->session_id;
  for (auto& m : room.members()) {
    CAPTURE(m.nick);
    REQUIRE(m.errors.empty());
    REQUIRE(m.engine->session()->session_id == sid);
    REQUIRE(m.engine->session()->members.size() == 3);
    REQUIRE(room.events_of(m, EventKind::SessionEstablished).size() == 1);
  }
  // Offer, KeyShare, Attest: three broadcasts per member, O(n) per round.
  REQUIRE(room.log().size() == 9);
}

TEST_CASE("messages are delivered, confirmed by everyone, and heartbeats close the loop", "[engine]") {
  Room room(3);
  room.run();
  room.send_text("alice", "hello from alice");
  room.send_text("bob", "hi alice");
  room.run();
  auto& carol = room.by_nick("carol");
  REQUIRE(texts_from(room, carol, "alice") == std::vector<std::string>{"hello from alice"});
  REQUIRE(texts_from(room, carol, "bob") == std::vector<std::string>{"hi alice"});
  REQUIRE(texts_from(room, room.by_nick("bob"), "alice") == std::vector<std::string>{"hello from alice"});

  room.advance(kDefaultHeartbeatMs + 1);  // idle: members acknowledge what they saw
  room.advance(kDefaultHeartbeatMs + 1);
  for (auto& m : room.members()) {
    CAPTURE(m.nick);
    REQUIRE(m.errors.empty());
    REQUIRE(room.events_of(m, EventKind::SplitView).empty());
    bool alice_full = false;
    for (const auto& e : room.events_of(m, EventKind::FullyConfirmed)) {
      alice_full = alice_full || (e.nick == "alice" && e.seq >= 1);
    }
    REQUIRE(alice_full);
  }
}

TEST_CASE("a leave runs the shutdown, checks transcripts and publishes keys", "[engine]") {
  Room room(3);
  room.run();
  room.send_text("alice", "one");
  room.send_text("carol", "two");
  room.run();
  auto& bob = room.by_nick("bob");
  room.absorb(bob, bob.engine->leave(room.now(), *bob.rng));
  room.run();
  REQUIRE(room.events_of(bob, EventKind::ReadyToLeave).size() == 1);
  for (auto& m : room.members()) {
    CAPTURE(m.nick);
    REQUIRE(m.errors.empty());
    REQUIRE(room.events_of(m, EventKind::TranscriptConsistent).size() == 1);
    REQUIRE(room.events_of(m, EventKind::KeyPublished).size() == 1);
    REQUIRE(room.events_of(m, EventKind::PeerKeyPublished).size() == 2);
  }
  // Bob leaves the room: the remaining two re-key with fresh keys.
  room.part("bob");
  room.run();
  REQUIRE(room.by_nick("alice").engine->phase() == Phase::Established);
  REQUIRE(room.by_nick("carol").engine->phase() == Phase::Established);
  REQUIRE(room.by_nick("alice").engine->session()->members.size() == 2);
}
