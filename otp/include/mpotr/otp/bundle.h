// SPDX-License-Identifier: MIT
// The OTP bundle (spec/otp.md §10): one group message in OTP mode, as the text of an mpOTR chat
// message. It holds one pairwise OTP-v1 packet per recipient; the mpOTR session around it gives
// membership, ordering and transcript consistency, the pads give unconditional secrecy.
//   text   = "?mpOTR-OTP1:" || base64(bundle)            (strict RFC 4648, padded)
//   bundle = version u8 (1) | n u8 (1..63) | n × (id_len u8 (1..255) | id | plen u32 | packet)
// Recipient ids (bare JIDs) are strictly increasing bytewise; no trailing bytes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mpotr/bytes.h"
#include "mpotr/otp/packet.h"
#include "mpotr/result.h"

namespace mpotr::otp {

inline constexpr std::string_view kBundlePrefix = "?mpOTR-OTP1:";
inline constexpr std::uint8_t kBundleVersion = 1;
inline constexpr std::size_t kMaxBundleCopies = kMaxRecipients - 1;  // the sender is not a copy

struct BundleCopy {
  std::string recipient;  // bare JID, 1..kMaxRecipientLen bytes
  Bytes packet;           // an OTP-v1 packet, kPacketOverhead+1..kMaxPacket bytes
  friend bool operator==(const BundleCopy&, const BundleCopy&) = default;
};

struct Bundle {
  std::vector<BundleCopy> copies;  // 1..kMaxBundleCopies, sorted by recipient, distinct
  friend bool operator==(const Bundle&, const Bundle&) = default;
  const BundleCopy* find(std::string_view recipient) const;
};

// Sorts the copies, then encodes. InvalidArgument when a field is out of range or a
// recipient appears twice.
Result<std::string> encode_bundle_text(Bundle bundle);
// No value: the text is not a bundle (no prefix), so it is an ordinary message. With the
// prefix, every deviation is an error: DecodeBadValue (base64, order, empty id, packet length
// below the minimum), DecodeBadVersion, DecodeTruncated, DecodeOversize, DecodeTrailingBytes.
Result<std::optional<Bundle>> decode_bundle_text(std::string_view text);
// Sizes without building a bundle (for the size pre-check before any pad is used): the binary
// bundle for copies of these (recipient id, packet) sizes; the text encode_bundle_text makes of
// `raw_size` bytes; and the most bundle bytes a text of `text_size` characters can hold.
std::size_t bundle_raw_size(const std::vector<std::pair<std::size_t, std::size_t>>& id_and_packet_sizes);
std::size_t bundle_text_size(std::size_t raw_size);
std::size_t bundle_raw_capacity(std::size_t text_size);

}  // namespace mpotr::otp
