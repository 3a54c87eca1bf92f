// SPDX-License-Identifier: MIT
#include "mpotr/otp/bundle.h"

#include <algorithm>

#include "mpotr/codec/reader.h"

namespace mpotr::otp {
namespace {

constexpr std::size_t kMinPacket = kPacketOverhead + 1;

Error bad(std::string detail) { return make_error(ErrorCode::InvalidArgument, std::move(detail)); }
Error bad_value(std::string detail) { return make_error(ErrorCode::DecodeBadValue, std::move(detail)); }

}  // namespace

const BundleCopy* Bundle::find(std::string_view recipient) const {
  for (const auto& c : copies) {
    if (c.recipient == recipient) return &c;
  }
  return nullptr;
}

Result<std::string> encode_bundle_text(Bundle bundle) {
  if (bundle.copies.empty() || bundle.copies.size() > kMaxBundleCopies) {
    return bad("a bundle holds 1.." + std::to_string(kMaxBundleCopies) + " copies");
  }
  std::sort(bundle.copies.begin(), bundle.copies.end(),
            [](const BundleCopy& a, const BundleCopy& b) { return a.recipient < b.recipient; });
  codec::Writer w;
  w.u8(kBundleVersion).u8(static_cast<std::uint8_t>(bundle.copies.size()));
  for (std::size_t i = 0; i < bundle.copies.size(); ++i) {
    const auto& c = bundle.copies[i];
    if (c.recipient.empty() || c.recipient.size() > kMaxRecipientLen) return bad("recipient id must be 1..255 bytes");
    if (i > 0 && bundle.copies[i - 1].recipient == c.recipient) return bad(c.recipient + " has two copies");
    if (c.packet.size() < kMinPacket || c.packet.size() > kMaxPacket) return bad("packet length out of range");
    w.vec8(as_bytes(c.recipient)).u32(static_cast<std::uint32_t>(c.packet.size())).bytes(c.packet);
  }
  return std::string(kBundlePrefix) + to_base64(w.data());
}

Result<std::optional<Bundle>> decode_bundle_text(std::string_view text) {
  if (text.substr(0, kBundlePrefix.size()) != kBundlePrefix) return std::optional<Bundle>();
  text.remove_prefix(kBundlePrefix.size());
  Bytes raw;
  if (!from_base64(text, raw)) return bad_value("OTP bundle is not canonical base64");
  codec::Reader r(raw);
  MPOTR_TRY(auto version, r.u8());
  if (version != kBundleVersion) {
    return make_error(ErrorCode::DecodeBadVersion, "OTP bundle version " + std::to_string(version));
  }
  MPOTR_TRY(auto n, r.u8());
  if (n == 0 || n > kMaxBundleCopies) return bad_value("OTP bundle copy count must be 1..63");
  Bundle b;
  for (unsigned i = 0; i < n; ++i) {
    MPOTR_TRY(ByteView id, r.vec8(kMaxRecipientLen));
    if (id.empty()) return bad_value("empty recipient id");
    std::string recipient(id.begin(), id.end());
    if (!b.copies.empty() && !(b.copies.back().recipient < recipient)) {
      return bad_value("recipients not in strictly increasing order");
    }
    MPOTR_TRY(auto plen, r.u32());
    if (plen > kMaxPacket) return make_error(ErrorCode::DecodeOversize, "packet above kMaxPacket");
    if (plen < kMinPacket) return bad_value("packet shorter than an OTP-v1 packet can be");
    MPOTR_TRY(ByteView packet, r.fixed(plen));
    b.copies.push_back({std::move(recipient), Bytes(packet.begin(), packet.end())});
  }
  MPOTR_CHECK(r.expect_end());
  return std::optional<Bundle>(std::move(b));
}

std::size_t bundle_raw_size(const std::vector<std::pair<std::size_t, std::size_t>>& id_and_packet_sizes) {
  std::size_t raw = 2;  // version, count
  for (const auto& [id, packet] : id_and_packet_sizes) raw += 1 + id + 4 + packet;
  return raw;
}

std::size_t bundle_text_size(std::size_t raw_size) { return kBundlePrefix.size() + 4 * ((raw_size + 2) / 3); }

std::size_t bundle_raw_capacity(std::size_t text_size) {
  return text_size < kBundlePrefix.size() ? 0 : (text_size - kBundlePrefix.size()) / 4 * 3;
}

}  // namespace mpotr::otp
