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
