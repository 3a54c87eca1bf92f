// SPDX-License-Identifier: MIT
// Room sizes 2…20 under a seeded random schedule: members write at random moments, the clock
// jumps so heartbeats and timers run, and now and then a member falls behind for a few
// packets (MUC keeps the room's order, so its deliveries queue up and arrive in order). One
// member finally leaves: everyone checks the transcript, finds it consistent, and publishes
// its key; the others re-key.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "sim/scenario.h"
#include "support/alloc_counter.h"

using namespace mpotr;
using namespace mpotr::sim;

TEST_CASE("sim: room size sweep with random schedule and a final leave", "[sim][scale]") {
  const std::size_t n = GENERATE(2, 3, 5, 8, 13, 20);
  const std::uint64_t seed = 1000 + n;
  CAPTURE(n, seed);
  Room room(n, seed);
  Adversary adv(room, seed);
  std::mt19937_64 rng(seed * 31);
  adv.on([](const Packet&, const SimMember&) { return true; },
         [&adv](const Packet&, const SimMember& to) {
           if (adv.rng()() % 64 == 0) {
             adv.stall(to.nick, 1 + adv.rng()() % 5);
           }
           return Action::deliver();
         });
  adv.run();
  INFO(room_state(room));
  REQUIRE(converged(room));
  const Hash32 sid = *sid_of(room.member(0));

  // Random schedule: 3n lines from random members, with idle stretches of up to 7 s.
  std::map<std::string, std::vector<std::string>> written;
  const std::size_t lines = 3 * n;
  for (std::size_t i = 0; i < lines; ++i) {
    const auto& author = room.member(rng() % n).nick;
    const std::string text = author + " line " + std::to_string(i);
    send(adv, author, text);
    written[author].push_back(text);
    if (rng() % 3 == 0) {
      adv.run();
      adv.advance(rng() % 7000);
    }
  }
  adv.run();
  adv.advance(kDefaultHeartbeatMs);  // last acknowledgements
  for (const auto& m : room.members()) {
    CAPTURE(m.nick);
    for (const auto& [author, texts] : written) {
      if (author != m.nick) {
        CHECK(texts_from(m, author) == texts);  // every line, once, in order
      }
    }
    CHECK(count_events(m, EventKind::Gap) == 0);
    CHECK(count_events(m, EventKind::MessageLost) == 0);
    CHECK(count_events(m, EventKind::SplitView) == 0);
    CHECK(count_events(m, EventKind::ConfirmationOverdue) == 0);
    CHECK(m.errors.empty());
  }

  // The last member leaves.
  const std::string leaver = room.member(n - 1).nick;
  REQUIRE(leave_room(adv, leaver));
  adv.run();
  for (const auto& m : room.members()) {
    CAPTURE(m.nick);
    const auto consistent = events_of(m, EventKind::TranscriptConsistent);
    REQUIRE(consistent.size() == 1);
    CHECK(consistent[0].session_id == sid);
    CHECK(count_events(m, EventKind::TranscriptMismatch) == 0);
    const auto published = events_of(m, EventKind::KeyPublished);
    REQUIRE(published.size() == 1);
    CHECK(published[0].session_id == sid);
    std::set<std::string> peers;
    for (const auto& e : events_of(m, EventKind::PeerKeyPublished)) {
      CHECK(e.session_id == sid);
      peers.insert(e.nick);
    }
    CHECK(peers.size() == n - 1);  // everyone else's key
    CHECK(m.errors.empty());
  }
  CHECK(adv.violations().empty());
  if (n > 2) {
    REQUIRE(converged(room));
    CHECK(*sid_of(room.member(0)) != sid);
    CHECK(roster_of(room.member(0)).size() == n - 1);
  }
}

TEST_CASE("sim: what one receipt allocates does not grow with the transcript", "[sim][scale]") {
  // A receiver keeps every entry's id and chain value, but a new entry must cost O(its size):
  // no step may copy the transcript (the engine works on copies to commit only on success).
  Room room(3, 77);
  Adversary adv(room, 77);
  room.set_rosters();
  adv.run();
  REQUIRE(converged(room));
  auto& alice = room.by_nick("alice");
  const auto cost_of_next_line = [&] {
    send(adv, "carol", "an ordinary line of chat");
    const Bytes entry = last_broadcast(room, "carol");
    std::optional<Result<Output>> r;
    std::size_t bytes = 0;
    {
      test::AllocationScope scope;
      r.emplace(alice.engine->receive("carol", view(entry), room.now(), *alice.rng));
      bytes = scope.bytes();
    }
    REQUIRE(r->ok());
    room.absorb(alice, std::move(*r));
    adv.run();  // the room's own copy then reaches everyone (alice: a duplicate)
    return bytes;
  };
  const auto chat = [&](int lines) {
    for (int i = 0; i < lines; ++i) {
      send(adv, "bob", "line " + std::to_string(i));
      send(adv, "carol", "line " + std::to_string(i));
      adv.run();
    }
  };
  chat(500);
  const std::size_t at_1000 = cost_of_next_line();
  chat(1000);
  const std::size_t at_3000 = cost_of_next_line();
  INFO("one receipt after ~1,000 entries: " << at_1000 << " B; after ~3,000: " << at_3000 << " B");
  CHECK(at_3000 <= at_1000 + 64);
}
