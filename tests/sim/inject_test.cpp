// SPDX-License-Identifier: MIT
// What the server can make up on its own: replays of anything it relayed (this session or an
// earlier one), garbage, truncated / oversize / padded messages, and real messages under a
// different sender nick. Each is rejected with its exact error and changes nothing.
#include <catch2/catch.hpp>

#include <set>

#include "sim/scenario.h"

using namespace mpotr;
using namespace mpotr::sim;

namespace {

void check_clean(Room& room, const std::map<std::string, std::vector<std::string>>& clean) {
  for (const auto& m : room.members()) {
    CAPTURE(m.nick);
    CHECK(event_trace(m) == clean.at(m.nick));
  }
  CHECK(converged(room));
}

bool is_decode_error(ErrorCode c) { return c >= ErrorCode::DecodeTruncated && c <= ErrorCode::DecodeBadValue; }

}  // namespace

TEST_CASE("sim: replay a chat entry and a heartbeat in the same session", "[sim][replay]") {
  Room room(3, 31);
  Adversary adv(room, 10);
  adv.run();
  send(adv, "alice", "one");
  send(adv, "alice", "two");
  adv.run();
  adv.advance(kDefaultHeartbeatMs + 1);
  send(adv, "bob", "three");
  adv.run();
  const Bytes one = adv.packets_of("alice", MessageType::Data)[0].wire.payload;
  const Bytes two = adv.packets_of("alice", MessageType::Data)[1].wire.payload;
  const auto hbs = adv.packets_of("carol", MessageType::Heartbeat);
  REQUIRE(!hbs.empty());
  for (const auto* to : {"bob", "carol"}) {
    CAPTURE(to);
    for (const Bytes* p : {&one, &two}) {
      const auto& d = adv.deliver(to, "alice", *p, "replay");
      REQUIRE(d.error.has_value());
      CHECK(d.error->code == ErrorCode::Duplicate);
    }
  }
  const auto& hb = adv.deliver("alice", "carol", hbs[0].wire.payload, "replay");
  REQUIRE(hb.error.has_value());
  CHECK(hb.error->code == ErrorCode::Duplicate);
  // The room's echo of our own entry, again: silently ignored, no state change.
  const auto& own = adv.deliver("alice", "alice", one, "replay");
  CHECK_FALSE(own.error.has_value());
  CHECK_FALSE(own.changed);
  CHECK(own.events_begin == own.events_end);
  CHECK(adv.violations().empty());
  CHECK(converged(room));
}

TEST_CASE("sim: replay every message of an earlier session after a re-key", "[sim][replay]") {
  Room room(3, 32);
  Adversary adv(room, 11);
  adv.run();
  const Hash32 s1 = *sid_of(room.by_nick("alice"));
  send(adv, "alice", "in session one");
  adv.run();
  adv.advance(kDefaultHeartbeatMs + 1);
  // Re-key: alice restarts; session one shuts down (digests, key reveals) and a new one starts.
  auto& alice = room.by_nick("alice");
  room.absorb(alice, alice.engine->restart(adv.now(), *alice.rng));
  adv.run();
  REQUIRE(converged(room));
  const Hash32 s2 = *sid_of(alice);
  CHECK(s2 != s1);
  for (const auto& m : room.members()) {
    CAPTURE(m.nick);
    // Session one closed completely: consistent transcript, all keys out.
    CHECK(count_events(m, EventKind::TranscriptConsistent) == 1);
    CHECK(count_events(m, EventKind::PeerKeyPublished) == 2);
    CHECK(count_events(m, EventKind::SessionClosed) == 1);
  }
  // Everything alice and carol sent in session one, replayed to bob.
  std::size_t replayed = 0;
  const std::size_t n_before = adv.packets().size();
  for (std::size_t i = 0; i < n_before; ++i) {
    const Packet p = adv.packets()[i];
    if (p.wire.from == "bob") {
      continue;
    }
    const auto s1_setup = [&] {
      if (p.type == MessageType::KeyShare) {
        return decode_as<codec::KeyShare>(p.wire.payload).session_id == s1;
      }
      if (p.type == MessageType::Attest) {
        return decode_as<codec::Attest>(p.wire.payload).session_id == s1;
      }
      return true;
    }();
    if (!s1_setup || (p.type == MessageType::Offer && decode_as<codec::Offer>(p.wire.payload).attempt != 0)) {
      continue;  // session two's own setup (a duplicate, not a replay)
    }
    CAPTURE(p.wire.from, type_name(p.type), p.index);
    const auto& d = adv.deliver("bob", p.wire.from, p.wire.payload, "replay");
    REQUIRE(d.error.has_value());
    CHECK(d.error->code == ErrorCode::Replay);
    CHECK_FALSE(d.changed);
    ++replayed;
  }
  CHECK(replayed >= 10);  // offer, key share, attest, data, heartbeat, shutdown, digest, reveal…
  // Our own old offer reflected once more: recognised as ours, silently ignored.
  const auto& own = adv.deliver("alice", "alice", adv.packets_of("alice", MessageType::Offer)[0].wire.payload);
  CHECK_FALSE(own.error.has_value());
  CHECK_FALSE(own.changed);

  // A session bob was never part of (another room instance, same nicks): unknown.
  Room other(3, 99);
  Adversary other_adv(other, 1);
  other_adv.run();
  send(other_adv, "alice", "elsewhere");
  other_adv.run();
  const auto& foreign = adv.deliver("bob", "alice", other_adv.packets_of("alice", MessageType::Data)[0].wire.payload);
  REQUIRE(foreign.error.has_value());
  CHECK(foreign.error->code == ErrorCode::UnknownSession);

  // The engine remembers a bounded number of closed sessions (16): after 16 more re-keys
  // session one's entries are merely unknown.
  const Bytes old_entry = adv.packets_of("alice", MessageType::Data)[0].wire.payload;
  for (int k = 0; k < 16; ++k) {
    room.absorb(alice, alice.engine->restart(adv.now(), *alice.rng));
    adv.run();
    REQUIRE(converged(room));
  }
  const auto& ancient = adv.deliver("bob", "alice", old_entry, "replay");
  REQUIRE(ancient.error.has_value());
  CHECK(ancient.error->code == ErrorCode::UnknownSession);
  CHECK(adv.violations().empty());
  CHECK(converged(room));
}

TEST_CASE("sim: spoofed sender nick on every message of a conversation", "[sim][spoof]") {
  // Every packet reaches every member first under the next member's nick (or "mallory", who
  // is not in the room), then genuinely.
  const bool outsider = GENERATE(false, true);
  CAPTURE(outsider);
  const auto clean = clean_traces(33);
  Room room(3, 33);
  Adversary adv(room, 12);
  adv.on([](const Packet&, const SimMember&) { return true; },
         [outsider](const Packet& p, const SimMember& to) {
           static const std::map<std::string, std::string> next{{"alice", "bob"}, {"bob", "carol"}, {"carol", "alice"}};
           const bool late_setup = (p.type == MessageType::KeyShare || p.type == MessageType::Attest) &&
                                   to.engine->phase() == Phase::Established;
           if (late_setup) {
             return Action::deliver();  // see "late setup messages are authenticated" below
           }
           return Action::spoof(outsider ? "mallory" : next.at(p.wire.from), true);
         });
  reference_conversation(adv);
  std::size_t spoofed = 0;
  std::set<MessageType> types;
  for (const auto& d : adv.deliveries()) {
    if (d.label != "spoofed") {
      CHECK_FALSE(d.error.has_value());
      continue;
    }
    CAPTURE(d.to, d.from, type_name(d.type));
    REQUIRE(d.error.has_value());
    // A copy of the last key reveal can reach a member after the session closed: then the
    // session (and the means to check the sender) is gone, and the copy is a replay.
    const bool after_close = d.type == MessageType::KeyReveal && d.error->code == ErrorCode::Replay;
    CHECK((d.error->code == ErrorCode::NickMismatch || after_close));
    ++spoofed;
    types.insert(*d.type);
  }
  CHECK(types.size() == 9);  // all message types, including messages "from ourselves"
  CHECK(spoofed > 50);
  CHECK(adv.violations().empty());
  check_clean(room, clean);
}

TEST_CASE("sim: messages in our own name that we did not send", "[sim][spoof]") {
  Room room(3, 34);
  Adversary adv(room, 13);
  adv.run();
  auto& alice = room.by_nick("alice");
  // Alice's keys in other hands (an engine copy): a chat entry and an offer alice never sent.
  Engine twin = *alice.engine;
  DeterministicRng twin_rng(4242);
  send(adv, "alice", "real");
  adv.run();
  auto forged = twin.send_text("forged", adv.now(), twin_rng);
  REQUIRE(forged.ok());
  const auto& d = adv.deliver("alice", "alice", forged->broadcasts.at(0), "own-name");
  REQUIRE(d.error.has_value());
  CHECK(d.error->code == ErrorCode::NickMismatch);
  auto offer = twin.restart(adv.now(), twin_rng);
  REQUIRE(offer.ok());
  Bytes twin_offer;
  for (const auto& b : offer->broadcasts) {
    if (codec::peek_type(view(b)).value() == MessageType::Offer) {
      twin_offer = b;
    }
  }
  REQUIRE(!twin_offer.empty());
  const auto& o = adv.deliver("alice", "alice", twin_offer, "own-name");
  REQUIRE(o.error.has_value());
  CHECK(o.error->code == ErrorCode::NickMismatch);
  // Bob's entry relabelled as alice's, delivered to alice.
  send(adv, "bob", "bob's line");
  const Bytes bobs = room.queue().back().payload;
  adv.run();
  const auto& b = adv.deliver("alice", "alice", bobs, "own-name");
  REQUIRE(b.error.has_value());
  CHECK(b.error->code == ErrorCode::NickMismatch);
  CHECK(adv.violations().empty());
  CHECK(converged(room));
}

TEST_CASE("sim: truncated, padded, oversize and unknown payloads", "[sim][garbage]") {
  Room room(3, 35);
  Adversary adv(room, 14);
  auto expect = [&](const Bytes& payload, ErrorCode code, std::string_view from = "bob") {
    const auto& d = adv.deliver("carol", from, payload, "garbage");
    CAPTURE(payload.size(), from);
    REQUIRE(d.error.has_value());
    CHECK(d.error->code == code);
    CHECK_FALSE(d.changed);
  };
  expect({}, ErrorCode::DecodeTruncated);
  expect({kProtocolVersion}, ErrorCode::DecodeTruncated);
  expect({0x00, 0x10}, ErrorCode::DecodeBadVersion);
  expect({0x01, 0x01}, ErrorCode::DecodeBadVersion);  // a version 1 offer
  expect({0xff}, ErrorCode::DecodeBadVersion);
  for (int t : {0x00, 0x05, 0x0f, 0x12, 0x1f, 0x25, 0x7f, 0xff}) {
    expect({kProtocolVersion, static_cast<std::uint8_t>(t), 0x00, 0x00}, ErrorCode::DecodeUnknownType);
  }
  // Whole conversation: every strict prefix of every message is truncated, every message with
  // anything appended has trailing bytes, for the member it is meant for at that moment.
  adv.on([](const Packet&, const SimMember& to) { return to.nick == "carol"; },
         [&expect](const Packet& p, const SimMember&) {
           for (std::size_t len = 0; len < p.wire.payload.size(); ++len) {
             expect(Bytes(p.wire.payload.begin(), p.wire.payload.begin() + static_cast<std::ptrdiff_t>(len)),
                    ErrorCode::DecodeTruncated, p.wire.from);
           }
           Bytes padded = p.wire.payload;
           padded.push_back(0x00);
           expect(padded, ErrorCode::DecodeTrailingBytes, p.wire.from);
           padded.resize(padded.size() + 999, 0xab);
           expect(padded, ErrorCode::DecodeTrailingBytes, p.wire.from);
           Bytes huge = p.wire.payload;
           huge.resize(kMaxWireMessageLen + 1, 0x00);
           expect(huge, ErrorCode::DecodeOversize, p.wire.from);
           return Action::deliver();
         });
  const auto clean = clean_traces(35);
  reference_conversation(adv);
  check_clean(room, clean);

  // A chat entry whose ciphertext exceeds the text limit is refused by the codec; one at the
  // limit decodes (and then fails the group MAC, the server having re-encoded it).
  Room r2(3, 36);
  Adversary a2(r2, 15);
  a2.run();
  send(a2, "alice", "x");
  const Bytes entry = r2.queue().back().payload;
  a2.run();
  auto msg = decode_as<codec::Data>(entry);
  msg.ciphertext.assign(kMaxTextLen + 1, 0x41);
  const auto& big = a2.deliver("bob", "alice", codec::encode(msg), "oversize");
  REQUIRE(big.error.has_value());
  CHECK(big.error->code == ErrorCode::DecodeOversize);
  msg.ciphertext.assign(kMaxTextLen, 0x41);
  const auto& at_limit = a2.deliver("bob", "alice", codec::encode(msg), "at-limit");
  REQUIRE(at_limit.error.has_value());
  CHECK(at_limit.error->code == ErrorCode::BadMac);
  CHECK(adv.violations().empty());
  CHECK(a2.violations().empty());
}

TEST_CASE("sim: random garbage before every delivery", "[sim][garbage]") {
  // Before each genuine delivery the member gets a random payload: half pure noise, half with
  // a valid version and type byte (so decoding goes deeper). Each is rejected with the codec's
  // own error and changes nothing; the conversation is exactly the clean one.
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    CAPTURE(seed);
    const auto clean = clean_traces(40 + seed);
    Room room(3, 40 + seed);
    Adversary adv(room, seed);
    static const std::uint8_t kTypes[] = {0x01, 0x02, 0x03, 0x10, 0x11, 0x20, 0x21, 0x22, 0x23};
    std::size_t injected = 0;
    adv.on([](const Packet&, const SimMember&) { return true; },
           [&adv, &injected](const Packet& p, const SimMember&) {
             auto& rng = adv.rng();
             const bool structured = rng() % 2 == 0;
             // Structured noise is sized like a real message of that type, to get past the
             // first length checks more often.
             const std::size_t len = structured ? p.wire.payload.size() + rng() % 3 - 1 : rng() % 300;
             Bytes b(len);
             for (auto& x : b) {
               x = static_cast<std::uint8_t>(rng());
             }
             if (structured && len >= 2) {
               b[0] = kProtocolVersion;
               b[1] = kTypes[rng() % std::size(kTypes)];
             }
             ++injected;
             return Action::replace(std::move(b), true, "garbage");
           });
    reference_conversation(adv);
    CHECK(injected > 60);
    for (const auto& d : adv.deliveries()) {
      if (d.label != "garbage") {
        CHECK_FALSE(d.error.has_value());
        continue;
      }
      REQUIRE(d.error.has_value());
      CHECK_FALSE(d.changed);
      auto decoded = codec::decode(view(d.payload));
      if (!decoded.ok()) {
        CHECK(d.error->code == decoded.error().code);
        CHECK(is_decode_error(d.error->code));
      }
    }
    CHECK(adv.violations().empty());
    check_clean(room, clean);
  }
}

TEST_CASE("sim: a forged early key share must not block the genuine one", "[sim][tamper][reorder]") {
  // Carol is still collecting offers when alice's key share arrives; the server puts a copy
  // with a broken signature in front of the genuine one. Either alice's offer is already there
  // (bob's is the late one: the copy can be checked at once) or it is alice's own offer that
  // is late (nothing to check the copy against yet). At HEAD the engine kept one early key
  // share per member, unchecked, so the forged copy took the slot and the authentic key share
  // was refused as "Equivocation" — a false accusation of alice — and carol's setup stalled.
  // Correct: an unauthenticated copy proves nothing; the genuine key share is kept and setup
  // completes.
  const std::string late = GENERATE("bob", "alice");
  CAPTURE(late);
  Room room(3, 37);
  Adversary adv(room, 16);
  adv.on(Adversary::nth(late, MessageType::Offer, 0, "carol"), Action::hold_steps(4), 1);
  adv.on(Adversary::nth("alice", MessageType::KeyShare, 0, "carol"), [](const Packet& p, const SimMember&) {
    return Action::tamper(p.wire.payload, p.wire.payload.size() - 1, 0x01, true);
  }, 1);
  adv.run();
  INFO(dump_events(room.by_nick("carol")));
  std::optional<Delivery> forged, genuine;
  for (const auto& d : adv.deliveries_to("carol")) {
    if (d.from == "alice" && d.type == MessageType::KeyShare) {
      (d.label == "tampered" ? forged : genuine) = d;
    }
  }
  REQUIRE(forged);
  REQUIRE(genuine);
  if (late == "bob") {
    // Alice's signing key is known: the copy is refused on receipt, as not belonging to this
    // attempt (a stale message and a forgery look the same before the sid is known, R-KS-3).
    REQUIRE(forged->error.has_value());
    CHECK(forged->error->code == ErrorCode::UnknownSession);
  }
  CHECK_FALSE(genuine->error.has_value());
  // An unauthenticated copy is no proof that alice signed two key shares.
  for (auto code : adv.errors_of("carol")) {
    CHECK(code != ErrorCode::Equivocation);
  }
  for (const auto& e : room.by_nick("carol").events) {
    CHECK_FALSE((e.kind == EventKind::Rejected && e.code == ErrorCode::Equivocation));
  }
  CHECK(converged(room));
  CHECK(adv.violations().empty());
}

TEST_CASE("sim: forged attempt numbers cannot wedge the room", "[sim][tamper][setup]") {
  // The attempt number of an offer is not authenticated in round 1. The server replaces
  // alice's first offer, for bob and carol, by a copy with another attempt number. Whatever
  // happens during the attack, once the network is clean one restart() brings everyone
  // together again (the counters must not have been pushed where restarts stop working).
  const std::uint32_t forged_attempt = GENERATE(1u, 5u, kMaxAttemptJump, kMaxAttemptJump + 1, 0x7fffffffu, 0xffffffffu);
  const bool then_genuine = GENERATE(true, false);
  CAPTURE(forged_attempt, then_genuine);
  Room room(3, 39);
  Adversary adv(room, 18);
  adv.on([](const Packet& p, const SimMember& to) { return p.wire.from == "alice" && p.type == MessageType::Offer &&
                                                           p.nth == 0 && to.nick != "alice"; },
         [&](const Packet& p, const SimMember&) {
           auto o = decode_as<codec::Offer>(p.wire.payload);
           o.attempt = forged_attempt;
           return Action::replace(codec::encode(o), then_genuine, "forged");
         });
  adv.run();
  for (const auto& d : adv.deliveries()) {
    if (d.label == "forged") {
      CAPTURE(d.to);
      if (forged_attempt > kMaxAttemptJump) {
        REQUIRE(d.error.has_value());
        CHECK(d.error->code == ErrorCode::UnexpectedMessage);
      } else {
        CHECK_FALSE(d.error.has_value());  // looks like alice restarted: bob and carol follow
      }
    }
  }
  if (forged_attempt > kMaxAttemptJump && then_genuine) {
    CHECK(converged(room));  // refused outright; the genuine offer did the rest
  }
  adv.settle(kDefaultSetupTimeoutMs + 1);
  if (!converged(room)) {
    auto& alice = room.by_nick("alice");
    room.absorb(alice, alice.engine->restart(adv.now(), *alice.rng));
    adv.run();
  }
  INFO(room_state(room));
  CHECK(converged(room));
  CHECK(adv.violations().empty());
  send(adv, "bob", "still works");
  adv.run();
  CHECK(texts_from(room.by_nick("carol"), "bob") == std::vector<std::string>{"still works"});
}

TEST_CASE("sim: late setup messages are authenticated", "[sim][spoof][tamper]") {
  // After a member established, a KeyShare/Attest naming that session gets the same checks as
  // before establishment (R-KS-1): NickMismatch for another member's message under a wrong
  // nick, BadSignature for a forgery; only an exact copy is a Duplicate. (Version 1 answered
  // Duplicate before looking at either.)
  Room room(3, 38);
  Adversary adv(room, 17);
  adv.run();
  REQUIRE(converged(room));
  for (auto type : {MessageType::KeyShare, MessageType::Attest}) {
    CAPTURE(type_name(type));
    const Bytes genuine = adv.packets_of("alice", type).at(0).wire.payload;
    const auto& exact = adv.deliver("bob", "alice", genuine, "replay");
    REQUIRE(exact.error.has_value());
    CHECK(exact.error->code == ErrorCode::Duplicate);
    const auto& spoofed = adv.deliver("bob", "carol", genuine, "spoofed");
    REQUIRE(spoofed.error.has_value());
    CHECK(spoofed.error->code == ErrorCode::NickMismatch);
    Bytes forged = genuine;
    forged.back() ^= 0x01;
    const auto& bad = adv.deliver("bob", "alice", forged, "tampered");
    REQUIRE(bad.error.has_value());
    CHECK(bad.error->code == ErrorCode::BadSignature);
  }
  CHECK(adv.violations().empty());
}
