// SPDX-License-Identifier: MIT
// RoomHost without XMPP, over the in-memory MUC of support/host_muc.h.
#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <memory>

#include "support/host_muc.h"

using namespace mpotr;
using namespace mpotr::transport;

namespace {

using Muc = mpotr::test::HostMuc;
using mpotr::test::Client;
using mpotr::test::kRoom;

std::size_t count(const Client& c, std::string_view kind) {
  return static_cast<std::size_t>(
      std::count_if(c.notices.begin(), c.notices.end(), [&](const Notice& n) { return n.kind == kind; }));
}

const Notice* last(const Client& c, std::string_view kind) {
  for (auto it = c.notices.rbegin(); it != c.notices.rend(); ++it) {
    if (it->kind == kind) return &*it;
  }
  return nullptr;
}

void three_secure(Muc& muc) {
  muc.add("alice", 1);
  muc.add("bob", 2);
  muc.add("carol", 3);
  muc.join("alice");
  muc.join("bob");
  muc.join("carol");
  muc.run();
  muc.advance(1000);  // past any roster settle window
  for (const char* n : {"alice", "bob", "carol"}) {
    REQUIRE(muc.get(n).host->phase() == Phase::Established);
  }
}

}  // namespace

TEST_CASE("RoomHost: members who join one by one reach a secure session and chat", "[transport][host]") {
  Muc muc;
  three_secure(muc);
  Client& alice = muc.get("alice");
  CHECK(count(alice, "secure") >= 1);
  CHECK(last(alice, "secure")->text.find("alice, bob, carol") != std::string::npos);

  muc.absorb(alice, alice.host->send_text("hello", muc.now, *alice.rng));
  muc.run();
  for (const char* n : {"bob", "carol"}) {
    const Notice* m = last(muc.get(n), "message");
    REQUIRE(m != nullptr);
    CHECK(m->text == "hello");
    CHECK(m->nick == "alice");
  }
  CHECK(count(alice, "message") == 0);  // our echo is not shown twice
  REQUIRE(count(alice, "sent") == 1);
  // Heartbeats confirm it; the status says who confirmed.
  muc.advance(kDefaultHeartbeatMs + 1);
  muc.advance(kDefaultHeartbeatMs + 1);
  REQUIRE(alice.host->sent().size() == 1);
  CHECK(alice.host->sent()[0].fully_confirmed);
  CHECK(alice.host->sent()[0].confirmed_by == std::set<std::string>{"bob", "carol"});
  CHECK(count(alice, "fully_confirmed") >= 1);
}

TEST_CASE("RoomHost: first keys are recorded as trusted on first use", "[transport][host][trust]") {
  Muc muc;
  three_secure(muc);
  const Client& alice = muc.get("alice");
  CHECK(count(alice, "new_identity") == 2);
  CHECK(alice.trust->level("bob@localhost") == TrustLevel::Tofu);
  CHECK(alice.trust->level("carol@localhost") == TrustLevel::Tofu);
  CHECK(alice.trust->find("bob@localhost")->fingerprint == muc.get("bob").host->fingerprint());
}

TEST_CASE("RoomHost: a changed key is refused with an alert until the user accepts it", "[transport][host][trust]") {
  Muc muc;
  muc.add("alice", 1);
  muc.add("bob", 2);
  Client& alice = muc.get("alice");
  // alice trusted another key for bob before.
  DeterministicRng other(99);
  auto old_key = IdentityKey::generate(other);
  REQUIRE(old_key.ok());
  REQUIRE(alice.trust->record_first_use("bob@localhost", old_key.value().fingerprint()).ok());
  muc.join("alice");
  muc.join("bob");
  muc.run();
  // alice stays out (R-ADM-2) and is told why, with the key she may check.
  CHECK(alice.host->phase() == Phase::Out);
  CHECK(alice.host->marker() == Marker::Out);
  const Notice* alert = last(alice, "refusing");
  REQUIRE(alert != nullptr);
  CHECK(alert->severity == Severity::Alert);
  CHECK(alert->code == ErrorCode::IdentityChanged);
  CHECK(alert->attribution == Attribution::Local);
  CHECK(alert->text.find("CHANGED (now " + muc.get("bob").host->fingerprint().grouped() + ")") != std::string::npos);
  CHECK(alice.host->identity_of("bob") == muc.get("bob").host->fingerprint());

  auto accepted = alice.host->accept_new_key("bob", muc.now, *alice.rng);
  REQUIRE(accepted.ok());
  CHECK(accepted.value().trust_changed);
  muc.absorb(alice, std::move(accepted).value());
  muc.run();
  CHECK(alice.host->phase() == Phase::Established);
  CHECK(alice.trust->find("bob@localhost")->fingerprint == muc.get("bob").host->fingerprint());
}

TEST_CASE("RoomHost: /verify records the fingerprint and flags a mismatch", "[transport][host][trust]") {
  Muc muc;
  three_secure(muc);
  Client& alice = muc.get("alice");
  const auto bob_fp = muc.get("bob").host->fingerprint().grouped();
  auto ok = alice.host->verify("bob", bob_fp, muc.now, *alice.rng);
  REQUIRE(ok.ok());
  CHECK(alice.trust->level("bob@localhost") == TrustLevel::Verified);
  CHECK(alice.host->phase() == Phase::Established);  // nothing to re-key

  auto bad_fp = alice.host->verify("bob", "zz", muc.now, *alice.rng);
  REQUIRE_FALSE(bad_fp.ok());
  auto nobody = alice.host->verify("mallory", bob_fp, muc.now, *alice.rng);
  REQUIRE_FALSE(nobody.ok());
  CHECK(nobody.error().code == ErrorCode::InvalidArgument);

  const auto carol_fp = muc.get("carol").host->fingerprint().grouped();
  auto mismatch = alice.host->verify("bob", carol_fp, muc.now, *alice.rng);
  REQUIRE(mismatch.ok());
  const auto& notices = mismatch.value().notices;
  CHECK(std::any_of(notices.begin(), notices.end(), [](const Notice& n) { return n.kind == "verify_mismatch"; }));
}

TEST_CASE("RoomHost: a leave and a join each re-key the room", "[transport][host]") {
  Muc muc;
  three_secure(muc);
  const auto first = muc.get("alice").host->session()->session_id;
  muc.part("carol");
  muc.run();
  const auto second = muc.get("alice").host->session();
  REQUIRE(second);
  CHECK(second->members.size() == 2);
  CHECK(second->session_id != first);
  CHECK(count(muc.get("alice"), "left") == 1);

  muc.add("dave", 4);
  muc.join("dave");
  muc.run();
  for (const char* n : {"alice", "bob", "dave"}) {
    REQUIRE(muc.get(n).host->session());
    CHECK(muc.get(n).host->session()->members.size() == 3);
  }
}

TEST_CASE("RoomHost: a nick change re-keys the room under the new nick", "[transport][host]") {
  Muc muc;
  three_secure(muc);
  const auto before = muc.get("alice").host->session()->session_id;
  // carol becomes "caroline": the others see an unavailable presence with status 303, then
  // the new nick; her own client rejoins under it (a fresh engine, spec §13.2).
  Client& carol = muc.get("carol");
  for (const char* n : {"alice", "bob"}) {
    Client& c = muc.get(n);
    muc.absorb(c, c.host->on_nick_change("carol", "caroline", muc.now, *c.rng));
    muc.absorb(c, c.host->on_occupant_present(Occupant{"caroline", "carol@localhost"}, muc.now, *c.rng));
  }
  carol.nick = "caroline";  // what the room now writes as the sender of her messages
  muc.absorb(carol, carol.host->on_self_present("caroline", true, muc.now, *carol.rng));
  muc.run();
  for (const char* n : {"alice", "bob", "caroline"}) {
    Client& c = muc.get(n);
    INFO(n);
    REQUIRE(c.host->phase() == Phase::Established);
    const auto info = c.host->session();
    REQUIRE(info->members.size() == 3);
    CHECK(info->session_id != before);
    CHECK(std::any_of(info->members.begin(), info->members.end(), [](const MemberInfo& m) { return m.nick == "caroline"; }));
  }
  CHECK(count(muc.get("alice"), "nick_changed") == 1);
  CHECK(muc.get("alice").host->occupants().count("carol") == 0);
}

TEST_CASE("RoomHost: presence within the settle window is folded into one re-key", "[transport][host]") {
  Muc muc(200);
  three_secure(muc);
  Client& alice = muc.get("alice");
  const auto setups_before = count(alice, "setup");
  muc.add("dave", 4);
  muc.add("erin", 5);
  muc.join("dave");
  muc.join("erin");
  CHECK(count(alice, "setup") == setups_before);  // nothing yet: settling
  REQUIRE(alice.host->wake_at());
  muc.advance(250);
  muc.run();
  CHECK(count(alice, "setup") == setups_before + 1);
  CHECK(alice.host->session()->members.size() == 5);
}

TEST_CASE("RoomHost: a semi-anonymous room is refused", "[transport][host]") {
  Muc muc;
  Client& alice = muc.add("alice", 1);
  muc.join("alice", /*shows_jids=*/false);
  const Notice* n = last(alice, "anonymous_room");
  REQUIRE(n != nullptr);
  CHECK(n->severity == Severity::Alert);
  CHECK(alice.host->phase() == Phase::Idle);
  auto out = alice.host->send_text("secret", muc.now, *alice.rng);
  CHECK(out.payloads.empty());
  CHECK(out.notices.at(0).code == ErrorCode::NotReady);
}

TEST_CASE("RoomHost: nothing is sent before the session is secure", "[transport][host]") {
  Muc muc;
  Client& alice = muc.add("alice", 1);
  muc.add("bob", 2);
  muc.join("alice");
  muc.join("bob");
  // Offers are queued but not delivered: alice is still setting up.
  auto out = alice.host->send_text("too early", muc.now, *alice.rng);
  CHECK(out.payloads.empty());
  REQUIRE(out.notices.size() == 1);
  CHECK(out.notices[0].kind == "not_sent");
  CHECK(out.notices[0].code == ErrorCode::NotReady);
}

TEST_CASE("RoomHost: bad payload text is reported and changes nothing", "[transport][host]") {
  Muc muc;
  three_secure(muc);
  Client& bob = muc.get("bob");
  const auto phase = bob.host->phase();
  const auto session = bob.host->session()->session_id;
  for (const std::string& bad : {std::string("not base64!"), std::string("AAAA"), std::string(kMaxPayloadTextLen + 4, 'A')}) {
    auto out = bob.host->on_payload("alice", bad, muc.now, *bob.rng);
    CHECK(out.payloads.empty());
    REQUIRE(out.notices.size() == 1);
    CHECK(out.notices[0].kind == "malformed");
    CHECK(out.notices[0].severity == Severity::Alert);
  }
  CHECK(bob.host->phase() == phase);
  CHECK(bob.host->session()->session_id == session);
}

TEST_CASE("RoomHost: a tampered payload raises an alert, a replay too", "[transport][host]") {
  Muc muc;
  three_secure(muc);
  Client& alice = muc.get("alice");
  Client& bob = muc.get("bob");
  muc.absorb(alice, alice.host->send_text("pay 10", muc.now, *alice.rng));
  REQUIRE(muc.queue().size() == 1);
  REQUIRE(muc.queue().front().second.has_value());
  const std::string original = *muc.queue().front().second;
  Bytes raw;
  REQUIRE(from_base64(original, raw));
  raw[raw.size() / 2] ^= 0x01;
  auto tampered = bob.host->on_payload("alice", encode_payload_text(view(raw)), muc.now, *bob.rng);
  REQUIRE(tampered.notices.size() == 1);
  CHECK(tampered.notices[0].severity == Severity::Alert);
  CHECK((tampered.notices[0].kind == "tampered" || tampered.notices[0].kind == "malformed"));
  muc.run();
  CHECK(last(bob, "message")->text == "pay 10");
  auto replayed = bob.host->on_payload("alice", original, muc.now, *bob.rng);
  REQUIRE(replayed.notices.size() == 1);
  CHECK(replayed.notices[0].kind == "replay");
}

TEST_CASE("RoomHost: unencrypted room messages are flagged as the server's claim", "[transport][host]") {
  Muc muc;
  Client& alice = muc.add("alice", 1);
  auto out = alice.host->on_plaintext("eve", "hi all");
  REQUIRE(out.notices.size() == 1);
  CHECK(out.notices[0].kind == "plaintext");
  CHECK(out.notices[0].severity == Severity::Warning);
  CHECK(out.notices[0].attribution == Attribution::Claimed);
  CHECK(out.notices[0].text ==
        "An UNENCRYPTED message claiming to be from eve (the server could have written it, and everyone can read it): hi all");
  CHECK(alice.host->on_plaintext("", "room subject").notices.empty());
}

TEST_CASE("RoomHost: only what a member's key authenticates is attributed to the member (R-GEN-4)", "[transport][host]") {
  Muc muc;
  three_secure(muc);
  Client& alice = muc.get("alice");
  Client& bob = muc.get("bob");
  // A malformed payload "from alice": the server's word, never alice's deed.
  auto bad = bob.host->on_payload("alice", "AAAA", muc.now, *bob.rng);
  REQUIRE(bad.notices.size() == 1);
  CHECK(bad.notices[0].attribution == Attribution::Claimed);
  CHECK(bad.notices[0].text.rfind("A message claiming to be from alice was malformed", 0) == 0);
  CHECK(bad.notices[0].text.find("(the server could have written this)") != std::string::npos);
  // A forged entry under alice's nick, made from a real one with one bit flipped.
  muc.absorb(alice, alice.host->send_text("pay 10", muc.now, *alice.rng));
  Bytes raw;
  REQUIRE(from_base64(*muc.queue().front().second, raw));
  raw[raw.size() - 1] ^= 0x80;
  auto forged = bob.host->on_payload("alice", encode_payload_text(view(raw)), muc.now, *bob.rng);
  REQUIRE(forged.notices.size() == 1);
  CHECK(forged.notices[0].attribution == Attribution::Claimed);
  CHECK(forged.notices[0].text.rfind("A message claiming to be from alice failed authentication", 0) == 0);
  // Presence is the server's word too.
  auto joined = bob.host->on_occupant_present(Occupant{"dave", "dave@localhost"}, muc.now, *bob.rng);
  REQUIRE_FALSE(joined.notices.empty());
  CHECK(joined.notices[0].attribution == Attribution::Claimed);
  // The genuine line is the member's.
  muc.run();
  const Notice* line = last(bob, "message");
  REQUIRE(line != nullptr);
  CHECK(line->text == "pay 10");
  CHECK(line->attribution == Attribution::Member);
  CHECK(std::string(to_string(Attribution::Claimed)) == "claimed");
}

TEST_CASE("RoomHost: block keeps the blocker out with its marker, and the room goes on without it", "[transport][host][trust]") {
  Muc muc;
  three_secure(muc);
  Client& alice = muc.get("alice");
  const Fingerprint carol_fp = muc.get("carol").host->fingerprint();
  auto unknown = alice.host->block("mallory", muc.now, *alice.rng);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == ErrorCode::InvalidArgument);
  auto blocked = alice.host->block("carol", muc.now, *alice.rng);
  REQUIRE(blocked.ok());
  CHECK(blocked.value().trust_changed);
  REQUIRE_FALSE(blocked.value().notices.empty());
  CHECK(blocked.value().notices[0].text == "Blocked carol (carol@localhost) and key " + carol_fp.grouped() +
                                               " (under any JID): you stay out of the session while they are in it");
  CHECK(alice.trust->fingerprint_blocked(carol_fp));
  muc.absorb(alice, std::move(blocked).value());
  muc.run();
  CHECK(alice.host->phase() == Phase::Out);
  CHECK(alice.host->marker() == Marker::Out);
  CHECK(count(alice, "self_out") == 1);
  for (const char* n : {"bob", "carol"}) {
    Client& c = muc.get(n);
    REQUIRE(c.host->phase() == Phase::Established);
    CHECK(c.host->session()->members.size() == 2);
    CHECK(last(c, "member_out") != nullptr);
  }
  // Out, alice sends nothing; she can still tell whom she refuses by key.
  auto refused = alice.host->send_text("hello", muc.now, *alice.rng);
  CHECK(refused.payloads.empty());
  CHECK(alice.host->identity_of("carol") == carol_fp);
  // carol leaves: alice is back in, her marker too, and the session forms with bob.
  muc.part("carol");
  muc.run();
  muc.advance(1000);
  CHECK(alice.host->phase() == Phase::Established);
  CHECK(alice.host->marker() == Marker::In);
  CHECK(muc.get("bob").host->session()->members.size() == 2);
}

TEST_CASE("RoomHost: \"verified only\" keeps us out until the member is verified, then re-forms", "[transport][host][trust]") {
  Muc muc;
  three_secure(muc);
  Client& alice = muc.get("alice");
  muc.absorb(alice, alice.host->set_admission(AdmissionPolicy::VerifiedOnly, muc.now, *alice.rng));
  muc.run();
  CHECK(alice.host->admission() == AdmissionPolicy::VerifiedOnly);
  CHECK(alice.host->phase() == Phase::Out);
  const Notice* why = last(alice, "refusing");
  REQUIRE(why != nullptr);
  CHECK(why->code == ErrorCode::IdentityUnverified);
  CHECK(muc.get("bob").host->phase() == Phase::Established);
  // Setting the same policy again changes nothing.
  CHECK(alice.host->set_admission(AdmissionPolicy::VerifiedOnly, muc.now, *alice.rng).notices.empty());
  // alice verifies both keys; each verification tries again, and the session forms with all.
  for (const char* n : {"bob", "carol"}) {
    const auto fp = alice.host->identity_of(n);
    REQUIRE(fp.has_value());
    auto ok = alice.host->verify(n, fp->grouped(), muc.now, *alice.rng);
    REQUIRE(ok.ok());
    muc.absorb(alice, std::move(ok).value());
    muc.run();
  }
  muc.advance(1000);
  CHECK(alice.host->phase() == Phase::Established);
  CHECK(alice.host->marker() == Marker::In);
  CHECK(alice.host->session()->members.size() == 3);
}

TEST_CASE("RoomHost: quit tells the others at once and withholds our key", "[transport][host]") {
  Muc muc;
  three_secure(muc);
  Client& carol = muc.get("carol");
  auto out = carol.host->quit(muc.now, *carol.rng);
  CHECK(out.leave_room);
  CHECK(count(carol, "key_published") == 0);
  muc.absorb(carol, std::move(out));
  CHECK(last(carol, "quitting") != nullptr);
  CHECK(count(carol, "key_published") == 0);
  muc.run();
  // The others learn that carol accepts nothing more (R-SD-17).
  for (const char* n : {"alice", "bob"}) {
    CHECK(muc.get(n).host->session().has_value());
  }
  // Quitting twice, or without a session, only asks to leave the room.
  CHECK(carol.host->quit(muc.now, *carol.rng).leave_room);
  Muc empty;
  Client& lone = empty.add("lone", 9);
  CHECK(lone.host->quit(empty.now, *lone.rng).leave_room);
}

TEST_CASE("RoomHost: leaving runs the shutdown and then asks to leave the room", "[transport][host]") {
  Muc muc;
  three_secure(muc);
  Client& carol = muc.get("carol");
  muc.absorb(carol, carol.host->leave(muc.now, *carol.rng));
  muc.run();
  for (int i = 0; i < 10 && count(carol, "ready_to_leave") == 0; ++i) muc.advance(1000);
  CHECK(count(carol, "key_published") == 1);
  CHECK(count(carol, "transcript_consistent") == 1);
  CHECK(count(carol, "ready_to_leave") == 1);
}

TEST_CASE("RoomHost: a lost connection resets the room state", "[transport][host]") {
  Muc muc;
  three_secure(muc);
  Client& bob = muc.get("bob");
  auto out = bob.host->on_disconnected("socket closed");
  REQUIRE(out.notices.size() == 1);
  CHECK(out.notices[0].kind == "disconnected");
  CHECK(out.notices[0].text.find("without a transcript check") != std::string::npos);
  CHECK_FALSE(bob.host->in_room());
  CHECK(bob.host->occupants().empty());
  CHECK(bob.host->phase() == Phase::Idle);
}

TEST_CASE("RoomHost: occupants without the mpOTR marker stay outside the session (X-8)", "[transport][host]") {
  Muc muc;
  three_secure(muc);
  const auto first = muc.get("alice").host->session()->session_id;
  auto tell_all = [&](auto&& call) {
    for (const char* n : {"alice", "bob", "carol"}) {
      Client& c = muc.get(n);
      muc.absorb(c, call(c));
    }
    muc.run();
  };
  // An occupant without the marker joins: a warning, no re-key.
  tell_all([&](Client& c) { return c.host->on_occupant_present(Occupant{"olga", "olga@localhost", false}, muc.now, *c.rng); });
  CHECK(muc.get("alice").host->session()->session_id == first);
  CHECK(muc.get("alice").host->phase() == Phase::Established);
  REQUIRE(last(muc.get("bob"), "outsider") != nullptr);
  CHECK(last(muc.get("bob"), "outsider")->severity == Severity::Warning);
  CHECK(muc.get("bob").host->occupants().at("olga").mpotr == false);
  // A status update of the outsider changes nothing either.
  tell_all([&](Client& c) { return c.host->on_occupant_present(Occupant{"olga", "olga@localhost", false}, muc.now, *c.rng); });
  CHECK(muc.get("alice").host->session()->session_id == first);
  // The outsider leaves: still no re-key.
  tell_all([&](Client& c) { return c.host->on_occupant_gone("olga", muc.now, *c.rng); });
  CHECK(muc.get("alice").host->session()->session_id == first);
  CHECK(count(muc.get("alice"), "left") == 0);

  // carol turns mpOTR off while staying in the room: the others re-key without her.
  for (const char* n : {"alice", "bob"}) {
    Client& c = muc.get(n);
    muc.absorb(c, c.host->on_occupant_present(Occupant{"carol", "carol@localhost", false}, muc.now, *c.rng));
  }
  muc.get("carol").present = false;  // carol's own host is gone (she ended mpOTR)
  muc.run();
  const auto second = muc.get("alice").host->session();
  REQUIRE(second);
  CHECK(second->session_id != first);
  CHECK(second->members.size() == 2);
  CHECK(muc.get("alice").host->phase() == Phase::Established);
  CHECK(last(muc.get("alice"), "left")->text.find("turned mpOTR off") != std::string::npos);
}
