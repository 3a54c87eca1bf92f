// SPDX-License-Identifier: MIT
// The wire messages of mpOTR v1 (spec/mpotr.md §4). Layouts are given in TLS presentation
// language above each struct; integers are big-endian; points are uncompressed P-256 (65 bytes).
//
// Every message starts with:
//   uint8 version;   /* = 1, anything else is DecodeBadVersion */
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
  Data = 0x10,       // chat message
  Heartbeat = 0x11,  // acknowledgement-only transcript entry
  Shutdown = 0x20,   // shutdown round 1: no more messages from me
  Digest = 0x21,     // shutdown round 2: my final transcript digest
  KeyReveal = 0x22,  // shutdown round 4: my ephemeral signing private key
  End = 0x23,        // shutdown round 3: I hold every member's digest (the paper's "end")
};

inline constexpr std::size_t kSessionTagLen = 8;
using SessionTag = std::array<std::uint8_t, kSessionTagLen>;
using Point = crypto::Point;
using Signature = crypto::Signature;

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
  Hash32 mac{};        // triple-DH MAC binding the sender's ephemeral keys to its identity
  Hash32 secret_ct{};  // sender's group-key contribution, hashed EC El Gamal to the recipient
};

// struct {
//   opaque session_id[32];
//   uint8 sender;              /* index in the roster */
//   opaque elgamal_r[65];      /* R = r·G, one per sender for all recipients */
//   uint8 count;               /* = n − 1 */
//   PairShare shares[count];   /* for every other member, in index order */
//   opaque signature[64];      /* by S over §4.2 signed bytes */
// } KeyShare;
struct KeyShare {
  Hash32 session_id{};
  std::uint8_t sender = 0;
  Point elgamal_r{};
  std::vector<PairShare> shares;
  Signature signature{};
};

// struct {
//   opaque session_id[32];
//   uint8 sender;
//   opaque transcript_hash[32];  /* over all offers and key shares, §5.3 */
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

// Data and Heartbeat share one layout; a Heartbeat has an empty ciphertext.
// struct {
//   opaque session_tag[8];     /* first 8 bytes of the session id */
//   uint8 sender;
//   uint32 seq;                /* 1, 2, … per sender and session */
//   uint8 ack_count;           /* = n − 1 */
//   varint acks[ack_count];    /* per other member in index order: how many of its entries I had */
//   opaque view_digest[32];    /* §6.2: binds those entries' hash chains and my own previous entry */
//   opaque ciphertext<0..2^16-1>;
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
  Signature signature{};
};

// struct { opaque session_tag[8]; uint8 sender; uint32 final_count; opaque signature[64]; } Shutdown;
struct Shutdown {
  SessionTag session_tag{};
  std::uint8_t sender = 0;
  std::uint32_t final_count = 0;
  Signature signature{};
};

// struct { opaque session_tag[8]; uint8 sender; opaque transcript_digest[32]; opaque signature[64]; } Digest;
struct Digest {
  SessionTag session_tag{};
  std::uint8_t sender = 0;
  Hash32 transcript_digest{};
  Signature signature{};
};

// struct { opaque session_tag[8]; uint8 sender; opaque digests_hash[32]; opaque signature[64]; } End;
// digests_hash binds the digests the sender compared (§7). Keys are published only after
// every member's End: by then each member has compared against the genuine digests, so a
// digest forged with a published key comes too late to deceive anyone.
struct End {
  SessionTag session_tag{};
  std::uint8_t sender = 0;
  Hash32 digests_hash{};
  Signature signature{};
};

// struct { opaque session_tag[8]; uint8 sender; opaque signing_private_key[32]; } KeyReveal;
// Not signed: the key proves itself (it must match the registered S).
struct KeyReveal {
  SessionTag session_tag{};
  std::uint8_t sender = 0;
  Hash32 private_key{};
};

using Message = std::variant<Offer, KeyShare, Attest, Data, Shutdown, Digest, End, KeyReveal>;

struct Decoded {
  Message message;
  // Bytes covered by the signature (everything before it); equals the payload size for
  // unsigned messages (Offer, KeyReveal).
  std::size_t signed_len = 0;
};

// Reads version and type only. Errors: DecodeTruncated, DecodeBadVersion, DecodeUnknownType.
Result<MessageType> peek_type(ByteView payload);

// Strict decode of a whole payload. Errors: Decode* with the offending field in the detail.
Result<Decoded> decode(ByteView payload);

// Encoders. For signed messages, encode_signed_part() yields the bytes the signature covers
// and encode() appends the signature held in the struct.
Bytes encode(const Offer& m);
Bytes encode_signed_part(const KeyShare& m);
Bytes encode_signed_part(const Attest& m);
Bytes encode_signed_part(const Data& m);
Bytes encode_signed_part(const Shutdown& m);
Bytes encode_signed_part(const Digest& m);
Bytes encode_signed_part(const End& m);
Bytes encode(const KeyShare& m);
Bytes encode(const Attest& m);
Bytes encode(const Data& m);
Bytes encode(const Shutdown& m);
Bytes encode(const Digest& m);
Bytes encode(const End& m);
Bytes encode(const KeyReveal& m);

std::string_view to_string(MessageType type) noexcept;

}  // namespace mpotr::codec
