// SPDX-License-Identifier: MIT
// One negative test per numbered processing rule of spec/mpotr.md §7 (tag [rules]).
//
// Each test builds the situation with the in-memory room, crafts the violating input (a decoded
// message re-encoded with one field changed, flipped bytes, a replay, a wrong transport sender,
// or a message signed by a copy of a member's engine, which holds the same keys), REQUIREs the
// exact ErrorCode (or event), and REQUIREs that Engine::summary() is unchanged after a rejection
// (R-GEN-1). Where a rule has a positive counterpart it is asserted too.
//
// `Spec` below is an independent implementation of the §5 key schedule written from the spec
// text only; a member built on it ("fake carol") completes a setup with real engines, which
// checks the spec's derivations, and lets tests sign setup messages with chosen content
// (bad MAC, inconsistent El Gamal secrets, equivocation).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "mpotr/codec/messages.h"
#include "mpotr/crypto/crypto.h"
#include "support/alloc_counter.h"
#include "support/room.h"

using namespace mpotr;
using mpotr::test::Room;
using mpotr::test::SimMember;
using mpotr::test::Wire;
using codec::MessageType;

// Readable sequences in failure messages.
namespace Catch {
template <>
struct StringMaker<mpotr::EventKind> {
  static std::string convert(mpotr::EventKind k) { return std::string(mpotr::to_string(k)); }
};
template <>
struct StringMaker<mpotr::codec::MessageType> {
  static std::string convert(mpotr::codec::MessageType t) { return std::string(mpotr::codec::to_string(t)); }
};
}  // namespace Catch

namespace {

// --- small helpers ------------------------------------------------------------------------

Result<Output> recv(Room& room, SimMember& m, std::string_view from, const Bytes& payload) {
  return m.engine->receive(from, view(payload), room.now(), *m.rng);
}

// The rule under test: the exact error, and nothing changed (R-GEN-1).
void require_rejected(Room& room, SimMember& m, std::string_view from, const Bytes& payload, ErrorCode code) {
  const StateSummary before = m.engine->summary();
  auto r = recv(room, m, from, payload);
  INFO("expected " << to_string(code));
  REQUIRE_FALSE(r.ok());
  INFO("got " << to_string(r.error().code) << ": " << r.error().detail);
  REQUIRE(r.error().code == code);
  REQUIRE(m.engine->summary() == before);
}

Output require_accepted(Room& room, SimMember& m, std::string_view from, const Bytes& payload) {
  auto r = recv(room, m, from, payload);
  if (!r.ok()) {
    INFO("unexpected " << to_string(r.error().code) << ": " << r.error().detail);
    REQUIRE(r.ok());
  }
  return std::move(r).value();
}

std::vector<Event> kinds(const std::vector<Event>& events, EventKind kind) {
  std::vector<Event> out;
  std::copy_if(events.begin(), events.end(), std::back_inserter(out), [kind](const Event& e) { return e.kind == kind; });
  return out;
}

bool has_event(const std::vector<Event>& events, EventKind kind, std::string_view nick = {}) {
  return std::any_of(events.begin(), events.end(),
                     [&](const Event& e) { return e.kind == kind && (nick.empty() || e.nick == nick); });
}

MessageType type_of(const Bytes& b) { return codec::peek_type(view(b)).value(); }

// The kinds of a call's events, in order: for rules that fix the whole sequence.
std::vector<EventKind> kind_sequence(const std::vector<Event>& events) {
  std::vector<EventKind> out;
  for (const auto& e : events) {
    out.push_back(e.kind);
  }
  return out;
}

// The types of a call's broadcasts, in order.
std::vector<MessageType> type_sequence(const std::vector<Bytes>& broadcasts) {
  std::vector<MessageType> out;
  for (const auto& b : broadcasts) {
    out.push_back(type_of(b));
  }
  return out;
}

template <class M>
M decode_as(const Bytes& b) {
  auto d = codec::decode(view(b));
  REQUIRE(d.ok());
  return std::get<M>(d->message);
}

// Payloads of one type a nick broadcast, in order (what the server relayed).
std::vector<Bytes> sent_by(const Room& room, std::string_view from, MessageType type) {
  std::vector<Bytes> out;
  for (const auto& w : room.log()) {
    if (w.from == from && type_of(w.payload) == type) {
      out.push_back(w.payload);
    }
  }
  return out;
}

Bytes first_of(const std::vector<Bytes>& broadcasts, MessageType type) {
  for (const auto& b : broadcasts) {
    if (type_of(b) == type) {
      return b;
    }
  }
  FAIL("no broadcast of type " << codec::to_string(type));
  return {};
}

// The queued (not yet delivered) payload of that type from that nick.
Bytes queued_from(Room& room, std::string_view from, MessageType type) {
  for (const auto& w : room.queue()) {
    if (w.from == from && type_of(w.payload) == type) {
      return w.payload;
    }
  }
  FAIL("nothing of type " << codec::to_string(type) << " from " << from << " queued");
  return {};
}

// Removes and returns the payload last queued (a broadcast the server holds back).
Bytes take_last(Room& room) {
  REQUIRE_FALSE(room.queue().empty());
  Bytes b = std::move(room.queue().back().payload);
  room.queue().pop_back();
  return b;
}

// Delivers the queue like Room::run(), but only where pass(wire, member) says so.
void run_filtered(Room& room, const std::function<bool(const Wire&, const SimMember&)>& pass,
                  std::size_t max_steps = 100000) {
  for (std::size_t i = 0; i < max_steps && !room.queue().empty(); ++i) {
    Wire w = std::move(room.queue().front());
    room.queue().pop_front();
    for (auto& m : room.members()) {
      if (m.present && pass(w, m)) {
        room.deliver_to(m, w);
      }
    }
  }
}

void establish(Room& room) {
  room.run();
  REQUIRE(room.all_established());
  for (const auto& m : room.members()) {
    REQUIRE(m.errors.empty());
  }
}

Bytes send_from(Engine& e, Rng& rng, TimeMs now, std::string_view text) {
  auto r = e.send_text(text, now, rng);
  REQUIRE(r.ok());
  REQUIRE(r->broadcasts.size() == 1);
  return r->broadcasts[0];
}

std::vector<Member> roster_of(std::initializer_list<const char*> nicks) {
  std::vector<Member> r;
  for (const char* n : nicks) {
    r.push_back(Member{n, std::string(n) + "@localhost"});
  }
  return r;
}

// ECDSA signatures are malleable: (r, s) and (r, n − s) both verify. Returns the other one.
Bytes malleate(const Bytes& signed_message) {
  static constexpr std::uint8_t kOrder[32] = {0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,
                                              0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17,
                                              0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};
  Bytes out = signed_message;
  std::uint8_t* s = out.data() + out.size() - 32;
  int borrow = 0;
  for (int i = 31; i >= 0; --i) {
    int d = kOrder[i] - s[i] - borrow;
    borrow = d < 0 ? 1 : 0;
    s[i] = static_cast<std::uint8_t>(d + 256 * borrow);
  }
  return out;
}

// --- the key schedule of §5, written from the spec text only ------------------------------

namespace spec {

Bytes cat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (ByteView p : parts) {
    append(out, p);
  }
  return out;
}
ByteView txt(std::string_view s) { return as_bytes(s); }
Bytes u8(std::uint8_t v) { return Bytes{v}; }
Bytes u32(std::uint32_t v) {
  return Bytes{static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
               static_cast<std::uint8_t>(v)};
}
Bytes vec8(std::string_view s) {
  Bytes b{static_cast<std::uint8_t>(s.size())};
  append(b, as_bytes(s));
  return b;
}
Hash32 H(const Bytes& b) { return crypto::sha256(view(b)); }
Hash32 to_hash(ByteView v) {
  Hash32 h{};
  std::copy_n(v.begin(), 32, h.begin());
  return h;
}

Hash32 roster_digest(std::string_view room, const std::vector<std::string>& nicks) {
  Bytes b = cat({txt("mpotr-v2 roster"), view(vec8(room)), view(u8(static_cast<std::uint8_t>(nicks.size())))});
  for (const auto& n : nicks) {
    append(b, view(vec8(n)));
  }
  return H(b);
}

Hash32 session_id(std::string_view room, const std::vector<codec::Offer>& offers) {
  Bytes b = cat({txt("mpotr-v2 session id"), view(vec8(room)), view(u32(offers.at(0).attempt)),
                 view(u8(static_cast<std::uint8_t>(offers.size())))});
  for (const auto& o : offers) {
    append(b, view(cat({view(vec8(o.nick)), view(o.nonce), view(o.identity_key), view(o.dh_key), view(o.signing_key)})));
  }
  return H(b);
}

Hash32 signed_digest(const Hash32& sid, ByteView signed_part) {
  return H(cat({txt("mpotr-v2 signed"), view(sid), signed_part}));
}

Hash32 elgamal_pad(const Hash32& sid, std::uint8_t from, std::uint8_t to, const SecretBytes& shared,
                   const crypto::Point& r, const crypto::Point& e_to) {
  const Bytes info = cat({txt("mpotr-v2 elgamal"), view(u8(from)), view(u8(to)), view(r), view(e_to)});
  return to_hash(crypto::hkdf_sha256(view(sid), shared.view(), view(info), 32).value().view());
}

Hash32 group_secret(const Hash32& sid, const std::vector<Hash32>& secrets) {
  Bytes b = cat({txt("mpotr-v2 group secret"), view(sid)});
  for (const auto& x : secrets) {
    append(b, view(x));
  }
  return H(b);
}

// §5: offers whole, key shares without their trailing 64-byte signature (signatures are
// malleable, the signed statement is not).
Hash32 transcript_hash(const std::vector<Bytes>& offers, const std::vector<Bytes>& shares) {
  Bytes b = cat({txt("mpotr-v2 setup transcript")});
  for (const auto& m : offers) {
    append(b, view(u32(static_cast<std::uint32_t>(m.size()))));
    append(b, view(m));
  }
  for (const auto& m : shares) {
    const ByteView signed_part = ByteView(m).first(m.size() - 64);
    append(b, view(u32(static_cast<std::uint32_t>(signed_part.size()))));
    append(b, signed_part);
  }
  return H(b);
}

Hash32 key_confirm(const Hash32& group, const Hash32& th) {
  const SecretBytes ck = crypto::hkdf_expand(view(group), txt("mpotr-v2 confirm"), 32).value();
  return crypto::hmac_sha256(ck.view(), view(cat({txt("mpotr-v2 key confirm"), view(th)})));
}

// §5.16: K_auth = HKDF-Expand(G, "mpotr-v2 auth", 32); mac = HMAC(K_auth, bytes before the mac).
SecretBytes auth_key(const Hash32& group) { return crypto::hkdf_expand(view(group), txt("mpotr-v2 auth"), 32).value(); }
codec::Mac message_mac(const SecretBytes& k_auth, ByteView mac_part) { return crypto::hmac_sha256(k_auth.view(), mac_part); }

Hash32 chain_start(const Hash32& sid, std::uint8_t sender) { return H(cat({txt("mpotr-v2 chain"), view(sid), view(u8(sender))})); }

Hash32 view_digest(const std::vector<std::uint32_t>& counts, const std::vector<Hash32>& chains) {
  Bytes b = cat({txt("mpotr-v2 view")});
  for (std::size_t m = 0; m < counts.size(); ++m) {
    append(b, view(u32(counts[m])));
    append(b, view(chains[m]));
  }
  return H(b);
}

}  // namespace spec

// A member that exists only as this test's code: its keys are known, so it can sign anything.
struct Fake {
  std::string nick;
  std::uint8_t index = 0;
  DeterministicRng rng;
  IdentityKey identity;
  crypto::PrivateKey dh, signing, elgamal_r;
  Hash32 secret{}, alt_secret{};
  codec::Offer offer;
  Bytes offer_bytes;

  Fake(std::string n, std::uint8_t idx, const std::vector<std::string>& roster_nicks, std::uint64_t seed)
      : nick(std::move(n)),
        index(idx),
        rng(seed),
        identity(IdentityKey::generate(rng).value()),
        dh(crypto::PrivateKey::generate(rng).value()),
        signing(crypto::PrivateKey::generate(rng).value()),
        elgamal_r(crypto::PrivateKey::generate(rng).value()) {
    secret = rng.array<32>();
    alt_secret = rng.array<32>();
    offer.roster_digest = spec::roster_digest(Room::kRoomName, roster_nicks);
    offer.nick = nick;
    offer.nonce = rng.array<32>();
    offer.identity_key = identity.public_key().point();
    offer.dh_key = dh.public_key().point();
    offer.signing_key = signing.public_key().point();
    offer_bytes = codec::encode(offer);
  }

  codec::Signature sign(const Hash32& sid, const Bytes& signed_part) {
    return signing.sign_digest(spec::signed_digest(sid, view(signed_part)), rng).value();
  }

  struct Tweak {
    int bad_mac_for = -1;     // corrupt the MAC for this recipient
    int alt_secret_for = -1;  // send this recipient a different group-key contribution
    bool bad_r = false;       // an elgamal_r that is not on the curve
    std::vector<std::uint8_t> refuse = {};  // members carol does not accept
  };

  // §5.3: K_{self→j} = HKDF(sid, DH(A_self, E_j) ‖ DH(E_self, E_j), "mpotr-v2 pairwise" ‖ u8 self ‖ u8 j, 32).
  SecretBytes dake_key_to(const Hash32& sid, std::uint8_t j, const codec::Offer& to) const {
    const auto e_j = crypto::PublicKey::from_point(view(to.dh_key)).value();
    const SecretBytes a_e = identity.private_key().ecdh(e_j).value();
    const SecretBytes e_e = dh.ecdh(e_j).value();
    const Bytes ikm = spec::cat({a_e.view(), e_e.view()});
    const Bytes info = spec::cat({spec::txt("mpotr-v2 pairwise"), view(spec::u8(index)), view(spec::u8(j))});
    return crypto::hkdf_sha256(view(sid), view(ikm), view(info), 32).value();
  }

  // §5.3–§5.5: DAKE MAC, hashed El Gamal share and commitment for every other member.
  Bytes key_share(const Hash32& sid, const std::vector<codec::Offer>& offers, Tweak t) {
    codec::KeyShare m;
    m.session_id = sid;
    m.sender = index;
    m.elgamal_r = elgamal_r.public_key().point();
    if (t.bad_r) {
      m.elgamal_r[64] ^= 0x01;
    }
    m.commit = spec::H(spec::cat({spec::txt("mpotr-v2 commit"), view(sid), view(spec::u8(index)), view(secret)}));
    for (std::uint8_t r : t.refuse) {
      m.refused.bits[r / 8] = static_cast<std::uint8_t>(m.refused.bits[r / 8] | (1u << (r % 8)));
    }
    for (std::uint8_t j = 0; j < offers.size(); ++j) {
      if (j == index) {
        continue;
      }
      const auto e_j = crypto::PublicKey::from_point(view(offers[j].dh_key)).value();
      const SecretBytes mac_key = dake_key_to(sid, j, offers[j]);
      codec::PairShare share;
      share.mac = crypto::hmac_sha256(
          mac_key.view(), view(spec::cat({spec::txt("mpotr-v2 dake"), view(sid), view(spec::u8(index)), view(spec::u8(j)),
                                          view(offer.signing_key), view(offer.dh_key), view(m.elgamal_r)})));
      if (t.bad_mac_for == j) {
        share.mac[0] ^= 0x01;
      }
      const SecretBytes shared = elgamal_r.ecdh(e_j).value();
      const Hash32 pad = spec::elgamal_pad(sid, index, j, shared, elgamal_r.public_key().point(), offers[j].dh_key);
      const Hash32& x = t.alt_secret_for == j ? alt_secret : secret;
      for (std::size_t b = 0; b < 32; ++b) {
        share.secret_ct[b] = static_cast<std::uint8_t>(x[b] ^ pad[b]);
      }
      m.shares.push_back(share);
    }
    m.signature = sign(sid, codec::encode_signed_part(m));
    return codec::encode(m);
  }

  // The contribution member j sent us.
  Hash32 open(const Hash32& sid, std::uint8_t j, const codec::KeyShare& ks) {
    const codec::PairShare& share = ks.shares[index < j ? index : index - 1];
    const SecretBytes shared = dh.ecdh(crypto::PublicKey::from_point(view(ks.elgamal_r)).value()).value();
    const Hash32 pad = spec::elgamal_pad(sid, j, index, shared, ks.elgamal_r, offer.dh_key);
    Hash32 x{};
    for (std::size_t b = 0; b < 32; ++b) {
      x[b] = static_cast<std::uint8_t>(share.secret_ct[b] ^ pad[b]);
    }
    return x;
  }

  // §4.5: an accusation of member `accused`, revealing our e (or `dh_private` if given).
  Bytes accuse(const Hash32& sid, std::uint8_t accused, const Bytes& their_key_share,
               std::optional<Hash32> dh_private = std::nullopt) {
    codec::Accuse m;
    m.session_id = sid;
    m.sender = index;
    m.accused = accused;
    if (dh_private) {
      m.dh_private = *dh_private;
    } else {
      const SecretBytes e = dh.scalar();
      std::copy_n(e.data(), 32, m.dh_private.begin());
    }
    m.key_share = their_key_share;
    m.signature = sign(sid, codec::encode_signed_part(m));
    return codec::encode(m);
  }

  // §4.6: a chat entry of ours with the acknowledgements we choose, MAC'd under K_auth of
  // `group` and signed: what a member (who holds G and its own S) can send.
  Bytes entry(const Hash32& sid, const Hash32& group, std::uint32_t seq, std::vector<std::uint32_t> acks) {
    codec::Data d;
    std::copy_n(sid.begin(), d.session_tag.size(), d.session_tag.begin());  // §5.2: sid[0..8)
    d.sender = index;
    d.seq = seq;
    d.acks = std::move(acks);
    d.ciphertext = {'h', 'i'};
    d.mac = spec::message_mac(spec::auth_key(group), view(codec::encode_mac_part(d)));
    d.signature = sign(sid, codec::encode_signed_part(d));
    return codec::encode(d);
  }

  // §4.7: a shutdown-round message of ours (Shutdown, Digest, End, Quit) with the fields the
  // caller set, MAC'd under K_auth of `group` and signed.
  template <class M>
  Bytes sealed(const Hash32& sid, const Hash32& group, M m) {
    std::copy_n(sid.begin(), m.session_tag.size(), m.session_tag.begin());
    m.sender = index;
    m.mac = spec::message_mac(spec::auth_key(group), view(codec::encode_mac_part(m)));
    m.signature = sign(sid, codec::encode_signed_part(m));
    return codec::encode(m);
  }

  Bytes attest(const Hash32& sid, const Hash32& th, const Hash32& kc) {
    codec::Attest m;
    m.session_id = sid;
    m.sender = index;
    m.transcript_hash = th;
    m.key_confirm = kc;
    m.signature = sign(sid, codec::encode_signed_part(m));
    return codec::encode(m);
  }
};

// alice and bob are engines; carol (index 2) is a Fake. Offers of alice and bob are queued.
struct FakeSetup {
  Room room{0};
  std::vector<std::string> nicks{"alice", "bob", "carol"};
  Fake carol{"carol", 2, nicks, 4242};

  FakeSetup() {
    room.add_member("alice");
    room.add_member("bob");
    const auto roster = roster_of({"alice", "bob", "carol"});
    for (auto& m : room.members()) {
      room.absorb(m, m.engine->set_roster(roster, room.now(), *m.rng));
    }
  }
  SimMember& alice() { return room.member(0); }
  SimMember& bob() { return room.member(1); }
  void inject(const Bytes& b) { room.queue().push_back(Wire{"carol", b}); }

  std::vector<Bytes> offer_bytes() const {
    return {sent_by(room, "alice", MessageType::Offer).at(0), sent_by(room, "bob", MessageType::Offer).at(0),
            carol.offer_bytes};
  }
  std::vector<codec::Offer> offers() const {
    std::vector<codec::Offer> out;
    for (const auto& b : offer_bytes()) {
      out.push_back(decode_as<codec::Offer>(b));
    }
    return out;
  }
  Hash32 sid() const { return spec::session_id(Room::kRoomName, offers()); }

  // Offers delivered: alice and bob have sent their key shares and wait for carol's.
  void run_offers() {
    inject(carol.offer_bytes);
    room.run();
    REQUIRE(sent_by(room, "alice", MessageType::KeyShare).size() == 1);
    REQUIRE(sent_by(room, "bob", MessageType::KeyShare).size() == 1);
  }

  // The whole setup with an honest carol; returns the group secret (which carol, a member, holds).
  Hash32 establish_with_carol() {
    run_offers();
    const Bytes kc = carol.key_share(sid(), offers(), {});
    inject(kc);
    room.run();
    inject(honest_attest(kc));
    room.run();
    REQUIRE(alice().engine->phase() == Phase::Established);
    const Hash32 s = sid();
    const Bytes ka = sent_by(room, "alice", MessageType::KeyShare).at(0);
    const Bytes kb = sent_by(room, "bob", MessageType::KeyShare).at(0);
    return spec::group_secret(s, {carol.open(s, 0, decode_as<codec::KeyShare>(ka)),
                                  carol.open(s, 1, decode_as<codec::KeyShare>(kb)), carol.secret});
  }

  // carol's correct attest, given the key share she sent (to both).
  Bytes honest_attest(const Bytes& carol_ks) {
    const Hash32 s = sid();
    const Bytes ka = sent_by(room, "alice", MessageType::KeyShare).at(0);
    const Bytes kb = sent_by(room, "bob", MessageType::KeyShare).at(0);
    const std::vector<Hash32> xs{carol.open(s, 0, decode_as<codec::KeyShare>(ka)),
                                 carol.open(s, 1, decode_as<codec::KeyShare>(kb)), carol.secret};
    const Hash32 th = spec::transcript_hash(offer_bytes(), {ka, kb, carol_ks});
    return carol.attest(s, th, spec::key_confirm(spec::group_secret(s, xs), th));
  }
};

}  // namespace

// =============================================================================================
// §7.0 General
// =============================================================================================

TEST_CASE("R-GEN-1 every rejected input leaves the engine unchanged", "[rules]") {
  // A whole conversation (setup, chat, heartbeats, shutdown); before each genuine delivery, a
  // copy of the recipient's engine is offered mutated versions of the payload.
  Room room(3);
  room.send_text("alice", "x");  // NotReady: nothing queued
  std::size_t rejected = 0;
  auto probe_and_deliver = [&](std::size_t steps) {
    for (std::size_t s = 0; s < steps && !room.queue().empty(); ++s) {
      const Wire w = room.queue().front();
      room.queue().pop_front();
      for (auto& m : room.members()) {
        std::vector<std::pair<std::string, Bytes>> variants;
        for (std::size_t at : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{12}, w.payload.size() / 2,
                               w.payload.size() - 40, w.payload.size() - 1}) {
          Bytes b = w.payload;
          b[at] ^= 0x01;
          variants.emplace_back(w.from, b);
        }
        variants.emplace_back(w.from, Bytes(w.payload.begin(), w.payload.end() - 1));
        variants.emplace_back(w.from == "bob" ? "carol" : "bob", w.payload);
        for (const auto& [from, bytes] : variants) {
          Engine copy = *m.engine;
          DeterministicRng rng(3);
          const StateSummary before = copy.summary();
          auto r = copy.receive(from, view(bytes), room.now(), rng);
          if (!r.ok()) {
            ++rejected;
            INFO(m.nick << " ← " << from << ": " << to_string(r.error().code) << " " << r.error().detail);
            REQUIRE(copy.summary() == before);
          }
        }
        room.deliver_to(m, w);
      }
    }
  };
  probe_and_deliver(1000);
  REQUIRE(room.all_established());
  room.send_text("alice", "one");
  room.send_text("bob", "two");
  probe_and_deliver(1000);
  room.advance(kDefaultHeartbeatMs);
  room.absorb(room.by_nick("carol"), room.by_nick("carol").engine->leave(room.now(), *room.by_nick("carol").rng));
  probe_and_deliver(1000);
  REQUIRE(room.events_of(room.by_nick("carol"), EventKind::ReadyToLeave).size() == 1);
  // Our own echoes with a flipped signature bit are still our echoes (same signed part): ignored.
  REQUIRE(rejected > 450);
}

TEST_CASE("R-GEN-3 a message costs O(its size): a member's claim of 2^20 entries costs the receiver nothing", "[rules]") {
  FakeSetup f;
  const Hash32 group = f.establish_with_carol();
  const Hash32 sid = f.sid();
  auto& alice = f.alice();
  // A normal entry, for scale.
  std::size_t normal = 0;
  {
    test::AllocationScope scope;
    require_accepted(f.room, alice, "carol", f.carol.entry(sid, group, 1, {0, 0}));
    normal = scope.bytes();
  }
  // carol claims bob wrote 2^20 entries (the largest count a receiver accepts, R-DEC-11).
  std::size_t claim = 0;
  std::size_t loss = 0;
  {
    test::AllocationScope scope;
    const Output out = require_accepted(f.room, alice, "carol", f.carol.entry(sid, group, 2, {0, kMaxMessagesPerSession}));
    claim = scope.bytes();
    REQUIRE(kinds(out.events, EventKind::Gap).at(0).seq_end == kMaxMessagesPerSession);
  }
  {
    test::AllocationScope scope;
    auto t = alice.engine->tick(f.room.now() + kDefaultGapTimeoutMs, *alice.rng);
    REQUIRE(t.ok());
    loss = scope.bytes();
    const auto lost = kinds(t->events, EventKind::MessageLost);
    REQUIRE(lost.size() == 1);
    REQUIRE(lost[0].seq_end == kMaxMessagesPerSession);
  }
  INFO("normal entry " << normal << " B, claim " << claim << " B, loss " << loss << " B");
  REQUIRE(claim <= 4 * normal + 4096);
  REQUIRE(loss <= 4 * normal + 4096);
  // The loss is one run: a shutdown digest over it costs one hash, and the session goes on.
  {
    test::AllocationScope scope;
    const Bytes next = send_from(*alice.engine, *alice.rng, f.room.now(), "still fine");
    REQUIRE(scope.bytes() <= 4 * normal + 4096);
    REQUIRE(decode_as<codec::Data>(next).acks.at(0) == 0);  // bob's chain is broken at his first entry
  }
}

TEST_CASE("R-GEN-4 only authenticated messages name a member as their author", "[rules]") {
  FakeSetup f;
  const Hash32 group = f.establish_with_carol();
  const Hash32 sid = f.sid();
  auto& alice = f.alice();
  // A gap bob's own entry proves has no `by`: his signature vouches for the entries before it.
  f.room.send_text("bob", "one");
  f.room.queue().pop_back();  // lost on the way
  f.room.send_text("bob", "two");
  const Output held = require_accepted(f.room, alice, "bob", f.room.queue().back().payload);
  REQUIRE(kinds(held.events, EventKind::Gap).at(0).by.empty());
  f.room.queue().clear();
  // A forgery in bob's name is an error about a message claiming to be his, never an event of his.
  Bytes forged = f.carol.entry(sid, group, 1, {0, 0});
  forged[12] ^= 0x01;
  const StateSummary before = alice.engine->summary();
  auto r = alice.engine->receive("bob", view(forged), f.room.now(), *alice.rng);
  REQUIRE_FALSE(r.ok());
  REQUIRE(alice.engine->summary() == before);
  // A gap that only carol's acknowledgement claims names carol as its source.
  const Output out = require_accepted(f.room, alice, "carol", f.carol.entry(sid, group, 1, {0, 5}));
  REQUIRE(kinds(out.events, EventKind::Gap).empty());  // a gap of bob's is already pending
  auto t = alice.engine->tick(f.room.now() + kDefaultGapTimeoutMs, *alice.rng);
  REQUIRE(t.ok());
  // bob vouched for one entry before #2; carol alone claims #3..#5.
  const auto lost = kinds(t->events, EventKind::MessageLost).at(0);
  REQUIRE(lost.nick == "bob");
  REQUIRE(lost.seq == 1);
  REQUIRE(lost.seq_end == 1);
  REQUIRE(lost.by.empty());
  auto t2 = alice.engine->tick(f.room.now() + 2 * kDefaultGapTimeoutMs, *alice.rng);
  REQUIRE(t2.ok());
  const auto claimed = kinds(t2->events, EventKind::MessageLost).at(0);
  REQUIRE(claimed.seq == 3);
  REQUIRE(claimed.seq_end == 5);
  REQUIRE(claimed.by == "carol");
  REQUIRE(claimed.detail.find("only 'carol' acknowledged") != std::string::npos);
}

TEST_CASE("R-GEN-2 errors in buffered input are reported as Rejected events, the call succeeds", "[rules]") {
  Room room(1);
  room.add_member("carol");
  auto& alice = room.member(0);
  auto& carol = room.member(1);
  const auto ac = roster_of({"alice", "carol"});
  room.absorb(carol, carol.engine->set_roster(ac, room.now(), *carol.rng));
  auto bad = decode_as<codec::Offer>(take_last(room));
  bad.dh_key[64] ^= 0x01;  // not on the curve: only checked when the offer is used
  require_accepted(room, alice, "carol", codec::encode(bad));
  auto r = alice.engine->set_roster(ac, room.now(), *alice.rng);
  REQUIRE(r.ok());
  const auto rejected = kinds(r->events, EventKind::Rejected);
  REQUIRE(rejected.size() == 1);
  REQUIRE(rejected[0].nick == "carol");
  REQUIRE(rejected[0].code == ErrorCode::DecodeBadValue);
  REQUIRE(r->broadcasts.size() == 1);  // our offer only
  REQUIRE(alice.engine->phase() == Phase::SettingUp);
}

// =============================================================================================
// §7.1 Decoding
// =============================================================================================

namespace {
// A bob → alice chat entry of an established 3-member room, not yet delivered.
struct DecodeFixture {
  Room room{3};
  Bytes b1;
  DecodeFixture() {
    establish(room);
    room.send_text("bob", "hello");
    b1 = take_last(room);
  }
  SimMember& alice() { return room.by_nick("alice"); }
  Bytes offer() const { return sent_by(room, "bob", MessageType::Offer).at(0); }
  Bytes key_share() const { return sent_by(room, "bob", MessageType::KeyShare).at(0); }
};

// Data layout by hand, to place arbitrary varint bytes.
Bytes raw_data_with_acks(const Bytes& ack_bytes, std::uint8_t ack_count) {
  Bytes b{kProtocolVersion, 0x10};
  b.insert(b.end(), 8, 0x00);          // session_tag
  b.push_back(1);                      // sender
  append(b, view(spec::u32(1)));       // seq
  b.push_back(ack_count);
  append(b, view(ack_bytes));
  b.insert(b.end(), 32, 0x00);         // view_digest
  append(b, view(Bytes{0x00, 0x01, 'x'}));  // ciphertext<0..2^16-1>
  b.insert(b.end(), 32, 0x00);         // mac
  b.insert(b.end(), 64, 0x00);         // signature
  return b;
}
}  // namespace

TEST_CASE("R-DEC-1 a payload above 64 KiB is rejected before parsing", "[rules]") {
  DecodeFixture f;
  Bytes big(kMaxWireMessageLen + 1, 0x00);
  big[0] = kProtocolVersion;
  big[1] = 0x10;
  require_rejected(f.room, f.alice(), "bob", big, ErrorCode::DecodeOversize);
  require_accepted(f.room, f.alice(), "bob", f.b1);
}

TEST_CASE("R-DEC-2 an unknown protocol version is rejected, checked before the length", "[rules]") {
  DecodeFixture f;
  Bytes m = f.b1;
  for (std::uint8_t v : {0, 1, 3, 0xff}) {  // 1: a version 1 client's message
    m[0] = v;
    CAPTURE(int{v});
    require_rejected(f.room, f.alice(), "bob", m, ErrorCode::DecodeBadVersion);
  }
  require_rejected(f.room, f.alice(), "bob", Bytes{}, ErrorCode::DecodeTruncated);
  require_rejected(f.room, f.alice(), "bob", Bytes{0x05}, ErrorCode::DecodeBadVersion);  // one byte, not 2
  require_rejected(f.room, f.alice(), "bob", Bytes{kProtocolVersion}, ErrorCode::DecodeTruncated);
}

TEST_CASE("R-DEC-3 an unknown message type is rejected", "[rules]") {
  DecodeFixture f;
  for (std::uint8_t t : {0x00, 0x05, 0x12, 0x25, 0x7f, 0xff}) {
    Bytes m = f.b1;
    m[1] = t;
    CAPTURE(int{t});
    require_rejected(f.room, f.alice(), "bob", m, ErrorCode::DecodeUnknownType);
  }
}

TEST_CASE("R-DEC-4 a truncated message is rejected", "[rules]") {
  DecodeFixture f;
  for (std::size_t cut : {std::size_t{1}, std::size_t{64}, f.b1.size() - 3}) {
    const Bytes m(f.b1.begin(), f.b1.end() - static_cast<std::ptrdiff_t>(cut));
    CAPTURE(cut);
    require_rejected(f.room, f.alice(), "bob", m, ErrorCode::DecodeTruncated);
  }
  Bytes o = f.offer();
  o.pop_back();
  require_rejected(f.room, f.alice(), "bob", o, ErrorCode::DecodeTruncated);
}

TEST_CASE("R-DEC-5 trailing bytes after the last field are rejected", "[rules]") {
  DecodeFixture f;
  Bytes m = f.b1;
  m.push_back(0x00);
  require_rejected(f.room, f.alice(), "bob", m, ErrorCode::DecodeTrailingBytes);
  Bytes o = f.offer();
  o.push_back(0x00);
  require_rejected(f.room, f.alice(), "bob", o, ErrorCode::DecodeTrailingBytes);
  Bytes k = f.key_share();
  k.push_back(0x00);
  require_rejected(f.room, f.alice(), "bob", k, ErrorCode::DecodeTrailingBytes);
}

TEST_CASE("R-DEC-6 fields above their bound are rejected as oversize", "[rules]") {
  DecodeFixture f;
  SECTION("nick longer than 64 bytes") {
    auto o = decode_as<codec::Offer>(f.offer());
    o.nick = std::string(kMaxNickLen + 1, 'b');
    require_rejected(f.room, f.alice(), "bob", codec::encode(o), ErrorCode::DecodeOversize);
  }
  SECTION("ciphertext longer than 16 KiB") {
    auto d = decode_as<codec::Data>(f.b1);
    d.ciphertext.resize(kMaxTextLen + 1);
    require_rejected(f.room, f.alice(), "bob", codec::encode(d), ErrorCode::DecodeOversize);
  }
  SECTION("ack_count of 128 and more") {
    auto d = decode_as<codec::Data>(f.b1);
    d.acks.assign(kMaxMembers, 0);
    require_rejected(f.room, f.alice(), "bob", codec::encode(d), ErrorCode::DecodeOversize);
    d.acks.assign(255, 0);
    require_rejected(f.room, f.alice(), "bob", codec::encode(d), ErrorCode::DecodeOversize);
  }
  SECTION("key share count of 128 and more") {
    auto k = decode_as<codec::KeyShare>(f.key_share());
    k.shares.resize(kMaxMembers);
    require_rejected(f.room, f.alice(), "bob", codec::encode(k), ErrorCode::DecodeOversize);
  }
}

TEST_CASE("R-DEC-6 a length prefix or count is checked as soon as it is read, before what it announces", "[rules]") {
  // §4.9 step 3: each payload below ends right after the prefix or count; the bound decides.
  DecodeFixture f;
  const Bytes o = f.offer();
  Bytes nick(o.begin(), o.begin() + 38);  // version, type, roster_digest, attempt
  nick.push_back(kMaxNickLen + 1);        // none of the 65 bytes it announces follows
  require_rejected(f.room, f.alice(), "bob", nick, ErrorCode::DecodeOversize);
  nick.back() = 0;  // an empty nick is found before the missing nonce
  require_rejected(f.room, f.alice(), "bob", nick, ErrorCode::DecodeBadValue);
  const Bytes k = f.key_share();
  Bytes count(k.begin(), k.begin() + 148);  // up to and including `refused`
  count.push_back(kMaxMembers);
  require_rejected(f.room, f.alice(), "bob", count, ErrorCode::DecodeOversize);
  count.back() = 0;
  require_rejected(f.room, f.alice(), "bob", count, ErrorCode::DecodeBadValue);
  Bytes acks(f.b1.begin(), f.b1.begin() + 15);  // up to and including seq
  acks.push_back(kMaxMembers);
  require_rejected(f.room, f.alice(), "bob", acks, ErrorCode::DecodeOversize);
  const Bytes raw = raw_data_with_acks(Bytes{0x00, 0x00}, 2);
  Bytes ct(raw.begin(), raw.begin() + 50);  // up to and including view_digest
  append(ct, view(spec::u32(kMaxTextLen + 1)).subspan(2));  // u16 length 16385, no text
  require_rejected(f.room, f.alice(), "bob", ct, ErrorCode::DecodeOversize);
}

TEST_CASE("R-DEC-7 a point not in uncompressed form is rejected", "[rules]") {
  DecodeFixture f;
  for (int field = 0; field < 3; ++field) {
    auto o = decode_as<codec::Offer>(f.offer());
    crypto::Point& p = field == 0 ? o.identity_key : field == 1 ? o.dh_key : o.signing_key;
    for (std::uint8_t prefix : {0x00, 0x02, 0x03, 0x06}) {
      p[0] = prefix;
      CAPTURE(field, int{prefix});
      require_rejected(f.room, f.alice(), "bob", codec::encode(o), ErrorCode::DecodeBadValue);
    }
  }
  auto k = decode_as<codec::KeyShare>(f.key_share());
  k.elgamal_r[0] = 0x02;
  require_rejected(f.room, f.alice(), "bob", codec::encode(k), ErrorCode::DecodeBadValue);
}

TEST_CASE("R-DEC-7 a point is read whole before its form is checked", "[rules]") {
  DecodeFixture f;
  Bytes o = f.offer();
  o[74] = 0x02;  // identity_key (after nick "bob" and the nonce) in compressed form ...
  o.resize(74 + 10);  // ... but cut short inside the point
  require_rejected(f.room, f.alice(), "bob", o, ErrorCode::DecodeTruncated);
}

TEST_CASE("R-DEC-8 an empty nick, a zero sequence number or a zero count is rejected", "[rules]") {
  DecodeFixture f;
  auto o = decode_as<codec::Offer>(f.offer());
  o.nick.clear();
  require_rejected(f.room, f.alice(), "", codec::encode(o), ErrorCode::DecodeBadValue);
  auto d = decode_as<codec::Data>(f.b1);
  d.seq = 0;
  require_rejected(f.room, f.alice(), "bob", codec::encode(d), ErrorCode::DecodeBadValue);
  d = decode_as<codec::Data>(f.b1);
  d.acks.clear();
  require_rejected(f.room, f.alice(), "bob", codec::encode(d), ErrorCode::DecodeBadValue);
  auto k = decode_as<codec::KeyShare>(f.key_share());
  k.shares.clear();
  require_rejected(f.room, f.alice(), "bob", codec::encode(k), ErrorCode::DecodeBadValue);
}

TEST_CASE("R-DEC-9 a heartbeat with text or a chat entry without text is rejected", "[rules]") {
  DecodeFixture f;
  auto d = decode_as<codec::Data>(f.b1);
  d.type = MessageType::Heartbeat;
  require_rejected(f.room, f.alice(), "bob", codec::encode(d), ErrorCode::DecodeBadValue);
  d.type = MessageType::Data;
  d.ciphertext.clear();
  require_rejected(f.room, f.alice(), "bob", codec::encode(d), ErrorCode::DecodeBadValue);
}

TEST_CASE("R-DEC-9 is decided once the ciphertext is read: a heartbeat whose text is cut short is truncated", "[rules]") {
  DecodeFixture f;
  Bytes hb = raw_data_with_acks(Bytes{0x00, 0x00}, 2);
  hb[1] = 0x11;  // a heartbeat carrying one byte of text
  require_rejected(f.room, f.alice(), "bob", hb, ErrorCode::DecodeBadValue);
  hb.resize(52);  // the length (1) is there, the text is not
  require_rejected(f.room, f.alice(), "bob", hb, ErrorCode::DecodeTruncated);
}

TEST_CASE("R-DEC-10 a varint that is not minimal or exceeds 32 bits is rejected", "[rules]") {
  DecodeFixture f;
  // Well-formed baseline: decodes, then fails later for routing reasons only.
  REQUIRE(codec::decode(view(raw_data_with_acks(Bytes{0x00, 0x7f}, 2))).ok());
  REQUIRE(codec::decode(view(raw_data_with_acks(Bytes{0x00, 0x80, 0x80, 0x40}, 2))).ok());  // 2^20
  for (const Bytes& acks : {Bytes{0x00, 0x80, 0x00},                    // 0 in two bytes
                            Bytes{0x00, 0xff, 0x00},                    // 127 in two bytes
                            Bytes{0x00, 0xff, 0xff, 0xff, 0xff, 0x1f},  // 2^33 − 1
                            Bytes{0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}}) {  // 6 bytes
    CAPTURE(to_hex(view(acks)));
    require_rejected(f.room, f.alice(), "bob", raw_data_with_acks(acks, 2), ErrorCode::DecodeBadValue);
  }
}

TEST_CASE("R-DEC-10 a fifth varint byte with its continuation bit is rejected at once, even at the end", "[rules]") {
  DecodeFixture f;
  const Bytes raw = raw_data_with_acks(Bytes{0x00, 0x00}, 2);
  Bytes five(raw.begin(), raw.begin() + 16);  // up to and including ack_count
  append(five, view(Bytes{0x00, 0x80, 0x80, 0x80, 0x80, 0x80}));  // the payload ends here
  require_rejected(f.room, f.alice(), "bob", five, ErrorCode::DecodeBadValue);
  Bytes two(raw.begin(), raw.begin() + 16);
  append(two, view(Bytes{0x00, 0x80, 0x80}));  // ends inside a varint of at most 5 bytes
  require_rejected(f.room, f.alice(), "bob", two, ErrorCode::DecodeTruncated);
}

TEST_CASE("R-DEC-11 a sequence number, ack or final count above 2^20 is rejected", "[rules]") {
  DecodeFixture f;
  // 2^20 + 1 as an ack, and the largest varint (2^32 − 1): one message, whatever it claims.
  for (const Bytes& acks : {Bytes{0x00, 0x81, 0x80, 0x40}, Bytes{0x00, 0xff, 0xff, 0xff, 0xff, 0x0f}}) {
    CAPTURE(to_hex(view(acks)));
    require_rejected(f.room, f.alice(), "bob", raw_data_with_acks(acks, 2), ErrorCode::DecodeBadValue);
  }
  auto d = decode_as<codec::Data>(f.b1);
  d.seq = kMaxMessagesPerSession + 1;
  require_rejected(f.room, f.alice(), "bob", codec::encode(d), ErrorCode::DecodeBadValue);
  codec::Shutdown sd;
  sd.final_count = kMaxMessagesPerSession + 1;
  require_rejected(f.room, f.alice(), "bob", codec::encode(sd), ErrorCode::DecodeBadValue);
  codec::Quit q;
  q.final_count = 0xffffffffu;
  require_rejected(f.room, f.alice(), "bob", codec::encode(q), ErrorCode::DecodeBadValue);
  require_accepted(f.room, f.alice(), "bob", f.b1);
}

TEST_CASE("R-DEC-12 an accusation of its own sender or with no key share is rejected", "[rules]") {
  DecodeFixture f;
  codec::Accuse a;
  a.sender = 1;
  a.accused = 1;
  a.key_share = f.key_share();
  require_rejected(f.room, f.alice(), "bob", codec::encode(a), ErrorCode::DecodeBadValue);
  a.accused = 0;
  a.key_share.clear();
  require_rejected(f.room, f.alice(), "bob", codec::encode(a), ErrorCode::DecodeBadValue);
  a.key_share = f.key_share();
  REQUIRE(codec::decode(view(codec::encode(a))).ok());
}

// =============================================================================================
// §7.2 Own echoes
// =============================================================================================

TEST_CASE("R-ECHO-1 the room's reflection of our own broadcast is ignored", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  room.send_text("alice", "mine");
  const Bytes a1 = take_last(room);
  const StateSummary before = alice.engine->summary();
  const Output out = require_accepted(room, alice, "alice", a1);
  REQUIRE(out.events.empty());
  REQUIRE(out.broadcasts.empty());
  REQUIRE(alice.engine->summary() == before);
  // Every earlier own broadcast too (offer, key share, attest).
  for (MessageType t : {MessageType::Offer, MessageType::KeyShare, MessageType::Attest}) {
    const Output o = require_accepted(room, alice, "alice", sent_by(room, "alice", t).at(0));
    REQUIRE(o.events.empty());
  }
  REQUIRE(alice.engine->summary() == before);
}

TEST_CASE("R-ECHO-2 a message in our name that we did not send is rejected", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  Engine evil = *alice.engine;  // same keys: what a thief of alice's session keys could sign
  DeterministicRng evil_rng(99);
  SECTION("chat entry") {
    const Bytes forged = send_from(evil, evil_rng, room.now(), "not alice");
    require_rejected(room, alice, "alice", forged, ErrorCode::NickMismatch);
  }
  SECTION("shutdown and digest") {
    auto closing = evil.leave(room.now(), evil_rng);
    REQUIRE(closing.ok());
    const Bytes sd = first_of(closing->broadcasts, MessageType::Shutdown);
    require_rejected(room, alice, "alice", sd, ErrorCode::NickMismatch);
  }
  SECTION("offer with a nonce we never used") {
    auto o = decode_as<codec::Offer>(sent_by(room, "alice", MessageType::Offer).at(0));
    o.nonce[0] ^= 0x01;
    require_rejected(room, alice, "alice", codec::encode(o), ErrorCode::NickMismatch);
  }
}

// =============================================================================================
// §7.3 Offers
// =============================================================================================

namespace {
// Room(3) before any delivery: the queue holds the offers of alice, bob, carol in that order.
Bytes queued_offer(Room& room, std::size_t i) {
  REQUIRE(room.queue().at(i).from == room.member(i).nick);
  return room.queue().at(i).payload;
}
}  // namespace

TEST_CASE("R-OFF-1 an offer whose nick is not the transport sender is rejected", "[rules]") {
  Room room(3);
  auto& alice = room.by_nick("alice");
  const Bytes ob = queued_offer(room, 1);
  require_rejected(room, alice, "carol", ob, ErrorCode::NickMismatch);
  require_rejected(room, alice, "mallory", ob, ErrorCode::NickMismatch);
  require_accepted(room, alice, "bob", ob);
}

TEST_CASE("R-OFF-2 an offer in our name is accepted only as the reflection of one we sent", "[rules]") {
  Room room(3);
  auto& alice = room.by_nick("alice");
  const Bytes oa = queued_offer(room, 0);
  const StateSummary before = alice.engine->summary();
  REQUIRE(require_accepted(room, alice, "alice", oa).events.empty());
  REQUIRE(alice.engine->summary() == before);
  auto other = decode_as<codec::Offer>(oa);
  other.dh_key = decode_as<codec::Offer>(queued_offer(room, 1)).dh_key;  // same nonce, other key
  require_rejected(room, alice, "alice", codec::encode(other), ErrorCode::NickMismatch);
  auto fresh = decode_as<codec::Offer>(oa);
  fresh.nonce[0] ^= 0x01;  // a nonce we never used
  require_rejected(room, alice, "alice", codec::encode(fresh), ErrorCode::NickMismatch);
  // After a restart the old offer is still recognised as ours.
  room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
  require_accepted(room, alice, "alice", oa);
}

TEST_CASE("R-OFF-3 an offer with the nonce of the offer held from that member is a duplicate or a mismatch",
          "[rules]") {
  Room room(3);
  auto& alice = room.by_nick("alice");
  const Bytes ob = queued_offer(room, 1);
  require_accepted(room, alice, "bob", ob);
  require_rejected(room, alice, "bob", ob, ErrorCode::Duplicate);
  auto a = decode_as<codec::Offer>(ob);
  a.attempt = 7;
  require_rejected(room, alice, "bob", codec::encode(a), ErrorCode::RosterMismatch);
  auto r = decode_as<codec::Offer>(ob);
  r.roster_digest[0] ^= 0x01;
  require_rejected(room, alice, "bob", codec::encode(r), ErrorCode::RosterMismatch);
  auto k = decode_as<codec::Offer>(ob);
  k.signing_key = decode_as<codec::Offer>(queued_offer(room, 2)).signing_key;  // a valid point
  require_rejected(room, alice, "bob", codec::encode(k), ErrorCode::UnexpectedMessage);
}

TEST_CASE("R-OFF-4 an offer whose nonce was seen before is a replay", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  const Bytes ob = sent_by(room, "bob", MessageType::Offer).at(0);
  require_rejected(room, alice, "bob", ob, ErrorCode::Replay);
  // Even with a higher attempt number it cannot be re-used: the nonce decides.
  auto higher = decode_as<codec::Offer>(ob);
  higher.attempt = 5;
  require_rejected(room, alice, "bob", codec::encode(higher), ErrorCode::Replay);
  REQUIRE(alice.engine->phase() == Phase::Established);
  // Also after the attempt that used it was replaced.
  room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
  room.run();
  REQUIRE(room.all_established());
  require_rejected(room, alice, "bob", ob, ErrorCode::Replay);
}

TEST_CASE("R-OFF-5 an offer while leaving is unexpected", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  room.absorb(alice, alice.engine->leave(room.now(), *alice.rng));
  auto r = bob.engine->restart(room.now(), *bob.rng);
  REQUIRE(r.ok());
  require_rejected(room, alice, "bob", first_of(r->broadcasts, MessageType::Offer), ErrorCode::UnexpectedMessage);
}

TEST_CASE("R-OFF-6 an offer for a roster we have not seen is buffered, bounded per sender", "[rules]") {
  Room room(1);  // alice alone: no attempt
  room.add_member("carol");
  auto& alice = room.member(0);
  auto& carol = room.member(1);
  const auto ac = roster_of({"alice", "carol"});
  room.absorb(carol, carol.engine->set_roster(ac, room.now(), *carol.rng));
  const Bytes oc = take_last(room);

  const StateSummary before = alice.engine->summary();
  const Output held = require_accepted(room, alice, "carol", oc);
  REQUIRE(held.broadcasts.empty());
  REQUIRE(held.events.empty());
  REQUIRE_FALSE(alice.engine->summary() == before);

  SECTION("used when our roster reaches it") {
    auto r = alice.engine->set_roster(ac, room.now(), *alice.rng);
    REQUIRE(r.ok());
    REQUIRE(r->broadcasts.size() == 2);  // our offer, and at once our key share: carol's offer was waiting
    REQUIRE(type_of(r->broadcasts[1]) == MessageType::KeyShare);
  }
  SECTION("the highest buffered attempt number for that roster is adopted") {
    auto o = decode_as<codec::Offer>(oc);
    o.attempt = 3;
    o.nonce[0] ^= 0x01;
    require_accepted(room, alice, "carol", codec::encode(o));
    auto r = alice.engine->set_roster(ac, room.now(), *alice.rng);
    REQUIRE(r.ok());
    REQUIRE(decode_as<codec::Offer>(r->broadcasts.at(0)).attempt == 3);
    REQUIRE(r->broadcasts.size() == 2);  // seeded with the attempt-3 offer; the attempt-0 one is dropped
  }
  SECTION("the oldest of more than 4 is dropped") {
    for (std::uint8_t k = 1; k <= kMaxPendingOffersPerSender; ++k) {
      auto o = decode_as<codec::Offer>(oc);
      o.roster_digest[0] ^= k;  // rosters alice never sees
      o.nonce[0] ^= k;
      require_accepted(room, alice, "carol", codec::encode(o));
    }
    auto r = alice.engine->set_roster(ac, room.now(), *alice.rng);
    REQUIRE(r.ok());
    REQUIRE(r->broadcasts.size() == 1);  // only our offer: carol's was evicted
  }
}

TEST_CASE("R-OFF-6 a seed that conflicts with one already seeded restarts the attempt, the seeds left are dropped", "[rules]") {
  // Seeds are processed as R-OFF-11, its first bullet included: a second offer of one member
  // for the same attempt (a stale one, typically, from an earlier time the roster was the same)
  // moves us to the next attempt number, seeded with neither, and the seeds not yet processed,
  // which carry the abandoned number, are dropped without an event.
  Room room(1);  // alice alone: no attempt
  room.add_member("bob");
  room.add_member("carol");
  auto& alice = room.member(0);
  auto& bob = room.member(1);
  auto& carol = room.member(2);
  const auto abc = roster_of({"alice", "bob", "carol"});
  room.absorb(bob, bob.engine->set_roster(abc, room.now(), *bob.rng));
  const Bytes ob = take_last(room);
  room.absorb(carol, carol.engine->set_roster(abc, room.now(), *carol.rng));
  const Bytes oc = take_last(room);
  auto second = decode_as<codec::Offer>(ob);
  second.nonce[0] ^= 0x01;  // the same member, attempt and roster, another offer
  const Bytes ob2 = codec::encode(second);
  for (const Bytes* o : {&ob, &ob2, &oc}) {
    const Output held = require_accepted(room, alice, decode_as<codec::Offer>(*o).nick, *o);
    REQUIRE(held.events.empty());
    REQUIRE(held.broadcasts.empty());
  }
  // Seeds: bob's two offers (arrival order), then carol's (nick order).
  auto r = alice.engine->set_roster(abc, room.now(), *alice.rng);
  REQUIRE(r.ok());
  REQUIRE(kind_sequence(r->events) == std::vector<EventKind>{EventKind::SetupStarted, EventKind::SetupStarted});
  REQUIRE(type_sequence(r->broadcasts) == std::vector<MessageType>{MessageType::Offer, MessageType::Offer});
  REQUIRE(decode_as<codec::Offer>(r->broadcasts[0]).attempt == 0);
  REQUIRE(decode_as<codec::Offer>(r->broadcasts[1]).attempt == 1);
  REQUIRE(alice.engine->phase() == Phase::SettingUp);
  // bob's first offer was stored by attempt 0 (its nonce remembered); the conflicting one and
  // carol's, never stored, are now stale.
  require_rejected(room, alice, "bob", ob, ErrorCode::Replay);
  require_rejected(room, alice, "bob", ob2, ErrorCode::UnexpectedMessage);
  require_rejected(room, alice, "carol", oc, ErrorCode::UnexpectedMessage);
}

TEST_CASE("R-OFF-14 offers that keep coming in a member's name while its session runs are reported once, never acted on", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  const auto sid = alice.engine->session()->session_id;
  auto o = decode_as<codec::Offer>(sent_by(room, "bob", MessageType::Offer).at(0));
  std::size_t reports = 0;
  for (std::uint32_t k = 1; k <= 10; ++k) {
    o.attempt = k;
    o.nonce[0] = static_cast<std::uint8_t>(k);  // fresh nonce each time: nothing is a replay
    const Output out = require_accepted(room, alice, "bob", codec::encode(o));
    REQUIRE(out.broadcasts.empty());
    REQUIRE_FALSE(has_event(out.events, EventKind::SessionClosing));
    for (const auto& e : kinds(out.events, EventKind::UnauthenticatedOffers)) {
      ++reports;
      REQUIRE(e.nick == "bob");
      REQUIRE(e.session_id == sid);
      REQUIRE(k == 2);  // the second offer is the evidence; one report per session
    }
    REQUIRE(alice.engine->phase() == Phase::Established);
  }
  REQUIRE(reports == 1);
  // The same offer twice is not evidence of anything.
  Room quiet(3);
  establish(quiet);
  auto ob = decode_as<codec::Offer>(sent_by(quiet, "bob", MessageType::Offer).at(0));
  ob.attempt = 1;
  ob.nonce[0] ^= 0x55;
  require_accepted(quiet, quiet.by_nick("alice"), "bob", codec::encode(ob));
  const Output again = require_accepted(quiet, quiet.by_nick("alice"), "bob", codec::encode(ob));
  REQUIRE_FALSE(has_event(again.events, EventKind::UnauthenticatedOffers));
  // Chat goes on meanwhile.
  room.send_text("alice", "still here");
  room.run();
  REQUIRE(room.events_of(room.by_nick("carol"), EventKind::MessageReceived).back().text == "still here");
}

TEST_CASE("R-OFF-7 an offer for our roster from a non-member is rejected", "[rules]") {
  Room room(3);
  auto& alice = room.by_nick("alice");
  auto o = decode_as<codec::Offer>(queued_offer(room, 1));
  o.nick = "mallory";
  o.nonce[0] ^= 0x01;
  require_rejected(room, alice, "mallory", codec::encode(o), ErrorCode::NotAMember);
}

TEST_CASE("R-OFF-8 an offer with a lower attempt number than ours is stale", "[rules]") {
  Room room(3);
  auto& alice = room.by_nick("alice");
  room.queue().clear();
  room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));  // alice is at attempt 1
  REQUIRE(decode_as<codec::Offer>(take_last(room)).attempt == 1);
  require_rejected(room, alice, "bob", sent_by(room, "bob", MessageType::Offer).at(0), ErrorCode::UnexpectedMessage);
}

TEST_CASE("R-OFF-9 an offer with a higher attempt number restarts us on that number with fresh keys", "[rules]") {
  SECTION("but not one more than kMaxAttemptJump ahead") {
    Room room(3);
    establish(room);
    auto& alice = room.by_nick("alice");
    auto r = room.by_nick("bob").engine->restart(room.now(), *room.by_nick("bob").rng);
    REQUIRE(r.ok());
    auto offer = decode_as<codec::Offer>(first_of(r->broadcasts, MessageType::Offer));
    offer.attempt = kMaxAttemptJump + 1;  // offers are unsigned: the server can write any number
    require_rejected(room, alice, "bob", codec::encode(offer), ErrorCode::UnexpectedMessage);
    offer.attempt = kMaxAttemptJump;
    require_accepted(room, alice, "bob", codec::encode(offer));
  }
  SECTION("while established: held until the member's authenticated Shutdown closes the session") {
    Room room(3);
    establish(room);
    auto& alice = room.by_nick("alice");
    auto& bob = room.by_nick("bob");
    auto r = bob.engine->restart(room.now(), *bob.rng);
    REQUIRE(r.ok());
    REQUIRE(type_of(r->broadcasts.at(0)) == MessageType::Shutdown);  // restart() closes its session first
    const Bytes sb = r->broadcasts.at(0);
    const Bytes ob = first_of(r->broadcasts, MessageType::Offer);
    REQUIRE(decode_as<codec::Offer>(ob).attempt == 1);
    // The offer alone (unauthenticated) changes nothing visible: the session stays up.
    const Output held = require_accepted(room, alice, "bob", ob);
    REQUIRE(held.events.empty());
    REQUIRE(held.broadcasts.empty());
    REQUIRE(alice.engine->phase() == Phase::Established);
    // bob's signed, MAC'd Shutdown closes it, and the held offer takes effect.
    const Output out = require_accepted(room, alice, "bob", sb);
    REQUIRE(has_event(out.events, EventKind::SessionClosing));
    REQUIRE(has_event(out.events, EventKind::SetupStarted));
    REQUIRE(type_of(out.broadcasts.at(0)) == MessageType::Shutdown);
    const auto old_offer = decode_as<codec::Offer>(sent_by(room, "alice", MessageType::Offer).at(0));
    const auto new_offer = decode_as<codec::Offer>(first_of(out.broadcasts, MessageType::Offer));
    REQUIRE(new_offer.attempt == 1);
    REQUIRE(new_offer.identity_key == old_offer.identity_key);
    REQUIRE(new_offer.dh_key != old_offer.dh_key);
    REQUIRE(new_offer.signing_key != old_offer.signing_key);
    REQUIRE(new_offer.nonce != old_offer.nonce);
    REQUIRE(alice.engine->phase() == Phase::SettingUp);
    REQUIRE_FALSE(alice.engine->session().has_value());
  }
  SECTION("after the member's Shutdown: the session is already closing, the offer restarts us") {
    Room room(3);
    establish(room);
    auto& alice = room.by_nick("alice");
    auto& bob = room.by_nick("bob");
    auto r = bob.engine->restart(room.now(), *bob.rng);
    REQUIRE(r.ok());
    require_accepted(room, alice, "bob", r->broadcasts.at(0));
    const Output out = require_accepted(room, alice, "bob", first_of(r->broadcasts, MessageType::Offer));
    REQUIRE(has_event(out.events, EventKind::SetupStarted));
    REQUIRE(decode_as<codec::Offer>(first_of(out.broadcasts, MessageType::Offer)).attempt == 1);
  }
  SECTION("while an attempt holds an older offer of that member") {
    Room room(3);
    auto& alice = room.by_nick("alice");
    auto& bob = room.by_nick("bob");
    require_accepted(room, alice, "bob", queued_offer(room, 1));
    auto r = bob.engine->restart(room.now(), *bob.rng);
    REQUIRE(r.ok());
    const Output out = require_accepted(room, alice, "bob", first_of(r->broadcasts, MessageType::Offer));
    REQUIRE(has_event(out.events, EventKind::SetupStarted));
    REQUIRE_FALSE(has_event(out.events, EventKind::SessionClosing));
    REQUIRE(decode_as<codec::Offer>(out.broadcasts.at(0)).attempt == 1);
  }
  SECTION("after our attempt failed") {
    Room room(3);
    auto& alice = room.by_nick("alice");
    auto& bob = room.by_nick("bob");
    room.queue().clear();
    auto t = alice.engine->tick(room.now() + kDefaultSetupTimeoutMs, *alice.rng);
    REQUIRE(t.ok());
    REQUIRE(has_event(t->events, EventKind::SetupTimeout));
    REQUIRE(alice.engine->phase() == Phase::Idle);
    auto r = bob.engine->restart(room.now(), *bob.rng);
    REQUIRE(r.ok());
    const Output out = require_accepted(room, alice, "bob", first_of(r->broadcasts, MessageType::Offer));
    REQUIRE(has_event(out.events, EventKind::SetupStarted));
    REQUIRE(alice.engine->phase() == Phase::SettingUp);
  }
}

TEST_CASE("R-OFF-9 the offer that starts the new attempt is its last seed: its errors are Rejected events", "[rules]") {
  Room room(3);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  room.queue().clear();  // alice runs attempt 0 and holds no offer but her own
  auto r = bob.engine->restart(room.now(), *bob.rng);
  REQUIRE(r.ok());
  const Bytes ob = first_of(r->broadcasts, MessageType::Offer);
  REQUIRE(decode_as<codec::Offer>(ob).attempt == 1);
  auto bad = decode_as<codec::Offer>(ob);
  bad.dh_key[64] ^= 0x01;  // not on the curve: found only when the offer is processed as a seed
  const Output out = require_accepted(room, alice, "bob", codec::encode(bad));
  REQUIRE(kind_sequence(out.events) == std::vector<EventKind>{EventKind::SetupStarted, EventKind::Rejected});
  REQUIRE(out.events[0].nicks == std::vector<std::string>{"alice", "bob", "carol"});
  REQUIRE(out.events[1].nick == "bob");
  REQUIRE(out.events[1].code == ErrorCode::DecodeBadValue);
  REQUIRE(out.events[1].session_id == Hash32{});
  REQUIRE(type_sequence(out.broadcasts) == std::vector<MessageType>{MessageType::Offer});
  REQUIRE(decode_as<codec::Offer>(out.broadcasts[0]).attempt == 1);
  REQUIRE(alice.engine->phase() == Phase::SettingUp);
  // The rejected offer was not stored, and its nonce was not remembered: a copy is now an offer
  // for the running attempt (R-OFF-11), and bob's genuine offer with that nonce is taken.
  require_rejected(room, alice, "bob", codec::encode(bad), ErrorCode::DecodeBadValue);
  const Output good = require_accepted(room, alice, "bob", ob);
  REQUIRE(good.events.empty());
  REQUIRE(good.broadcasts.empty());
  require_rejected(room, alice, "bob", ob, ErrorCode::Duplicate);
}

TEST_CASE("R-OFF-10 an offer for our attempt number after that attempt ended is unexpected", "[rules]") {
  SECTION("established") {
    Room room(3);
    establish(room);
    auto& alice = room.by_nick("alice");
    auto o = decode_as<codec::Offer>(sent_by(room, "bob", MessageType::Offer).at(0));
    o.nonce[0] ^= 0x01;  // a fresh offer of bob's for attempt 0
    require_rejected(room, alice, "bob", codec::encode(o), ErrorCode::UnexpectedMessage);
  }
  SECTION("failed") {
    Room room(3);
    auto& alice = room.by_nick("alice");
    const Bytes ob = queued_offer(room, 1);
    REQUIRE(alice.engine->tick(room.now() + kDefaultSetupTimeoutMs, *alice.rng).ok());
    require_rejected(room, alice, "bob", ob, ErrorCode::UnexpectedMessage);
  }
}

TEST_CASE("R-OFF-11 an offer for the running attempt is validated, then stored", "[rules]") {
  Room room(3);
  auto& alice = room.by_nick("alice");
  const Bytes ob = queued_offer(room, 1);
  SECTION("every key must be a valid P-256 point") {
    for (int field = 0; field < 3; ++field) {
      auto o = decode_as<codec::Offer>(ob);
      crypto::Point& p = field == 0 ? o.identity_key : field == 1 ? o.dh_key : o.signing_key;
      p[64] ^= 0x01;  // (x, y+1): not on the curve
      CAPTURE(field);
      require_rejected(room, alice, "bob", codec::encode(o), ErrorCode::DecodeBadValue);
      std::fill(p.begin() + 1, p.end(), 0xff);  // coordinates ≥ p
      require_rejected(room, alice, "bob", codec::encode(o), ErrorCode::DecodeBadValue);
    }
  }
  SECTION("a second, different offer of that member in one attempt moves us to the next attempt") {
    require_accepted(room, alice, "bob", ob);
    auto o = decode_as<codec::Offer>(ob);
    o.nonce[0] ^= 0x01;
    const Output out = require_accepted(room, alice, "bob", codec::encode(o));
    REQUIRE(out.broadcasts.size() == 1);
    const auto fresh = decode_as<codec::Offer>(out.broadcasts[0]);
    REQUIRE(fresh.attempt == o.attempt + 1);
    REQUIRE(alice.engine->phase() == Phase::SettingUp);
    // Offers of the abandoned attempt are now stale.
    require_rejected(room, alice, "carol", queued_offer(room, 2), ErrorCode::UnexpectedMessage);
  }
  SECTION("a roster that recurs while old offers are in flight still converges") {
    // alice and bob set up as a pair; carol joins and leaves before any of it is delivered,
    // so the pair's first offers arrive during the trio phase, are buffered, and would seed
    // the pair's next attempt on one side only.
    Room pair(2, 7);
    pair.add_member("carol");
    pair.join("carol");
    pair.part("carol");
    pair.run();
    for (int i = 0; i < 5 && !pair.all_established(); ++i) {
      pair.advance(1000);
    }
    REQUIRE(pair.all_established());
    REQUIRE(pair.member(0).engine->session()->session_id == pair.member(1).engine->session()->session_id);
  }
  SECTION("the last missing offer completes round 1 and sends our key share") {
    REQUIRE(require_accepted(room, alice, "bob", ob).broadcasts.empty());
    const Output out = require_accepted(room, alice, "carol", queued_offer(room, 2));
    REQUIRE(out.broadcasts.size() == 1);
    const auto ks = decode_as<codec::KeyShare>(out.broadcasts[0]);
    std::vector<codec::Offer> offers;
    for (std::size_t i = 0; i < 3; ++i) {
      offers.push_back(decode_as<codec::Offer>(queued_offer(room, i)));
    }
    REQUIRE(ks.session_id == spec::session_id(Room::kRoomName, offers));
    REQUIRE(ks.sender == 0);
    REQUIRE(ks.shares.size() == 2);
  }
}

TEST_CASE("R-OFF-12 restarts converge", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.member(0);
  auto& bob = room.member(1);
  SECTION("two restart() calls in a row") {
    room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
    room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
  }
  SECTION("two members restart at once") {
    room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
    room.absorb(bob, bob.engine->restart(room.now(), *bob.rng));
  }
  SECTION("one restarts while the other's offer is in flight") {
    room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
    REQUIRE(room.deliver_next());
    REQUIRE(room.deliver_next());
    room.absorb(bob, bob.engine->restart(room.now(), *bob.rng));
  }
  room.run(20000);
  INFO("broadcasts still queued: " << room.queue().size() << ", relayed: " << room.log().size());
  REQUIRE(room.queue().empty());
  REQUIRE(room.all_established());
  const Hash32 sid = alice.engine->session()->session_id;
  for (auto& m : room.members()) {
    REQUIRE(m.engine->session()->session_id == sid);
  }
}

// =============================================================================================
// §7.4 Key shares (and the routing of setup messages)
// =============================================================================================

namespace {
// Room(3) with every offer delivered: the queue holds the key shares of alice, bob, carol.
struct KeyShareFixture {
  Room room{3};
  KeyShareFixture() {
    for (int i = 0; i < 3; ++i) {
      REQUIRE(room.deliver_next());
    }
    REQUIRE(room.queue().size() == 3);
  }
  SimMember& alice() { return room.by_nick("alice"); }
  Bytes ks(std::size_t i) { return queued_from(room, room.member(i).nick, MessageType::KeyShare); }
};
}  // namespace

TEST_CASE("R-KS-1 setup messages are routed by session id", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  const Bytes kb = sent_by(room, "bob", MessageType::KeyShare).at(0);
  const Bytes ab = sent_by(room, "bob", MessageType::Attest).at(0);
  // Of the established session: a late copy.
  require_rejected(room, alice, "bob", kb, ErrorCode::Duplicate);
  require_rejected(room, alice, "bob", ab, ErrorCode::Duplicate);
  // Of no session we know.
  auto k = decode_as<codec::KeyShare>(kb);
  k.session_id[0] ^= 0x01;  // outside the attempt, setup messages are matched by the 8-byte tag
  require_rejected(room, alice, "bob", codec::encode(k), ErrorCode::UnknownSession);
  // Of a session that has been closed: a replay.
  room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
  room.run();
  REQUIRE(room.all_established());
  require_rejected(room, alice, "bob", kb, ErrorCode::Replay);
  require_rejected(room, alice, "bob", ab, ErrorCode::Replay);
}

TEST_CASE("R-KS-2 a key share's sender index must be in the roster and be the transport sender", "[rules]") {
  KeyShareFixture f;
  auto k = decode_as<codec::KeyShare>(f.ks(1));
  k.sender = 3;
  require_rejected(f.room, f.alice(), "bob", codec::encode(k), ErrorCode::NotAMember);
  k.sender = 200;
  require_rejected(f.room, f.alice(), "bob", codec::encode(k), ErrorCode::NotAMember);
  require_rejected(f.room, f.alice(), "carol", f.ks(1), ErrorCode::NickMismatch);
  require_accepted(f.room, f.alice(), "bob", f.ks(1));
}

TEST_CASE("R-KS-3 early key shares are buffered (a few per member) and processed in round 2", "[rules]") {
  Room room(3);
  auto& alice = room.by_nick("alice");
  REQUIRE(room.deliver_next());  // alice's offer
  REQUIRE(room.deliver_next());  // bob's offer
  const Wire oc = room.queue().front();
  room.queue().pop_front();
  room.deliver_to(room.by_nick("bob"), oc);  // bob and carol complete round 1, alice does not
  room.deliver_to(room.by_nick("carol"), oc);
  REQUIRE(room.queue().size() == 2);
  const Bytes kb = queued_from(room, "bob", MessageType::KeyShare);
  const Bytes kc = queued_from(room, "carol", MessageType::KeyShare);
  room.queue().clear();

  const StateSummary before = alice.engine->summary();
  const Output held = require_accepted(room, alice, "bob", kb);
  REQUIRE(held.broadcasts.empty());
  REQUIRE_FALSE(alice.engine->summary() == before);
  require_rejected(room, alice, "bob", kb, ErrorCode::Duplicate);
  // A sender outside the roster being set up: another attempt's message.
  require_rejected(room, alice, "mallory", kb, ErrorCode::UnknownSession);
  // bob's offer is held, so bob's key for this attempt is known: a key share of bob's that it
  // does not verify is stale (an abandoned attempt) or forged, and is not kept.
  auto resigned = decode_as<codec::KeyShare>(kb);
  resigned.signature[5] ^= 0x01;
  require_rejected(room, alice, "bob", codec::encode(resigned), ErrorCode::UnknownSession);

  // Until the sid is known the sender index is not checked (it refers to the roster the message
  // was made for); when round 2 starts it is, after the sid: another session id is
  // UnknownSession (stale), a wrong index with the right sid is NickMismatch.
  auto wrong = decode_as<codec::KeyShare>(kc);
  wrong.session_id[0] ^= 0x01;
  require_accepted(room, alice, "carol", codec::encode(wrong));
  require_accepted(room, alice, "carol", kb);  // bob's key share sent by carol: index 1, not carol's
  const Output round2 = require_accepted(room, alice, "carol", oc.payload);
  REQUIRE(type_of(round2.broadcasts.at(0)) == MessageType::KeyShare);
  const auto rejected = kinds(round2.events, EventKind::Rejected);
  REQUIRE(rejected.size() == 2);
  REQUIRE(rejected[0].nick == "carol");
  REQUIRE(rejected[0].code == ErrorCode::UnknownSession);
  REQUIRE(rejected[1].nick == "carol");
  REQUIRE(rejected[1].code == ErrorCode::NickMismatch);
  // bob's buffered share was accepted: only carol's is missing.
  require_rejected(room, alice, "bob", kb, ErrorCode::Duplicate);
  const Output round3 = require_accepted(room, alice, "carol", kc);
  REQUIRE(type_of(round3.broadcasts.at(0)) == MessageType::Attest);
}

TEST_CASE("R-KS-4 our own key share is recognised, another one in our name is rejected", "[rules]") {
  KeyShareFixture f;
  const StateSummary before = f.alice().engine->summary();
  require_accepted(f.room, f.alice(), "alice", f.ks(0));
  REQUIRE(f.alice().engine->summary() == before);
  auto k = decode_as<codec::KeyShare>(f.ks(0));
  k.shares[0].mac[0] ^= 0x01;
  require_rejected(f.room, f.alice(), "alice", codec::encode(k), ErrorCode::NickMismatch);
}

TEST_CASE("R-KS-5 a key share must hold exactly n-1 pair shares", "[rules]") {
  KeyShareFixture f;
  auto k = decode_as<codec::KeyShare>(f.ks(1));
  k.shares.pop_back();
  require_rejected(f.room, f.alice(), "bob", codec::encode(k), ErrorCode::DecodeBadValue);
  k = decode_as<codec::KeyShare>(f.ks(1));
  k.shares.push_back(k.shares[0]);
  require_rejected(f.room, f.alice(), "bob", codec::encode(k), ErrorCode::DecodeBadValue);
}

TEST_CASE("R-KS-6 a key share whose signature does not verify is rejected", "[rules]") {
  KeyShareFixture f;
  const Bytes kb = f.ks(1);
  // Offsets past the session id (2..34, which routes the message, R-KS-1): sender's R, a MAC,
  // a ciphertext, and both halves of the signature.
  for (std::size_t at : {std::size_t{110}, std::size_t{150}, kb.size() - 70, kb.size() - 33, kb.size() - 1}) {
    Bytes m = kb;
    m[at] ^= 0x01;
    CAPTURE(at);
    require_rejected(f.room, f.alice(), "bob", m, ErrorCode::BadSignature);
  }
  Bytes off_curve = kb;
  off_curve[40] ^= 0x01;  // elgamal_r's X: the signature fails before the point is parsed
  require_rejected(f.room, f.alice(), "bob", off_curve, ErrorCode::BadSignature);
  require_accepted(f.room, f.alice(), "bob", kb);
}

TEST_CASE("R-KS-7 a second key share is a duplicate when identical, equivocation when different", "[rules]") {
  FakeSetup f;
  f.run_offers();
  const Bytes one = f.carol.key_share(f.sid(), f.offers(), {});
  const Bytes two = f.carol.key_share(f.sid(), f.offers(), {.alt_secret_for = 0});
  require_accepted(f.room, f.alice(), "carol", one);
  require_rejected(f.room, f.alice(), "carol", one, ErrorCode::Duplicate);
  require_rejected(f.room, f.alice(), "carol", two, ErrorCode::Equivocation);
}

TEST_CASE("R-KS-8 a key share after round 2 ended is unexpected", "[rules]") {
  KeyShareFixture f;
  auto t = f.alice().engine->tick(f.room.now() + kDefaultSetupTimeoutMs, *f.alice().rng);
  REQUIRE(t.ok());
  REQUIRE(has_event(t->events, EventKind::SetupTimeout));
  require_rejected(f.room, f.alice(), "bob", f.ks(1), ErrorCode::UnexpectedMessage);
}

TEST_CASE("R-KS-9 an El Gamal point that is not on the curve is rejected", "[rules]") {
  FakeSetup f;
  f.run_offers();
  require_rejected(f.room, f.alice(), "carol", f.carol.key_share(f.sid(), f.offers(), {.bad_r = true}),
                   ErrorCode::DecodeBadValue);
}

namespace {
// After a verdict: the next attempt runs for alice and bob only, and sets up without carol.
void require_next_attempt_without_carol(FakeSetup& f) {
  for (SimMember* m : {&f.alice(), &f.bob()}) {
    CAPTURE(m->nick);
    const auto started = f.room.events_of(*m, EventKind::SetupStarted);
    REQUIRE(started.back().nicks == std::vector<std::string>{"alice", "bob"});
    REQUIRE(m->engine->phase() == Phase::SettingUp);
    const auto out = m->engine->out_members();
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].member.nick == "carol");
    REQUIRE(out[0].refuses.empty());
  }
  f.room.run();
  REQUIRE(f.alice().engine->phase() == Phase::Established);
  REQUIRE(f.bob().engine->phase() == Phase::Established);
  REQUIRE(f.alice().engine->session()->members.size() == 2);
}
}  // namespace

TEST_CASE("R-KS-10 a key share with a bad MAC or a secret off its commitment is accused, proven, and left out", "[rules]") {
  const bool bad_mac = GENERATE(true, false);
  CAPTURE(bad_mac);
  FakeSetup f;
  f.run_offers();
  const Bytes ks = bad_mac ? f.carol.key_share(f.sid(), f.offers(), {.bad_mac_for = 0})
                           : f.carol.key_share(f.sid(), f.offers(), {.alt_secret_for = 0});
  const ErrorCode code = bad_mac ? ErrorCode::BadMac : ErrorCode::GroupKeyMismatch;
  // alice's share is the bad one: she accuses carol. This changes state, so it is no error.
  const Output out = require_accepted(f.room, f.alice(), "carol", ks);
  const auto excluded = kinds(out.events, EventKind::MemberExcluded);
  REQUIRE(excluded.size() == 1);
  REQUIRE(excluded[0].nick == "carol");
  REQUIRE(excluded[0].code == code);
  REQUIRE(excluded[0].by == "alice");
  const Bytes accusation = first_of(out.broadcasts, MessageType::Accuse);
  const auto acc = decode_as<codec::Accuse>(accusation);
  REQUIRE(acc.accused == 2);
  REQUIRE(acc.key_share == ks);  // carol's key share exactly as alice got it
  // The revealed scalar is alice's e of this attempt: its point is the E of her offer.
  REQUIRE(crypto::PrivateKey::from_scalar(view(acc.dh_private)).value().public_key().point() == f.offers()[0].dh_key);
  REQUIRE(has_event(out.events, EventKind::SetupStarted));  // the next attempt, at once
  // bob's share was fine; alice's accusation proves carol's misconduct to him.
  require_accepted(f.room, f.bob(), "carol", ks);
  const Output verdict = require_accepted(f.room, f.bob(), "alice", accusation);
  const auto at_bob = kinds(verdict.events, EventKind::MemberExcluded);
  REQUIRE(at_bob.size() == 1);
  REQUIRE(at_bob[0].nick == "carol");
  REQUIRE(at_bob[0].code == code);
  REQUIRE(at_bob[0].by == "alice");
  // Hand both outputs to the room (require_accepted called the engines directly).
  f.room.absorb(f.alice(), Result<Output>(out));
  f.room.absorb(f.bob(), Result<Output>(verdict));
  require_next_attempt_without_carol(f);
}

TEST_CASE("R-KS-13 accusations: a false one names the accuser, an equivocating key share names its sender", "[rules]") {
  SECTION("a false accusation, once the accuser's own key share authenticated it") {
    FakeSetup f;
    f.run_offers();
    const Bytes kc = f.carol.key_share(f.sid(), f.offers(), {});
    const Bytes ka = sent_by(f.room, "alice", MessageType::KeyShare).at(0);
    const Bytes lie = f.carol.accuse(f.sid(), 0, ka);  // alice's share for carol is fine
    // Before carol's key share, bob cannot tell whether carol is who she says: the accusation waits.
    const Output early = require_accepted(f.room, f.bob(), "carol", lie);
    REQUIRE(early.events.empty());
    REQUIRE(early.broadcasts.empty());
    const Output out = require_accepted(f.room, f.bob(), "carol", kc);
    const auto excluded = kinds(out.events, EventKind::MemberExcluded);
    REQUIRE(excluded.size() == 1);
    REQUIRE(excluded[0].nick == "carol");
    REQUIRE(excluded[0].code == ErrorCode::FalseAccusation);
    REQUIRE(excluded[0].by == "carol");
    // Decided right after carol's key share is stored, before round 3 could start (carol's was
    // the last key share missing): no Attest, the next attempt (without carol) at once.
    REQUIRE(out.broadcasts.size() == 1);
    const auto next = decode_as<codec::Offer>(out.broadcasts[0]);
    REQUIRE(next.attempt == 1);
    REQUIRE(next.roster_digest == spec::roster_digest(Room::kRoomName, {"alice", "bob"}));
    // alice, the accused, sees the same: her own share for carol checks out.
    require_accepted(f.room, f.alice(), "carol", kc);
    const Output at_alice = require_accepted(f.room, f.alice(), "carol", lie);
    REQUIRE(kinds(at_alice.events, EventKind::MemberExcluded).at(0).code == ErrorCode::FalseAccusation);
  }
  SECTION("an accusation revealing a key that is not the accuser's") {
    FakeSetup f;
    f.run_offers();
    require_accepted(f.room, f.bob(), "carol", f.carol.key_share(f.sid(), f.offers(), {}));
    Hash32 other{};
    other[31] = 7;
    const Bytes lie = f.carol.accuse(f.sid(), 0, sent_by(f.room, "alice", MessageType::KeyShare).at(0), other);
    const Output out = require_accepted(f.room, f.bob(), "carol", lie);
    const auto excluded = kinds(out.events, EventKind::MemberExcluded);
    REQUIRE(excluded.at(0).nick == "carol");
    REQUIRE(excluded.at(0).code == ErrorCode::FalseAccusation);
    REQUIRE(excluded.at(0).detail.find("not its own") != std::string::npos);
  }
  SECTION("two different, validly signed key shares of one member") {
    FakeSetup f;
    f.run_offers();
    const Bytes to_alice = f.carol.key_share(f.sid(), f.offers(), {});
    const Bytes to_bob = f.carol.key_share(f.sid(), f.offers(), {.alt_secret_for = 1});
    require_accepted(f.room, f.alice(), "carol", to_alice);
    const Output accused = require_accepted(f.room, f.bob(), "carol", to_bob);  // bob accuses carol
    const Bytes accusation = first_of(accused.broadcasts, MessageType::Accuse);
    const Output out = require_accepted(f.room, f.alice(), "bob", accusation);
    const auto excluded = kinds(out.events, EventKind::MemberExcluded);
    REQUIRE(excluded.at(0).nick == "carol");
    REQUIRE(excluded.at(0).code == ErrorCode::Equivocation);
  }
  SECTION("rejected: unauthenticated, malformed or too late") {
    FakeSetup f;
    f.run_offers();
    const Bytes kc = f.carol.key_share(f.sid(), f.offers(), {});
    require_accepted(f.room, f.alice(), "carol", kc);
    const Bytes ka = sent_by(f.room, "alice", MessageType::KeyShare).at(0);
    const Bytes kb = sent_by(f.room, "bob", MessageType::KeyShare).at(0);
    Bytes forged = f.carol.accuse(f.sid(), 1, kb);
    forged[forged.size() - 1] ^= 0x01;
    require_rejected(f.room, f.alice(), "carol", forged, ErrorCode::BadSignature);
    require_rejected(f.room, f.alice(), "bob", f.carol.accuse(f.sid(), 1, kb), ErrorCode::NickMismatch);
    require_rejected(f.room, f.alice(), "carol", f.carol.accuse(f.sid(), 3, kb), ErrorCode::DecodeBadValue);
    require_rejected(f.room, f.alice(), "carol", f.carol.accuse(f.sid(), 0, kb), ErrorCode::DecodeBadValue);  // not alice's
    Bytes unsigned_ks = kb;
    unsigned_ks.back() ^= 0x01;
    require_rejected(f.room, f.alice(), "carol", f.carol.accuse(f.sid(), 1, unsigned_ks), ErrorCode::BadSignature);
    auto in_our_name = decode_as<codec::Accuse>(f.carol.accuse(f.sid(), 1, kb));
    in_our_name.sender = 0;
    require_rejected(f.room, f.alice(), "alice", codec::encode(in_our_name), ErrorCode::NickMismatch);
    (void)ka;
    // After the attempt ended (a timeout), an accusation changes nothing.
    auto t = f.alice().engine->tick(f.room.now() + kDefaultSetupTimeoutMs, *f.alice().rng);
    REQUIRE(t.ok());
    require_rejected(f.room, f.alice(), "carol", f.carol.accuse(f.sid(), 1, kb), ErrorCode::UnexpectedMessage);
  }
}

TEST_CASE("R-KS-11 a member built from this spec alone completes the setup (key schedule conformance)", "[rules]") {
  FakeSetup f;
  f.run_offers();
  const Bytes kc = f.carol.key_share(f.sid(), f.offers(), {});
  f.inject(kc);
  f.room.run();
  REQUIRE(f.alice().errors.empty());
  REQUIRE(f.bob().errors.empty());
  const Bytes aa = sent_by(f.room, "alice", MessageType::Attest).at(0);
  const Bytes ac = f.honest_attest(kc);
  REQUIRE(decode_as<codec::Attest>(ac).transcript_hash == decode_as<codec::Attest>(aa).transcript_hash);
  REQUIRE(decode_as<codec::Attest>(ac).key_confirm == decode_as<codec::Attest>(aa).key_confirm);
  f.inject(ac);
  f.room.run();
  REQUIRE(f.alice().engine->phase() == Phase::Established);
  REQUIRE(f.bob().engine->phase() == Phase::Established);
  REQUIRE(f.alice().engine->session()->session_id == f.sid());

  // §5.5–§5.7: decrypt and check alice's first entry with keys derived from the spec.
  const Hash32 sid = f.sid();
  const Bytes a1 = send_from(*f.alice().engine, *f.alice().rng, f.room.now(), "spec says hello");
  const auto d = decode_as<codec::Data>(a1);
  REQUIRE(std::equal(d.session_tag.begin(), d.session_tag.end(), sid.begin()));
  REQUIRE(d.sender == 0);
  REQUIRE(d.seq == 1);
  REQUIRE(d.acks == std::vector<std::uint32_t>{0, 0});
  const std::size_t signed_len = a1.size() - 64;
  const Hash32 id = spec::signed_digest(sid, ByteView(a1).first(signed_len));
  const auto alice_s = crypto::PublicKey::from_point(view(f.offers()[0].signing_key)).value();
  REQUIRE(alice_s.verify_digest(id, view(d.signature)));
  const std::vector<Hash32> zero_chains{spec::chain_start(sid, 0), spec::chain_start(sid, 1), spec::chain_start(sid, 2)};
  REQUIRE(d.view_digest == spec::view_digest({0, 0, 0}, zero_chains));
  // The group secret as alice holds it (carol's contributions are consistent here).
  const Bytes ka = sent_by(f.room, "alice", MessageType::KeyShare).at(0);
  const Bytes kb = sent_by(f.room, "bob", MessageType::KeyShare).at(0);
  const Hash32 group = spec::group_secret(
      sid, {f.carol.open(sid, 0, decode_as<codec::KeyShare>(ka)), f.carol.open(sid, 1, decode_as<codec::KeyShare>(kb)),
            f.carol.secret});
  const SecretBytes okm = crypto::hkdf_expand(view(group), view(spec::cat({spec::txt("mpotr-v2 sender"), view(spec::u8(0))})), 24).value();
  crypto::AesIv iv{};
  std::copy_n(okm.data() + 16, 8, iv.begin());
  const Bytes seq = spec::u32(1);
  std::copy(seq.begin(), seq.end(), iv.begin() + 8);
  Bytes plain(d.ciphertext.size());
  REQUIRE(crypto::aes128_ctr(okm.view().first(16), iv, view(d.ciphertext), plain.data()).ok());
  REQUIRE(std::string(plain.begin(), plain.end()) == "spec says hello");
  REQUIRE(a1.size() == 146 + 2 + plain.size());  // §4.12 size formula, n = 3
  // §5.16: the group MAC over every byte before it, under K_auth from the same G.
  const std::size_t mac_len = signed_len - codec::kMacLen;
  REQUIRE(d.mac == spec::message_mac(spec::auth_key(group), ByteView(a1).first(mac_len)));
  // §5.5: carol's commitment is what alice and bob checked her secret against.
  REQUIRE(decode_as<codec::KeyShare>(kc).commit ==
          spec::H(spec::cat({spec::txt("mpotr-v2 commit"), view(sid), view(spec::u8(2)), view(f.carol.secret)})));
}

TEST_CASE("R-KS-12 an unverified early message never blocks or incriminates the genuine one", "[rules]") {
  // The sender's offer is known, so an early forgery is checked at once and rejected.
  Room room(3);
  auto& alice = room.by_nick("alice");
  REQUIRE(room.deliver_next());
  REQUIRE(room.deliver_next());
  const Wire oc = room.queue().front();
  room.queue().pop_front();
  room.deliver_to(room.by_nick("bob"), oc);
  room.deliver_to(room.by_nick("carol"), oc);
  const Bytes kb = queued_from(room, "bob", MessageType::KeyShare);
  Bytes junk = kb;
  junk[junk.size() - 1] ^= 0x01;  // the server's forgery: bad signature
  // Not signed with bob's key for this attempt: stale or forged, it is not kept (R-KS-3).
  require_rejected(room, alice, "bob", junk, ErrorCode::UnknownSession);
  require_accepted(room, alice, "bob", kb);
  room.deliver_to(alice, oc);
  room.run();
  REQUIRE(room.all_established());
}

// =============================================================================================
// §7.5 Attests
// =============================================================================================

namespace {
// Room(3) with offers and key shares delivered: the queue holds the attests.
struct AttestFixture {
  Room room{3};
  AttestFixture() {
    for (int i = 0; i < 6; ++i) {
      REQUIRE(room.deliver_next());
    }
    REQUIRE(room.queue().size() == 3);
  }
  SimMember& alice() { return room.by_nick("alice"); }
  Bytes at(std::size_t i) { return queued_from(room, room.member(i).nick, MessageType::Attest); }
};
}  // namespace

TEST_CASE("R-AT-1 an attest's sender must be in the roster, be the transport sender, and not be us", "[rules]") {
  AttestFixture f;
  auto a = decode_as<codec::Attest>(f.at(1));
  a.sender = 3;
  require_rejected(f.room, f.alice(), "bob", codec::encode(a), ErrorCode::NotAMember);
  require_rejected(f.room, f.alice(), "carol", f.at(1), ErrorCode::NickMismatch);
  // Our own: the reflection is accepted, anything else in our name is not.
  require_accepted(f.room, f.alice(), "alice", f.at(0));
  auto own = decode_as<codec::Attest>(f.at(0));
  own.key_confirm[0] ^= 0x01;
  require_rejected(f.room, f.alice(), "alice", codec::encode(own), ErrorCode::NickMismatch);
}

TEST_CASE("R-AT-2 early attests are buffered, one per member, and processed in round 3", "[rules]") {
  Room room(3);
  auto& alice = room.by_nick("alice");
  for (int i = 0; i < 3; ++i) {  // the offers
    REQUIRE(room.deliver_next());
  }
  const Bytes kc = queued_from(room, "carol", MessageType::KeyShare);
  // alice gets neither carol's key share nor anybody's attest; bob and carol finish round 2.
  run_filtered(room, [](const Wire& w, const SimMember& m) {
    return !(m.nick == "alice" && (w.from == "carol" || type_of(w.payload) == MessageType::Attest));
  });
  const Bytes ab = sent_by(room, "bob", MessageType::Attest).at(0);
  const Output held = require_accepted(room, alice, "bob", ab);
  REQUIRE(held.broadcasts.empty());
  require_rejected(room, alice, "bob", ab, ErrorCode::Duplicate);
  const Output out = require_accepted(room, alice, "carol", kc);
  REQUIRE(type_of(out.broadcasts.at(0)) == MessageType::Attest);
  REQUIRE(kinds(out.events, EventKind::Rejected).empty());
  require_rejected(room, alice, "bob", ab, ErrorCode::Duplicate);  // now processed: a plain duplicate
  require_accepted(room, alice, "carol", sent_by(room, "carol", MessageType::Attest).at(0));
  REQUIRE(alice.engine->phase() == Phase::Established);
}

TEST_CASE("R-AT-3 an attest whose signature does not verify is rejected", "[rules]") {
  AttestFixture f;
  for (std::size_t at : {std::size_t{40}, std::size_t{70}, std::size_t{100}, std::size_t{140}}) {
    Bytes m = f.at(1);
    m[at] ^= 0x01;
    CAPTURE(at);
    require_rejected(f.room, f.alice(), "bob", m, ErrorCode::BadSignature);
  }
}

TEST_CASE("R-AT-4 a second attest is a duplicate when identical, equivocation when different", "[rules]") {
  FakeSetup f;
  f.run_offers();
  const Bytes kc = f.carol.key_share(f.sid(), f.offers(), {});
  f.inject(kc);
  // alice does not get bob's attest yet: her attempt stays in round 3.
  run_filtered(f.room, [](const Wire& w, const SimMember& m) {
    return !(m.nick == "alice" && w.from == "bob" && type_of(w.payload) == MessageType::Attest);
  });
  const Bytes ac = f.honest_attest(kc);
  auto other = decode_as<codec::Attest>(ac);
  other.key_confirm[0] ^= 0x01;
  const Bytes ac2 = f.carol.attest(f.sid(), other.transcript_hash, other.key_confirm);
  require_accepted(f.room, f.alice(), "carol", ac);
  REQUIRE(f.alice().engine->phase() == Phase::SettingUp);
  require_rejected(f.room, f.alice(), "carol", ac, ErrorCode::Duplicate);
  require_rejected(f.room, f.alice(), "carol", ac2, ErrorCode::Equivocation);
}

TEST_CASE("R-AT-5 an attest after round 3 ended is unexpected", "[rules]") {
  AttestFixture f;
  auto t = f.alice().engine->tick(f.room.now() + kDefaultSetupTimeoutMs, *f.alice().rng);
  REQUIRE(t.ok());
  REQUIRE(has_event(t->events, EventKind::SetupTimeout));
  require_rejected(f.room, f.alice(), "bob", f.at(1), ErrorCode::UnexpectedMessage);
}

TEST_CASE("R-AT-6 an authentic attest over another setup transcript fails the setup (TranscriptMismatch)", "[rules]") {
  FakeSetup f;
  f.run_offers();
  // carol signs two different key shares and shows one to alice, the other to bob.
  const Bytes to_alice = f.carol.key_share(f.sid(), f.offers(), {});
  const Bytes to_bob = f.carol.key_share(f.sid(), f.offers(), {.alt_secret_for = 0});
  f.room.absorb(f.alice(), recv(f.room, f.alice(), "carol", to_alice));
  f.room.absorb(f.bob(), recv(f.room, f.bob(), "carol", to_bob));
  const Bytes ab = queued_from(f.room, "bob", MessageType::Attest);
  const StateSummary before = f.alice().engine->summary();
  const Output out = require_accepted(f.room, f.alice(), "bob", ab);
  const auto failed = kinds(out.events, EventKind::SetupFailed);
  REQUIRE(failed.size() == 1);
  REQUIRE(failed[0].code == ErrorCode::TranscriptMismatch);
  REQUIRE(failed[0].nick == "bob");
  REQUIRE_FALSE(f.alice().engine->summary() == before);
  REQUIRE(f.alice().engine->phase() == Phase::Idle);
  REQUIRE(f.alice().engine->send_text("hi", f.room.now(), *f.alice().rng).error().code == ErrorCode::NotReady);
}

TEST_CASE("R-AT-7 an authentic attest confirming another group key names its sender, who is left out", "[rules]") {
  FakeSetup f;
  f.run_offers();
  const Bytes kc = f.carol.key_share(f.sid(), f.offers(), {});  // consistent, committed secrets
  f.inject(kc);
  f.room.run();
  REQUIRE(f.alice().engine->phase() == Phase::SettingUp);
  // carol's signed attest has the right transcript but confirms another key.
  const auto honest = decode_as<codec::Attest>(f.honest_attest(kc));
  const Bytes lying = f.carol.attest(f.sid(), honest.transcript_hash, Hash32{});
  f.inject(lying);
  f.room.run();
  for (SimMember* m : {&f.alice(), &f.bob()}) {
    CAPTURE(m->nick);
    const auto excluded = f.room.events_of(*m, EventKind::MemberExcluded);
    REQUIRE(excluded.size() == 1);
    REQUIRE(excluded[0].nick == "carol");
    REQUIRE(excluded[0].code == ErrorCode::GroupKeyMismatch);
    REQUIRE(excluded[0].by.empty());
    REQUIRE(f.room.events_of(*m, EventKind::SetupFailed).empty());
  }
  REQUIRE(f.alice().engine->phase() == Phase::Established);  // the next attempt, without carol, went through
  REQUIRE(f.alice().engine->session()->members.size() == 2);
}

TEST_CASE("R-AT-10 an attempt given up in round 3 sends a Quit, so members that established close cleanly", "[rules]") {
  Room room(3);
  auto& carol = room.by_nick("carol");
  // The server keeps alice's attest from carol only: alice and bob establish, carol waits.
  run_filtered(room, [](const Wire& w, const SimMember& m) {
    return !(m.nick == "carol" && w.from == "alice" && type_of(w.payload) == MessageType::Attest);
  });
  REQUIRE(room.by_nick("alice").engine->phase() == Phase::Established);
  REQUIRE(carol.engine->phase() == Phase::SettingUp);
  const Hash32 sid = room.by_nick("alice").engine->session()->session_id;
  auto t = carol.engine->tick(room.now() + kDefaultSetupTimeoutMs, *carol.rng);
  REQUIRE(t.ok());
  REQUIRE(has_event(t->events, EventKind::SetupTimeout));
  REQUIRE(t->broadcasts.size() == 1);
  const auto quit = decode_as<codec::Quit>(t->broadcasts[0]);
  REQUIRE(std::equal(quit.session_tag.begin(), quit.session_tag.end(), sid.begin()));
  REQUIRE(quit.final_count == 0);
  room.absorb(carol, std::move(t));
  room.run();
  for (const char* nick : {"alice", "bob"}) {
    CAPTURE(nick);
    auto& m = room.by_nick(nick);
    REQUIRE(room.events_of(m, EventKind::SessionClosing).size() == 1);
    REQUIRE(room.events_of(m, EventKind::KeyPublished).size() == 1);
    REQUIRE(room.events_of(m, EventKind::KeyWithheld).empty());
  }
  // An attempt given up before round 3 has nothing to quit.
  Room early(2);
  auto& a = early.by_nick("alice");
  auto r = a.engine->restart(early.now(), *a.rng);
  REQUIRE(r.ok());
  REQUIRE(r->broadcasts.size() == 1);
  REQUIRE(type_of(r->broadcasts[0]) == MessageType::Offer);
}

TEST_CASE("R-AT-10 an attempt in round 3 replaced by another offer (R-OFF-9, R-OFF-11) sends its Quit first", "[rules]") {
  Room room(3);
  auto& carol = room.by_nick("carol");
  run_filtered(room, [](const Wire& w, const SimMember& m) {
    return !(m.nick == "carol" && w.from == "alice" && type_of(w.payload) == MessageType::Attest);
  });
  REQUIRE(carol.engine->phase() == Phase::SettingUp);  // in phase Attests, her Attest out
  const Hash32 sid = room.by_nick("alice").engine->session()->session_id;
  SECTION("a higher attempt number (R-OFF-9)") {
    auto& bob = room.by_nick("bob");
    auto r = bob.engine->restart(room.now(), *bob.rng);
    REQUIRE(r.ok());
    const Output out = require_accepted(room, carol, "bob", first_of(r->broadcasts, MessageType::Offer));
    REQUIRE(out.broadcasts.size() == 2);
    const auto quit = decode_as<codec::Quit>(out.broadcasts[0]);
    REQUIRE(std::equal(quit.session_tag.begin(), quit.session_tag.end(), sid.begin()));
    REQUIRE(quit.final_count == 0);
    REQUIRE(decode_as<codec::Offer>(out.broadcasts[1]).attempt == 1);
    REQUIRE(has_event(out.events, EventKind::SetupStarted));
  }
  SECTION("a second offer of a member for the running attempt (R-OFF-11)") {
    auto o = decode_as<codec::Offer>(sent_by(room, "bob", MessageType::Offer).at(0));
    o.nonce[0] ^= 0x01;
    const Output out = require_accepted(room, carol, "bob", codec::encode(o));
    REQUIRE(out.broadcasts.size() == 2);
    REQUIRE(type_of(out.broadcasts[0]) == MessageType::Quit);
    REQUIRE(decode_as<codec::Offer>(out.broadcasts[1]).attempt == 1);
  }
}

TEST_CASE("R-AT-8 nobody sends chat before every attest matched", "[rules]") {
  Room room(3);
  auto& alice = room.by_nick("alice");
  for (int i = 0; i < 8; ++i) {  // everything but carol's attest
    auto r = alice.engine->send_text("too early", room.now(), *alice.rng);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.error().code == ErrorCode::NotReady);
    REQUIRE(room.deliver_next());
  }
  REQUIRE(alice.engine->phase() == Phase::SettingUp);
  const StateSummary before = alice.engine->summary();
  REQUIRE(alice.engine->send_text("too early", room.now(), *alice.rng).error().code == ErrorCode::NotReady);
  REQUIRE(alice.engine->summary() == before);
  const std::size_t seen = alice.events.size();
  REQUIRE(room.deliver_next());
  REQUIRE(alice.engine->phase() == Phase::Established);
  const auto est = kinds(std::vector<Event>(alice.events.begin() + static_cast<std::ptrdiff_t>(seen), alice.events.end()),
                         EventKind::SessionEstablished);
  REQUIRE(est.size() == 1);
  REQUIRE(est[0].nicks == std::vector<std::string>{"alice", "bob", "carol"});
  REQUIRE(alice.engine->send_text("now", room.now(), *alice.rng).ok());
}

TEST_CASE("R-AT-9 a setup that does not finish in time fails with SetupTimeout naming the silent", "[rules]") {
  Room room(3);
  auto& alice = room.by_nick("alice");
  room.queue().pop_back();  // carol's offer never arrives
  room.run();
  REQUIRE(alice.engine->phase() == Phase::SettingUp);
  auto early = alice.engine->tick(room.now() + kDefaultSetupTimeoutMs - 1, *alice.rng);
  REQUIRE(early.ok());
  REQUIRE(early->events.empty());
  auto t = alice.engine->tick(room.now() + kDefaultSetupTimeoutMs, *alice.rng);
  REQUIRE(t.ok());
  const auto timeout = kinds(t->events, EventKind::SetupTimeout);
  REQUIRE(timeout.size() == 1);
  REQUIRE(timeout[0].nicks == std::vector<std::string>{"carol"});
  REQUIRE(timeout[0].code == ErrorCode::LimitExceeded);
  REQUIRE(alice.engine->phase() == Phase::Idle);
  auto again = alice.engine->restart(room.now(), *alice.rng);
  REQUIRE(again.ok());
  REQUIRE(alice.engine->phase() == Phase::SettingUp);
}

// =============================================================================================
// §7.6 Session messages: routing and senders
// =============================================================================================

TEST_CASE("R-SES-1 session messages are routed by session tag", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  room.send_text("bob", "one");
  const Bytes b1 = room.queue().back().payload;
  room.run();
  auto d = decode_as<codec::Data>(b1);
  d.session_tag[0] ^= 0x01;
  require_rejected(room, alice, "bob", codec::encode(d), ErrorCode::UnknownSession);
  codec::KeyReveal kr;
  kr.session_tag = d.session_tag;
  kr.sender = 1;
  kr.private_key.fill(0x11);
  require_rejected(room, alice, "bob", codec::encode(kr), ErrorCode::UnknownSession);
  // Once the session is closed and forgotten, its traffic is a replay.
  room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
  room.run();
  REQUIRE(room.all_established());
  require_rejected(room, alice, "bob", b1, ErrorCode::Replay);
  require_rejected(room, alice, "bob", sent_by(room, "bob", MessageType::Shutdown).at(0), ErrorCode::Replay);
}

TEST_CASE("R-SES-2 a session message's sender index must be in the roster and be the transport sender", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  room.send_text("bob", "one");
  const Bytes b1 = take_last(room);
  auto d = decode_as<codec::Data>(b1);
  d.sender = 3;
  require_rejected(room, alice, "bob", codec::encode(d), ErrorCode::NotAMember);
  require_rejected(room, alice, "carol", b1, ErrorCode::NickMismatch);
  auto r = room.by_nick("bob").engine->leave(room.now(), *room.by_nick("bob").rng);
  REQUIRE(r.ok());
  const Bytes sb = first_of(r->broadcasts, MessageType::Shutdown);
  require_rejected(room, alice, "carol", sb, ErrorCode::NickMismatch);
  auto s = decode_as<codec::Shutdown>(sb);
  s.sender = 9;
  require_rejected(room, alice, "bob", codec::encode(s), ErrorCode::NotAMember);
  require_accepted(room, alice, "bob", b1);
}

// =============================================================================================
// §7.7 Chat entries and heartbeats
// =============================================================================================

TEST_CASE("R-DATA-1 an entry must acknowledge exactly n-1 members", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  room.send_text("bob", "one");
  auto d = decode_as<codec::Data>(take_last(room));
  d.acks = {0};
  require_rejected(room, alice, "bob", codec::encode(d), ErrorCode::DecodeBadValue);
  d.acks = {0, 0, 0};
  require_rejected(room, alice, "bob", codec::encode(d), ErrorCode::DecodeBadValue);
}

namespace {
// Room(3): bob sent "one"; then alice restarted, and the old session shut down everywhere,
// except that the messages `withheld` selects never reached alice.
struct ShutdownFixture {
  Room room{3};
  Bytes b1;
  explicit ShutdownFixture(const std::function<bool(const Wire&)>& withheld_from_alice) {
    establish(room);
    room.send_text("bob", "one");
    b1 = room.queue().back().payload;
    room.run();
    room.absorb(alice(), alice().engine->restart(room.now(), *alice().rng));
    run_filtered(room, [&](const Wire& w, const SimMember& m) { return !(m.nick == "alice" && withheld_from_alice(w)); });
    REQUIRE(room.all_established());
  }
  SimMember& alice() { return room.by_nick("alice"); }
  Bytes first(std::string_view from, MessageType t) const { return sent_by(room, from, t).at(0); }
};
bool is_from(const Wire& w, std::string_view nick, MessageType t) { return w.from == nick && type_of(w.payload) == t; }
}  // namespace

TEST_CASE("R-DATA-2 anything signed with a published key is revoked", "[rules]") {
  ShutdownFixture f([](const Wire& w) { return is_from(w, "carol", MessageType::KeyReveal); });
  // bob's key is published; the session is still open at alice (carol's key is missing).
  require_rejected(f.room, f.alice(), "bob", f.b1, ErrorCode::KeyRevoked);
  require_rejected(f.room, f.alice(), "bob", f.first("bob", MessageType::Shutdown), ErrorCode::KeyRevoked);
  require_rejected(f.room, f.alice(), "bob", f.first("bob", MessageType::Digest), ErrorCode::KeyRevoked);
  // Checked before the signature: even a garbage signature reports the revocation.
  Bytes junk = f.b1;
  junk.back() ^= 0x01;
  require_rejected(f.room, f.alice(), "bob", junk, ErrorCode::KeyRevoked);
}

TEST_CASE("R-DATA-3 an entry whose signature does not verify is rejected", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  room.send_text("bob", "one");
  const Bytes b1 = take_last(room);
  // The MAC (checked first) covers everything before it; these bytes are the signature.
  for (std::size_t at : {b1.size() - 64, b1.size() - 40, b1.size() - 1}) {
    Bytes m = b1;
    m[at] ^= 0x01;
    CAPTURE(at);
    require_rejected(room, alice, "bob", m, ErrorCode::BadSignature);
  }
  require_accepted(room, alice, "bob", b1);
}

TEST_CASE("R-DATA-15 the group MAC is checked first: a published signing key does not let outsiders in", "[rules]") {
  SECTION("any change to the MAC'd bytes, or to the MAC") {
    Room room(3);
    establish(room);
    auto& alice = room.by_nick("alice");
    room.send_text("bob", "one");
    const Bytes b1 = take_last(room);
    for (std::size_t at : {std::size_t{12}, std::size_t{13}, std::size_t{20}, b1.size() - 99, b1.size() - 70}) {
      Bytes m = b1;
      m[at] ^= 0x01;
      CAPTURE(at);
      require_rejected(room, alice, "bob", m, ErrorCode::BadMac);
    }
    auto hb = decode_as<codec::Data>(b1);
    hb.type = MessageType::Heartbeat;  // the type byte is MAC'd and signed too
    hb.ciphertext.clear();
    require_rejected(room, alice, "bob", codec::encode(hb), ErrorCode::BadMac);
    require_accepted(room, alice, "bob", b1);
  }
  SECTION("an entry forged with a published key, by someone without the group key") {
    // The server holds bob's published signing key and a genuine entry; it rewrites the
    // ciphertext (AES-CTR is malleable) and re-signs it. Without K_auth its MAC is wrong.
    ShutdownFixture f([](const Wire& w) { return is_from(w, "carol", MessageType::KeyReveal); });
    const auto reveal = decode_as<codec::KeyReveal>(f.first("bob", MessageType::KeyReveal));
    const auto bob_key = crypto::PrivateKey::from_scalar(view(reveal.private_key)).value();
    auto d = decode_as<codec::Data>(f.b1);
    d.ciphertext[0] ^= 0x5a;
    DeterministicRng rng(9);
    const Hash32 sid = f.room.events_of(f.alice(), EventKind::SessionEstablished).front().session_id;
    d.signature = bob_key.sign_digest(spec::signed_digest(sid, view(codec::encode_signed_part(d))), rng).value();
    require_rejected(f.room, f.alice(), "bob", codec::encode(d), ErrorCode::BadMac);
  }
}

TEST_CASE("R-DATA-4 a repeated entry is a duplicate, another entry with the same number is equivocation", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  Engine evil = *bob.engine;  // bob's keys: bob (or whoever holds his keys) signs twice
  DeterministicRng evil_rng(7);
  std::vector<Bytes> real, forged;
  for (const char* t : {"one", "two", "three"}) {
    real.push_back(send_from(*bob.engine, *bob.rng, room.now(), t));
    forged.push_back(send_from(evil, evil_rng, room.now(), std::string("not ") + t));
  }
  SECTION("delivered entries") {
    require_accepted(room, alice, "bob", real[0]);
    require_rejected(room, alice, "bob", real[0], ErrorCode::Duplicate);
    require_rejected(room, alice, "bob", malleate(real[0]), ErrorCode::Duplicate);  // the id excludes the signature
    require_rejected(room, alice, "bob", forged[0], ErrorCode::Equivocation);
  }
  SECTION("held entries") {
    require_accepted(room, alice, "bob", real[2]);
    require_rejected(room, alice, "bob", real[2], ErrorCode::Duplicate);
    require_rejected(room, alice, "bob", forged[2], ErrorCode::Equivocation);
    const Output out = require_accepted(room, alice, "bob", real[1]);
    REQUIRE(kinds(out.events, EventKind::MessageReceived).size() == 0);  // still waiting for entry 1
    REQUIRE(kinds(require_accepted(room, alice, "bob", real[0]).events, EventKind::MessageReceived).size() == 3);
  }
}

TEST_CASE("R-DATA-5 an entry numbered after its sender's final count is unexpected", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  Engine evil = *bob.engine;
  DeterministicRng evil_rng(7);
  auto r = bob.engine->leave(room.now(), *bob.rng);
  REQUIRE(r.ok());
  require_accepted(room, alice, "bob", first_of(r->broadcasts, MessageType::Shutdown));  // final count 0
  require_rejected(room, alice, "bob", send_from(evil, evil_rng, room.now(), "after the end"),
                   ErrorCode::UnexpectedMessage);
}

TEST_CASE("R-DATA-6 an entry after our transcript was closed is unexpected", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& carol = room.by_nick("carol");
  room.send_text("bob", "one");
  const Bytes b1 = take_last(room);
  room.deliver_to(carol, Wire{"bob", b1});  // alice never gets entry 1
  room.send_text("bob", "two");
  room.run();
  room.advance(kDefaultGapTimeoutMs);
  REQUIRE(room.events_of(alice, EventKind::MessageLost).size() == 1);
  // Shut down; alice gets no digest (nor key) from the others: she stays with her own digest sent.
  room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
  run_filtered(room, [](const Wire& w, const SimMember& m) {
    const MessageType t = type_of(w.payload);
    return !(m.nick == "alice" && w.from != "alice" && (t == MessageType::Digest || t == MessageType::KeyReveal));
  });
  REQUIRE(sent_by(room, "alice", MessageType::Digest).size() == 1);
  require_rejected(room, alice, "bob", b1, ErrorCode::UnexpectedMessage);
}

TEST_CASE("R-DATA-7 entries ahead of a gap are held, at most 256 per session", "[rules]") {
  Room room(2);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  std::vector<Bytes> b;
  for (std::size_t i = 0; i < kMaxHeldMessages + 2; ++i) {
    b.push_back(send_from(*bob.engine, *bob.rng, room.now(), "m" + std::to_string(i + 1)));
  }
  const Output first = require_accepted(room, alice, "bob", b[1]);
  const auto gap = kinds(first.events, EventKind::Gap);
  REQUIRE(gap.size() == 1);
  REQUIRE(gap[0].nick == "bob");
  REQUIRE(gap[0].seq == 1);
  REQUIRE(gap[0].seq_end == 1);
  for (std::size_t i = 2; i <= kMaxHeldMessages; ++i) {
    REQUIRE(require_accepted(room, alice, "bob", b[i]).events.empty());  // one Gap event per hole
  }
  require_rejected(room, alice, "bob", b[kMaxHeldMessages + 1], ErrorCode::LimitExceeded);
  const Output released = require_accepted(room, alice, "bob", b[0]);
  const auto received = kinds(released.events, EventKind::MessageReceived);
  REQUIRE(received.size() == kMaxHeldMessages + 1);
  REQUIRE(received.front().seq == 1);
  REQUIRE(received.front().late);  // it arrived after later entries
  REQUIRE(received.back().seq == kMaxHeldMessages + 1);
  REQUIRE_FALSE(received.back().late);
  require_accepted(room, alice, "bob", b[kMaxHeldMessages + 1]);
}

TEST_CASE("R-DATA-8 a gap that is not filled in time is reported lost and skipped", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  room.send_text("bob", "one");
  const Bytes b1 = take_last(room);
  room.deliver_to(room.by_nick("carol"), Wire{"bob", b1});
  room.send_text("bob", "two");
  room.run();
  REQUIRE(room.events_of(alice, EventKind::Gap).size() == 1);
  REQUIRE(room.events_of(alice, EventKind::MessageReceived).empty());
  auto early = alice.engine->tick(room.now() + kDefaultGapTimeoutMs - 1, *alice.rng);
  REQUIRE(early.ok());
  REQUIRE(kinds(early->events, EventKind::MessageLost).empty());
  auto t = alice.engine->tick(room.now() + kDefaultGapTimeoutMs, *alice.rng);
  REQUIRE(t.ok());
  const auto lost = kinds(t->events, EventKind::MessageLost);
  REQUIRE(lost.size() == 1);
  REQUIRE(lost[0].nick == "bob");
  REQUIRE(lost[0].seq == 1);
  REQUIRE(lost[0].seq_end == 1);
  const auto shown = kinds(t->events, EventKind::MessageReceived);
  REQUIRE(shown.size() == 1);
  REQUIRE(shown[0].text == "two");
  // It may still arrive: shown, marked late, but bob's chain stays broken for alice.
  const Output late = require_accepted(room, alice, "bob", b1);
  const auto got = kinds(late.events, EventKind::MessageReceived);
  REQUIRE(got.size() == 1);
  REQUIRE(got[0].late);
  REQUIRE(got[0].text == "one");
  require_rejected(room, alice, "bob", b1, ErrorCode::Duplicate);
  const auto next = decode_as<codec::Data>(send_from(*alice.engine, *alice.rng, room.now(), "ack?"));
  REQUIRE(next.acks.at(0) == 0);  // alice acknowledges none of bob's entries any more
}

TEST_CASE("R-DATA-8 the lost range ends before the lowest held entry, else at the highest count known", "[rules]") {
  FakeSetup f;
  const Hash32 group = f.establish_with_carol();
  const Hash32 sid = f.sid();
  auto& alice = f.alice();
  const TimeMs t0 = f.room.now();
  SECTION("entries held beyond two holes: one loss per hole, a new Gap and timer for the next") {
    require_accepted(f.room, alice, "carol", f.carol.entry(sid, group, 3, {0, 0}));
    REQUIRE(require_accepted(f.room, alice, "carol", f.carol.entry(sid, group, 6, {0, 0})).events.empty());
    auto t1 = alice.engine->tick(t0 + kDefaultGapTimeoutMs, *alice.rng);
    REQUIRE(t1.ok());
    REQUIRE(t1->events.size() == 3);
    REQUIRE(t1->events[0].kind == EventKind::MessageLost);
    REQUIRE(t1->events[0].nick == "carol");
    REQUIRE(t1->events[0].seq == 1);
    REQUIRE(t1->events[0].seq_end == 2);
    REQUIRE(t1->events[0].by.empty());
    REQUIRE(t1->events[1].kind == EventKind::MessageReceived);
    REQUIRE(t1->events[1].seq == 3);
    REQUIRE_FALSE(t1->events[1].late);
    REQUIRE(t1->events[2].kind == EventKind::Gap);
    REQUIRE(t1->events[2].nick == "carol");
    REQUIRE(t1->events[2].seq == 4);
    REQUIRE(t1->events[2].seq_end == 5);
    REQUIRE(t1->events[2].by.empty());
    auto early = alice.engine->tick(t0 + 2 * kDefaultGapTimeoutMs - 1, *alice.rng);
    REQUIRE(early.ok());
    REQUIRE(kinds(early->events, EventKind::MessageLost).empty());
    auto t2 = alice.engine->tick(t0 + 2 * kDefaultGapTimeoutMs, *alice.rng);
    REQUIRE(t2.ok());
    const auto lost = kinds(t2->events, EventKind::MessageLost);
    REQUIRE(lost.size() == 1);
    REQUIRE(lost[0].seq == 4);
    REQUIRE(lost[0].seq_end == 5);
    REQUIRE(kinds(t2->events, EventKind::MessageReceived).at(0).seq == 6);
    REQUIRE(kinds(t2->events, EventKind::Gap).empty());
  }
  SECTION("nothing held: up to the final count") {
    require_accepted(f.room, alice, "carol", f.carol.entry(sid, group, 1, {0, 0}));
    codec::Shutdown sd;
    sd.final_count = 3;
    const Output closing = require_accepted(f.room, alice, "carol", f.carol.sealed(sid, group, sd));
    const auto gap = kinds(closing.events, EventKind::Gap);
    REQUIRE(gap.size() == 1);
    REQUIRE(gap[0].seq == 2);
    REQUIRE(gap[0].seq_end == 3);
    auto t = alice.engine->tick(t0 + kDefaultGapTimeoutMs, *alice.rng);
    REQUIRE(t.ok());
    const auto lost = kinds(t->events, EventKind::MessageLost);
    REQUIRE(lost.size() == 1);
    REQUIRE(lost[0].seq == 2);
    REQUIRE(lost[0].seq_end == 3);
    REQUIRE(lost[0].by.empty());
    REQUIRE(kinds(t->events, EventKind::Gap).empty());
  }
}

TEST_CASE("R-DATA-8 a lost entry that arrives late is shown, and its view is not examined", "[rules]") {
  FakeSetup f;
  const Hash32 group = f.establish_with_carol();
  const Hash32 sid = f.sid();
  auto& alice = f.alice();
  require_accepted(f.room, alice, "carol", f.carol.entry(sid, group, 2, {0, 0}));
  auto t = alice.engine->tick(f.room.now() + kDefaultGapTimeoutMs, *alice.rng);
  REQUIRE(t.ok());
  REQUIRE(kinds(t->events, EventKind::MessageLost).size() == 1);
  // Entry 1 claims 5 entries of alice, who wrote none (R-DATA-10 would make it a split view),
  // and 3 of bob's, which alice lacks (R-DATA-11 would report a gap): neither is looked at.
  const Output late = require_accepted(f.room, alice, "carol", f.carol.entry(sid, group, 1, {5, 3}));
  REQUIRE(late.broadcasts.empty());
  REQUIRE(late.events.size() == 1);
  REQUIRE(late.events[0].kind == EventKind::MessageReceived);
  REQUIRE(late.events[0].nick == "carol");
  REQUIRE(late.events[0].seq == 1);
  REQUIRE(late.events[0].late);
}

TEST_CASE("R-DATA-9 an entry written on a different transcript is a split view", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  auto& carol = room.by_nick("carol");
  Engine evil = *carol.engine;
  DeterministicRng evil_rng(7);
  const Bytes c1 = send_from(*carol.engine, *carol.rng, room.now(), "for alice");
  const Bytes c1x = send_from(evil, evil_rng, room.now(), "for bob");
  require_accepted(room, alice, "carol", c1);
  require_accepted(room, bob, "carol", c1x);
  const Bytes b1 = send_from(*bob.engine, *bob.rng, room.now(), "I saw carol's");
  const Output out = require_accepted(room, alice, "bob", b1);
  const auto split = kinds(out.events, EventKind::SplitView);
  REQUIRE(split.size() == 1);
  REQUIRE(split[0].nick == "bob");
  REQUIRE(split[0].seq == 1);
  REQUIRE(kinds(out.events, EventKind::Confirmed).empty());  // a split view confirms nothing
  REQUIRE(kinds(out.events, EventKind::MessageReceived).size() == 1);  // the entry itself is shown
}

TEST_CASE("R-DATA-10 an entry claiming more of our entries than we sent is a split view", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  Engine evil = *alice.engine;
  DeterministicRng evil_rng(7);
  const Bytes fake_a1 = send_from(evil, evil_rng, room.now(), "alice never said this");
  require_accepted(room, bob, "alice", fake_a1);
  const Bytes b1 = send_from(*bob.engine, *bob.rng, room.now(), "replying to alice");
  const Output out = require_accepted(room, alice, "bob", b1);
  const auto split = kinds(out.events, EventKind::SplitView);
  REQUIRE(split.size() == 1);
  REQUIRE(split[0].nick == "bob");
}

TEST_CASE("R-DATA-10 is checked first, whatever other entries the view names", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  auto& carol = room.by_nick("carol");
  // bob holds alice's #1, which carol lacks, and an entry in carol's name that carol never
  // wrote. alice's index is below carol's: that must not hide the split view from carol.
  require_accepted(room, bob, "alice", send_from(*alice.engine, *alice.rng, room.now(), "a1"));
  Engine evil = *carol.engine;
  DeterministicRng evil_rng(7);
  require_accepted(room, bob, "carol", send_from(evil, evil_rng, room.now(), "carol never said this"));
  const Output out = require_accepted(room, carol, "bob", send_from(*bob.engine, *bob.rng, room.now(), "b1"));
  const auto split = kinds(out.events, EventKind::SplitView);
  REQUIRE(split.size() == 1);
  REQUIRE(split[0].nick == "bob");
  REQUIRE(split[0].seq == 0);  // names no entry of bob's
  REQUIRE(kinds(out.events, EventKind::Gap).empty());  // the view is examined no further
}

TEST_CASE("R-DATA-11 an entry naming entries we lack reports the gap and is checked when they arrive", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  auto& carol = room.by_nick("carol");
  const Bytes c1 = send_from(*carol.engine, *carol.rng, room.now(), "carol one");
  require_accepted(room, bob, "carol", c1);
  const Bytes b1 = send_from(*bob.engine, *bob.rng, room.now(), "bob saw it");
  const Output first = require_accepted(room, alice, "bob", b1);
  const auto gap = kinds(first.events, EventKind::Gap);
  REQUIRE(gap.size() == 1);
  REQUIRE(gap[0].nick == "carol");
  REQUIRE(gap[0].seq == 1);
  REQUIRE(gap[0].seq_end == 1);
  REQUIRE(kinds(first.events, EventKind::Confirmed).empty());
  const Output later = require_accepted(room, alice, "carol", c1);
  bool carol_confirmed_by_bob = false;
  for (const auto& e : kinds(later.events, EventKind::Confirmed)) {
    carol_confirmed_by_bob = carol_confirmed_by_bob || (e.nick == "carol" && e.by == "bob" && e.seq == 1);
  }
  REQUIRE(carol_confirmed_by_bob);
  REQUIRE(kinds(later.events, EventKind::SplitView).empty());
}

TEST_CASE("R-DATA-11 every member whose entries a view names and we lack gets its Gap, in index order", "[rules]") {
  Room room(4);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  auto& carol = room.by_nick("carol");
  auto& dave = room.by_nick("dave");
  const Bytes b1 = send_from(*bob.engine, *bob.rng, room.now(), "b1");
  const Bytes c1 = send_from(*carol.engine, *carol.rng, room.now(), "c1");
  require_accepted(room, dave, "bob", b1);
  require_accepted(room, dave, "carol", c1);
  const Output out = require_accepted(room, alice, "dave", send_from(*dave.engine, *dave.rng, room.now(), "d1"));
  const auto gaps = kinds(out.events, EventKind::Gap);
  REQUIRE(gaps.size() == 2);
  REQUIRE(gaps[0].nick == "bob");
  REQUIRE(gaps[1].nick == "carol");
  for (const auto& g : gaps) {
    REQUIRE(g.seq == 1);
    REQUIRE(g.seq_end == 1);
    REQUIRE(g.by == "dave");
  }
  // The view is checked once both entries are in: it confirms them.
  require_accepted(room, alice, "bob", b1);
  const Output done = require_accepted(room, alice, "carol", c1);
  bool confirmed = false;
  for (const auto& e : kinds(done.events, EventKind::Confirmed)) {
    confirmed = confirmed || (e.by == "dave" && e.nick == "carol");
  }
  REQUIRE(confirmed);
}

TEST_CASE("R-DATA-11 a larger claim while the gap is pending raises it and names its claimer, no new Gap or timer", "[rules]") {
  Room room(4);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  auto& carol = room.by_nick("carol");
  auto& dave = room.by_nick("dave");
  const Bytes d1 = send_from(*dave.engine, *dave.rng, room.now(), "d1");
  const Bytes d2 = send_from(*dave.engine, *dave.rng, room.now(), "d2");
  require_accepted(room, bob, "dave", d1);
  require_accepted(room, carol, "dave", d1);
  require_accepted(room, carol, "dave", d2);
  const Bytes b1 = send_from(*bob.engine, *bob.rng, room.now(), "b1");      // acknowledges dave's #1
  const Bytes c1 = send_from(*carol.engine, *carol.rng, room.now(), "c1");  // acknowledges dave's #2
  const TimeMs t0 = room.now();
  const Output first = require_accepted(room, alice, "bob", b1);
  const auto gap = kinds(first.events, EventKind::Gap);
  REQUIRE(gap.size() == 1);
  REQUIRE(gap[0].nick == "dave");
  REQUIRE(gap[0].seq == 1);
  REQUIRE(gap[0].seq_end == 1);
  REQUIRE(gap[0].by == "bob");
  auto second = alice.engine->receive("carol", view(c1), t0 + 5000, *alice.rng);
  REQUIRE(second.ok());
  REQUIRE(kinds(second->events, EventKind::Gap).empty());
  auto early = alice.engine->tick(t0 + kDefaultGapTimeoutMs - 1, *alice.rng);
  REQUIRE(early.ok());
  REQUIRE(kinds(early->events, EventKind::MessageLost).empty());
  auto t = alice.engine->tick(t0 + kDefaultGapTimeoutMs, *alice.rng);  // the first claim's deadline
  REQUIRE(t.ok());
  const auto lost = kinds(t->events, EventKind::MessageLost);
  REQUIRE(lost.size() == 1);
  REQUIRE(lost[0].nick == "dave");
  REQUIRE(lost[0].seq == 1);
  REQUIRE(lost[0].seq_end == 2);
  REQUIRE(lost[0].by == "carol");
  REQUIRE(kinds(t->events, EventKind::Gap).empty());
}

TEST_CASE("R-DATA-12 entries confirm what their author had seen, all others confirming is full confirmation",
          "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  room.send_text("alice", "hello");
  room.run();
  const Bytes b1 = send_from(*room.by_nick("bob").engine, *room.by_nick("bob").rng, room.now(), "hi");
  const Bytes c1 = send_from(*room.by_nick("carol").engine, *room.by_nick("carol").rng, room.now(), "hey");
  const Output by_bob = require_accepted(room, alice, "bob", b1);
  const auto c = kinds(by_bob.events, EventKind::Confirmed);
  REQUIRE(c.size() == 1);
  REQUIRE(c[0].nick == "alice");
  REQUIRE(c[0].by == "bob");
  REQUIRE(c[0].seq == 1);
  REQUIRE(kinds(by_bob.events, EventKind::FullyConfirmed).empty());
  const Output by_carol = require_accepted(room, alice, "carol", c1);
  const auto full = kinds(by_carol.events, EventKind::FullyConfirmed);
  REQUIRE(full.size() == 1);
  REQUIRE(full[0].nick == "alice");
  REQUIRE(full[0].seq == 1);
}

TEST_CASE("R-DATA-12 our own entry reports the confirmations it makes, member by member in index order", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& carol = room.by_nick("carol");
  room.send_text("bob", "b1");
  room.run();  // everyone holds bob's #1
  const Output seen = require_accepted(room, alice, "carol", send_from(*carol.engine, *carol.rng, room.now(), "c1"));
  const auto by_carol = kinds(seen.events, EventKind::Confirmed);
  REQUIRE(by_carol.size() == 1);
  REQUIRE(by_carol[0].nick == "bob");
  REQUIRE(by_carol[0].by == "carol");
  REQUIRE(kinds(seen.events, EventKind::FullyConfirmed).empty());  // alice has not acknowledged it yet
  const auto require_own = [](const std::vector<Event>& ev) {
    REQUIRE(ev.size() == 3);
    REQUIRE(ev[0].kind == EventKind::Confirmed);
    REQUIRE(ev[0].nick == "bob");
    REQUIRE(ev[0].seq == 1);
    REQUIRE(ev[0].by == "alice");
    REQUIRE(ev[1].kind == EventKind::FullyConfirmed);
    REQUIRE(ev[1].nick == "bob");
    REQUIRE(ev[1].seq == 1);
    REQUIRE(ev[2].kind == EventKind::Confirmed);
    REQUIRE(ev[2].nick == "carol");
    REQUIRE(ev[2].seq == 1);
    REQUIRE(ev[2].by == "alice");
  };
  SECTION("by the call that sends a chat entry") {
    auto r = alice.engine->send_text("a1", room.now(), *alice.rng);
    REQUIRE(r.ok());
    require_own(r->events);
  }
  SECTION("by the tick() that sends a heartbeat") {
    auto r = alice.engine->tick(room.now() + kDefaultHeartbeatMs, *alice.rng);
    REQUIRE(r.ok());
    REQUIRE(r->broadcasts.size() == 1);
    REQUIRE(type_of(r->broadcasts[0]) == MessageType::Heartbeat);
    require_own(r->events);
  }
}

TEST_CASE("R-DATA-13 our entry not confirmed by everyone in time is reported overdue, once", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  room.send_text("alice", "anyone?");
  room.queue().clear();  // nobody gets it
  auto early = alice.engine->tick(room.now() + kDefaultConfirmTimeoutMs - 1, *alice.rng);
  REQUIRE(early.ok());
  REQUIRE(kinds(early->events, EventKind::ConfirmationOverdue).empty());
  auto t = alice.engine->tick(room.now() + kDefaultConfirmTimeoutMs, *alice.rng);
  REQUIRE(t.ok());
  const auto overdue = kinds(t->events, EventKind::ConfirmationOverdue);
  REQUIRE(overdue.size() == 1);
  REQUIRE(overdue[0].seq == 1);
  REQUIRE(overdue[0].nick == "alice");  // the author: ourselves (Appendix B)
  REQUIRE(overdue[0].nicks == std::vector<std::string>{"bob", "carol"});
  auto again = alice.engine->tick(room.now() + 3 * kDefaultConfirmTimeoutMs, *alice.rng);
  REQUIRE(again.ok());
  REQUIRE(kinds(again->events, EventKind::ConfirmationOverdue).empty());
}

TEST_CASE("R-DATA-14 an idle member acknowledges new entries with one heartbeat", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  room.send_text("alice", "ping");
  room.run();
  const std::size_t relayed = room.log().size();
  room.advance(kDefaultHeartbeatMs - 1);
  REQUIRE(room.log().size() == relayed);
  room.advance(1);
  REQUIRE(room.log().size() == relayed + 2);  // bob's and carol's heartbeats
  REQUIRE(sent_by(room, "bob", MessageType::Heartbeat).size() == 1);
  REQUIRE(sent_by(room, "carol", MessageType::Heartbeat).size() == 1);
  REQUIRE(room.events_of(alice, EventKind::Heartbeat).size() == 2);
  REQUIRE(room.events_of(alice, EventKind::FullyConfirmed).size() == 1);
  room.advance(kDefaultHeartbeatMs);
  room.advance(kDefaultHeartbeatMs);
  REQUIRE(room.log().size() == relayed + 2);  // nothing new to acknowledge: silence
  for (const auto& m : room.members()) {
    REQUIRE(m.errors.empty());
  }
}

TEST_CASE("R-DATA-14 a heartbeat timer pending when the session leaves Active is cancelled", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  const TimeMs t0 = room.now();
  require_accepted(room, alice, "bob", send_from(*bob.engine, *bob.rng, t0, "hi"));  // alice's timer: t0 + 5 s
  auto left = alice.engine->leave(t0, *alice.rng);
  REQUIRE(left.ok());
  REQUIRE(left->wake_at.has_value());
  REQUIRE(*left->wake_at == t0 + kDefaultShutdownTimeoutMs);  // the heartbeat is no longer due
  auto t = alice.engine->tick(t0 + kDefaultHeartbeatMs, *alice.rng);
  REQUIRE(t.ok());
  REQUIRE(t->broadcasts.empty());
  REQUIRE(t->events.empty());
}

TEST_CASE("R-SEND-1 send_text needs an established session, 1..16384 bytes of text", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  const StateSummary before = alice.engine->summary();
  for (const std::string& bad : {std::string(), std::string(kMaxTextLen + 1, 'x')}) {
    auto r = alice.engine->send_text(bad, room.now(), *alice.rng);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.error().code == ErrorCode::InvalidArgument);
    REQUIRE(alice.engine->summary() == before);
  }
  const Bytes longest = send_from(*alice.engine, *alice.rng, room.now(), std::string(kMaxTextLen, 'x'));
  REQUIRE(longest.size() == 146 + 2 + kMaxTextLen);  // §4.12, n = 3
  // A session that is closing takes no more entries.
  auto& bob = room.by_nick("bob");
  auto r = bob.engine->leave(room.now(), *bob.rng);
  REQUIRE(r.ok());
  require_accepted(room, alice, "bob", first_of(r->broadcasts, MessageType::Shutdown));
  const StateSummary closing = alice.engine->summary();
  auto refused = alice.engine->send_text("late", room.now(), *alice.rng);
  REQUIRE_FALSE(refused.ok());
  REQUIRE(refused.error().code == ErrorCode::NotReady);
  REQUIRE(alice.engine->summary() == closing);
}

// =============================================================================================
// §7.8 Shutdown
// =============================================================================================

TEST_CASE("R-SD-1 a member's shutdown makes us shut down too", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  room.send_text("alice", "before");
  room.run();
  auto r = bob.engine->leave(room.now(), *bob.rng);
  REQUIRE(r.ok());
  const auto sb = decode_as<codec::Shutdown>(first_of(r->broadcasts, MessageType::Shutdown));
  REQUIRE(sb.final_count == 0);
  const Output out = require_accepted(room, alice, "bob", codec::encode(sb));
  REQUIRE(has_event(out.events, EventKind::SessionClosing));
  const auto own = decode_as<codec::Shutdown>(first_of(out.broadcasts, MessageType::Shutdown));
  REQUIRE(own.sender == 0);
  REQUIRE(own.final_count == 1);
  REQUIRE(alice.engine->phase() == Phase::Idle);
}

TEST_CASE("R-SD-2 a shutdown whose signature does not verify is rejected", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto r = room.by_nick("bob").engine->leave(room.now(), *room.by_nick("bob").rng);
  REQUIRE(r.ok());
  const Bytes sb = first_of(r->broadcasts, MessageType::Shutdown);
  auto s = decode_as<codec::Shutdown>(sb);
  s.final_count = 5;
  require_rejected(room, alice, "bob", codec::encode(s), ErrorCode::BadMac);  // R-DATA-15 first
  Bytes m = sb;
  m[m.size() - 33] ^= 0x01;
  require_rejected(room, alice, "bob", m, ErrorCode::BadSignature);
  require_accepted(room, alice, "bob", sb);
}

TEST_CASE("R-SD-3 a second shutdown is a duplicate when identical, equivocation when different", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  Engine evil = *bob.engine;
  DeterministicRng evil_rng(7);
  (void)send_from(evil, evil_rng, room.now(), "never delivered");
  auto other = evil.leave(room.now(), evil_rng);  // final count 1
  REQUIRE(other.ok());
  auto r = bob.engine->leave(room.now(), *bob.rng);  // final count 0
  REQUIRE(r.ok());
  const Bytes sb = first_of(r->broadcasts, MessageType::Shutdown);
  require_accepted(room, alice, "bob", sb);
  require_rejected(room, alice, "bob", sb, ErrorCode::Duplicate);
  require_rejected(room, alice, "bob", first_of(other->broadcasts, MessageType::Shutdown), ErrorCode::Equivocation);
}

TEST_CASE("R-SD-4 a final count below the entries we hold of that member is equivocation", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  Engine evil = *bob.engine;  // bob before his first entry
  DeterministicRng evil_rng(7);
  const Bytes b1 = send_from(*bob.engine, *bob.rng, room.now(), "one");
  const Bytes b2 = send_from(*bob.engine, *bob.rng, room.now(), "two");
  auto early_end = evil.leave(room.now(), evil_rng);  // final count 0
  REQUIRE(early_end.ok());
  const Bytes sd0 = first_of(early_end->broadcasts, MessageType::Shutdown);
  SECTION("delivered") {
    require_accepted(room, alice, "bob", b1);
    require_rejected(room, alice, "bob", sd0, ErrorCode::Equivocation);
  }
  SECTION("held") {
    require_accepted(room, alice, "bob", b2);
    require_rejected(room, alice, "bob", sd0, ErrorCode::Equivocation);
  }
}

TEST_CASE("R-SD-5 a final count above what we hold reports a gap", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  const Bytes b1 = send_from(*bob.engine, *bob.rng, room.now(), "in flight");
  auto r = bob.engine->leave(room.now(), *bob.rng);
  REQUIRE(r.ok());
  const Output out = require_accepted(room, alice, "bob", first_of(r->broadcasts, MessageType::Shutdown));
  const auto gap = kinds(out.events, EventKind::Gap);
  REQUIRE(gap.size() == 1);
  REQUIRE(gap[0].nick == "bob");
  REQUIRE(gap[0].seq == 1);
  REQUIRE(gap[0].seq_end == 1);
  const Output late = require_accepted(room, alice, "bob", b1);  // still accepted: within the final count
  REQUIRE(kinds(late.events, EventKind::MessageReceived).size() == 1);
}

TEST_CASE("R-SD-6 a digest before any shutdown is unexpected, digests are checked like shutdowns", "[rules]") {
  SECTION("before any shutdown") {
    Room room(2);
    establish(room);
    auto& alice = room.by_nick("alice");
    Engine evil_a = *alice.engine;
    Engine evil_b = *room.by_nick("bob").engine;
    DeterministicRng rng_a(5), rng_b(6);
    auto sb = evil_b.leave(room.now(), rng_b);
    REQUIRE(sb.ok());
    auto ra = evil_a.receive("bob", view(first_of(sb->broadcasts, MessageType::Shutdown)), room.now(), rng_a);
    REQUIRE(ra.ok());
    auto rb = evil_b.receive("alice", view(first_of(ra->broadcasts, MessageType::Shutdown)), room.now(), rng_b);
    REQUIRE(rb.ok());
    const Bytes digest_b = first_of(rb->broadcasts, MessageType::Digest);
    require_rejected(room, alice, "bob", digest_b, ErrorCode::UnexpectedMessage);
    // And a digest in our name that we never sent.
    require_rejected(room, alice, "alice", first_of(ra->broadcasts, MessageType::Digest), ErrorCode::NickMismatch);
  }
  SECTION("duplicate, bad signature") {
    ShutdownFixture f([](const Wire& w) { return is_from(w, "carol", MessageType::KeyReveal); });
    const Bytes dc = f.first("carol", MessageType::Digest);
    require_rejected(f.room, f.alice(), "carol", dc, ErrorCode::Duplicate);
    Bytes m = dc;
    m[20] ^= 0x01;
    require_rejected(f.room, f.alice(), "carol", m, ErrorCode::BadMac);
    m = dc;
    m[m.size() - 20] ^= 0x01;
    require_rejected(f.room, f.alice(), "carol", m, ErrorCode::BadSignature);
    require_rejected(f.room, f.alice(), "carol", f.first("carol", MessageType::Shutdown), ErrorCode::Duplicate);
  }
}

TEST_CASE("R-SD-7 a complete shutdown checks transcripts, publishes keys and closes the session", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  const Hash32 sid = alice.engine->session()->session_id;
  room.absorb(bob, bob.engine->leave(room.now(), *bob.rng));
  room.run();
  for (auto& m : room.members()) {
    CAPTURE(m.nick);
    REQUIRE(m.errors.empty());
    REQUIRE(room.events_of(m, EventKind::TranscriptConsistent).size() == 1);
    REQUIRE(room.events_of(m, EventKind::TranscriptConsistent)[0].session_id == sid);
    REQUIRE(room.events_of(m, EventKind::KeyPublished).size() == 1);
    REQUIRE(room.events_of(m, EventKind::PeerKeyPublished).size() == 2);
  }
  REQUIRE(room.events_of(bob, EventKind::ReadyToLeave).size() == 1);
  REQUIRE(room.events_of(alice, EventKind::SessionClosed).size() == 1);
  // §5.13: the digest everyone sent, recomputed from the spec (nobody wrote anything).
  const auto dg = decode_as<codec::Digest>(sent_by(room, "alice", MessageType::Digest).at(0));
  Bytes t = spec::cat({spec::txt("mpotr-v2 transcript")});
  for (std::uint8_t m = 0; m < 3; ++m) {
    append(t, view(spec::u32(0)));
    append(t, view(spec::chain_start(sid, m)));
  }
  REQUIRE(dg.transcript_digest == spec::H(t));
  // §4.12 sizes, n = 3.
  REQUIRE(sent_by(room, "alice", MessageType::Offer).at(0).size() == 266 + 5);
  REQUIRE(sent_by(room, "carol", MessageType::Offer).at(0).size() == 266 + 5);
  REQUIRE(sent_by(room, "bob", MessageType::Offer).at(0).size() == 266 + 3);
  REQUIRE(sent_by(room, "alice", MessageType::KeyShare).at(0).size() == 213 + 64 * 2);
  REQUIRE(sent_by(room, "alice", MessageType::Attest).at(0).size() == 163);
  REQUIRE(sent_by(room, "alice", MessageType::Shutdown).at(0).size() == 111);
  REQUIRE(sent_by(room, "alice", MessageType::Digest).at(0).size() == 139);
  REQUIRE(sent_by(room, "alice", MessageType::End).at(0).size() == 155);
  REQUIRE(sent_by(room, "alice", MessageType::KeyReveal).at(0).size() == 43);
  // The published scalars are the keys registered in the offers.
  for (const auto& e : room.events_of(alice, EventKind::PeerKeyPublished)) {
    const auto key = crypto::PrivateKey::from_scalar(view(e.data));
    REQUIRE(key.ok());
    const auto offer = decode_as<codec::Offer>(sent_by(room, e.nick, MessageType::Offer).at(0));
    REQUIRE(key->public_key().point() == offer.signing_key);
  }
}

TEST_CASE("R-SD-7 ReadyToLeave is the last event of the call that completes the leave, receive() too", "[rules]") {
  // One receive() publishes our key and closes the session: ReadyToLeave comes after all of it,
  // at the end of the call, as in tick() (§6.4).
  Room room(2);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  const Hash32 sid = alice.engine->session()->session_id;
  auto l = alice.engine->leave(room.now(), *alice.rng);
  REQUIRE(l.ok());
  REQUIRE(kind_sequence(l->events) == std::vector<EventKind>{EventKind::SessionClosing});
  auto q = bob.engine->quit(room.now(), *bob.rng);  // bob has not seen alice's Shutdown
  REQUIRE(q.ok());
  const Output out = require_accepted(room, alice, "bob", first_of(q->broadcasts, MessageType::Quit));
  REQUIRE(kind_sequence(out.events) == std::vector<EventKind>{EventKind::TranscriptConsistent, EventKind::KeyPublished,
                                                              EventKind::SessionClosed, EventKind::ReadyToLeave});
  REQUIRE(out.events[2].session_id == sid);
  REQUIRE(out.events[3].session_id == Hash32{});
  REQUIRE(type_sequence(out.broadcasts) ==
          std::vector<MessageType>{MessageType::Digest, MessageType::End, MessageType::KeyReveal});
  REQUIRE(alice.engine->phase() == Phase::Left);
}

TEST_CASE("R-SD-8 a final digest different from ours is reported as a transcript mismatch", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  auto& carol = room.by_nick("carol");
  Engine evil = *carol.engine;
  DeterministicRng evil_rng(7);
  room.deliver_to(alice, Wire{"carol", send_from(*carol.engine, *carol.rng, room.now(), "for alice")});
  room.deliver_to(bob, Wire{"carol", send_from(evil, evil_rng, room.now(), "for bob")});
  room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
  room.run();
  const auto mismatch = room.events_of(alice, EventKind::TranscriptMismatch);
  REQUIRE(mismatch.size() == 1);
  REQUIRE(mismatch[0].nick == "bob");
  REQUIRE(room.events_of(alice, EventKind::TranscriptConsistent).empty());
  // Keys are published all the same: the transcripts are closed.
  REQUIRE(room.events_of(alice, EventKind::KeyPublished).size() == 1);
}

TEST_CASE("R-SD-9 a published key must be the registered signing key", "[rules]") {
  ShutdownFixture f([](const Wire& w) { return is_from(w, "carol", MessageType::KeyReveal); });
  const Bytes kc = f.first("carol", MessageType::KeyReveal);
  const Bytes kb = f.first("bob", MessageType::KeyReveal);
  auto wrong = decode_as<codec::KeyReveal>(kc);
  wrong.private_key[31] ^= 0x01;
  require_rejected(f.room, f.alice(), "carol", codec::encode(wrong), ErrorCode::BadKeyReveal);
  wrong.private_key.fill(0x00);  // not a scalar at all
  require_rejected(f.room, f.alice(), "carol", codec::encode(wrong), ErrorCode::BadKeyReveal);
  wrong.private_key.fill(0xff);  // ≥ n
  require_rejected(f.room, f.alice(), "carol", codec::encode(wrong), ErrorCode::BadKeyReveal);
  wrong.private_key = decode_as<codec::KeyReveal>(kb).private_key;  // a real key, but bob's
  require_rejected(f.room, f.alice(), "carol", codec::encode(wrong), ErrorCode::BadKeyReveal);
  require_rejected(f.room, f.alice(), "carol", kb, ErrorCode::NickMismatch);
  require_rejected(f.room, f.alice(), "bob", kb, ErrorCode::Duplicate);
  auto own = decode_as<codec::KeyReveal>(f.first("alice", MessageType::KeyReveal));
  own.private_key = decode_as<codec::KeyReveal>(kb).private_key;
  require_rejected(f.room, f.alice(), "alice", codec::encode(own), ErrorCode::NickMismatch);
  const Output out = require_accepted(f.room, f.alice(), "carol", kc);
  const auto published = kinds(out.events, EventKind::PeerKeyPublished);
  REQUIRE(published.size() == 1);
  REQUIRE(published[0].nick == "carol");
  REQUIRE(published[0].data == Bytes(kc.end() - 32, kc.end()));
  REQUIRE(has_event(out.events, EventKind::SessionClosed));
  require_rejected(f.room, f.alice(), "carol", kc, ErrorCode::Replay);  // the session is gone
}

TEST_CASE("R-SD-10 on shutdown timeout silent members are excused from the check, whatever presence says", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  const Hash32 sid = alice.engine->session()->session_id;
  room.by_nick("carol").present = false;  // carol goes silent (crashed, or the server cut her off)
  SECTION("the check goes on among the others; the key is withheld, even after presence drops her") {
    room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
    room.run();
    room.advance(kDefaultShutdownTimeoutMs);
    for (const char* nick : {"alice", "bob"}) {
      CAPTURE(nick);
      auto& m = room.by_nick(nick);
      const auto incomplete = room.events_of(m, EventKind::ShutdownIncomplete);
      REQUIRE(incomplete.size() == 1);
      REQUIRE(incomplete[0].nicks == std::vector<std::string>{"carol"});
      REQUIRE(incomplete[0].session_id == sid);
      const auto consistent = room.events_of(m, EventKind::TranscriptConsistent);
      REQUIRE(consistent.size() == 1);
      REQUIRE(consistent[0].nicks == std::vector<std::string>{"carol"});
      const auto withheld = room.events_of(m, EventKind::KeyWithheld);
      REQUIRE(withheld.size() == 1);
      REQUIRE(withheld[0].nicks == std::vector<std::string>{"carol"});
      REQUIRE(room.events_of(m, EventKind::KeyPublished).empty());
      REQUIRE(sent_by(room, nick, MessageType::KeyReveal).empty());
      REQUIRE(sent_by(room, nick, MessageType::End).size() == 1);  // the End still goes out
    }
    // Presence saying carol left changes nothing: only her End or Quit would.
    room.part("carol");
    room.advance(10 * kDefaultShutdownTimeoutMs);
    REQUIRE(room.events_of(alice, EventKind::KeyPublished).empty());
    REQUIRE(sent_by(room, "alice", MessageType::KeyReveal).empty());
  }
  SECTION("keys published, some never received: the session closes at the deadline") {
    room.by_nick("carol").present = true;
    ShutdownFixture f([](const Wire& w) { return is_from(w, "carol", MessageType::KeyReveal); });
    auto t = f.alice().engine->tick(f.room.now() + kDefaultShutdownTimeoutMs, *f.alice().rng);
    REQUIRE(t.ok());
    const auto incomplete = kinds(t->events, EventKind::ShutdownIncomplete);
    REQUIRE(incomplete.size() == 1);
    REQUIRE(incomplete[0].nicks == std::vector<std::string>{"carol"});
    REQUIRE(has_event(t->events, EventKind::SessionClosed));
    require_rejected(f.room, f.alice(), "carol", f.first("carol", MessageType::KeyReveal), ErrorCode::Replay);
  }
}

TEST_CASE("R-SD-10 a member whose Shutdown is held but whose entries are missing is cut to what we received", "[rules]") {
  Timeouts slow_gaps;
  slow_gaps.gap = 2 * kDefaultShutdownTimeoutMs;  // the shutdown deadline comes before the gap's
  Room room(3, 1, slow_gaps);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  const Hash32 sid = alice.engine->session()->session_id;
  for (const char* text : {"b1", "b2", "b3"}) {
    room.send_text("bob", text);
  }
  const Bytes b1 = sent_by(room, "bob", MessageType::Data).at(0);
  const Bytes b2 = sent_by(room, "bob", MessageType::Data).at(1);
  const auto pass = [&](const Wire& w, const SimMember& m) { return !(m.nick == "alice" && w.payload == b2); };
  run_filtered(room, pass);
  const TimeMs t0 = room.now();
  room.absorb(bob, bob.engine->leave(t0, *bob.rng));
  run_filtered(room, pass);
  REQUIRE(sent_by(room, "alice", MessageType::Shutdown).size() == 1);
  REQUIRE(sent_by(room, "alice", MessageType::Digest).empty());  // bob's #2 missing, #3 held
  auto t = alice.engine->tick(t0 + kDefaultShutdownTimeoutMs, *alice.rng);
  REQUIRE(t.ok());
  const auto incomplete = kinds(t->events, EventKind::ShutdownIncomplete);
  REQUIRE(incomplete.size() == 1);
  REQUIRE(incomplete[0].nicks == std::vector<std::string>{"bob"});
  // bob's final count became 1 (what alice received in order); #3, held beyond the hole, was
  // dropped: the digest is over bob's intact chain up to #1, with no lost run.
  const auto dg = decode_as<codec::Digest>(first_of(t->broadcasts, MessageType::Digest));
  const Hash32 id1 = spec::signed_digest(sid, ByteView(b1).first(b1.size() - 64));
  const Hash32 c1 = spec::H(spec::cat({view(spec::chain_start(sid, 1)), view(id1)}));
  const Bytes expected = spec::cat({spec::txt("mpotr-v2 transcript"), view(spec::u32(0)), view(spec::chain_start(sid, 0)),
                                    view(spec::u32(1)), view(c1), view(spec::u32(0)), view(spec::chain_start(sid, 2))});
  REQUIRE(dg.transcript_digest == spec::H(expected));
}

TEST_CASE("R-SD-10 the shutdown deadline runs from Closing, and rounds completed in time do not restart it", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  const TimeMs t0 = room.now();
  room.absorb(alice, alice.engine->leave(t0, *alice.rng));
  std::vector<Wire> held;
  run_filtered(room, [&](const Wire& w, const SimMember& m) {
    const auto type = type_of(w.payload);
    const bool hold = m.nick == "alice" && w.from == "carol" && (type == MessageType::Digest || type == MessageType::End);
    if (hold) {
      held.push_back(w);
    }
    return !hold;
  });
  REQUIRE(held.size() == 2);
  REQUIRE(type_of(held[0].payload) == MessageType::Digest);
  // carol's Digest reaches alice 10 s into the shutdown: alice moves on to Ended (her End).
  auto r = alice.engine->receive("carol", view(held[0].payload), t0 + 10000, *alice.rng);
  REQUIRE(r.ok());
  REQUIRE(first_of(r->broadcasts, MessageType::End).size() == 155);
  REQUIRE(r->wake_at.has_value());
  REQUIRE(*r->wake_at == t0 + kDefaultShutdownTimeoutMs);  // still the deadline set when Closing began
  auto before = alice.engine->tick(t0 + kDefaultShutdownTimeoutMs - 1, *alice.rng);
  REQUIRE(before.ok());
  REQUIRE(before->events.empty());
  auto t = alice.engine->tick(t0 + kDefaultShutdownTimeoutMs, *alice.rng);
  REQUIRE(t.ok());
  REQUIRE(kinds(t->events, EventKind::ShutdownIncomplete).at(0).nicks == std::vector<std::string>{"carol"});
  REQUIRE(kinds(t->events, EventKind::KeyWithheld).at(0).nicks == std::vector<std::string>{"carol"});
}

TEST_CASE("R-SD-10 in Closing a member excused by its Quit is missing while entries up to its final count are", "[rules]") {
  // "Already excused" does not cover a Quit in Closing: a member whose Quit is held but whose
  // entries up to the Quit's final count are missing at the deadline is missing like any other,
  // named in ShutdownIncomplete and cut to what we received; the shutdown does not wait for its
  // gap timer.
  Timeouts slow_gaps;
  slow_gaps.gap = 2 * kDefaultShutdownTimeoutMs;  // the shutdown deadline comes before the gap's
  Room room(2, 1, slow_gaps);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  const Hash32 sid = alice.engine->session()->session_id;
  room.send_text("bob", "b1");
  take_last(room);  // lost on the way to alice
  auto q = bob.engine->quit(room.now(), *bob.rng);
  REQUIRE(q.ok());
  const Bytes quit = q->broadcasts.at(0);
  REQUIRE(decode_as<codec::Quit>(quit).final_count == 1);
  const TimeMs t0 = room.now();
  const Output closing = require_accepted(room, alice, "bob", quit);
  REQUIRE(kind_sequence(closing.events) == std::vector<EventKind>{EventKind::Gap, EventKind::SessionClosing});
  REQUIRE(closing.events[0].seq == 1);
  REQUIRE(closing.events[0].seq_end == 1);
  REQUIRE(type_sequence(closing.broadcasts) == std::vector<MessageType>{MessageType::Shutdown});
  REQUIRE(closing.wake_at == std::optional<TimeMs>(t0 + kDefaultShutdownTimeoutMs));
  auto early = alice.engine->tick(t0 + kDefaultShutdownTimeoutMs - 1, *alice.rng);
  REQUIRE(early.ok());
  REQUIRE(early->events.empty());
  auto t = alice.engine->tick(t0 + kDefaultShutdownTimeoutMs, *alice.rng);
  REQUIRE(t.ok());
  REQUIRE(kind_sequence(t->events) == std::vector<EventKind>{EventKind::ShutdownIncomplete, EventKind::TranscriptConsistent,
                                                             EventKind::KeyPublished, EventKind::SessionClosed});
  REQUIRE(t->events[0].nicks == std::vector<std::string>{"bob"});
  REQUIRE(t->events[0].session_id == sid);
  REQUIRE(t->events[1].nicks == std::vector<std::string>{"bob"});
  REQUIRE(type_sequence(t->broadcasts) ==
          std::vector<MessageType>{MessageType::Digest, MessageType::End, MessageType::KeyReveal});
  // bob's final count became 0, what alice received: no lost run in the digest.
  const auto dg = decode_as<codec::Digest>(t->broadcasts[0]);
  const Bytes expected = spec::cat({spec::txt("mpotr-v2 transcript"), view(spec::u32(0)), view(spec::chain_start(sid, 0)),
                                    view(spec::u32(0)), view(spec::chain_start(sid, 1))});
  REQUIRE(dg.transcript_digest == spec::H(expected));
}

TEST_CASE("R-SD-15 our key is published only after every other member's End or Quit", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  room.absorb(alice, alice.engine->leave(room.now(), *alice.rng));
  // The server keeps carol's End from alice (and everything after it).
  std::vector<Wire> held;
  run_filtered(room, [&](const Wire& w, const SimMember& m) {
    const bool hold = m.nick == "alice" && w.from == "carol" &&
                      (type_of(w.payload) == MessageType::End || type_of(w.payload) == MessageType::KeyReveal);
    if (hold) {
      held.push_back(w);
    }
    return !hold;
  });
  REQUIRE(held.size() == 2);
  REQUIRE(room.events_of(alice, EventKind::TranscriptConsistent).size() == 1);
  REQUIRE(room.events_of(alice, EventKind::KeyPublished).empty());
  // At the deadline carol is excused from the End round, but her End is still missing: withheld.
  room.advance(kDefaultShutdownTimeoutMs);
  const auto withheld = room.events_of(alice, EventKind::KeyWithheld);
  REQUIRE(withheld.size() == 1);
  REQUIRE(withheld[0].nicks == std::vector<std::string>{"carol"});
  REQUIRE(room.events_of(alice, EventKind::KeyPublished).empty());
  REQUIRE(room.events_of(alice, EventKind::ReadyToLeave).size() == 1);  // withheld counts as done for leave()
  // Her End arrives late after all: now alice publishes.
  const Output out = require_accepted(room, alice, "carol", held[0].payload);
  REQUIRE(has_event(out.events, EventKind::KeyPublished));
  REQUIRE(first_of(out.broadcasts, MessageType::KeyReveal).size() == 43);
  REQUIRE(kinds(out.events, EventKind::KeyWithheld).empty());
}

TEST_CASE("R-SD-16 a Quit counts as the member's shutdown and End, and closes an Active session", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& carol = room.by_nick("carol");
  room.send_text("carol", "last words");
  room.run();
  auto q = carol.engine->quit(room.now(), *carol.rng);
  REQUIRE(q.ok());
  REQUIRE(q->broadcasts.size() == 1);
  const Bytes quit = q->broadcasts[0];
  REQUIRE(type_of(quit) == MessageType::Quit);
  REQUIRE(decode_as<codec::Quit>(quit).final_count == 1);
  REQUIRE(quit.size() == 111);
  // Checks first: a copy with another final count is not carol's statement.
  auto other = decode_as<codec::Quit>(quit);
  other.final_count = 0;
  require_rejected(room, alice, "carol", codec::encode(other), ErrorCode::BadMac);
  Bytes bad_sig = quit;
  bad_sig.back() ^= 0x01;
  require_rejected(room, alice, "carol", bad_sig, ErrorCode::BadSignature);
  require_rejected(room, alice, "bob", quit, ErrorCode::NickMismatch);
  const Output out = require_accepted(room, alice, "carol", quit);
  REQUIRE(has_event(out.events, EventKind::SessionClosing));
  require_rejected(room, alice, "carol", quit, ErrorCode::Duplicate);
  // alice and bob finish without carol, and publish: her Quit says she accepts nothing more.
  room.queue().push_front(Wire{"carol", quit});
  room.absorb(alice, Result<Output>(out));
  carol.present = false;
  room.run();
  for (const char* nick : {"alice", "bob"}) {
    CAPTURE(nick);
    auto& m = room.by_nick(nick);
    REQUIRE(room.events_of(m, EventKind::TranscriptConsistent).size() == 1);
    REQUIRE(room.events_of(m, EventKind::TranscriptConsistent)[0].nicks == std::vector<std::string>{"carol"});
    REQUIRE(room.events_of(m, EventKind::KeyPublished).size() == 1);
    REQUIRE(room.events_of(m, EventKind::KeyWithheld).empty());
  }
}

TEST_CASE("R-SD-17 quit() sends a Quit unless our End is out, withholds our key, and leaves", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  const Hash32 sid = alice.engine->session()->session_id;
  auto r = alice.engine->quit(room.now(), *alice.rng);
  REQUIRE(r.ok());
  REQUIRE(r->broadcasts.size() == 1);
  REQUIRE(type_of(r->broadcasts[0]) == MessageType::Quit);
  const auto withheld = kinds(r->events, EventKind::KeyWithheld);
  REQUIRE(withheld.size() == 1);
  REQUIRE(withheld[0].session_id == sid);
  REQUIRE(withheld[0].nicks == std::vector<std::string>{"bob", "carol"});
  REQUIRE(has_event(r->events, EventKind::SessionClosed));
  REQUIRE(alice.engine->phase() == Phase::Left);
  const StateSummary before = alice.engine->summary();
  auto again = alice.engine->quit(room.now(), *alice.rng);
  REQUIRE_FALSE(again.ok());
  REQUIRE(again.error().code == ErrorCode::InvalidState);
  REQUIRE(alice.engine->summary() == before);
  REQUIRE(alice.engine->send_text("x", room.now(), *alice.rng).error().code == ErrorCode::NotReady);
  // After our End a Quit would say nothing new: none is sent.
  Room ended(2);
  establish(ended);
  auto& a = ended.by_nick("alice");
  ended.absorb(a, a.engine->leave(ended.now(), *a.rng));
  run_filtered(ended, [](const Wire& w, const SimMember& m) {
    return !(m.nick == "alice" && w.from == "bob" && type_of(w.payload) == MessageType::End);
  });
  REQUIRE(sent_by(ended, "alice", MessageType::End).size() == 1);
  auto late = a.engine->quit(ended.now(), *a.rng);
  REQUIRE(late.ok());
  REQUIRE(late->broadcasts.empty());
}

TEST_CASE("R-SD-17 quit() after our End: no Quit, our key withheld unless published, every session closed", "[rules]") {
  // alice restarts: her old session s0 shuts down beside the new one, s1. The server keeps
  // carol's messages of the chosen kinds from alice, so s0 stops in Ended or Revealed there.
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  const Hash32 s0 = alice.engine->session()->session_id;
  const auto run_without = [&](std::vector<MessageType> held) {
    room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
    run_filtered(room, [&](const Wire& w, const SimMember& m) {
      return !(m.nick == "alice" && w.from == "carol" &&
               std::find(held.begin(), held.end(), type_of(w.payload)) != held.end());
    });
    REQUIRE(room.all_established());
  };
  const auto quit_now = [&](TimeMs now) {
    auto r = alice.engine->quit(now, *alice.rng);
    REQUIRE(r.ok());
    REQUIRE(alice.engine->phase() == Phase::Left);
    // Both sessions are retired: carol's key reveal of s0, held back until now, is a replay.
    require_rejected(room, alice, "carol", sent_by(room, "carol", MessageType::KeyReveal).at(0), ErrorCode::Replay);
    return std::move(r).value();
  };
  SECTION("in Ended, waiting for an End: the key is withheld now") {
    run_without({MessageType::End, MessageType::KeyReveal});
    const Hash32 s1 = alice.engine->session()->session_id;
    REQUIRE(sent_by(room, "alice", MessageType::End).size() == 1);
    REQUIRE(room.events_of(alice, EventKind::KeyWithheld).empty());
    const Output out = quit_now(room.now());
    REQUIRE(type_sequence(out.broadcasts) == std::vector<MessageType>{MessageType::Quit});  // s1's only
    REQUIRE(kind_sequence(out.events) == std::vector<EventKind>{EventKind::KeyWithheld, EventKind::SessionClosed,
                                                                EventKind::KeyWithheld, EventKind::SessionClosed});
    REQUIRE(out.events[0].session_id == s1);
    REQUIRE(out.events[0].nicks == std::vector<std::string>{"bob", "carol"});
    REQUIRE(out.events[1].session_id == s1);
    REQUIRE(out.events[2].session_id == s0);
    REQUIRE(out.events[2].nicks == std::vector<std::string>{"carol"});
    REQUIRE_FALSE(out.events[2].detail.empty());
    REQUIRE(out.events[3].session_id == s0);
  }
  SECTION("in Ended, key already withheld at the deadline: reported again, now for good") {
    run_without({MessageType::End, MessageType::KeyReveal});
    auto t = alice.engine->tick(room.now() + kDefaultShutdownTimeoutMs, *alice.rng);
    REQUIRE(t.ok());
    REQUIRE(kinds(t->events, EventKind::KeyWithheld).size() == 1);
    const Output out = quit_now(room.now() + kDefaultShutdownTimeoutMs);
    REQUIRE(type_sequence(out.broadcasts) == std::vector<MessageType>{MessageType::Quit});
    REQUIRE(kind_sequence(out.events) == std::vector<EventKind>{EventKind::KeyWithheld, EventKind::SessionClosed,
                                                                EventKind::KeyWithheld, EventKind::SessionClosed});
    REQUIRE(out.events[2].session_id == s0);
    REQUIRE(out.events[2].nicks == std::vector<std::string>{"carol"});
    REQUIRE(out.events[3].session_id == s0);
  }
  SECTION("in Revealed: our key is out, the session is closed") {
    run_without({MessageType::KeyReveal});
    REQUIRE(sent_by(room, "alice", MessageType::KeyReveal).size() == 1);
    const Output out = quit_now(room.now());
    REQUIRE(type_sequence(out.broadcasts) == std::vector<MessageType>{MessageType::Quit});
    REQUIRE(kind_sequence(out.events) ==
            std::vector<EventKind>{EventKind::KeyWithheld, EventKind::SessionClosed, EventKind::SessionClosed});
    REQUIRE(out.events[2].session_id == s0);
  }
}

TEST_CASE("R-SD-17 quit() after leave() reports no ReadyToLeave", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  const Hash32 sid = alice.engine->session()->session_id;
  auto l = alice.engine->leave(room.now(), *alice.rng);
  REQUIRE(l.ok());
  REQUIRE(type_sequence(l->broadcasts) == std::vector<MessageType>{MessageType::Shutdown});
  REQUIRE(alice.engine->phase() == Phase::Leaving);
  auto q = alice.engine->quit(room.now(), *alice.rng);
  REQUIRE(q.ok());
  REQUIRE(type_sequence(q->broadcasts) == std::vector<MessageType>{MessageType::Quit});
  REQUIRE(kind_sequence(q->events) == std::vector<EventKind>{EventKind::KeyWithheld, EventKind::SessionClosed});
  REQUIRE(q->events[0].session_id == sid);
  REQUIRE(q->events[0].nicks == std::vector<std::string>{"bob", "carol"});
  REQUIRE(alice.engine->phase() == Phase::Left);
}

TEST_CASE("R-SD-18 a final count below another member's acknowledgement names that member", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  auto& carol = room.by_nick("carol");
  // carol acknowledges two entries of bob that bob never wrote to anyone but her (a copy of
  // bob's engine writes them): alice sees a gap claimed by carol only.
  Engine evil = *bob.engine;
  DeterministicRng evil_rng(7);
  require_accepted(room, carol, "bob", send_from(evil, evil_rng, room.now(), "x1"));
  require_accepted(room, carol, "bob", send_from(evil, evil_rng, room.now(), "x2"));
  const Output gap = require_accepted(room, alice, "carol", send_from(*carol.engine, *carol.rng, room.now(), "hi"));
  const auto gaps = kinds(gap.events, EventKind::Gap);
  REQUIRE(gaps.size() == 1);
  REQUIRE(gaps[0].nick == "bob");
  REQUIRE(gaps[0].by == "carol");
  // bob's own signed Shutdown says he wrote nothing: carol's acknowledgement contradicts it.
  auto sd = bob.engine->leave(room.now(), *bob.rng);
  REQUIRE(sd.ok());
  const Output out = require_accepted(room, alice, "bob", first_of(sd->broadcasts, MessageType::Shutdown));
  const auto split = kinds(out.events, EventKind::SplitView);
  REQUIRE(split.size() == 1);
  REQUIRE(split[0].nick == "carol");
  REQUIRE(kinds(out.events, EventKind::Gap).empty());
  // And no loss is ever reported for bob: the gap closed with the final count.
  auto t = alice.engine->tick(room.now() + kDefaultGapTimeoutMs, *alice.rng);
  REQUIRE(t.ok());
  REQUIRE(kinds(t->events, EventKind::MessageLost).empty());
}

TEST_CASE("R-SD-18 a claim above a final count already held is the same contradiction, reported per entry", "[rules]") {
  // The reverse order of the test above: bob's final count first, then carol's acknowledgement
  // of more. Whichever the server delivers first, alice sees a SplitView naming carol, and never
  // a Gap or a loss beyond bob's signed final count.
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  auto& carol = room.by_nick("carol");
  const Hash32 sid = alice.engine->session()->session_id;
  Engine evil = *bob.engine;
  DeterministicRng evil_rng(7);
  require_accepted(room, carol, "bob", send_from(evil, evil_rng, room.now(), "x1"));
  require_accepted(room, carol, "bob", send_from(evil, evil_rng, room.now(), "x2"));
  auto sd = bob.engine->leave(room.now(), *bob.rng);
  REQUIRE(sd.ok());
  const Output closing = require_accepted(room, alice, "bob", first_of(sd->broadcasts, MessageType::Shutdown));
  REQUIRE(kind_sequence(closing.events) == std::vector<EventKind>{EventKind::SessionClosing});
  const std::optional<TimeMs> deadline = closing.wake_at;
  for (const char* text : {"hi", "hi again"}) {
    CAPTURE(text);
    const Output out = require_accepted(room, alice, "carol", send_from(*carol.engine, *carol.rng, room.now(), text));
    REQUIRE(kind_sequence(out.events) == std::vector<EventKind>{EventKind::MessageReceived, EventKind::SplitView});
    REQUIRE(out.events[1].nick == "carol");
    REQUIRE(out.events[1].seq == 0);
    REQUIRE(out.events[1].by.empty());
    REQUIRE(out.events[1].session_id == sid);
    REQUIRE_FALSE(out.events[1].detail.empty());
    REQUIRE(out.broadcasts.empty());
    REQUIRE(out.wake_at == deadline);  // no gap timer started
  }
  auto t = alice.engine->tick(room.now() + kDefaultGapTimeoutMs, *alice.rng);
  REQUIRE(t.ok());
  REQUIRE(t->events.empty());
  // carol's Shutdown completes alice's transcript: bob's count is his final count, 0.
  auto sc = carol.engine->leave(room.now(), *carol.rng);
  REQUIRE(sc.ok());
  const Output digested = require_accepted(room, alice, "carol", first_of(sc->broadcasts, MessageType::Shutdown));
  REQUIRE(kinds(digested.events, EventKind::MessageLost).empty());
  REQUIRE(type_sequence(digested.broadcasts) == std::vector<MessageType>{MessageType::Digest});
}

TEST_CASE("R-SD-18 the two orders of the contradiction leave the same state", "[rules]") {
  // A view kept waiting for bob's entries that carol alone claims can never be complete once
  // bob's final count is held: it is dropped, as a view arriving after the final count is
  // never kept. Whichever the server delivers first, alice ends in the same state.
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  auto& carol = room.by_nick("carol");
  Engine evil = *bob.engine;
  DeterministicRng evil_rng(7);
  require_accepted(room, carol, "bob", send_from(evil, evil_rng, room.now(), "x1"));
  require_accepted(room, carol, "bob", send_from(evil, evil_rng, room.now(), "x2"));
  const Bytes claim = send_from(*carol.engine, *carol.rng, room.now(), "hi");
  auto sd = bob.engine->leave(room.now(), *bob.rng);
  REQUIRE(sd.ok());
  const Bytes shutdown = first_of(sd->broadcasts, MessageType::Shutdown);
  Engine claim_first = *alice.engine;
  Engine final_first = *alice.engine;
  DeterministicRng rng_a(11);
  DeterministicRng rng_b(11);
  REQUIRE(claim_first.receive("carol", claim, room.now(), rng_a).ok());
  REQUIRE(claim_first.receive("bob", shutdown, room.now(), rng_a).ok());
  REQUIRE(final_first.receive("bob", shutdown, room.now(), rng_b).ok());
  REQUIRE(final_first.receive("carol", claim, room.now(), rng_b).ok());
  REQUIRE(claim_first.summary() == final_first.summary());
}

TEST_CASE("R-SD-11 leave() shuts down, then reports ReadyToLeave, nothing else is allowed meanwhile", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  room.absorb(alice, alice.engine->leave(room.now(), *alice.rng));
  REQUIRE(alice.engine->phase() == Phase::Leaving);
  const StateSummary before = alice.engine->summary();
  REQUIRE(alice.engine->leave(room.now(), *alice.rng).error().code == ErrorCode::InvalidState);
  REQUIRE(alice.engine->restart(room.now(), *alice.rng).error().code == ErrorCode::InvalidState);
  REQUIRE(alice.engine->set_roster(roster_of({"alice", "bob"}), room.now(), *alice.rng).error().code ==
          ErrorCode::InvalidState);
  REQUIRE(alice.engine->send_text("bye", room.now(), *alice.rng).error().code == ErrorCode::NotReady);
  REQUIRE(alice.engine->summary() == before);
  room.run();
  REQUIRE(room.events_of(alice, EventKind::ReadyToLeave).size() == 1);
  REQUIRE(alice.engine->phase() == Phase::Left);
}

TEST_CASE("R-SD-12 a second copy with the same signed part is a duplicate, whatever its signature", "[rules]") {
  // ECDSA signatures are malleable ((r, s) and (r, n − s) both verify): messages are identified
  // by their signed part, so the server cannot turn an honest message into "proof" of
  // equivocation or split the setup transcript.
  SECTION("shutdown") {
    Room room(3);
    establish(room);
    auto& alice = room.by_nick("alice");
    auto r = room.by_nick("bob").engine->leave(room.now(), *room.by_nick("bob").rng);
    REQUIRE(r.ok());
    const Bytes sb = first_of(r->broadcasts, MessageType::Shutdown);
    require_accepted(room, alice, "bob", sb);
    require_rejected(room, alice, "bob", malleate(sb), ErrorCode::Duplicate);
  }
  SECTION("key share") {
    KeyShareFixture f;
    require_accepted(f.room, f.alice(), "bob", f.ks(1));
    require_rejected(f.room, f.alice(), "bob", malleate(f.ks(1)), ErrorCode::Duplicate);
  }
  SECTION("a malleated key share shown to one member does not fail the setup") {
    Room room(3);
    for (int i = 0; i < 3; ++i) {
      REQUIRE(room.deliver_next());
    }
    const Bytes kc = queued_from(room, "carol", MessageType::KeyShare);
    room.deliver_to(room.by_nick("bob"), Wire{"carol", malleate(kc)});
    room.run();
    REQUIRE(room.all_established());
  }
}

TEST_CASE("R-SD-13 a valid key reveal is accepted in any session phase and revokes the key at once", "[rules]") {
  Room room(2);
  establish(room);
  auto& alice = room.by_nick("alice");
  auto& bob = room.by_nick("bob");
  // Copies of both members run a shutdown on their own, so bob's key gets published early.
  Engine evil_a = *alice.engine;
  Engine evil_b = *bob.engine;
  DeterministicRng rng_a(5), rng_b(6);
  auto sb = evil_b.leave(room.now(), rng_b);
  REQUIRE(sb.ok());
  auto ra = evil_a.receive("bob", view(first_of(sb->broadcasts, MessageType::Shutdown)), room.now(), rng_a);
  REQUIRE(ra.ok());
  auto rb = evil_b.receive("alice", view(first_of(ra->broadcasts, MessageType::Shutdown)), room.now(), rng_b);
  REQUIRE(rb.ok());
  auto rb2 = evil_b.receive("alice", view(first_of(ra->broadcasts, MessageType::Digest)), room.now(), rng_b);
  REQUIRE(rb2.ok());
  // Bob's copy now holds both digests and sends its End; it publishes after alice's End.
  auto ra2 = evil_a.receive("bob", view(first_of(rb->broadcasts, MessageType::Digest)), room.now(), rng_a);
  REQUIRE(ra2.ok());
  auto rb3 = evil_b.receive("alice", view(first_of(ra2->broadcasts, MessageType::End)), room.now(), rng_b);
  REQUIRE(rb3.ok());
  const Bytes reveal = first_of(rb3->broadcasts, MessageType::KeyReveal);
  REQUIRE(alice.engine->phase() == Phase::Established);
  const Output out = require_accepted(room, alice, "bob", reveal);
  REQUIRE(has_event(out.events, EventKind::PeerKeyPublished, "bob"));
  REQUIRE(alice.engine->phase() == Phase::Established);
  require_rejected(room, alice, "bob", send_from(*bob.engine, *bob.rng, room.now(), "too late"), ErrorCode::KeyRevoked);
}

TEST_CASE("R-OFF-13 offers for unseen rosters are kept for at most 256 senders", "[rules]") {
  Room room(1);
  room.add_member("carol");
  auto& alice = room.member(0);
  auto& carol = room.member(1);
  room.absorb(carol, carol.engine->set_roster(roster_of({"alice", "carol"}), room.now(), *carol.rng));
  const auto template_offer = decode_as<codec::Offer>(take_last(room));
  auto offer_from = [&](std::size_t i) {
    char nick[8];
    std::snprintf(nick, sizeof nick, "n%03zu", i);
    auto o = template_offer;
    o.nick = nick;
    o.nonce[0] = static_cast<std::uint8_t>(i);
    o.nonce[1] = static_cast<std::uint8_t>(i >> 8);
    o.roster_digest = spec::roster_digest(Room::kRoomName, {"alice", nick});
    return o;
  };
  for (std::size_t i = 0; i <= 2 * kMaxMembers; ++i) {
    const auto o = offer_from(i);
    require_accepted(room, alice, o.nick, codec::encode(o));
  }
  SECTION("the first sender in nick order was dropped") {
    auto r = alice.engine->set_roster({Member{"alice", ""}, Member{"n000", ""}}, room.now(), *alice.rng);
    REQUIRE(r.ok());
    REQUIRE(r->broadcasts.size() == 1);
  }
  SECTION("the others are kept") {
    auto r = alice.engine->set_roster({Member{"alice", ""}, Member{"n001", ""}}, room.now(), *alice.rng);
    REQUIRE(r.ok());
    REQUIRE(r->broadcasts.size() == 2);
  }
}

// =============================================================================================
// §7.9 Membership
// =============================================================================================

TEST_CASE("R-KS-3 at most kMaxEarlyPerSender unverifiable early key shares are kept per member", "[rules]") {
  Room room(3);
  auto& alice = room.by_nick("alice");
  REQUIRE(room.deliver_next());  // alice's offer
  REQUIRE(room.deliver_next());  // bob's offer
  const Wire oc = room.queue().front();  // carol's offer: alice does not get it yet
  room.queue().pop_front();
  room.deliver_to(room.by_nick("bob"), oc);
  room.deliver_to(room.by_nick("carol"), oc);
  const Bytes kc = queued_from(room, "carol", MessageType::KeyShare);
  for (std::size_t i = 0; i < kMaxEarlyPerSender; ++i) {
    Bytes variant = kc;
    // Distinct signed parts (a bit before the signature); carol's key is not known yet, so
    // none of them can be checked. (Flipping signature bits would give duplicates.)
    variant[variant.size() - 65 - i] ^= 0x01;
    require_accepted(room, alice, "carol", variant);
  }
  Bytes one_more = kc;
  one_more[one_more.size() - 65 - kMaxEarlyPerSender] ^= 0x01;
  require_rejected(room, alice, "carol", one_more, ErrorCode::LimitExceeded);
}

TEST_CASE("R-MEM-1 set_roster validates the member list, the same list again changes nothing", "[rules]") {
  SECTION("the room address must fit its length prefix") {
    DeterministicRng rng(7);
    for (const std::string& room_name : {std::string(), std::string(kMaxRoomLen + 1, 'r')}) {
      Engine e(EngineConfig{room_name, "alice", {}}, IdentityKey::generate(rng).value());
      auto r = e.set_roster(roster_of({"alice", "bob"}), 1000, rng);
      REQUIRE_FALSE(r.ok());
      REQUIRE(r.error().code == ErrorCode::InvalidArgument);
      REQUIRE(e.phase() == Phase::Idle);
    }
  }
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  const StateSummary before = alice.engine->summary();
  auto invalid = [&](const std::vector<Member>& r) {
    auto res = alice.engine->set_roster(r, room.now(), *alice.rng);
    REQUIRE_FALSE(res.ok());
    REQUIRE(res.error().code == ErrorCode::InvalidArgument);
    REQUIRE(alice.engine->summary() == before);
  };
  invalid(roster_of({"bob", "carol"}));                  // we are missing
  invalid(roster_of({"alice", "bob", "bob"}));           // duplicate nick
  invalid({Member{"alice", "a@x"}, Member{"", "b@x"}});  // empty nick
  invalid({Member{"alice", "a@x"}, Member{std::string(kMaxNickLen + 1, 'z'), "z@x"}});
  std::vector<Member> crowd{Member{"alice", "alice@localhost"}};
  for (std::size_t i = 0; i < kMaxMembers; ++i) {
    crowd.push_back(Member{"m" + std::to_string(i), ""});
  }
  invalid(crowd);  // 129 members
  // The same members in another order: no change at all.
  auto same = alice.engine->set_roster(roster_of({"carol", "alice", "bob"}), room.now(), *alice.rng);
  REQUIRE(same.ok());
  REQUIRE(same->broadcasts.empty());
  REQUIRE(same->events.empty());
  REQUIRE(alice.engine->summary() == before);
}

TEST_CASE("R-MEM-2 a roster change closes the session and starts a new attempt with fresh keys", "[rules]") {
  Room room(2);
  establish(room);
  auto& alice = room.member(0);
  const Hash32 old_sid = alice.engine->session()->session_id;
  const auto old_offer = decode_as<codec::Offer>(sent_by(room, "alice", MessageType::Offer).at(0));
  room.add_member("carol");
  auto r = room.member(0).engine->set_roster(roster_of({"alice", "bob", "carol"}), room.now(), *room.member(0).rng);
  REQUIRE(r.ok());
  REQUIRE(has_event(r->events, EventKind::SessionClosing));
  REQUIRE(has_event(r->events, EventKind::SetupStarted));
  REQUIRE(r->broadcasts.size() == 2);  // our Shutdown first, then the new Offer
  REQUIRE(type_of(r->broadcasts.at(0)) == MessageType::Shutdown);
  REQUIRE(type_of(r->broadcasts.at(1)) == MessageType::Offer);
  const auto fresh = decode_as<codec::Offer>(first_of(r->broadcasts, MessageType::Offer));
  REQUIRE(fresh.roster_digest != old_offer.roster_digest);
  REQUIRE(fresh.attempt == 0);
  REQUIRE(fresh.dh_key != old_offer.dh_key);
  REQUIRE(fresh.signing_key != old_offer.signing_key);
  REQUIRE(fresh.identity_key == old_offer.identity_key);
  room.absorb(room.member(0), std::move(r));
  for (std::size_t i = 1; i < 3; ++i) {
    auto& m = room.member(i);
    room.absorb(m, m.engine->set_roster(roster_of({"alice", "bob", "carol"}), room.now(), *m.rng));
  }
  room.run();
  REQUIRE(room.all_established());
  REQUIRE(room.member(0).engine->session()->session_id != old_sid);
  REQUIRE(room.member(0).engine->session()->members.size() == 3);
}

TEST_CASE("R-MEM-3 entries in flight for a closing session are still accepted", "[rules]") {
  Room room(3);
  establish(room);
  auto& alice = room.by_nick("alice");
  room.send_text("bob", "sent just before carol left");  // queued, not delivered
  room.part("carol");                                   // alice and bob close the session first
  room.run();
  REQUIRE(alice.errors.empty());
  const auto got = room.events_of(alice, EventKind::MessageReceived);
  REQUIRE(got.size() == 1);
  REQUIRE(got[0].text == "sent just before carol left");
  REQUIRE(alice.engine->phase() == Phase::Established);
  REQUIRE(alice.engine->session()->members.size() == 2);
}

TEST_CASE("R-MEM-4 members who see concurrent joins in different orders converge", "[rules]") {
  for (std::size_t steps : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{6}, std::size_t{1000}}) {
    CAPTURE(steps);
    Room room(2);
    establish(room);
    room.add_member("dave");
    room.add_member("erin");
    auto set = [&](std::size_t i, std::initializer_list<const char*> nicks) {
      auto& m = room.member(i);
      room.absorb(m, m.engine->set_roster(roster_of(nicks), room.now(), *m.rng));
    };
    // Presence reaches everyone in a different order.
    set(0, {"alice", "bob", "dave"});
    set(1, {"alice", "bob", "erin"});
    set(2, {"alice", "bob", "dave"});
    set(3, {"alice", "bob", "erin"});
    for (std::size_t s = 0; s < steps && room.deliver_next(); ++s) {
    }
    for (std::size_t i = 0; i < 4; ++i) {
      set(i, {"alice", "bob", "dave", "erin"});
    }
    room.run(100000);
    REQUIRE(room.queue().empty());
    REQUIRE(room.all_established());
    const Hash32 sid = room.member(0).engine->session()->session_id;
    for (auto& m : room.members()) {
      REQUIRE(m.engine->session()->session_id == sid);
      REQUIRE(m.engine->session()->members.size() == 4);
    }
  }
}

TEST_CASE("R-MEM-5 at most 4 sessions are kept closing, the oldest is retired", "[rules]") {
  Room room(2);
  establish(room);
  auto& alice = room.member(0);
  std::vector<Bytes> old;  // one entry of bob per session
  for (std::size_t k = 0; k <= kMaxClosingSessions; ++k) {
    room.send_text("bob", "s" + std::to_string(k));
    old.push_back(room.queue().back().payload);
    room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
    // No key is ever published to alice: her old sessions never finish closing.
    run_filtered(room, [](const Wire& w, const SimMember& m) {
      return !(m.nick == "alice" && w.from == "bob" && type_of(w.payload) == MessageType::KeyReveal);
    });
    REQUIRE(room.all_established());
  }
  require_rejected(room, alice, "bob", old[0], ErrorCode::Replay);  // retired to make room
  for (std::size_t k = 1; k <= kMaxClosingSessions; ++k) {
    CAPTURE(k);  // still tracked: a known entry
    require_rejected(room, alice, "bob", old[k], ErrorCode::Duplicate);
  }
}

TEST_CASE("R-MEM-6 the tags of the last 16 closed sessions are remembered", "[rules]") {
  Room room(2);
  establish(room);
  auto& alice = room.member(0);
  std::vector<Bytes> old;
  for (std::size_t k = 0; k <= 16; ++k) {
    room.send_text("bob", "s" + std::to_string(k));
    old.push_back(room.queue().back().payload);
    room.absorb(alice, alice.engine->restart(room.now(), *alice.rng));
    room.run();
    REQUIRE(room.all_established());
  }
  require_rejected(room, alice, "bob", old[0], ErrorCode::UnknownSession);  // forgotten
  for (std::size_t k = 1; k <= 16; ++k) {
    CAPTURE(k);
    require_rejected(room, alice, "bob", old[k], ErrorCode::Replay);
  }
}

// =============================================================================================
// §7.10 Trust
// =============================================================================================

namespace {
// alice uses `trust`; bob is a plain engine. Offers are queued.
struct TrustFixture {
  TrustStore trust;
  Room room{0};
  explicit TrustFixture(const std::function<void(TrustStore&, const Fingerprint& bob)>& prepare) {
    room.add_member("alice");
    room.add_member("bob");
    prepare(trust, room.member(1).engine->fingerprint());
    auto& a = room.member(0);
    a.engine = std::make_unique<Engine>(EngineConfig{Room::kRoomName, "alice", {}}, IdentityKey::generate(*a.rng).value(),
                                        &trust);
    room.set_rosters();
  }
  SimMember& alice() { return room.member(0); }
  Bytes bob_offer() { return queued_from(room, "bob", MessageType::Offer); }
};
}  // namespace

namespace {
// Three members; alice uses `trust` (and `policy`), bob and carol are plain engines.
struct AdmissionFixture {
  TrustStore trust;
  Room room{0};
  AdmissionFixture(const std::function<void(TrustStore&, const Fingerprint& bob, const Fingerprint& carol)>& prepare,
                   AdmissionPolicy policy = AdmissionPolicy::Trusted) {
    room.add_member("alice");
    room.add_member("bob");
    room.add_member("carol");
    prepare(trust, room.member(1).engine->fingerprint(), room.member(2).engine->fingerprint());
    auto& a = room.member(0);
    EngineConfig config{Room::kRoomName, "alice", {}, policy};
    a.engine = std::make_unique<Engine>(config, IdentityKey::generate(*a.rng).value(), &trust);
    room.set_rosters();
  }
  SimMember& alice() { return room.member(0); }
  SimMember& bob() { return room.member(1); }
  SimMember& carol() { return room.member(2); }
};
}  // namespace

TEST_CASE("R-ADM-1 a member we do not accept is refused without an error, and named in our key share", "[rules]") {
  struct Case {
    const char* name;
    ErrorCode code;
    AdmissionPolicy policy;
  };
  const auto c = GENERATE(Case{"blocked JID", ErrorCode::IdentityBlocked, AdmissionPolicy::Trusted},
                          Case{"changed key", ErrorCode::IdentityChanged, AdmissionPolicy::Trusted},
                          Case{"unverified under verified-only", ErrorCode::IdentityUnverified, AdmissionPolicy::VerifiedOnly});
  CAPTURE(c.name);
  AdmissionFixture f(
      [&](TrustStore& t, const Fingerprint& bob, const Fingerprint&) {
        if (c.code == ErrorCode::IdentityBlocked) {
          REQUIRE(t.block("carol@localhost").ok());
        } else if (c.code == ErrorCode::IdentityChanged) {
          Fingerprint other;
          other.bytes.fill(0x11);
          REQUIRE(t.record_first_use("carol@localhost", other).ok());
        }
        REQUIRE(t.verify("bob@localhost", bob).ok());  // bob is fine under every policy
      },
      c.policy);
  const Bytes oc = queued_from(f.room, "carol", MessageType::Offer);
  const Output out = require_accepted(f.room, f.alice(), "carol", oc);
  const auto refusing = kinds(out.events, EventKind::Refusing);
  REQUIRE(refusing.size() == 1);
  REQUIRE(refusing[0].nick == "carol");
  REQUIRE(refusing[0].code == c.code);
  const Fingerprint carol_fp = f.carol().engine->fingerprint();
  REQUIRE(refusing[0].data == Bytes(carol_fp.bytes.begin(), carol_fp.bytes.end()));
  const Output all = require_accepted(f.room, f.alice(), "bob", queued_from(f.room, "bob", MessageType::Offer));
  const auto ks = decode_as<codec::KeyShare>(first_of(all.broadcasts, MessageType::KeyShare));
  REQUIRE(ks.refused.test(2));
  REQUIRE_FALSE(ks.refused.test(0));
  REQUIRE_FALSE(ks.refused.test(1));
  REQUIRE(f.alice().engine->phase() == Phase::SettingUp);  // nothing failed: the round goes on
}

TEST_CASE("R-ADM-2 the member who refuses someone stays out, the others set up without it", "[rules]") {
  AdmissionFixture f([](TrustStore& t, const Fingerprint&, const Fingerprint&) { REQUIRE(t.block("carol@localhost").ok()); });
  f.room.run();
  // alice's key share names carol; everyone reaches the same verdict from the signed key shares.
  const auto aks = decode_as<codec::KeyShare>(sent_by(f.room, "alice", MessageType::KeyShare).at(0));
  REQUIRE(aks.refused.test(2));
  REQUIRE_FALSE(aks.refused.test(1));
  for (SimMember* m : {&f.alice(), &f.bob(), &f.carol()}) {
    CAPTURE(m->nick);
    const auto out = f.room.events_of(*m, EventKind::MemberOut);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].nick == "alice");
    REQUIRE(out[0].nicks == std::vector<std::string>{"carol"});
  }
  REQUIRE(f.alice().engine->phase() == Phase::Out);
  REQUIRE(f.alice().engine->refused() == std::vector<std::pair<std::string, ErrorCode>>{{"carol", ErrorCode::IdentityBlocked}});
  for (SimMember* m : {&f.bob(), &f.carol()}) {
    CAPTURE(m->nick);
    REQUIRE(m->engine->phase() == Phase::Established);
    REQUIRE(m->engine->session()->members.size() == 2);
    const auto out = m->engine->out_members();
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].member.nick == "alice");
    REQUIRE(out[0].refuses == std::vector<std::string>{"carol"});
  }
  // Out, alice sends nothing and takes part in nothing: offers wait.
  REQUIRE(f.alice().engine->send_text("x", f.room.now(), *f.alice().rng).error().code == ErrorCode::NotReady);
  f.room.send_text("bob", "between us");
  f.room.run();
  REQUIRE(f.room.events_of(f.carol(), EventKind::MessageReceived).back().text == "between us");
  REQUIRE(f.room.events_of(f.alice(), EventKind::MessageReceived).empty());
}

TEST_CASE("R-OFF-6 the attempt after a verdict is seeded with the offers buffered for its roster", "[rules]") {
  // alice refuses carol. carol reaches the verdict first and offers for {bob, carol}; bob, whose
  // roster is still all three, buffers that offer. When alice's key share brings bob the same
  // verdict, his next attempt takes carol's offer at once: round 1 is complete, his KeyShare goes
  // out with his Offer, and nobody waits for the setup timeout.
  AdmissionFixture f([](TrustStore& t, const Fingerprint&, const Fingerprint&) { REQUIRE(t.block("carol@localhost").ok()); });
  std::optional<Wire> held;
  while (!f.room.queue().empty()) {
    const Wire w = f.room.queue().front();
    f.room.queue().pop_front();
    for (SimMember* m : {&f.alice(), &f.bob(), &f.carol()}) {
      if (m == &f.bob() && !held && w.from == "alice" && type_of(w.payload) == MessageType::KeyShare) {
        held = w;
        continue;
      }
      f.room.deliver_to(*m, w);
    }
  }
  REQUIRE(held);
  REQUIRE(f.carol().engine->phase() == Phase::SettingUp);
  REQUIRE(f.bob().engine->out_members().empty());
  const auto verdict = f.bob().engine->receive("alice", view(held->payload), f.room.now(), *f.bob().rng);
  REQUIRE(verdict.ok());
  REQUIRE(type_sequence(verdict->broadcasts) == std::vector<MessageType>{MessageType::Offer, MessageType::KeyShare});
  f.room.absorb(f.bob(), verdict);
  f.room.run();
  for (SimMember* m : {&f.bob(), &f.carol()}) {
    CAPTURE(m->nick);
    REQUIRE(m->engine->phase() == Phase::Established);
    REQUIRE(m->engine->session()->members.size() == 2);
  }
}

TEST_CASE("R-ADM-3 a refuser comes back after its trust changed, when the others see it join again", "[rules]") {
  AdmissionFixture f([](TrustStore&, const Fingerprint&, const Fingerprint&) {}, AdmissionPolicy::VerifiedOnly);
  f.room.run();
  REQUIRE(f.alice().engine->phase() == Phase::Out);
  REQUIRE(f.alice().engine->refused().size() == 2);  // nobody is verified yet
  REQUIRE(f.bob().engine->phase() == Phase::Established);
  // While out, alice can still see (and verify) who is there.
  const auto ids = f.alice().engine->identities();
  REQUIRE(ids.empty());  // the attempt is over; the host keeps what the Refusing events said
  // bob still knows the key alice showed, so that he can verify her while she is out.
  const auto bob_ids = f.bob().engine->identities();
  REQUIRE(std::any_of(bob_ids.begin(), bob_ids.end(), [&](const MemberInfo& m) {
    return m.nick == "alice" && m.fingerprint == f.alice().engine->fingerprint();
  }));
  // alice verifies both (fingerprints compared, or SMP), restarts, and presence shows her back.
  REQUIRE(f.alice().engine != nullptr);
  REQUIRE(f.trust.verify("bob@localhost", f.bob().engine->fingerprint()).ok());
  REQUIRE(f.trust.verify("carol@localhost", f.carol().engine->fingerprint()).ok());
  f.room.absorb(f.alice(), f.alice().engine->restart(f.room.now(), *f.alice().rng));
  REQUIRE(f.alice().engine->phase() == Phase::SettingUp);
  // bob and carol: the room roster without alice (her marker said out), then with her again.
  const auto without = roster_of({"bob", "carol"});
  for (SimMember* m : {&f.bob(), &f.carol()}) {
    f.room.absorb(*m, m->engine->set_roster(without, f.room.now(), *m->rng));
  }
  for (SimMember* m : {&f.bob(), &f.carol()}) {
    f.room.absorb(*m, m->engine->set_roster(roster_of({"alice", "bob", "carol"}), f.room.now(), *m->rng));
  }
  f.room.run();
  REQUIRE(f.room.all_established());
  REQUIRE(f.alice().engine->session()->members.size() == 3);
}

TEST_CASE("R-ADM-3 we are back in once the member we refuse leaves the room", "[rules]") {
  AdmissionFixture f([](TrustStore& t, const Fingerprint&, const Fingerprint&) { REQUIRE(t.block("carol@localhost").ok()); });
  f.room.run();
  REQUIRE(f.alice().engine->phase() == Phase::Out);
  const auto before = f.alice().engine->summary();
  // carol leaves: nobody alice refuses is in the room any more, and no one joined.
  f.room.part("carol");
  f.room.run();
  REQUIRE(f.alice().engine->refused().empty());
  REQUIRE(f.alice().engine->phase() == Phase::Established);
  REQUIRE(f.bob().engine->phase() == Phase::Established);
  REQUIRE(f.alice().engine->session()->members.size() == 2);
  REQUIRE_FALSE(f.alice().engine->summary() == before);
  // A roster change that keeps carol keeps alice out.
  AdmissionFixture g([](TrustStore& t, const Fingerprint&, const Fingerprint&) { REQUIRE(t.block("carol@localhost").ok()); });
  g.room.run();
  g.room.absorb(g.alice(), g.alice().engine->set_roster(roster_of({"alice", "carol"}), g.room.now(), *g.alice().rng));
  REQUIRE(g.alice().engine->phase() == Phase::Out);
}

TEST_CASE("R-ADM-3 a mutual refusal: once one refuser leaves, the other is back at once", "[rules]") {
  // alice and carol refuse each other: both stay out, bob and dave go on. When carol leaves,
  // alice is no longer out, and the attempt that includes her starts at once at every member:
  // alice's is seeded with the offers bob and dave sent while she was still out.
  TrustStore alice_trust;
  TrustStore carol_trust;
  Room room(0);
  for (const char* nick : {"alice", "bob", "carol", "dave"}) {
    room.add_member(nick);
  }
  REQUIRE(alice_trust.block("carol@localhost").ok());
  REQUIRE(carol_trust.block("alice@localhost").ok());
  for (auto [index, trust] : {std::pair<std::size_t, TrustStore*>{0, &alice_trust}, {2, &carol_trust}}) {
    auto& m = room.member(index);
    EngineConfig config{Room::kRoomName, m.nick, {}, AdmissionPolicy::Trusted};
    m.engine = std::make_unique<Engine>(config, IdentityKey::generate(*m.rng).value(), trust);
  }
  room.set_rosters();
  room.run();
  REQUIRE(room.by_nick("alice").engine->phase() == Phase::Out);
  REQUIRE(room.by_nick("carol").engine->phase() == Phase::Out);
  REQUIRE(room.by_nick("bob").engine->session()->members.size() == 2);
  // Presence reaches bob and dave first: their offers for {alice, bob, dave} reach alice while
  // she is still out (buffered); then she sees carol leave.
  room.by_nick("carol").present = false;
  const auto without_carol = roster_of({"alice", "bob", "dave"});
  for (const char* nick : {"bob", "dave"}) {
    auto& m = room.by_nick(nick);
    room.absorb(m, m.engine->set_roster(without_carol, room.now(), *m.rng));
  }
  room.run();
  REQUIRE(room.by_nick("alice").engine->phase() == Phase::Out);
  auto& alice = room.by_nick("alice");
  const auto back = alice.engine->set_roster(without_carol, room.now(), *alice.rng);
  REQUIRE(back.ok());
  REQUIRE(type_sequence(back->broadcasts) == std::vector<MessageType>{MessageType::Offer, MessageType::KeyShare});
  room.absorb(alice, back);
  room.run();  // no timer runs: nobody may wait for a setup timeout
  for (const char* nick : {"alice", "bob", "dave"}) {
    CAPTURE(nick);
    REQUIRE(room.by_nick(nick).engine->phase() == Phase::Established);
    REQUIRE(room.by_nick(nick).engine->session()->members.size() == 3);
  }
}

TEST_CASE("R-ADM-4 one identity key under two JIDs is reported", "[rules]") {
  Room room(0);
  room.add_member("alice");
  room.add_member("bob");
  room.add_member("bob2");
  // "bob2" runs with bob's identity key under another JID.
  for (const char* nick : {"bob", "bob2"}) {
    room.by_nick(nick).engine = std::make_unique<Engine>(EngineConfig{Room::kRoomName, nick, {}},
                                                         IdentityKey::from_scalar(view(Bytes(32, 0x42))).value());
  }
  room.set_rosters();
  room.run();
  const auto shared = room.events_of(room.member(0), EventKind::IdentityShared);
  REQUIRE(shared.size() == 1);
  REQUIRE(shared[0].nick == "bob2");
  REQUIRE(shared[0].nicks == std::vector<std::string>{"bob"});
  REQUIRE(room.member(0).engine->phase() == Phase::Established);  // a warning, not a refusal
}

TEST_CASE("R-TRUST-3 a first-seen identity is announced when the session is established", "[rules]") {
  SECTION("unknown JID") {
    TrustFixture f([](TrustStore&, const Fingerprint&) {});
    f.room.run();
    REQUIRE(f.alice().engine->phase() == Phase::Established);
    const auto fresh = f.room.events_of(f.alice(), EventKind::NewIdentity);
    REQUIRE(fresh.size() == 1);
    REQUIRE(fresh[0].nick == "bob");
    const Fingerprint bob = f.room.member(1).engine->fingerprint();
    REQUIRE(fresh[0].data == Bytes(bob.bytes.begin(), bob.bytes.end()));
  }
  SECTION("known key") {
    TrustFixture f([](TrustStore& t, const Fingerprint& bob) { REQUIRE(t.record_first_use("bob@localhost", bob).ok()); });
    f.room.run();
    REQUIRE(f.alice().engine->phase() == Phase::Established);
    REQUIRE(f.room.events_of(f.alice(), EventKind::NewIdentity).empty());
  }
}

TEST_CASE("R-SD-14 End: only after a shutdown, once per member, and keys wait for every End", "[rules]") {
  SECTION("nobody publishes before every member's End; a repeated End is a duplicate") {
    Room room(3);
    establish(room);
    auto& alice = room.by_nick("alice");
    auto& bob = room.by_nick("bob");
    room.absorb(bob, bob.engine->leave(room.now(), *bob.rng));
    // The server holds back everything carol sends from her End on.
    std::vector<Wire> held;
    while (!room.queue().empty()) {
      Wire w = room.queue().front();
      room.queue().pop_front();
      const auto type = type_of(w.payload);
      if (w.from == "carol" && (type == MessageType::End || type == MessageType::KeyReveal)) {
        held.push_back(std::move(w));
        continue;
      }
      for (auto& m : room.members()) {
        room.deliver_to(m, w);
      }
    }
    REQUIRE(held.size() >= 1);
    REQUIRE(type_of(held[0].payload) == MessageType::End);
    for (const char* nick : {"alice", "bob"}) {
      CAPTURE(nick);
      REQUIRE(room.events_of(room.by_nick(nick), EventKind::TranscriptConsistent).size() == 1);
      REQUIRE(room.events_of(room.by_nick(nick), EventKind::KeyPublished).empty());
    }
    const Output out = require_accepted(room, alice, "carol", held[0].payload);
    REQUIRE(has_event(out.events, EventKind::KeyPublished));
    require_rejected(room, alice, "carol", held[0].payload, ErrorCode::Duplicate);
  }
  SECTION("an End before any shutdown is unexpected") {
    Room room(2);
    establish(room);
    auto& alice = room.by_nick("alice");
    Engine evil_a = *alice.engine;
    Engine evil_b = *room.by_nick("bob").engine;
    DeterministicRng rng_a(5), rng_b(6);
    auto sb = evil_b.leave(room.now(), rng_b);
    REQUIRE(sb.ok());
    auto ra = evil_a.receive("bob", view(first_of(sb->broadcasts, MessageType::Shutdown)), room.now(), rng_a);
    REQUIRE(ra.ok());
    auto rb = evil_b.receive("alice", view(first_of(ra->broadcasts, MessageType::Shutdown)), room.now(), rng_b);
    REQUIRE(rb.ok());
    auto rb2 = evil_b.receive("alice", view(first_of(ra->broadcasts, MessageType::Digest)), room.now(), rng_b);
    REQUIRE(rb2.ok());
    const Bytes end = first_of(rb2->broadcasts, MessageType::End);
    REQUIRE(alice.engine->phase() == Phase::Established);
    require_rejected(room, alice, "bob", end, ErrorCode::UnexpectedMessage);
  }
}

TEST_CASE("R-SD-14 an End naming a digest we lacked is compared once that digest arrives, also after we published", "[rules]") {
  FakeSetup f;
  const Hash32 group = f.establish_with_carol();
  const Hash32 sid = f.sid();
  auto& alice = f.alice();
  const TimeMs t0 = f.room.now();
  f.room.absorb(alice, alice.engine->leave(t0, *alice.rng));
  // Nobody wrote anything: every honest transcript digest is d (§5.13).
  Bytes t = spec::cat({spec::txt("mpotr-v2 transcript")});
  Bytes e = spec::cat({spec::txt("mpotr-v2 end")});
  for (std::uint8_t m = 0; m < 3; ++m) {
    append(t, view(spec::u32(0)));
    append(t, view(spec::chain_start(sid, m)));
  }
  const Hash32 d = spec::H(t);
  for (std::uint8_t m = 0; m < 3; ++m) {
    append(e, view(spec::u8(1)));
    append(e, view(d));
  }
  // carol signs two digests: d for alice (held back by the server), another for bob.
  codec::Shutdown sc;
  codec::Digest for_alice;
  for_alice.transcript_digest = d;
  codec::Digest for_bob;
  for_bob.transcript_digest = d;
  for_bob.transcript_digest[0] ^= 0x01;
  codec::End ec;
  for (std::size_t m = 0; m < 3; ++m) {
    ec.present.set(m);
  }
  ec.digests_hash = spec::H(e);
  const Bytes dg_alice = f.carol.sealed(sid, group, for_alice);
  const Bytes dg_bob = f.carol.sealed(sid, group, for_bob);
  f.inject(f.carol.sealed(sid, group, sc));
  f.inject(dg_bob);
  f.inject(f.carol.sealed(sid, group, ec));
  run_filtered(f.room, [&](const Wire& w, const SimMember& m) {
    if (w.payload == dg_bob) {
      return m.nick == "bob";
    }
    return !(m.nick == "alice" && w.from == "bob" && type_of(w.payload) == MessageType::KeyReveal);
  });
  REQUIRE(kinds(f.bob().events, EventKind::TranscriptMismatch).at(0).nick == "carol");
  REQUIRE(sent_by(f.room, "bob", MessageType::End).size() == 1);  // over carol's digest for bob
  REQUIRE(sent_by(f.room, "alice", MessageType::End).empty());    // alice still waits for carol's
  // At the deadline carol is excused; bob's and carol's Ends are held, so alice publishes. Both
  // name carol's digest, which alice lacks: not comparable yet.
  auto dl = alice.engine->tick(t0 + kDefaultShutdownTimeoutMs, *alice.rng);
  REQUIRE(dl.ok());
  REQUIRE(has_event(dl->events, EventKind::KeyPublished));
  REQUIRE(kinds(dl->events, EventKind::TranscriptMismatch).empty());
  // carol's digest for alice arrives at last. It equals alice's own, but bob's End hashed another.
  const Output late = require_accepted(f.room, alice, "carol", dg_alice);
  const auto mismatch = kinds(late.events, EventKind::TranscriptMismatch);
  REQUIRE(mismatch.size() == 1);
  REQUIRE(mismatch[0].nick == "bob");
}
