// SPDX-License-Identifier: MIT
// OTP-v1 packets (spec/otp.md): a one-time pad for confidentiality and a one-time Poly1305 MAC
// keyed by fresh pad bytes for integrity, so both hold unconditionally. Pure: no I/O, no state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mpotr/bytes.h"
#include "mpotr/result.h"

namespace mpotr::otp {

constexpr std::size_t kPadIdSize = 16;
using PadId = std::array<std::uint8_t, kPadIdSize>;

// Outer header: magic | version | flags | pad_id[16] | offset u64 | clen u32 (big-endian).
constexpr std::uint8_t kPacketMagic = 0x4F;  // 'O'
constexpr std::uint8_t kPacketVersion = 0x01;
constexpr std::size_t kHeaderSize = 31;
constexpr std::size_t kMacKeySize = 32;  // Poly1305 one-time key: the first 32 bytes of the region
constexpr std::size_t kTagSize = 16;
constexpr std::size_t kPacketOverhead = kHeaderSize + kTagSize;  // wire bytes beyond clen

// Named limits (every growing input is bounded).
constexpr std::size_t kMaxBody = 65536;            // message bytes per packet
constexpr std::size_t kMaxRecipients = 64;         // group recipient set
constexpr std::size_t kMaxRecipientLen = 255;      // one recipient id (bare JID), bytes
constexpr std::size_t kGroupMsgIdSize = 16;
// Largest inner plaintext: chat/group fields with kMaxBody and a full recipient set.
constexpr std::size_t kInnerFixedSize = 1 + 8 + 4;  // type | seq | blen
constexpr std::size_t kMaxInner =
    kInnerFixedSize + kGroupMsgIdSize + 1 + kMaxRecipients * (1 + kMaxRecipientLen) + kMaxBody;
constexpr std::size_t kMaxClen = kMaxInner;
constexpr std::size_t kMaxPacket = kPacketOverhead + kMaxClen;
// Smallest region any packet uses (MAC key + empty chat plaintext): bounds messages per byte.
constexpr std::size_t kMinPadCost = kMacKeySize + kInnerFixedSize;

// Which half of the pad a party sends from: A (smaller id) upward from 0, B downward from the end.
enum class Role : std::uint8_t { A = 0, B = 1 };
inline Role other(Role r) noexcept { return r == Role::A ? Role::B : Role::A; }

// Inner (encrypted and authenticated) message type. Unknown values are rejected.
enum class MessageType : std::uint8_t {
  Chat = 1,         // one-to-one message
  Group = 2,        // one pairwise copy of a group message (carries GroupContext)
  Attestation = 3,  // control: key attestation / other device-to-device control payloads
  Decoy = 4,        // padding traffic, to be dropped by the receiver after verification
};

// Present exactly when type == Group: lets recipients link the N pairwise copies of one group
// message and check that everybody was sent the same recipient set.
struct GroupContext {
  std::array<std::uint8_t, kGroupMsgIdSize> group_msg_id{};  // random, not from the pad
  std::vector<std::string> recipients;                        // 1..kMaxRecipients ids, each 1..255 bytes
  friend bool operator==(const GroupContext&, const GroupContext&) = default;
};

struct Plaintext {
  MessageType type = MessageType::Chat;
  std::uint64_t seq = 0;  // per-direction sender counter (strictly increasing, may skip)
  std::optional<GroupContext> group;
  Bytes body;  // at most kMaxBody
};

// Inner layout: type u8 | seq u64 | [group: group_msg_id[16] | n u8 | n × (len u8 | id)] |
// blen u32 | body. Errors: InvalidArgument (encode of an out-of-range value), Decode* (decode).
Result<Bytes> encode_inner(const Plaintext& p);
Result<Plaintext> decode_inner(ByteView inner);

// Pad bytes a message consumes: kMacKeySize + |inner| = 32 + 13 + |body| for Chat, plus
// 16 + 1 + Σ(1 + |recipient|) for Group. Error when the plaintext is out of range.
Result<std::size_t> pad_cost(const Plaintext& p);

struct PacketHeader {
  Role sender = Role::A;
  PadId pad_id{};
  std::uint64_t offset = 0;  // absolute start of the region in the pad
  std::uint32_t clen = 0;    // ciphertext length, 1..kMaxClen; region length = kMacKeySize + clen
  std::uint64_t region_len() const noexcept { return kMacKeySize + clen; }
  friend bool operator==(const PacketHeader&, const PacketHeader&) = default;
};

// A packet split into its fields by the strict outer parser (no MAC checked yet).
struct ParsedPacket {
  PacketHeader header;
  Bytes header_bytes;  // the kHeaderSize bytes the MAC covers
  Bytes ciphertext;
  std::array<std::uint8_t, kTagSize> tag{};
};

// Builds header || (inner XOR region[32..]) || Poly1305(region[0..32], header || ciphertext).
// region must be exactly kMacKeySize + inner.size() bytes (header.clen must equal inner.size()).
// Errors: InvalidArgument.
Result<Bytes> seal_packet(const PacketHeader& header, const SecretBytes& region, ByteView inner);

// Strict outer decoding: DecodeTruncated, DecodeTrailingBytes, DecodeBadVersion (magic or
// version), DecodeBadValue (reserved flag bits, clen 0, offset + region overflow), DecodeOversize
// (clen > kMaxClen).
Result<ParsedPacket> parse_packet(ByteView packet);

// Verifies the tag in constant time with region[0..32) (BadMac on failure), then decrypts.
// region must be exactly header.region_len() bytes (InvalidArgument otherwise).
Result<Bytes> open_packet(const ParsedPacket& packet, const SecretBytes& region);

std::string pad_id_hex(const PadId& id);
Result<PadId> pad_id_from_hex(std::string_view hex);

}  // namespace mpotr::otp
