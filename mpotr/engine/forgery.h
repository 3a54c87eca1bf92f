// SPDX-License-Identifier: MIT
// Deniability, demonstrated (spec/mpotr.md §8): once a member's ephemeral signing key is
// published, anyone can produce transcript entries that verify exactly like the real ones,
// so a transcript proves nothing about who wrote what. These functions need only public data.
#pragma once

#include "mpotr/bytes.h"
#include "mpotr/crypto/crypto.h"
#include "mpotr/result.h"
#include "mpotr/rng.h"

namespace mpotr::forgery {

// What a third party ("judge") can check: does this chat entry carry a valid signature by
// `signer` for session `session_id`? Errors: Decode* if the payload is not a chat entry.
Result<bool> entry_signature_valid(const Hash32& session_id, const crypto::PublicKey& signer, ByteView payload);

// Takes a genuine chat entry as a template, replaces its ciphertext (and optionally its
// sequence number) and signs it with a published signing key. The result verifies under the
// published key's public half exactly as the genuine entries do. Its group MAC is left as in
// the template: only members hold the key to make one, and a judge holds none to check it, so
// the MAC neither proves nor disproves anything outside the session (spec §5.16).
// Errors: Decode* (template), DecodeBadValue (scalar), InvalidArgument (ciphertext size).
Result<Bytes> forge_entry(const Hash32& session_id, ByteView template_payload, ByteView new_ciphertext,
                          ByteView published_scalar, std::uint32_t seq, Rng& rng);

}  // namespace mpotr::forgery
