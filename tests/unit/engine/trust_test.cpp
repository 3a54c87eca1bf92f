// SPDX-License-Identifier: MIT
// The engine consults the trust store when it sees an identity key: a member that refuses a
// blocked JID or a changed key stays out itself (it cannot force anyone out); first-seen keys
// are announced for TOFU.
#include <catch2/catch.hpp>

#include <deque>

#include "mpotr/engine.h"

using namespace mpotr;

namespace {

struct Peer {
  std::string nick;
  DeterministicRng rng;
  IdentityKey identity;
  TrustStore trust;
  std::unique_ptr<Engine> engine;
  std::vector<Event> events;
  std::vector<Error> errors;
};

IdentityKey make_identity(std::uint64_t seed) {
  DeterministicRng rng(seed);
  return IdentityKey::generate(rng).value();
}

// Two members exchange everything until quiet; every receive result is recorded.
void converse(Peer& a, Peer& b) {
  const std::vector<Member> roster{{a.nick, a.nick + "@localhost"}, {b.nick, b.nick + "@localhost"}};
  std::deque<std::pair<std::string, Bytes>> queue;
  auto take = [&](Peer& p, Result<Output> r) {
    if (!r.ok()) {
      p.errors.push_back(r.error());
      return;
    }
    for (auto& bytes : r->broadcasts) {
      queue.emplace_back(p.nick, std::move(bytes));
    }
    p.events.insert(p.events.end(), r->events.begin(), r->events.end());
  };
  for (Peer* p : {&a, &b}) {
    p->engine = std::make_unique<Engine>(EngineConfig{"room@conference.localhost", p->nick, {}}, p->identity, &p->trust);
    take(*p, p->engine->set_roster(roster, 1000, p->rng));
  }
  while (!queue.empty()) {
    auto [from, bytes] = std::move(queue.front());
    queue.pop_front();
    for (Peer* p : {&a, &b}) {
      take(*p, p->engine->receive(from, view(bytes), 1000, p->rng));
    }
  }
}

bool has(const std::vector<Event>& events, EventKind kind) {
  return std::any_of(events.begin(), events.end(), [kind](const Event& e) { return e.kind == kind; });
}

}  // namespace

TEST_CASE("first contact: the session forms and the peer's key is announced for TOFU", "[engine][trust]") {
  Peer alice{"alice", DeterministicRng(1), make_identity(11), {}, nullptr, {}, {}};
  Peer bob{"bob", DeterministicRng(2), make_identity(12), {}, nullptr, {}, {}};
  converse(alice, bob);
  REQUIRE(alice.engine->phase() == Phase::Established);
  auto it = std::find_if(alice.events.begin(), alice.events.end(), [](const Event& e) { return e.kind == EventKind::NewIdentity; });
  REQUIRE(it != alice.events.end());
  REQUIRE(it->nick == "bob");
  REQUIRE(it->detail == bob.identity.fingerprint().grouped());
}

TEST_CASE("a known key forms the session without a new-identity event", "[engine][trust]") {
  Peer alice{"alice", DeterministicRng(1), make_identity(11), {}, nullptr, {}, {}};
  Peer bob{"bob", DeterministicRng(2), make_identity(12), {}, nullptr, {}, {}};
  REQUIRE(alice.trust.verify("bob@localhost", bob.identity.fingerprint()).ok());
  converse(alice, bob);
  REQUIRE(alice.engine->phase() == Phase::Established);
  REQUIRE_FALSE(has(alice.events, EventKind::NewIdentity));
}

TEST_CASE("a changed key is refused: the refuser stays out until the user decides", "[engine][trust]") {
  Peer alice{"alice", DeterministicRng(1), make_identity(11), {}, nullptr, {}, {}};
  Peer bob{"bob", DeterministicRng(2), make_identity(12), {}, nullptr, {}, {}};
  REQUIRE(alice.trust.record_first_use("bob@localhost", make_identity(99).fingerprint()).ok());
  converse(alice, bob);
  REQUIRE(alice.errors.empty());
  REQUIRE(alice.engine->phase() == Phase::Out);
  auto it = std::find_if(alice.events.begin(), alice.events.end(), [](const Event& e) { return e.kind == EventKind::Refusing; });
  REQUIRE(it != alice.events.end());
  REQUIRE(it->code == ErrorCode::IdentityChanged);
  REQUIRE(it->detail.starts_with(bob.identity.fingerprint().grouped()));
  REQUIRE(alice.engine->refused() == std::vector<std::pair<std::string, ErrorCode>>{{"bob", ErrorCode::IdentityChanged}});
  // bob learns, from alice's signed key share, that alice stays out: alone, he has no session.
  REQUIRE(has(bob.events, EventKind::MemberOut));
  REQUIRE(bob.engine->phase() == Phase::Idle);
  // alice accepts the new key (the host forgets the old one) and restarts: the session forms.
  REQUIRE(alice.trust.untrust("bob@localhost").ok());
  converse(alice, bob);
  REQUIRE(alice.engine->phase() == Phase::Established);
}

TEST_CASE("a blocked JID keeps the one who blocks it out, not the blocked", "[engine][trust]") {
  Peer alice{"alice", DeterministicRng(1), make_identity(11), {}, nullptr, {}, {}};
  Peer bob{"bob", DeterministicRng(2), make_identity(12), {}, nullptr, {}, {}};
  REQUIRE(alice.trust.block("bob@localhost").ok());
  converse(alice, bob);
  REQUIRE(alice.errors.empty());
  REQUIRE(alice.engine->phase() == Phase::Out);
  REQUIRE(alice.engine->refused() == std::vector<std::pair<std::string, ErrorCode>>{{"bob", ErrorCode::IdentityBlocked}});
}
