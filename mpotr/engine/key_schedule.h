// SPDX-License-Identifier: MIT
// Every derivation of mpOTR v1 (spec/mpotr.md §3), as pure functions. Each has a distinct
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

inline constexpr std::string_view kLabelRoster = "mpotr-v1 roster";
inline constexpr std::string_view kLabelSessionId = "mpotr-v1 session id";
inline constexpr std::string_view kLabelPairwise = "mpotr-v1 pairwise";
inline constexpr std::string_view kLabelDake = "mpotr-v1 dake";
inline constexpr std::string_view kLabelElGamal = "mpotr-v1 elgamal";
inline constexpr std::string_view kLabelGroupSecret = "mpotr-v1 group secret";
inline constexpr std::string_view kLabelConfirm = "mpotr-v1 confirm";
inline constexpr std::string_view kLabelKeyConfirm = "mpotr-v1 key confirm";
inline constexpr std::string_view kLabelSender = "mpotr-v1 sender";
inline constexpr std::string_view kLabelSetupTranscript = "mpotr-v1 setup transcript";
inline constexpr std::string_view kLabelSigned = "mpotr-v1 signed";
inline constexpr std::string_view kLabelChain = "mpotr-v1 chain";
inline constexpr std::string_view kLabelView = "mpotr-v1 view";
inline constexpr std::string_view kLabelTranscript = "mpotr-v1 transcript";
inline constexpr std::string_view kLabelEnd = "mpotr-v1 end";

// SHA-256(label ‖ vec8(room) ‖ u8 n ‖ vec8(nick_0) ‖ … ) over nicks in canonical order.
Hash32 roster_digest(std::string_view room, const std::vector<std::string>& sorted_nicks);

// SHA-256(label ‖ vec8(room) ‖ u32 attempt ‖ u8 n ‖ for each member: vec8(nick) ‖ nonce ‖ A ‖ E ‖ S).
// Every offer of one attempt carries the same attempt number (Attempt::on_offer enforces it),
// so the first offer's number is the attempt's.
Hash32 session_id(std::string_view room, const std::vector<codec::Offer>& offers_in_order);

codec::SessionTag session_tag(const Hash32& sid);

// Triple-DH between members low < high. The three shared secrets are, in this order,
// DH(A_low, E_high), DH(E_low, A_high), DH(E_low, E_high).
struct PairwiseKeys {
  SecretBytes mac_low_to_high;  // 32 bytes
  SecretBytes mac_high_to_low;  // 32 bytes
};
Result<PairwiseKeys> pairwise_keys(const Hash32& sid, std::uint8_t low, std::uint8_t high,
                                   const SecretBytes& dh_a_low_e_high, const SecretBytes& dh_e_low_a_high,
                                   const SecretBytes& dh_e_low_e_high);

// The 3 DH values computed by member `self` with peer `peer` (either order).
Result<PairwiseKeys> pairwise_keys_for(const Hash32& sid, std::uint8_t self, std::uint8_t peer,
                                       const crypto::PrivateKey& identity, const crypto::PrivateKey& dh,
                                       const crypto::PublicKey& peer_identity, const crypto::PublicKey& peer_dh);

// HMAC(mac_key, label ‖ sid ‖ u8 from ‖ u8 to ‖ S_from ‖ E_from ‖ R_from).
Hash32 dake_mac(const SecretBytes& mac_key, const Hash32& sid, std::uint8_t from, std::uint8_t to,
                const crypto::Point& signing_key, const crypto::Point& dh_key, const crypto::Point& elgamal_r);

// Hashed EC El Gamal pad: HKDF(salt = sid, ikm = DH(r, E_to), info = label ‖ u8 from ‖ u8 to ‖ R ‖ E_to).
Result<SecretBytes> elgamal_pad(const Hash32& sid, std::uint8_t from, std::uint8_t to, const SecretBytes& shared,
                                const crypto::Point& elgamal_r, const crypto::Point& recipient_dh);

// SHA-256(label ‖ sid ‖ x_0 ‖ … ‖ x_{n−1}), secrets in roster order.
SecretBytes group_secret(const Hash32& sid, const std::vector<SecretBytes>& secrets_in_order);

// SHA-256(label ‖ for each member: u32 len ‖ offer ‖ for each member: u32 len ‖ key share's
// signed part). Signed parts, not whole key shares: ECDSA signatures are malleable, and the
// transcript must not depend on which of two valid signatures the server delivered.
Hash32 setup_transcript_hash(const std::vector<Bytes>& offers_in_order,
                             const std::vector<Bytes>& key_share_signed_parts_in_order);

// HMAC(HKDF-Expand(group secret, "mpotr-v1 confirm", 32), label ‖ transcript hash).
Result<Hash32> key_confirm(const SecretBytes& group_secret, const Hash32& transcript_hash);

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

// SHA-256(label ‖ for each member m: u32 count_m ‖ c_{m,count_m}).
Hash32 view_digest(const std::vector<std::uint32_t>& counts, const std::vector<Hash32>& chains);
// The same over final counts, with its own label: what Digest messages carry.
Hash32 transcript_digest(const std::vector<std::uint32_t>& counts, const std::vector<Hash32>& chains);

// What an End binds: SHA-256(label ‖ for each member: u8 present ‖ digest), present = 0 and a
// zero digest for members excused from the shutdown (they left without a Digest).
Hash32 end_digest(const std::vector<std::optional<Hash32>>& digests_in_order);

}  // namespace mpotr::ks
