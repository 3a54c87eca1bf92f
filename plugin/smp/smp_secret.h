// SPDX-License-Identifier: MIT
// The SMP secret that binds a user's shared secret to both members' mpOTR long-term keys as
// seen in the room (spec/verification.md, V-3). Pure: no I/O, no libotr.
#pragma once

#include <cstddef>
#include <string_view>

#include "mpotr/bytes.h"
#include "mpotr/identity.h"
#include "mpotr/result.h"

namespace mpotr::plugin {

inline constexpr std::string_view kSmpSecretLabel = "mpOTR-LTK-SMP/v1";
inline constexpr std::size_t kBoundSmpSecretLen = 32;
// Bytes of the user's secret after trimming. Long enough for any passphrase, short enough to
// refuse a pasted file.
inline constexpr std::size_t kMaxSmpSecretLen = 1024;
// RFC 7622: localpart, domainpart and resourcepart are at most 1023 octets each.
inline constexpr std::size_t kMaxJidLen = 3 * 1023 + 2;

// The user's secret with leading and trailing ASCII whitespace (space, \t, \n, \v, \f, \r)
// removed. Nothing else is normalized: no Unicode NFC/NFKC, no case folding, inner whitespace
// kept. Both users must therefore type the same bytes (the plugin reads UTF-8 from the same
// kind of client on both sides).
std::string_view normalize_smp_secret(std::string_view user_secret) noexcept;

// S = SHA-256( "mpOTR-LTK-SMP/v1" || u32be(len j1) || j1 || f1 || u32be(len j2) || j2 || f2
//              || SHA-256(normalize(user_secret)) )
// where (j1, f1), (j2, f2) are (my_bare_jid, my_fp) and (peer_bare_jid, peer_fp_seen) sorted by
// JID bytes (unsigned, lexicographic), so both sides compute the same S whoever initiates.
// JIDs are used as given: the caller lowercases/normalizes them.
// Errors (InvalidArgument): a JID empty, longer than kMaxJidLen, or both equal; the normalized
// secret empty or longer than kMaxSmpSecretLen.
Result<SecretBytes> bound_smp_secret(std::string_view my_bare_jid, const Fingerprint& my_fp,
                                     std::string_view peer_bare_jid, const Fingerprint& peer_fp_seen,
                                     std::string_view user_secret);

}  // namespace mpotr::plugin
