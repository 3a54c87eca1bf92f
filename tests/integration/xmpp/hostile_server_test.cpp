// SPDX-License-Identifier: MIT
// The attacks that broke version 1, run through real clients (MucClient over libstrophe and the
// guard) and a real ejabberd, with each client's fault proxy playing the hostile server: it
// forges presence, injects payloads, rewrites and drops stanzas. The same attacks run in memory
// in tests/sim/hostile_server_test.cpp; the deep and huge stanzas of attack 3 are in
// hostile_stanza_test.cpp. Every case asserts the exact outcome, and no chat line may ever cross
// the wire readable.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "mpotr/codec/messages.h"
#include "mpotr/crypto/crypto.h"
#include "mpotr/transport/stanza.h"
#include "support/hostile_stanzas.h"
#include "support/proxied_room.h"

using namespace mpotr;
using namespace mpotr::test;
using transport::Attribution;
using transport::ClientState;
using transport::Notice;
using transport::Severity;

namespace {

const std::string kRoomName = "hostile2";
const std::string kRoom = kRoomName + "@conference.localhost";

// `stanza` comes from the occupant room/nick (either quote style).
bool from_occupant(std::string_view stanza, const std::string& nick) {
  const std::string from = kRoom + "/" + nick;
  return stanza.find("from='" + from + "'") != std::string_view::npos ||
         stanza.find("from=\"" + from + "\"") != std::string_view::npos;
}

// The mpOTR payload of a groupchat stanza, decoded; nullopt if it carries none.
std::optional<Bytes> payload_of(std::string_view stanza) {
  const std::string open = std::string("<") + transport::kPayloadElement + " xmlns='" + transport::kPayloadNs + "'>";
  const auto at = stanza.find(open);
  if (at == std::string_view::npos) return std::nullopt;
  const auto end = stanza.find('<', at + open.size());
  auto bytes = transport::decode_payload_text(stanza.substr(at + open.size(), end - at - open.size()));
  if (!bytes.ok()) return std::nullopt;
  return std::move(bytes).value();
}

// Every payload `to_client` (a proxy's recording of what the server sent its client) carried
// from room/nick, in order.
std::vector<Bytes> payloads_from(const std::string& to_client, const std::string& nick) {
  std::vector<Bytes> out;
  StanzaSplitter splitter;
  for (const auto& piece : splitter.feed(to_client)) {
    if (piece.kind != StanzaSplitter::Kind::Stanza || !from_occupant(piece.bytes, nick)) continue;
    if (auto p = payload_of(piece.bytes)) out.push_back(std::move(*p));
  }
  return out;
}

template <class T>
std::optional<T> decode_as(const Bytes& payload) {
  auto d = codec::decode(view(payload));
  if (!d.ok() || !std::holds_alternative<T>(d->message)) return std::nullopt;
  return std::get<T>(d->message);
}

struct HostileRoom : ProxiedRoom {
  explicit HostileRoom(Timeouts timeouts = {}) : ProxiedRoom(kRoomName, timeouts, 11) {}
  // The server sends `stanza` to `nick`'s client, as if the room had.
  void inject_to(const std::string& nick, std::string stanza) { proxies[nick]->inject(Direction::ToClient, std::move(stanza)); }
  // Every notice of `kind` m received, from index `from` on.
  static std::vector<Notice> notices(const XmppMember& m, std::string_view kind, std::size_t from = 0) {
    std::vector<Notice> out;
    for (std::size_t i = from; i < m.notices.size(); ++i) {
      if (m.notices[i].kind == kind) out.push_back(m.notices[i]);
    }
    return out;
  }
  static bool about_session(const Notice& n, const Hash32& sid) { return n.event && n.event->session_id == sid; }
};

// A groupchat stanza from room/nick whose payload is `payload`.
std::string payload_stanza(const std::string& nick, const Bytes& payload, const std::string& id) {
  return hostile::payload_message(kRoom, nick, transport::encode_payload_text(view(payload)), id);
}

}  // namespace

TEST_CASE("hostile server, attack 1: a forged departure cannot make members publish while one still accepts",
          "[integration][xmpp][hostile]") {
  Timeouts t;
  t.shutdown = 3000;
  t.gap = 2000;
  HostileRoom h(t);
  XmppMember& alice = h.get("alice");
  XmppMember& bob = h.get("bob");
  XmppMember& carol = h.get("carol");
  const Hash32 sid = *h.rooms->session_of(bob);

  // The server withholds alice's next entry from bob and keeps it.
  std::mutex mu;
  std::string withheld;
  h.proxies["bob"]->add_rule({.direction = Direction::ToClient,
                              .match = "",
                              .action = FaultAction::Rewrite,
                              .every_nth = 1,
                              .rewrite = [&](std::string_view s) {
                                std::lock_guard lock(mu);
                                if (withheld.empty() && from_occupant(s, "alice") && payload_of(s)) {
                                  if (auto d = decode_as<codec::Data>(*payload_of(s)); d && !d->ciphertext.empty()) {
                                    withheld = std::string(s);
                                    return std::string();
                                  }
                                }
                                return std::string(s);
                              }});
  h.say("alice", "PAY 100 EUR to bob");
  h.require_until([&] { return h.has("carol", "alice", "PAY 100 EUR to bob"); }, 10000);
  const auto captured = [&] {
    std::lock_guard lock(mu);
    return !withheld.empty();
  };
  h.require_until(captured, 5000);

  // It tells alice and carol that bob left (a forged unavailable presence, or bob's presence
  // without the marker), and from now on drops everything they send him.
  const bool strip = GENERATE(false, true);
  CAPTURE(strip);
  h.proxies["bob"]->add_rule({.direction = Direction::ToClient,
                              .match = "",
                              .action = FaultAction::Rewrite,
                              .every_nth = 1,
                              .rewrite = [](std::string_view s) {
                                return from_occupant(s, "alice") || from_occupant(s, "carol") ? std::string() : std::string(s);
                              }});
  for (const char* n : {"alice", "carol"}) {
    h.inject_to(n, strip ? hostile::presence_without_marker(kRoom, "bob", "bob@localhost")
                         : hostile::unavailable_presence(kRoom, "bob", "bob@localhost"));
  }
  // alice and carol close the session without bob's End, past the shutdown timeout, and set up
  // a new one between them.
  h.require_until(
      [&] {
        return h.rooms->secure_together({"alice", "carol"}, kRoom) &&
               !HostileRoom::notices(alice, "key_withheld").empty() && !HostileRoom::notices(carol, "key_withheld").empty();
      },
      20000);
  for (XmppMember* m : {&alice, &carol}) {
    CAPTURE(m->nick);
    // Nothing the server did can make them publish the key of a session bob still accepts.
    for (const auto& n : HostileRoom::notices(*m, "key_published")) CHECK_FALSE(HostileRoom::about_session(n, sid));
    const auto withheld_notices = HostileRoom::notices(*m, "key_withheld");
    REQUIRE(std::any_of(withheld_notices.begin(), withheld_notices.end(),
                        [&](const Notice& n) { return HostileRoom::about_session(n, sid); }));
    CHECK(withheld_notices.front().text.find("bob") != std::string::npos);
  }
  // bob never saw any of it: his session is the old one, still established.
  CHECK(h.rooms->session_of(bob) == sid);
  CHECK(bob.client->host().phase() == Phase::Established);

  // The server rewrites the withheld entry (AES-CTR is malleable: "100" → "900") and hands it
  // to bob. Without a published key it cannot re-sign it, and the group MAC fails first.
  std::string forged;
  {
    std::lock_guard lock(mu);
    forged = withheld;
  }
  auto entry = decode_as<codec::Data>(*payload_of(forged));
  REQUIRE(entry);
  entry->ciphertext[entry->ciphertext.size() / 2] ^= '1' ^ '9';
  const std::size_t seen = bob.notices.size();
  h.inject_to("bob", payload_stanza("alice", codec::encode(*entry), "forged-entry"));
  h.require_until([&] { return !HostileRoom::notices(bob, "tampered", seen).empty(); }, 10000);
  const Notice tampered = HostileRoom::notices(bob, "tampered", seen).front();
  CHECK(tampered.attribution == Attribution::Claimed);
  CHECK(tampered.text.rfind("A message claiming to be from alice failed authentication", 0) == 0);
  CHECK(tampered.severity == Severity::Alert);
  // The genuine entry, delivered late, is still alice's line; the forged one is never shown.
  h.inject_to("bob", forged);
  h.require_until([&] { return h.has("bob", "alice", "PAY 100 EUR to bob"); }, 10000);
  const auto from_alice = h.rooms->messages_from(bob, "alice");
  CHECK(std::count(from_alice.begin(), from_alice.end(), "PAY 100 EUR to bob") == 1);
  CHECK(from_alice.size() == 1);
}

TEST_CASE("hostile server, attack 2: a 20 s flood of forged offers in alice's name re-keys nothing and refuses no line",
          "[integration][xmpp][hostile]") {
  HostileRoom h;
  XmppMember& alice = h.get("alice");
  XmppMember& bob = h.get("bob");
  XmppMember& carol = h.get("carol");
  const Hash32 sid = *h.rooms->session_of(alice);
  // alice's genuine offer, as the server relayed it to bob: the template of every forgery.
  std::optional<codec::Offer> genuine;
  for (const Bytes& p : payloads_from(h.proxies["bob"]->recorded(Direction::ToClient), "alice")) {
    if (auto o = decode_as<codec::Offer>(p)) genuine = *o;
  }
  REQUIRE(genuine);
  std::map<std::string, std::size_t> setups_before;
  for (XmppMember* m : {&alice, &bob, &carol}) setups_before[m->nick] = h.rooms->count(*m, "setup");

  SystemRng rng;
  constexpr int kOffersPerSecond = 5;
  constexpr int kSeconds = 20;
  const TimeMs start = XmppRooms::now_ms();
  int sent_offers = 0;
  int lines = 0;
  while (sent_offers < kOffersPerSecond * kSeconds) {
    const TimeMs elapsed = XmppRooms::now_ms() - start;
    if (elapsed >= static_cast<TimeMs>(sent_offers) * 1000 / kOffersPerSecond) {
      // Attempt + 1, a fresh nonce and fresh ephemeral keys: what a restarting alice would send.
      codec::Offer forged = *genuine;
      forged.attempt = genuine->attempt + 1 + static_cast<std::uint32_t>(sent_offers);
      rng.fill(forged.nonce.data(), forged.nonce.size());
      forged.dh_key = crypto::PrivateKey::generate(rng).value().public_key().point();
      forged.signing_key = crypto::PrivateKey::generate(rng).value().public_key().point();
      const std::string stanza = payload_stanza("alice", codec::encode(forged), "forged-offer-" + std::to_string(sent_offers));
      h.inject_to("bob", stanza);
      h.inject_to("carol", stanza);
      ++sent_offers;
    }
    if (elapsed >= static_cast<TimeMs>(lines) * 1000 && lines < kSeconds) {
      h.say("alice", "line " + std::to_string(lines) + " typed during the flood");
      ++lines;
    }
    h.rooms->step(5);
  }
  h.require_until(
      [&] {
        return h.has("bob", "alice", "line 19 typed during the flood") && h.has("carol", "alice", "line 19 typed during the flood");
      },
      10000);
  std::printf("hostile: %d forged offers in %.1f s, %d lines from alice\n", sent_offers,
              static_cast<double>(XmppRooms::now_ms() - start) / 1000.0, lines);
  // No line was refused, every line arrived, and at most one re-key happened (none, in fact).
  CHECK(h.rooms->count(alice, "not_sent") == 0);
  for (XmppMember* m : {&bob, &carol}) {
    CAPTURE(m->nick);
    CHECK(h.rooms->messages_from(*m, "alice").size() == static_cast<std::size_t>(kSeconds));
    CHECK(h.rooms->count(*m, "setup") - setups_before[m->nick] <= 1);
    CHECK(h.rooms->session_of(*m) == sid);
    // Reported once, as the server's doing, never blamed on alice.
    const auto reported = HostileRoom::notices(*m, "forged_offers");
    REQUIRE(reported.size() == 1);
    CHECK(reported[0].attribution == Attribution::Claimed);
    for (const auto& n : m->notices) {
      if (n.nick == "alice" && n.severity >= Severity::Warning) CHECK(n.attribution != Attribution::Member);
    }
  }
  CHECK(h.rooms->count(alice, "setup") - setups_before["alice"] <= 1);
}

TEST_CASE("hostile server, attack 4: absurd numbers in an entry cost bob one alert and lose nothing",
          "[integration][xmpp][hostile]") {
  HostileRoom h;
  XmppMember& bob = h.get("bob");
  h.say("carol", "an honest line");
  h.require_until([&] { return h.has("bob", "carol", "an honest line"); }, 10000);
  std::optional<codec::Data> entry;
  for (const Bytes& p : payloads_from(h.proxies["bob"]->recorded(Direction::ToClient), "carol")) {
    if (auto d = decode_as<codec::Data>(p); d && !d->ciphertext.empty()) entry = *d;
  }
  REQUIRE(entry);
  const std::size_t seen = bob.notices.size();
  codec::Data ack = *entry;
  ack.acks.at(0) = 0xffffffffu;  // "I have seen 2^32 − 1 of alice's entries"
  codec::Data seq = *entry;
  seq.seq = 0xffffffffu;
  h.inject_to("bob", payload_stanza("carol", codec::encode(ack), "absurd-ack"));
  h.inject_to("bob", payload_stanza("carol", codec::encode(seq), "absurd-seq"));
  h.require_until([&] { return HostileRoom::notices(bob, "malformed", seen).size() == 2; }, 10000);
  for (const auto& n : HostileRoom::notices(bob, "malformed", seen)) {
    CHECK(n.attribution == Attribution::Claimed);
    CHECK(n.code == ErrorCode::DecodeBadValue);
    CHECK(n.text.rfind("A message claiming to be from carol was malformed", 0) == 0);
  }
  h.say("carol", "still here");
  h.require_until([&] { return h.has("bob", "carol", "still here"); }, 10000);
  h.rooms->run_for(2500);  // past the gap timeout: nothing is declared lost
  CHECK(HostileRoom::notices(bob, "lost", seen).empty());
  CHECK(HostileRoom::notices(bob, "gap", seen).empty());
  CHECK(bob.client->state() == ClientState::InRoom);
  CHECK(h.rooms->secure_together({"alice", "bob", "carol"}, kRoom));
}

TEST_CASE("hostile server, attack 5: what only the server vouches for is shown as its claim",
          "[integration][xmpp][hostile]") {
  HostileRoom h;
  XmppMember& bob = h.get("bob");
  const std::size_t seen = bob.notices.size();
  h.inject_to("bob", "<message from='" + kRoom + "/alice' type='groupchat' id='plain-1'><body>send the money to eve</body></message>");
  h.inject_to("bob", hostile::payload_message(kRoom, "alice", "AAAA", "garbage-1"));
  h.require_until(
      [&] { return !HostileRoom::notices(bob, "plaintext", seen).empty() && !HostileRoom::notices(bob, "malformed", seen).empty(); },
      10000);
  const Notice plain = HostileRoom::notices(bob, "plaintext", seen).front();
  CHECK(plain.attribution == Attribution::Claimed);
  CHECK(plain.text ==
        "An UNENCRYPTED message claiming to be from alice (the server could have written it, and everyone can read it): "
        "send the money to eve");
  const Notice bad = HostileRoom::notices(bob, "malformed", seen).front();
  CHECK(bad.attribution == Attribution::Claimed);
  CHECK(bad.text.rfind("A message claiming to be from alice was malformed", 0) == 0);
  CHECK(bad.text.find("(the server could have written this)") != std::string::npos);
  // Never a line of alice's, and nothing changed.
  CHECK(h.rooms->messages_from(bob, "alice").empty());
  CHECK(h.rooms->secure_together({"alice", "bob", "carol"}, kRoom));
}

TEST_CASE("hostile server, attack 6: a late setup message is authenticated before it is called a duplicate",
          "[integration][xmpp][hostile]") {
  // v1 answered any late copy of a key share or attest "Duplicate" before checking its
  // signature (spec §11.2), so the server could replay altered copies and have them blamed on a
  // member as mere repeats. The same copies with one bit of the signature flipped must be
  // reported as forged; the unaltered ones as replayed. (Cheater identification needs a hostile
  // member, and the digests of different losses need no server: both are in memory, in
  // tests/sim/hostile_server_test.cpp and the R-KS-13 and R-SD-9 rule tests.)
  HostileRoom h;
  XmppMember& bob = h.get("bob");
  std::optional<codec::KeyShare> share;
  std::optional<codec::Attest> attest;
  for (const Bytes& p : payloads_from(h.proxies["bob"]->recorded(Direction::ToClient), "alice")) {
    if (auto k = decode_as<codec::KeyShare>(p)) share = *k;
    if (auto a = decode_as<codec::Attest>(p)) attest = *a;
  }
  REQUIRE(share);
  REQUIRE(attest);
  codec::KeyShare forged_share = *share;
  forged_share.signature[10] ^= 0x01;
  codec::Attest forged_attest = *attest;
  forged_attest.signature[10] ^= 0x01;
  const std::size_t seen = bob.notices.size();
  h.inject_to("bob", payload_stanza("alice", codec::encode(forged_share), "late-share-forged"));
  h.inject_to("bob", payload_stanza("alice", codec::encode(forged_attest), "late-attest-forged"));
  h.inject_to("bob", payload_stanza("alice", codec::encode(*share), "late-share-replayed"));
  h.inject_to("bob", payload_stanza("alice", codec::encode(*attest), "late-attest-replayed"));
  h.require_until([&] {
    return HostileRoom::notices(bob, "tampered", seen).size() == 2 && HostileRoom::notices(bob, "replay", seen).size() == 2;
  }, 10000);
  for (const auto& n : HostileRoom::notices(bob, "tampered", seen)) {
    CHECK(n.code == ErrorCode::BadSignature);
    CHECK(n.attribution == Attribution::Claimed);
    CHECK(n.text.find("the server could have written this") != std::string::npos);
  }
  for (const auto& n : HostileRoom::notices(bob, "replay", seen)) {
    CHECK(n.code == ErrorCode::Duplicate);
    CHECK(n.attribution == Attribution::Claimed);
  }
  // Nothing else: the session is untouched and chat goes on.
  CHECK(HostileRoom::notices(bob, "equivocation", seen).empty());
  h.say("alice", "after the replays");
  h.require_until([&] { return h.has("bob", "alice", "after the replays"); }, 10000);
  CHECK(h.rooms->secure_together({"alice", "bob", "carol"}, kRoom));
}

TEST_CASE("hostile server, attack 7: block and \"verified only\" never stall the room", "[integration][xmpp][hostile][trust]") {
  HostileRoom h;
  XmppMember& alice = h.get("alice");
  XmppMember& bob = h.get("bob");
  XmppMember& carol = h.get("carol");
  SECTION("alice blocks carol: alice stays out, bob and carol go on, alice is back when carol leaves") {
    REQUIRE(alice.client->block("carol", XmppRooms::now_ms()).ok());
    h.require_until([&] { return h.rooms->secure_together({"bob", "carol"}, kRoom) && alice.client->host().phase() == Phase::Out; },
                    15000);
    CHECK(alice.client->host().marker() == transport::Marker::Out);
    CHECK_FALSE(HostileRoom::notices(alice, "self_out").empty());
    for (XmppMember* m : {&bob, &carol}) CHECK_FALSE(HostileRoom::notices(*m, "member_out").empty());
    h.say("bob", "bob and carol chat on");
    h.require_until([&] { return h.has("carol", "bob", "bob and carol chat on"); }, 10000);
    alice.client->send_text("alice is out", XmppRooms::now_ms());
    h.require_until([&] { return h.rooms->count(alice, "not_sent") == 1; }, 5000);
    carol.client->quit();
    h.require_until([&] { return h.rooms->secure_together({"alice", "bob"}, kRoom); }, 15000);
    CHECK(alice.client->host().marker() == transport::Marker::In);
  }
  SECTION("bob admits verified members only: out until he verifies both, then all three re-form") {
    bob.client->set_admission(AdmissionPolicy::VerifiedOnly, XmppRooms::now_ms());
    h.require_until([&] { return h.rooms->secure_together({"alice", "carol"}, kRoom) && bob.client->host().phase() == Phase::Out; },
                    15000);
    const auto why = HostileRoom::notices(bob, "refusing");
    REQUIRE(why.size() >= 2);
    CHECK(why.back().code == ErrorCode::IdentityUnverified);
    for (const char* n : {"alice", "carol"}) {
      const auto fp = bob.client->host().identity_of(n);
      REQUIRE(fp);
      REQUIRE(bob.client->verify(n, fp->grouped(), XmppRooms::now_ms()).ok());
    }
    h.require_until([&] { return h.rooms->secure_together({"alice", "bob", "carol"}, kRoom); }, 15000);
    CHECK(bob.client->host().marker() == transport::Marker::In);
  }
}
