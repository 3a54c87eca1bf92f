// SPDX-License-Identifier: MIT
// After shutdown every member's signing key is public: anyone can then write entries that a
// third party cannot tell from genuine ones, while the members themselves reject them.
#include <catch2/catch.hpp>

#include "mpotr/codec/messages.h"
#include "mpotr/engine/forgery.h"
#include "support/room.h"

using namespace mpotr;
using mpotr::test::Room;

TEST_CASE("published keys make the transcript forgeable, and members reject the forgeries", "[engine][deniability]") {
  Room room(3);
  room.run();
  room.send_text("bob", "something bob may later want to deny");
  room.run();
  const Hash32 sid = room.by_nick("alice").engine->session()->session_id;
  const Bytes genuine = room.log().back().payload;
  auto& bob = room.by_nick("bob");
  room.absorb(bob, bob.engine->leave(room.now(), *bob.rng));
  room.run();

  auto published = room.events_of(room.by_nick("alice"), EventKind::PeerKeyPublished);
  auto it = std::find_if(published.begin(), published.end(), [](const Event& e) { return e.nick == "bob"; });
  REQUIRE(it != published.end());
  REQUIRE(it->session_id == sid);
  auto key = crypto::PrivateKey::from_scalar(view(it->data));
  REQUIRE(key.ok());

  DeterministicRng rng(99);
  const Bytes other = {'f', 'o', 'r', 'g', 'e', 'd'};
  auto forged = forgery::forge_entry(sid, view(genuine), view(other), view(it->data), 2, rng);
  REQUIRE(forged.ok());
  // The judge's view: both verify under bob's session key.
  REQUIRE(*forgery::entry_signature_valid(sid, key->public_key(), view(genuine)));
  REQUIRE(*forgery::entry_signature_valid(sid, key->public_key(), view(*forged)));
  REQUIRE(*forged != genuine);

  // The members' view: the forger lacks the group key, the session is closed and bob's key
  // revoked; the forgery changes nothing.
  auto& alice = room.by_nick("alice");
  const auto before = alice.engine->summary();
  auto r = alice.engine->receive("bob", view(*forged), room.now(), *alice.rng);
  REQUIRE_FALSE(r.ok());
  REQUIRE((r.error().code == ErrorCode::Replay || r.error().code == ErrorCode::KeyRevoked ||
           r.error().code == ErrorCode::BadMac));
  REQUIRE(alice.engine->summary() == before);
}
