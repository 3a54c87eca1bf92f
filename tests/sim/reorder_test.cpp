// SPDX-License-Identifier: MIT
// Reordering and loss: setup messages that arrive before their phase are buffered; chat
// entries out of order produce a Gap and are delivered in order once the hole fills (the
// filler marked late), or reported lost after the gap timeout; acknowledgements in other
// members' entries reveal an entry that was dropped for one member only.
#include <catch2/catch.hpp>

#include "sim/scenario.h"

using namespace mpotr;
using namespace mpotr::sim;

namespace {

struct Received {
  std::string nick;
  std::uint32_t seq;
  std::string text;
  bool late;
  friend bool operator==(const Received&, const Received&) = default;
};

std::ostream& operator<<(std::ostream& os, const Received& r) {
  return os << r.nick << "#" << r.seq << " '" << r.text << "'" << (r.late ? " late" : "");
}

std::vector<Received> received(const SimMember& m, std::size_t from_index = 0) {
  std::vector<Received> out;
  for (const auto& e : events_of(m, EventKind::MessageReceived, from_index)) {
    out.push_back(Received{e.nick, e.seq, e.text, e.late});
  }
  return out;
}

void establish(Adversary& adv) {
  adv.run();
  REQUIRE(converged(adv.room()));
}

}  // namespace

TEST_CASE("sim: reorder setup: key shares before the last offer", "[sim][reorder]") {
  Room room(3, 21);
  Adversary adv(room, 5);
  // Carol gets bob's offer only after both key shares that depend on it.
  adv.on(Adversary::nth("bob", MessageType::Offer, 0, "carol"), Action::hold_steps(3), 1);
  adv.run();
  const auto to_carol = adv.deliveries_to("carol");
  std::vector<std::string> order;
  for (const auto& d : to_carol) {
    order.push_back(d.from + ":" + type_name(d.type));
    CHECK_FALSE(d.error.has_value());
  }
  REQUIRE(order.size() >= 6);
  CHECK(std::vector<std::string>(order.begin(), order.begin() + 5) ==
        std::vector<std::string>{"alice:offer", "carol:offer", "alice:key_share", "bob:key_share", "bob:offer"});
  // The early key shares were buffered: accepted, but nothing happened until bob's offer.
  CHECK(to_carol[2].events_begin == to_carol[2].events_end);
  CHECK(to_carol[2].changed);
  CHECK(converged(room));
  CHECK(adv.violations().empty());
  for (const auto& m : room.members()) {
    CHECK(m.errors.empty());
    CHECK(count_events(m, EventKind::SessionEstablished) == 1);
  }
}

TEST_CASE("sim: reorder setup: attests before key shares", "[sim][reorder]") {
  Room room(3, 22);
  Adversary adv(room, 6);
  adv.on(Adversary::nth("bob", MessageType::KeyShare, 0, "carol"), Action::hold_steps(3), 1);
  adv.run();
  std::vector<std::string> order;
  for (const auto& d : adv.deliveries_to("carol")) {
    order.push_back(d.from + ":" + type_name(d.type));
  }
  const auto pos = [&order](const std::string& what) {
    return std::find(order.begin(), order.end(), what) - order.begin();
  };
  // Carol got both other attests before bob's key share: they were buffered.
  CHECK(pos("alice:attest") < pos("bob:key_share"));
  CHECK(pos("bob:attest") < pos("bob:key_share"));
  CHECK(pos("bob:key_share") < static_cast<std::ptrdiff_t>(order.size()));
  CHECK(converged(room));
  CHECK(adv.violations().empty());
  for (const auto& m : room.members()) {
    CHECK(m.errors.empty());
    CHECK(count_events(m, EventKind::SessionEstablished) == 1);
  }
}

TEST_CASE("sim: seeded random reordering of setup converges", "[sim][reorder]") {
  // Any per-member reordering of setup traffic (each message delayed by 0-4 packets for each
  // recipient independently) still establishes one session: early messages are buffered.
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    CAPTURE(seed);
    const std::size_t n = 3 + seed % 3;
    Room room(n, 100 + seed);
    Adversary adv(room, seed);
    adv.on([](const Packet& p, const SimMember&) { return p.type && *p.type <= MessageType::Attest; },
           [&adv](const Packet&, const SimMember&) {
             const auto k = adv.rng()() % 5;
             return k == 0 ? Action::deliver() : Action::hold_steps(k);
           });
    adv.run();
    INFO(room_state(room));
    CHECK(converged(room));
    CHECK(adv.violations().empty());
    for (const auto& m : room.members()) {
      CAPTURE(m.nick, dump_events(m));
      CHECK(m.errors.empty());
      CHECK(count_events(m, EventKind::SessionEstablished) == 1);
      CHECK(count_events(m, EventKind::Rejected) == 0);
    }
  }
}

TEST_CASE("sim: chat entry delayed for one member: gap, then in-order delivery", "[sim][reorder]") {
  Room room(3, 23);
  Adversary adv(room, 7);
  establish(adv);
  auto& carol = room.by_nick("carol");
  const std::size_t mark = carol.events.size();
  adv.on(Adversary::nth("alice", MessageType::Data, 0, "carol"), Action::hold_steps(2), 1);
  send(adv, "alice", "one");
  send(adv, "alice", "two");
  send(adv, "alice", "three");
  adv.run();
  const auto gaps = events_of(carol, EventKind::Gap, mark);
  REQUIRE(gaps.size() == 1);
  CHECK(gaps[0].nick == "alice");
  CHECK(gaps[0].seq == 1);
  CHECK(gaps[0].seq_end == 1);
  // Entry 1 fills the hole (late), then the held 2 and 3 follow in order.
  CHECK(received(carol, mark) == std::vector<Received>{{"alice", 1, "one", true},
                                                       {"alice", 2, "two", false},
                                                       {"alice", 3, "three", false}});
  // The gap closed in time: nothing is reported lost, and the acknowledgements agree.
  adv.settle(3 * kDefaultGapTimeoutMs);
  for (const auto& m : room.members()) {
    CAPTURE(m.nick);
    CHECK(m.errors.empty());
    CHECK(count_events(m, EventKind::MessageLost) == 0);
    CHECK(count_events(m, EventKind::SplitView) == 0);
    CHECK(count_events(m, EventKind::ConfirmationOverdue) == 0);
  }
  bool full = false;
  for (const auto& e : events_of(room.by_nick("alice"), EventKind::FullyConfirmed)) {
    full = full || (e.nick == "alice" && e.seq == 3);
  }
  CHECK(full);
  CHECK(adv.violations().empty());
}

TEST_CASE("sim: chat entry dropped for one member: gap, then message lost", "[sim][drop]") {
  Room room(3, 24);
  Adversary adv(room, 8);
  establish(adv);
  auto& carol = room.by_nick("carol");
  const std::size_t mark = carol.events.size();
  adv.on(Adversary::nth("alice", MessageType::Data, 0, "carol"), Action::drop(), 1);
  send(adv, "alice", "one");
  send(adv, "alice", "two");
  adv.run();
  const TimeMs t_gap = adv.now();
  const auto gaps = events_of(carol, EventKind::Gap, mark);
  REQUIRE(gaps.size() == 1);
  CHECK(gaps[0].nick == "alice");
  CHECK(gaps[0].seq == 1);
  CHECK(gaps[0].seq_end == 1);
  CHECK(received(carol, mark).empty());  // two is held behind the hole
  adv.advance(kDefaultGapTimeoutMs - 1);
  CHECK(events_of(carol, EventKind::MessageLost, mark).empty());
  adv.advance(1);
  const auto lost = events_of(carol, EventKind::MessageLost, mark);
  REQUIRE(lost.size() == 1);
  CHECK(adv.now() == t_gap + kDefaultGapTimeoutMs);
  CHECK(lost[0].nick == "alice");
  CHECK(lost[0].seq == 1);
  CHECK(lost[0].seq_end == 1);
  CHECK(received(carol, mark) == std::vector<Received>{{"alice", 2, "two", false}});

  // The lost entry turns up after all: shown (late), but the chain stays broken.
  const Bytes one = adv.packets_of("alice", MessageType::Data)[0].wire.payload;
  const auto& d = adv.deliver("carol", "alice", one, "late");
  CHECK_FALSE(d.error.has_value());
  const auto after = received(carol, mark);
  REQUIRE(after.size() == 2);
  CHECK(after[1] == Received{"alice", 1, "one", true});
  // A second copy is a duplicate.
  const auto& again = adv.deliver("carol", "alice", one, "again");
  REQUIRE(again.error.has_value());
  CHECK(again.error->code == ErrorCode::Duplicate);
  CHECK(adv.violations().empty());
}

TEST_CASE("sim: heartbeats reveal an entry dropped for one member only", "[sim][drop]") {
  Room room(3, 25);
  Adversary adv(room, 9);
  establish(adv);
  auto& alice = room.by_nick("alice");
  auto& carol = room.by_nick("carol");
  const std::size_t mark = carol.events.size();
  const std::size_t alice_mark = alice.events.size();
  adv.on(Adversary::nth("alice", MessageType::Data, 0, "carol"), Action::drop(), 1);
  const TimeMs t0 = adv.now();
  send(adv, "alice", "only line");
  adv.run();
  CHECK(events_of(carol, EventKind::Gap, mark).empty());  // carol cannot know yet
  // Idle room: bob acknowledges alice's entry in a heartbeat after the heartbeat interval.
  adv.advance(kDefaultHeartbeatMs);
  const auto gaps = events_of(carol, EventKind::Gap, mark);
  REQUIRE(gaps.size() == 1);
  CHECK(adv.now() == t0 + kDefaultHeartbeatMs);
  CHECK(gaps[0].nick == "alice");
  CHECK(gaps[0].seq == 1);
  CHECK(gaps[0].seq_end == 1);
  CHECK(gaps[0].detail == "'bob' acknowledged them");
  CHECK(gaps[0].by == "bob");
  // Never arrives: lost after the gap timeout.
  adv.advance(kDefaultGapTimeoutMs);
  const auto lost = events_of(carol, EventKind::MessageLost, mark);
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].nick == "alice");
  CHECK(lost[0].seq == 1);
  CHECK(lost[0].seq_end == 1);
  // Alice learns that carol never confirmed her entry.
  adv.settle(kDefaultConfirmTimeoutMs);
  const auto overdue = events_of(alice, EventKind::ConfirmationOverdue, alice_mark);
  REQUIRE(overdue.size() == 1);
  CHECK(overdue[0].seq == 1);
  CHECK(overdue[0].nicks == std::vector<std::string>{"carol"});
  CHECK(events_of(room.by_nick("bob"), EventKind::Gap, mark).empty());
  CHECK(adv.violations().empty());
}
