// SPDX-License-Identifier: MIT
// The server flips one bit of one message, for one recipient (carol), then delivers the
// genuine message right after. For every message type the sweep covers every byte of small
// messages and every byte of the small fields plus a seeded sample of the large fields of big
// ones. Each tampered copy must be rejected with the exact error for the field it hit, leave
// carol's state unchanged, and — once the genuine copy arrives — change nothing: every member
// sees exactly the events of a clean run. The few Offer fields that are not authenticated in
// round 1 are followed through setup failure and restart.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "sim/scenario.h"

using namespace mpotr;
using namespace mpotr::sim;

namespace {

constexpr std::uint64_t kRoomSeed = 7;

struct Target {
  MessageType type;
  const char* author;
  const char* victim;
};

struct Baseline {
  Bytes genuine;
  std::map<std::string, std::vector<std::string>> traces;
  std::vector<Region> regions;
};

const Baseline& baseline(const Target& t) {
  static std::map<int, Baseline> cache;
  auto it = cache.find(static_cast<int>(t.type));
  if (it != cache.end()) {
    return it->second;
  }
  Room room(3, kRoomSeed);
  Adversary adv(room, 1);
  reference_conversation(adv);
  Baseline b;
  const auto pk = adv.packets_of(t.author, t.type);
  if (pk.empty()) {
    throw std::runtime_error("baseline: no such packet");
  }
  b.genuine = pk[0].wire.payload;
  b.regions = regions_of(view(b.genuine));
  for (const auto& m : room.members()) {
    b.traces[m.nick] = event_trace(m);
  }
  return cache.emplace(static_cast<int>(t.type), std::move(b)).first->second;
}

bool is_decode_error(ErrorCode c) { return c >= ErrorCode::DecodeTruncated && c <= ErrorCode::DecodeBadValue; }

// The one error the engine must return for a tampered copy, or nullopt when the change is
// (correctly) not detectable on receipt.
std::optional<ErrorCode> expected_code(const Region& region, const Bytes& tampered, std::size_t roster_size) {
  auto decoded = codec::decode(view(tampered));
  if (!decoded.ok()) {
    // Structure broken: the codec's error, unchanged (the engine must not mask or remap it).
    return decoded.error().code;
  }
  const std::string& r = region.name;
  if (r == "sender") {
    return tampered[region.begin] < roster_size ? ErrorCode::NickMismatch : ErrorCode::NotAMember;
  }
  if (r == "session_id" || r == "session_tag") {
    return ErrorCode::UnknownSession;
  }
  if (r == "nick") {
    return ErrorCode::NickMismatch;
  }
  if (r == "identity_key" || r == "dh_key" || r == "signing_key") {
    return ErrorCode::DecodeBadValue;  // no longer a point on the curve
  }
  if (r == "ack_count") {
    return ErrorCode::DecodeBadValue;  // decodes, but acknowledges the wrong number of members
  }
  if (r == "private_key") {
    return ErrorCode::BadKeyReveal;
  }
  if (r == "attempt" && decode_as<codec::Offer>(tampered).attempt > kMaxAttemptJump) {
    // Far beyond any honest restart count (the members are at attempt 0): refused, so a forger
    // cannot push the counters towards wrapping.
    return ErrorCode::UnexpectedMessage;
  }
  if (r == "roster_digest" || r == "attempt" || r == "nonce") {
    return std::nullopt;  // Offer fields only the later rounds authenticate
  }
  if (r == "refused") {
    // Checked against the roster before the signature (R-KS-5): a bit at index ≥ n, or the
    // sender's own (alice is 0), is malformed; any other flip breaks the signature.
    const auto ks = decode_as<codec::KeyShare>(tampered);
    return ks.refused.bound() > roster_size || ks.refused.test(ks.sender) ? ErrorCode::DecodeBadValue
                                                                          : ErrorCode::BadSignature;
  }
  if (r == "signature") {
    return ErrorCode::BadSignature;
  }
  // Messages with a group MAC check it before the signature (R-DATA-15): every byte it covers,
  // and the MAC itself.
  const auto type = codec::peek_type(view(tampered)).value();
  const bool macd = type == MessageType::Data || type == MessageType::Heartbeat || type == MessageType::Shutdown ||
                    type == MessageType::Digest || type == MessageType::End || type == MessageType::Quit;
  return macd ? ErrorCode::BadMac : ErrorCode::BadSignature;
}

struct Probe {
  std::size_t offset;
  std::uint8_t mask;
};

// Every byte of small messages (≤ 128 bytes) and of small fields; a seeded sample of six bytes
// (first, last, four random) of every larger field. One seeded bit per byte, all eight for
// one-byte fields.
std::vector<Probe> probes_for(const Baseline& b, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Probe> out;
  auto bit = [&rng] { return static_cast<std::uint8_t>(1u << (rng() % 8)); };
  for (const auto& r : b.regions) {
    const std::size_t len = r.end - r.begin;
    if (len == 1) {
      for (int k = 0; k < 8; ++k) {
        out.push_back(Probe{r.begin, static_cast<std::uint8_t>(1u << k)});
      }
      continue;
    }
    if (b.genuine.size() <= 128 || len <= 8) {
      for (std::size_t o = r.begin; o < r.end; ++o) {
        out.push_back(Probe{o, bit()});
      }
      continue;
    }
    std::set<std::size_t> picks{r.begin, r.end - 1};
    while (picks.size() < 6) {
      picks.insert(r.begin + rng() % len);
    }
    for (std::size_t o : picks) {
      out.push_back(Probe{o, bit()});
    }
  }
  return out;
}

const Delivery* find_label(const Adversary& adv, std::string_view label, std::size_t nth = 0) {
  for (const auto& d : adv.deliveries()) {
    if (d.label == label && nth-- == 0) {
      return &d;
    }
  }
  return nullptr;
}

void check_rejected_then_clean(const Target& t, const Baseline& b, const Probe& p, ErrorCode want) {
  Room room(3, kRoomSeed);
  Adversary adv(room, 1);
  adv.on(Adversary::nth(t.author, t.type, 0, t.victim), Action::tamper(b.genuine, p.offset, p.mask, true), 1);
  reference_conversation(adv);
  const Delivery* d = find_label(adv, "tampered");
  REQUIRE(d != nullptr);
  REQUIRE(d->error.has_value());
  CHECK(d->error->code == want);
  INFO(d->error->detail);
  CHECK(d->events_begin == d->events_end);  // a rejection reports nothing else
  CHECK(adv.violations().empty());          // and leaves the engine unchanged
  for (const auto& m : room.members()) {
    CAPTURE(m.nick);
    CHECK(event_trace(m) == b.traces.at(m.nick));  // the genuine copy made the attack a no-op
  }
  CHECK(converged(room));
  // Nobody but the victim ever saw an error.
  for (const auto& dd : adv.deliveries()) {
    if (dd.error && dd.label != "tampered") {
      FAIL_CHECK("unexpected " << to_string(dd.error->code) << " at " << dd.to << ": " << dd.error->detail);
    }
  }
}

void sweep(const Target& t) {
  const Baseline& b = baseline(t);
  const auto probes = probes_for(b, 0x5eed0000u + static_cast<unsigned>(t.type));
  std::map<std::string, std::set<std::string>> seen;  // region -> codes, for the log
  for (const auto& p : probes) {
    const Region& region = region_at(b.regions, p.offset);
    Bytes tampered = b.genuine;
    tampered[p.offset] ^= p.mask;
    const auto want = expected_code(region, tampered, 3);
    CAPTURE(type_name(t.type), region.name, p.offset, static_cast<int>(p.mask));
    if (!want) {
      continue;  // the Offer test follows these through setup failure
    }
    // Header bytes have fixed meanings whatever the type.
    if (region.name == "version") {
      CHECK(*want == ErrorCode::DecodeBadVersion);
    }
    if (region.name == "type" && !codec::peek_type(view(tampered)).ok()) {
      CHECK(*want == ErrorCode::DecodeUnknownType);
    }
    if (region.name == "type" && codec::peek_type(view(tampered)).ok()) {
      // Another valid type with the same layout (Shutdown <-> Quit): the MAC covers the type.
      CHECK((is_decode_error(*want) || *want == ErrorCode::BadMac));
    } else if (region.name == "type" || region.name == "count" || region.name == "ct_len" ||
               region.name == "nick_len" || region.name.ends_with(".prefix")) {
      CHECK(is_decode_error(*want));
    }
    seen[region.name].insert(std::string(to_string(*want)));
    check_rejected_then_clean(t, b, p, *want);
  }
  for (const auto& [region, codes] : seen) {
    std::string s;
    for (const auto& c : codes) {
      s += c + " ";
    }
    UNSCOPED_INFO(region << ": " << s);
  }
  CHECK(!seen.empty());
}

}  // namespace

TEST_CASE("sim: tamper offer byte offsets", "[sim][tamper]") {
  const Target t{MessageType::Offer, "alice", "carol"};
  sweep(t);  // every field whose change is detected on receipt

  // The fields round 1 cannot authenticate: the tampered offer is accepted (there is nothing
  // to check it against yet). What happens next, exactly:
  const Baseline& b = baseline(t);
  std::mt19937_64 rng(99);
  for (const auto& region : b.regions) {
    if (region.name != "roster_digest" && region.name != "nonce" && region.name != "attempt") {
      continue;
    }
    for (int k = 0; k < 4; ++k) {
      std::size_t off = region.begin + rng() % (region.end - region.begin);
      auto mask = static_cast<std::uint8_t>(1u << (rng() % 8));
      if (region.name == "attempt") {
        // Small jumps only (larger ones are refused, see the sweep): attempt 1, 2, 4 … 32.
        off = region.end - 1;
        mask = static_cast<std::uint8_t>(1u << (rng() % 6));
      }
      CAPTURE(region.name, off, static_cast<int>(mask));
      Room room(3, kRoomSeed);
      Adversary adv(room, 1);
      adv.on(Adversary::nth("alice", MessageType::Offer, 0, "carol"), Action::tamper(b.genuine, off, mask, true), 1);
      adv.run();
      const Delivery* tampered = find_label(adv, "tampered");
      REQUIRE(tampered != nullptr);
      CHECK_FALSE(tampered->error.has_value());
      CHECK(adv.violations().empty());
      if (region.name == "roster_digest") {
        // Kept as an offer for a membership carol has not seen yet; never used. The genuine
        // offer follows and the run is exactly the clean one.
        CHECK(tampered->events_begin == tampered->events_end);
        reference_conversation(adv);
        for (const auto& m : room.members()) {
          CAPTURE(m.nick);
          CHECK(event_trace(m) == b.traces.at(m.nick));
        }
        CHECK(converged(room));
        continue;
      }
      std::vector<Delivery> to_carol = adv.deliveries_to("carol");
      REQUIRE(to_carol.size() >= 2);
      REQUIRE(to_carol[0].label == "tampered");
      REQUIRE(to_carol[1].label == "genuine");
      if (region.name == "nonce") {
        // Carol holds an offer from alice that alice never made: alice's real offer conflicts
        // with it, so carol moves to the next attempt (R-OFF-11) and the others follow (R-OFF-9).
        CHECK_FALSE(to_carol[1].error.has_value());
      } else {
        // A higher attempt number: carol moved to it (and so do the others when they see her
        // new offer); alice's real offer, same nonce, names the old attempt.
        REQUIRE(to_carol[1].error.has_value());
        CHECK(to_carol[1].error->code == ErrorCode::RosterMismatch);
      }
      // Either way the room heals without the host: alice's fresh offer for the new attempt
      // conflicts with the tampered one carol still holds, and everyone moves to one more
      // attempt made only of genuine offers. No session ever contains the tampered offer.
      adv.run();
      CHECK(converged(room));
      CHECK(adv.violations().empty());
      for (const auto& m : room.members()) {
        CAPTURE(m.nick, dump_events(m));
        CHECK(events_of(m, EventKind::SetupTimeout).empty());
        CHECK(events_of(m, EventKind::SessionEstablished).size() == 1);
      }
      send(adv, "carol", "after the heal");
      adv.run();
      CHECK(texts_from(room.by_nick("alice"), "carol") == std::vector<std::string>{"after the heal"});
    }
  }
}

TEST_CASE("sim: tamper key_share byte offsets", "[sim][tamper]") { sweep({MessageType::KeyShare, "alice", "carol"}); }
TEST_CASE("sim: tamper attest byte offsets", "[sim][tamper]") { sweep({MessageType::Attest, "alice", "carol"}); }
TEST_CASE("sim: tamper data byte offsets", "[sim][tamper]") { sweep({MessageType::Data, "alice", "carol"}); }
TEST_CASE("sim: tamper heartbeat byte offsets", "[sim][tamper]") { sweep({MessageType::Heartbeat, "bob", "carol"}); }
TEST_CASE("sim: tamper shutdown byte offsets", "[sim][tamper]") { sweep({MessageType::Shutdown, "alice", "carol"}); }
TEST_CASE("sim: tamper digest byte offsets", "[sim][tamper]") { sweep({MessageType::Digest, "alice", "carol"}); }
TEST_CASE("sim: tamper key_reveal byte offsets", "[sim][tamper]") { sweep({MessageType::KeyReveal, "alice", "carol"}); }
TEST_CASE("sim: tamper end byte offsets", "[sim][tamper]") { sweep({MessageType::End, "alice", "carol"}); }

namespace {

// (r, s) → (r, n − s): another valid ECDSA signature over the same digest, which anyone can
// compute without the key.
Bytes malleate(const Bytes& payload) {
  static const std::uint8_t kOrder[32] = {0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,
                                          0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17,
                                          0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};
  Bytes out = payload;
  const std::size_t s_at = out.size() - 32;
  int borrow = 0;
  for (int i = 31; i >= 0; --i) {
    int v = kOrder[i] - out[s_at + static_cast<std::size_t>(i)] - borrow;
    borrow = v < 0 ? 1 : 0;
    out[s_at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v + (borrow ? 256 : 0));
  }
  return out;
}

bool library_accepts_high_s() {
  DeterministicRng rng(1);
  auto key = crypto::PrivateKey::generate(rng);
  Hash32 digest{};
  digest.fill(0x42);
  auto sig = key->sign_digest(digest, rng);
  Bytes b(sig->begin(), sig->end());
  const Bytes m = malleate(b);
  return key->public_key().verify_digest(digest, view(m)) && m != b;
}

}  // namespace

TEST_CASE("sim: malleated signatures are the same message", "[sim][tamper]") {
  // The server re-signs nothing: it only maps each signature (r, s) to (r, n − s). If the
  // crypto layer accepts both forms, the engine must treat the copy as the very same message:
  // a member who only gets the copy agrees with everyone (no setup transcript mismatch, no
  // split view), and genuine + copy is a Duplicate, never "Equivocation" (which would accuse
  // an honest member). If the library accepts only one form, the copy is a BadSignature loss.
  const bool accepted = library_accepts_high_s();
  CAPTURE(accepted);
  struct Case {
    MessageType type;
    const char* author;
  };
  const auto c = GENERATE(Case{MessageType::KeyShare, "alice"}, Case{MessageType::Attest, "alice"},
                          Case{MessageType::Data, "alice"}, Case{MessageType::Heartbeat, "bob"},
                          Case{MessageType::Shutdown, "alice"}, Case{MessageType::Digest, "alice"});
  const bool then_genuine = GENERATE(true, false);
  CAPTURE(type_name(c.type), then_genuine);
  const Target t{c.type, c.author, "carol"};
  const Baseline& b = baseline(t);
  Room room(3, kRoomSeed);
  Adversary adv(room, 1);
  adv.on(Adversary::nth(c.author, c.type, 0, "carol"),
         [then_genuine](const Packet& p, const SimMember&) {
           return Action::replace(malleate(p.wire.payload), then_genuine, "malleated");
         },
         1);
  reference_conversation(adv);
  const Delivery* m = find_label(adv, "malleated");
  REQUIRE(m != nullptr);
  CHECK(adv.violations().empty());
  if (!accepted) {
    REQUIRE(m->error.has_value());
    CHECK(m->error->code == ErrorCode::BadSignature);
    return;
  }
  CHECK_FALSE(m->error.has_value());
  if (then_genuine) {
    const auto to_carol = adv.deliveries_to("carol");
    for (std::size_t i = 0; i + 1 < to_carol.size(); ++i) {
      if (to_carol[i].label == "malleated") {
        REQUIRE(to_carol[i + 1].error.has_value());
        CHECK(to_carol[i + 1].error->code == ErrorCode::Duplicate);
        CHECK_FALSE(to_carol[i + 1].changed);
      }
    }
  }
  // Everyone's events are exactly those of the clean run.
  for (const auto& mm : room.members()) {
    CAPTURE(mm.nick);
    CHECK(event_trace(mm) == b.traces.at(mm.nick));
  }
  CHECK(converged(room));
}
