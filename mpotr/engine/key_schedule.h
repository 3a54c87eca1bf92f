// SPDX-License-Identifier: MIT
// Every derivation of mpOTR v2 (spec/mpotr.md §5), as pure functions. Each has a distinct
// domain-separation label; all lengths are fixed or length-prefixed so inputs cannot be
// re-parsed as other inputs. spec/vectors/key_schedule.json pins their outputs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mpotr/bytes.h"
#include "mpotr/codec/messages.h"
#include "mpotr/crypto/crypto.h"
#include "mpotr/result.h"

namespace mpotr::ks {

inline constexpr std::string_view kLabelRoster = "mpotr-v2 roster";
inline constexpr std::string_view kLabelSessionId = "mpotr-v2 session id";
inline constexpr std::string_view kLabelDake = "mpotr-v2 dake";
inline constexpr std::string_view kLabelElGamal = "mpotr-v2 elgamal";
inline constexpr std::string_view kLabelGroupSecret = "mpotr-v2 group secret";
inline constexpr std::string_view kLabelConfirm = "mpotr-v2 confirm";
inline constexpr std::string_view kLabelKeyConfirm = "mpotr-v2 key confirm";
inline constexpr std::string_view kLabelSender = "mpotr-v2 sender";
inline constexpr std::string_view kLabelSetupTranscript = "mpotr-v2 setup transcript";
inline constexpr std::string_view kLabelSigned = "mpotr-v2 signed";
inline constexpr std::string_view kLabelChain = "mpotr-v2 chain";
inline constexpr std::string_view kLabelView = "mpotr-v2 view";
inline constexpr std::string_view kLabelTranscript = "mpotr-v2 transcript";
inline constexpr std::string_view kLabelEnd = "mpotr-v2 end";
inline constexpr std::string_view kLabelDakeKey = "mpotr-v2 pairwise";
inline constexpr std::string_view kLabelCommit = "mpotr-v2 commit";
inline constexpr std::string_view kLabelAuth = "mpotr-v2 auth";
inline constexpr std::string_view kLabelLost = "mpotr-v2 lost";

// SHA-256(label ‖ vec8(room) ‖ u8 n ‖ vec8(nick_0) ‖ … ) over nicks in canonical order.
Hash32 roster_digest(std::string_view room, const std::vector<std::string>& sorted_nicks);

// SHA-256(label ‖ vec8(room) ‖ u32 attempt ‖ u8 n ‖ for each member: vec8(nick) ‖ nonce ‖ A ‖ E ‖ S).
// Every offer of one attempt carries the same attempt number (Attempt::on_offer enforces it),
// so the first offer's number is the attempt's.
Hash32 session_id(std::string_view room, const std::vector<codec::Offer>& offers_in_order);

codec::SessionTag session_tag(const Hash32& sid);

// The DAKE key with which member `from` authenticates its ephemeral keys to member `to`:
// HKDF(salt = sid, IKM = DH(A_from, E_to) ‖ DH(E_from, E_to), info = label ‖ u8 from ‖ u8 to, 32).
// `from` computes it with a_from and e_from, `to` with e_to alone: impersonating `from` needs a_from
// or e_to, `to` can compute it itself (deniability), and revealing e_to lets anyone check it
// (accusations, §7.4).
Result<SecretBytes> dake_key(const Hash32& sid, std::uint8_t from, std::uint8_t to, const SecretBytes& dh_a_from_e_to,
                             const SecretBytes& dh_e_from_e_to);
// As the sender computes it: DH(a_from, E_to), DH(e_from, E_to).
Result<SecretBytes> dake_key_to(const Hash32& sid, std::uint8_t from, std::uint8_t to, const crypto::PrivateKey& identity,
                                const crypto::PrivateKey& dh, const crypto::PublicKey& to_dh);
// As the receiver (or anyone who learnt e_to) computes it: DH(e_to, A_from), DH(e_to, E_from).
Result<SecretBytes> dake_key_from(const Hash32& sid, std::uint8_t from, std::uint8_t to, const crypto::PrivateKey& to_dh,
                                  const crypto::PublicKey& from_identity, const crypto::PublicKey& from_dh);
// Both keys between us (`self`) and a peer, as send_key_share needs them: K_{self→peer} and
// K_{peer→self}. DH(e_self, E_peer) is in both, so it is computed once: 3 ECDH, not 4.
struct DakeKeys {
  SecretBytes to_peer;
  SecretBytes from_peer;
};
Result<DakeKeys> dake_keys(const Hash32& sid, std::uint8_t self, std::uint8_t peer, const crypto::PrivateKey& identity,
                           const crypto::PrivateKey& dh, const crypto::PublicKey& peer_identity,
                           const crypto::PublicKey& peer_dh);

// HMAC(mac_key, label ‖ sid ‖ u8 from ‖ u8 to ‖ S_from ‖ E_from ‖ R_from).
Hash32 dake_mac(const SecretBytes& mac_key, const Hash32& sid, std::uint8_t from, std::uint8_t to,
                const crypto::Point& signing_key, const crypto::Point& dh_key, const crypto::Point& elgamal_r);

// Hashed EC El Gamal pad: HKDF(salt = sid, ikm = DH(r, E_to), info = label ‖ u8 from ‖ u8 to ‖ R ‖ E_to).
Result<SecretBytes> elgamal_pad(const Hash32& sid, std::uint8_t from, std::uint8_t to, const SecretBytes& shared,
                                const crypto::Point& elgamal_r, const crypto::Point& recipient_dh);

// Commitment to a group-key contribution, in the sender's signed key share:
// SHA-256(label ‖ sid ‖ u8 sender ‖ x). Every recipient checks the x it decrypts against it, so all
// members that accept a key share hold the same x (or one of them can prove otherwise, §7.4).
Hash32 commit(const Hash32& sid, std::uint8_t sender, const SecretBytes& secret);

// SHA-256(label ‖ sid ‖ x_0 ‖ … ‖ x_{n−1}), secrets in roster order.
SecretBytes group_secret(const Hash32& sid, const std::vector<SecretBytes>& secrets_in_order);

// SHA-256(label ‖ for each member: u32 len ‖ offer ‖ for each member: u32 len ‖ key share's
// signed part). Signed parts, not whole key shares: ECDSA signatures are malleable, and the
// transcript must not depend on which of two valid signatures the server delivered.
Hash32 setup_transcript_hash(const std::vector<Bytes>& offers_in_order,
                             const std::vector<Bytes>& key_share_signed_parts_in_order);

// HMAC(HKDF-Expand(group secret, "mpotr-v2 confirm", 32), label ‖ transcript hash).
Result<Hash32> key_confirm(const SecretBytes& group_secret, const Hash32& transcript_hash);

// The session's group authentication key: HKDF-Expand(group secret, label, 32). Every entry and
// shutdown message carries HMAC(K_auth, its bytes before the MAC): only members can make one, so a
// published signing key never lets an outsider forge into a live session.
Result<SecretBytes> auth_key(const SecretBytes& group_secret);
Hash32 message_mac(const SecretBytes& auth_key, ByteView mac_part);

// Per-sender AES-128 key and 8-byte IV prefix: HKDF-Expand(group secret, label ‖ u8 sender, 24).
struct SenderKey {
  SecretBytes key;        // 16 bytes
  std::array<std::uint8_t, 8> iv_prefix{};
};
Result<SenderKey> sender_key(const SecretBytes& group_secret, std::uint8_t sender);
// Counter block of message `seq`: iv_prefix ‖ u32 seq ‖ u32 0 — unique per (sender, seq).
crypto::AesIv message_iv(const SenderKey& key, std::uint32_t seq);

// What every signature covers: SHA-256(label ‖ sid ‖ signed part of the message). For chat
// messages this digest is also the message id used in hash chains.
Hash32 signed_digest(const Hash32& sid, ByteView signed_part);

// Hash chain per sender: c_0 = SHA-256(label ‖ sid ‖ u8 sender); c_s = SHA-256(c_{s−1} ‖ id_s).
Hash32 chain_start(const Hash32& sid, std::uint8_t sender);
Hash32 chain_next(const Hash32& previous, const Hash32& message_id);
// The step of the transcript chain (§5.13) over a maximal run of missing entries first..last:
// SHA-256(previous ‖ label ‖ u32 first ‖ u32 last). Its input length (53 bytes) differs from an
// entry step's (64), so no run reads as an entry.
Hash32 chain_lost(const Hash32& previous, std::uint32_t first, std::uint32_t last);

// SHA-256(label ‖ for each member m: u32 count_m ‖ c_{m,count_m}).
Hash32 view_digest(const std::vector<std::uint32_t>& counts, const std::vector<Hash32>& chains);
// The same over final counts, with its own label: what Digest messages carry.
Hash32 transcript_digest(const std::vector<std::uint32_t>& counts, const std::vector<Hash32>& chains);

// What an End binds: SHA-256(label ‖ for each member: u8 present ‖ digest), present = 0 and a
// zero digest for members whose Digest the sender does not hold (excused at the deadline).
Hash32 end_digest(const std::vector<std::optional<Hash32>>& digests_in_order);

}  // namespace mpotr::ks
