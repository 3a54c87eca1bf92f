// SPDX-License-Identifier: MIT
// The wire messages of mpOTR v2 (spec/mpotr.md §4). Layouts are given in TLS presentation
// language above each struct; integers are big-endian; points are uncompressed P-256 (65 bytes).
//
// Every message starts with:
//   uint8 version;   /* = 2, anything else is DecodeBadVersion */
//   uint8 type;      /* MessageType, anything else is DecodeUnknownType */
// Decoding is structural and strict (bounded fields, no trailing bytes); cryptographic checks
// (point validity, MACs, signatures) are the engine's, over the exact received bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "mpotr/bytes.h"
#include "mpotr/crypto/crypto.h"
#include "mpotr/limits.h"
#include "mpotr/result.h"

namespace mpotr::codec {

enum class MessageType : std::uint8_t {
  Offer = 0x01,      // setup round 1
  KeyShare = 0x02,   // setup round 2
  Attest = 0x03,     // setup round 3
  Accuse = 0x04,     // setup: proof that a member sent us a bad MAC or an inconsistent secret
  Data = 0x10,       // chat message
  Heartbeat = 0x11,  // acknowledgement-only transcript entry
  Shutdown = 0x20,   // shutdown round 1: no more messages from me
  Digest = 0x21,     // shutdown round 2: my final transcript digest
  KeyReveal = 0x22,  // shutdown round 4: my ephemeral signing private key
  End = 0x23,        // shutdown round 3: I hold every member's digest (the paper's "end")
  Quit = 0x24,       // I leave this session without finishing it and accept nothing more in it
};

inline constexpr std::size_t kSessionTagLen = 8;
inline constexpr std::size_t kMacLen = 32;
inline constexpr std::size_t kMemberSetLen = kMaxMembers / 8;
using SessionTag = std::array<std::uint8_t, kSessionTagLen>;
using Point = crypto::Point;
using Signature = crypto::Signature;
using Mac = std::array<std::uint8_t, kMacLen>;

// A set of member indices as a 128-bit map: index i is bit (i mod 8) of byte ⌊i/8⌋.
struct MemberSet {
  std::array<std::uint8_t, kMemberSetLen> bits{};
  bool test(std::size_t i) const noexcept { return i < kMaxMembers && (bits[i / 8] >> (i % 8) & 1) != 0; }
  void set(std::size_t i) noexcept {
    if (i < kMaxMembers) bits[i / 8] = static_cast<std::uint8_t>(bits[i / 8] | (1u << (i % 8)));
  }
  bool empty() const noexcept;
  // The highest index set plus one (0 when empty): every index must be below the roster size.
  std::size_t bound() const noexcept;
  friend bool operator==(const MemberSet&, const MemberSet&) = default;
};

// struct {
//   opaque roster_digest[32];  /* SHA-256 over the roster the sender sees (§5.1) */
//   uint32 attempt;            /* attempt number for that roster: members converge on the highest */
//   opaque nick<1..64>;        /* u8 length */
//   opaque nonce[32];
//   opaque identity_key[65];   /* long-term key A */
//   opaque dh_key[65];         /* ephemeral Diffie-Hellman key E */
//   opaque signing_key[65];    /* ephemeral ECDSA key S */
// } Offer;
struct Offer {
  Hash32 roster_digest{};
  std::uint32_t attempt = 0;
  std::string nick;
  Hash32 nonce{};
  Point identity_key{};
  Point dh_key{};
  Point signing_key{};
};

// struct { opaque mac[32]; opaque secret_ct[32]; } PairShare;
struct PairShare {
  Hash32 mac{};        // DAKE MAC binding the sender's ephemeral keys to its identity
  Hash32 secret_ct{};  // sender's group-key contribution, hashed EC El Gamal to the recipient
};

// struct {
//   opaque session_id[32];
//   uint8 sender;              /* index in the roster */
//   opaque elgamal_r[65];      /* R = r·G, one per sender for all recipients */
//   opaque commit[32];         /* H("mpotr-v2 commit" ‖ sid ‖ u8 sender ‖ x_sender) */
//   opaque refused[16];        /* MemberSet: members the sender does not accept */
//   uint8 count;               /* = n − 1 */
//   PairShare shares[count];   /* for every other member, in index order */
//   opaque signature[64];      /* by S over the signed part (§4.11) */
// } KeyShare;
struct KeyShare {
  Hash32 session_id{};
  std::uint8_t sender = 0;
  Point elgamal_r{};
  Hash32 commit{};
  MemberSet refused;
  std::vector<PairShare> shares;
  Signature signature{};
};

// struct {
//   opaque session_id[32];
//   uint8 sender;
//   opaque transcript_hash[32];  /* over all offers and key shares, §5.7 */
//   opaque key_confirm[32];      /* HMAC under the group confirmation key */
//   opaque signature[64];
// } Attest;
struct Attest {
  Hash32 session_id{};
  std::uint8_t sender = 0;
  Hash32 transcript_hash{};
  Hash32 key_confirm{};
  Signature signature{};
};

// struct {
//   opaque session_id[32];
//   uint8 sender;              /* the accuser */
//   uint8 accused;
//   opaque dh_private[32];     /* the accuser's ephemeral DH scalar e of this (failed) attempt */
//   opaque key_share<1..2^16-1>; /* the accused's key share as the accuser received it, whole */
//   opaque signature[64];
// } Accuse;
// Revealing e lets everyone recompute the accused's MAC and El Gamal pad for the accuser and
// check them against the accused's signed key share: either the accused cheated or the accuser.
struct Accuse {
  Hash32 session_id{};
  std::uint8_t sender = 0;
  std::uint8_t accused = 0;
  Hash32 dh_private{};
  Bytes key_share;
  Signature signature{};
};

// Data and Heartbeat share one layout; a Heartbeat has an empty ciphertext.
// struct {
//   opaque session_tag[8];     /* first 8 bytes of the session id */
//   uint8 sender;
//   uint32 seq;                /* 1 … 2^20 per sender and session */
//   uint8 ack_count;           /* = n − 1 */
//   varint acks[ack_count];    /* per other member in index order: how many of its entries I had (≤ 2^20) */
//   opaque view_digest[32];    /* §5.12: binds those entries' hash chains and my own previous entry */
//   opaque ciphertext<0..2^16-1>;
//   opaque mac[32];            /* HMAC under the session's group authentication key (§5.16) */
//   opaque signature[64];
// } Data;
struct Data {
  MessageType type = MessageType::Data;
  SessionTag session_tag{};
  std::uint8_t sender = 0;
  std::uint32_t seq = 0;
  std::vector<std::uint32_t> acks;
  Hash32 view_digest{};
  Bytes ciphertext;
  Mac mac{};
  Signature signature{};
};

// struct { opaque session_tag[8]; uint8 sender; uint32 final_count; opaque mac[32]; opaque signature[64]; } Shutdown;
struct Shutdown {
  SessionTag session_tag{};
  std::uint8_t sender = 0;
  std::uint32_t final_count = 0;
  Mac mac{};
  Signature signature{};
};

// struct { opaque session_tag[8]; uint8 sender; opaque transcript_digest[32]; opaque mac[32]; opaque signature[64]; } Digest;
struct Digest {
  SessionTag session_tag{};
  std::uint8_t sender = 0;
  Hash32 transcript_digest{};
  Mac mac{};
  Signature signature{};
};

// struct {
//   opaque session_tag[8]; uint8 sender;
//   opaque present[16];        /* MemberSet: members whose digest the sender compared */
//   opaque digests_hash[32];   /* §5.14 */
//   opaque mac[32]; opaque signature[64];
// } End;
// After its End a member accepts no more entries or digests: only then may others publish.
struct End {
  SessionTag session_tag{};
  std::uint8_t sender = 0;
  MemberSet present;
  Hash32 digests_hash{};
  Mac mac{};
  Signature signature{};
};

// struct { opaque session_tag[8]; uint8 sender; opaque signing_private_key[32]; } KeyReveal;
// Not signed: the key proves itself (it must match the registered S).
struct KeyReveal {
  SessionTag session_tag{};
  std::uint8_t sender = 0;
  Hash32 private_key{};
};

// struct { opaque session_tag[8]; uint8 sender; uint32 final_count; opaque mac[32]; opaque signature[64]; } Quit;
// The sender leaves the session without finishing the shutdown: it wrote final_count entries
// and accepts nothing more in this session, so the others may publish their keys.
struct Quit {
  SessionTag session_tag{};
  std::uint8_t sender = 0;
  std::uint32_t final_count = 0;
  Mac mac{};
  Signature signature{};
};

using Message = std::variant<Offer, KeyShare, Attest, Accuse, Data, Shutdown, Digest, End, KeyReveal, Quit>;

struct Decoded {
  Message message;
  // Bytes covered by the signature (everything before it); equals the payload size for
  // unsigned messages (Offer, KeyReveal).
  std::size_t signed_len = 0;
  // Bytes covered by the group MAC (everything before it); 0 for messages without one.
  std::size_t mac_len = 0;
};

// Reads version and type only. Errors: DecodeTruncated, DecodeBadVersion, DecodeUnknownType.
Result<MessageType> peek_type(ByteView payload);

// Strict decode of a whole payload. Errors: Decode* with the offending field in the detail.
Result<Decoded> decode(ByteView payload);

// Encoders. encode_mac_part() yields the bytes the group MAC covers (messages with a MAC),
// encode_signed_part() the bytes the signature covers (the MAC part and the MAC held in the
// struct), and encode() appends the signature held in the struct.
Bytes encode(const Offer& m);
Bytes encode_mac_part(const Data& m);
Bytes encode_mac_part(const Shutdown& m);
Bytes encode_mac_part(const Digest& m);
Bytes encode_mac_part(const End& m);
Bytes encode_mac_part(const Quit& m);
Bytes encode_signed_part(const KeyShare& m);
Bytes encode_signed_part(const Attest& m);
Bytes encode_signed_part(const Accuse& m);
Bytes encode_signed_part(const Data& m);
Bytes encode_signed_part(const Shutdown& m);
Bytes encode_signed_part(const Digest& m);
Bytes encode_signed_part(const End& m);
Bytes encode_signed_part(const Quit& m);
Bytes encode(const KeyShare& m);
Bytes encode(const Attest& m);
Bytes encode(const Accuse& m);
Bytes encode(const Data& m);
Bytes encode(const Shutdown& m);
Bytes encode(const Digest& m);
Bytes encode(const End& m);
Bytes encode(const KeyReveal& m);
Bytes encode(const Quit& m);

std::string_view to_string(MessageType type) noexcept;

}  // namespace mpotr::codec
