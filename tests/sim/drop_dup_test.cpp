// SPDX-License-Identifier: MIT
// Loss and duplication: a setup message that never reaches one member stalls the setup until
// the timeout names the missing member, and a restart on a clean network recovers; every
// duplicated message is recognised (Duplicate, or silence for the room's echo of our own)
// without any state change.
#include <catch2/catch.hpp>

#include <set>

#include "sim/scenario.h"

using namespace mpotr;
using namespace mpotr::sim;

TEST_CASE("sim: drop one setup message for one member, then restart", "[sim][drop]") {
  struct Case {
    MessageType type;
    const char* phase;  // the phase carol is stuck in
    const char* others_phase;
    bool others_established;  // alice and bob complete without carol's delivery
  };
  const auto c = GENERATE(Case{MessageType::Offer, "offers", "key_shares", false},
                          Case{MessageType::KeyShare, "key_shares", "attests", false},
                          Case{MessageType::Attest, "attests", "", true});
  // The message is either dropped, or replaced by a copy with a broken signature / point
  // (the server cannot forge a valid one): for the protocol both are a loss.
  const bool tamper = GENERATE(false, true);
  CAPTURE(type_name(c.type), tamper);

  Room room(3, 11);
  Adversary adv(room, 2);
  if (tamper) {
    adv.on(Adversary::nth("alice", c.type, 0, "carol"), [](const Packet& p, const SimMember&) {
      return Action::tamper(p.wire.payload, p.wire.payload.size() - 1, 0x01, false);
    }, 1);
  } else {
    adv.on(Adversary::nth("alice", c.type, 0, "carol"), Action::drop(), 1);
  }
  adv.run();
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  auto& carol = room.by_nick("carol");
  CHECK(carol.engine->phase() == Phase::SettingUp);
  CHECK(alice.engine->phase() == (c.others_established ? Phase::Established : Phase::SettingUp));
  CHECK(bob.engine->phase() == alice.engine->phase());
  if (tamper) {
    const auto codes = adv.errors_of("carol");
    REQUIRE(codes.size() == 1);
    // Offer: last byte of the signing key, off the curve; others: the signature.
    CHECK(codes[0] == (c.type == MessageType::Offer ? ErrorCode::DecodeBadValue : ErrorCode::BadSignature));
  } else {
    CHECK(adv.errors_of("carol").empty());
  }
  CHECK(adv.errors_of("alice").empty());
  CHECK(adv.errors_of("bob").empty());

  // Nothing happens until the setup timeout, which names exactly who is missing.
  adv.advance(kDefaultSetupTimeoutMs - 1);
  CHECK(events_of(carol, EventKind::SetupTimeout).empty());
  adv.advance(1);
  const auto t = events_of(carol, EventKind::SetupTimeout);
  REQUIRE(t.size() == 1);
  CHECK(t[0].nicks == std::vector<std::string>{"alice"});
  CHECK(t[0].detail.starts_with("setup stalled in phase " + std::string(c.phase)));
  if (tamper) {
    CHECK(t[0].detail.find("last rejected") == std::string::npos);  // rejected on receipt, not buffered
  }
  CHECK(carol.engine->phase() == Phase::Idle);
  for (auto* m : {&alice, &bob}) {
    CAPTURE(m->nick);
    if (c.others_established) {
      // carol gave up in round 3: her Quit (R-AT-10) closes the session alice and bob had
      // established without her, and lets them publish their keys.
      CHECK(events_of(*m, EventKind::SetupTimeout).empty());
      const auto closing = events_of(*m, EventKind::SessionClosing);
      REQUIRE(closing.size() == 1);
      CHECK(closing[0].detail == "'carol' quit the session");
      CHECK(m->engine->phase() == Phase::Idle);
    } else {
      const auto mt = events_of(*m, EventKind::SetupTimeout);
      REQUIRE(mt.size() == 1);
      CHECK(mt[0].nicks == std::vector<std::string>{"carol"});
      CHECK(mt[0].detail.starts_with("setup stalled in phase " + std::string(c.others_phase)));
      CHECK(m->engine->phase() == Phase::Idle);
    }
  }
  const std::optional<Hash32> old_sid = sid_of(alice);

  // The host restarts (carol, who saw the failure) on a clean network: everyone converges on
  // a fresh session.
  room.absorb(carol, carol.engine->restart(adv.now(), *carol.rng));
  adv.run();
  INFO(room_state(room) << dump_events(alice) << dump_events(carol));
  REQUIRE(converged(room));
  CHECK(sid_of(carol) != old_sid);
  for (const auto& m : room.members()) {
    CAPTURE(m.nick);
    CHECK(count_events(m, EventKind::SessionEstablished) == (c.others_established && m.nick != "carol" ? 2u : 1u));
  }
  CHECK(adv.violations().empty());
  send(adv, "alice", "works");
  adv.run();
  CHECK(texts_from(carol, "alice") == std::vector<std::string>{"works"});

  if (c.others_established) {
    // The session alice and bob had without carol closed cleanly: carol's Quit counts as her
    // End, so both published their keys and nothing was withheld.
    adv.settle(kDefaultShutdownTimeoutMs + 1);
    for (auto* m : {&alice, &bob}) {
      CAPTURE(m->nick);
      CHECK(events_of(*m, EventKind::ShutdownIncomplete).empty());
      CHECK(events_of(*m, EventKind::KeyWithheld).empty());
      const auto published = events_of(*m, EventKind::KeyPublished);
      REQUIRE(published.size() == 1);
      CHECK(published[0].session_id == *old_sid);
    }
    CHECK(converged(room));
  }
}

TEST_CASE("sim: duplicate each message type for one member", "[sim][duplicate]") {
  struct Case {
    MessageType type;
    const char* author;
  };
  const auto c = GENERATE(Case{MessageType::Offer, "alice"}, Case{MessageType::KeyShare, "alice"},
                          Case{MessageType::Attest, "alice"}, Case{MessageType::Data, "alice"},
                          Case{MessageType::Heartbeat, "bob"}, Case{MessageType::Shutdown, "alice"},
                          Case{MessageType::Shutdown, "bob"}, Case{MessageType::Digest, "alice"},
                          Case{MessageType::KeyReveal, "alice"}, Case{MessageType::KeyReveal, "bob"});
  const std::string victim = GENERATE("carol", "author");  // "author": the room echoes twice
  const std::string to = victim == "author" ? std::string(c.author) : victim;
  CAPTURE(type_name(c.type), c.author, to);
  const auto clean = clean_traces(13);

  Room room(3, 13);
  Adversary adv(room, 3);
  adv.on(Adversary::nth(c.author, c.type, 0, to), Action::duplicate(2), 1);
  reference_conversation(adv);
  std::vector<Delivery> dups;
  const Delivery* genuine = nullptr;
  for (const auto& d : adv.deliveries()) {
    if (d.label == "dup") {
      dups.push_back(d);
    }
    if (!genuine && d.to == to && d.from == c.author && d.type == c.type && d.label == "genuine") {
      genuine = &d;
    }
  }
  REQUIRE(genuine != nullptr);
  REQUIRE(dups.size() == 2);
  const auto& m = room.by_nick(to);
  (void)m;
  for (const auto& d : dups) {
    CHECK_FALSE(d.changed);
    CHECK(d.events_begin == d.events_end);
    if (to == c.author) {
      CHECK_FALSE(d.error.has_value());  // our own message, reflected again: silently ignored
    } else {
      REQUIRE(d.error.has_value());
      // Even for the key reveal that closed the session: it is still known (retired only
      // when the roster changes), so this is a plain duplicate.
      CHECK(d.error->code == ErrorCode::Duplicate);
    }
  }
  CHECK(adv.violations().empty());
  for (const auto& mm : room.members()) {
    CAPTURE(mm.nick);
    CHECK(event_trace(mm) == clean.at(mm.nick));
  }
  CHECK(converged(room));
}

TEST_CASE("sim: every message of a conversation delivered twice to everyone", "[sim][duplicate]") {
  const auto clean = clean_traces(17);
  Room room(3, 17);
  Adversary adv(room, 4);
  adv.on([](const Packet&, const SimMember&) { return true; }, Action::duplicate(1));
  reference_conversation(adv);
  std::size_t dup_errors = 0;
  for (const auto& d : adv.deliveries()) {
    if (d.label != "dup") {
      CHECK_FALSE(d.error.has_value());
      continue;
    }
    CAPTURE(d.to, d.from, type_name(d.type));
    CHECK_FALSE(d.changed);
    if (d.to == d.from) {
      CHECK_FALSE(d.error.has_value());
    } else if (d.error) {
      ++dup_errors;
      // Bob left: his session sits among the closing ones, and the key reveal that completes
      // it retires it at once; a copy of that reveal then names a retired session. Everywhere
      // else the session is still known and a copy is a plain duplicate.
      bool closed_by_genuine = false;
      for (const auto& g : adv.deliveries()) {
        if (g.label == "genuine" && g.to == d.to && g.payload == d.payload) {
          for (const auto& e : events_in(room.by_nick(d.to), g)) {
            closed_by_genuine = closed_by_genuine || e.kind == EventKind::SessionClosed;
          }
        }
      }
      CHECK(d.error->code == (closed_by_genuine && d.to == "bob" ? ErrorCode::Replay : ErrorCode::Duplicate));
    } else {
      FAIL_CHECK("a duplicate was accepted");
    }
  }
  CHECK(dup_errors > 0);
  CHECK(adv.violations().empty());
  for (const auto& m : room.members()) {
    CAPTURE(m.nick);
    CHECK(event_trace(m) == clean.at(m.nick));
  }
  CHECK(converged(room));
}
