// SPDX-License-Identifier: MIT
// What the per-attempt and per-session state machines need from the engine around them.
#pragma once

#include <string>
#include <vector>

#include "mpotr/codec/messages.h"
#include "mpotr/crypto/crypto.h"
#include "mpotr/engine.h"
#include "mpotr/engine/key_schedule.h"

namespace mpotr::detail {

struct Context {
  const EngineConfig& config;
  const IdentityKey& identity;
  const TrustStore* trust;
};

// Index of nick in a roster sorted by nick bytes, or -1.
int index_of(const std::vector<Member>& roster, std::string_view nick);

// The member index a message claims, checked against the roster and the transport's sender.
// Errors: NotAMember (index outside the roster), NickMismatch (someone else's index).
Result<std::uint8_t> check_sender(const std::vector<Member>& roster, std::string_view from_nick, std::uint8_t claimed);

// Signs a message as spec §4.10 says (over H(label ‖ sid ‖ signed part)), stores the signature
// in it and returns the signed part, which identifies the message.
template <class M>
Result<Bytes> sign_message(M& msg, const Hash32& sid, const crypto::PrivateKey& key, Rng& rng,
                           Hash32* digest_out = nullptr) {
  Bytes signed_part = codec::encode_signed_part(msg);
  const Hash32 digest = ks::signed_digest(sid, view(signed_part));  // also the message's id (§5.11)
  MPOTR_TRY(msg.signature, key.sign_digest(digest, rng));
  if (digest_out != nullptr) {
    *digest_out = digest;
  }
  return signed_part;
}

Event make_event(EventKind kind, std::string nick = {});
Event rejected_event(const Error& error, std::string_view nick);
// Signed messages are compared by their signed part (ECDSA signatures are malleable).
bool same_bytes(ByteView a, ByteView b);
// A second signed message in a slot that holds one: a harmless Duplicate when its signed part is
// identical, proof of Equivocation otherwise (callers check the signature first, so "otherwise"
// really is the sender's doing).
Error repeated(ByteView stored_signed, ByteView signed_part, std::string_view what);

}  // namespace mpotr::detail
