// SPDX-License-Identifier: MIT
#include "mpotr/otp/packet.h"

#include <limits>

#include "mpotr/crypto/crypto.h"

namespace mpotr::otp {
namespace {

void put_u32(Bytes& out, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_u64(Bytes& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// Bounded big-endian reader: every read checks the remaining length first.
class Reader {
 public:
  explicit Reader(ByteView v) : m_v(v) {}
  std::size_t left() const noexcept { return m_v.size() - m_pos; }
  Result<std::uint64_t> uint(std::size_t n, const char* what) {
    if (left() < n) return make_error(ErrorCode::DecodeTruncated, std::string("truncated ") + what);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | m_v[m_pos++];
    return v;
  }
  Result<ByteView> take(std::size_t n, const char* what) {
    if (left() < n) return make_error(ErrorCode::DecodeTruncated, std::string("truncated ") + what);
    ByteView out = m_v.subspan(m_pos, n);
    m_pos += n;
    return out;
  }

 private:
  ByteView m_v;
  std::size_t m_pos = 0;
};

Result<void> check_plaintext(const Plaintext& p) {
  switch (p.type) {
    case MessageType::Chat:
    case MessageType::Attestation:
    case MessageType::Decoy:
      if (p.group) return make_error(ErrorCode::InvalidArgument, "group context on a non-group message");
      break;
    case MessageType::Group:
      if (!p.group) return make_error(ErrorCode::InvalidArgument, "group message without group context");
      if (p.group->recipients.empty() || p.group->recipients.size() > kMaxRecipients)
        return make_error(ErrorCode::InvalidArgument, "recipient count must be 1..64");
      for (const auto& r : p.group->recipients)
        if (r.empty() || r.size() > kMaxRecipientLen)
          return make_error(ErrorCode::InvalidArgument, "recipient id must be 1..255 bytes");
      break;
    default:
      return make_error(ErrorCode::InvalidArgument, "unknown message type");
  }
  if (p.body.size() > kMaxBody) return make_error(ErrorCode::InvalidArgument, "body above kMaxBody");
  return {};
}

}  // namespace

Result<Bytes> encode_inner(const Plaintext& p) {
  MPOTR_CHECK(check_plaintext(p));
  Bytes out;
  out.push_back(static_cast<std::uint8_t>(p.type));
  put_u64(out, p.seq);
  if (p.group) {
    append(out, view(p.group->group_msg_id));
    out.push_back(static_cast<std::uint8_t>(p.group->recipients.size()));
    for (const auto& r : p.group->recipients) {
      out.push_back(static_cast<std::uint8_t>(r.size()));
      append(out, as_bytes(r));
    }
  }
  put_u32(out, static_cast<std::uint32_t>(p.body.size()));
  append(out, view(p.body));
  return out;
}

Result<Plaintext> decode_inner(ByteView inner) {
  if (inner.size() > kMaxInner) return make_error(ErrorCode::DecodeOversize, "inner plaintext above kMaxInner");
  Reader r(inner);
  Plaintext p;
  MPOTR_TRY(auto type, r.uint(1, "type"));
  if (type < 1 || type > 4) return make_error(ErrorCode::DecodeUnknownType, "unknown inner type " + std::to_string(type));
  p.type = static_cast<MessageType>(type);
  MPOTR_TRY(p.seq, r.uint(8, "seq"));
  if (p.type == MessageType::Group) {
    GroupContext g;
    MPOTR_TRY(auto id, r.take(kGroupMsgIdSize, "group_msg_id"));
    std::copy(id.begin(), id.end(), g.group_msg_id.begin());
    MPOTR_TRY(auto n, r.uint(1, "recipient count"));
    if (n == 0 || n > kMaxRecipients) return make_error(ErrorCode::DecodeBadValue, "recipient count must be 1..64");
    for (std::uint64_t i = 0; i < n; ++i) {
      MPOTR_TRY(auto len, r.uint(1, "recipient length"));
      if (len == 0) return make_error(ErrorCode::DecodeBadValue, "empty recipient id");
      MPOTR_TRY(auto rid, r.take(len, "recipient id"));
      g.recipients.emplace_back(rid.begin(), rid.end());
    }
    p.group = std::move(g);
  }
  MPOTR_TRY(auto blen, r.uint(4, "body length"));
  if (blen > kMaxBody) return make_error(ErrorCode::DecodeOversize, "body above kMaxBody");
  MPOTR_TRY(auto body, r.take(blen, "body"));
  p.body.assign(body.begin(), body.end());
  if (r.left() != 0) return make_error(ErrorCode::DecodeTrailingBytes, "bytes after the body");
  return p;
}

Result<std::size_t> pad_cost(const Plaintext& p) {
  MPOTR_CHECK(check_plaintext(p));
  std::size_t n = kMacKeySize + kInnerFixedSize + p.body.size();
  if (p.group) {
    n += kGroupMsgIdSize + 1;
    for (const auto& r : p.group->recipients) n += 1 + r.size();
  }
  return n;
}

namespace {
Bytes encode_header(const PacketHeader& h) {
  Bytes out;
  out.reserve(kHeaderSize);
  out.push_back(kPacketMagic);
  out.push_back(kPacketVersion);
  out.push_back(static_cast<std::uint8_t>(h.sender));
  append(out, view(h.pad_id));
  put_u64(out, h.offset);
  put_u32(out, h.clen);
  return out;
}

// The one-time Poly1305 key: the first 32 bytes of the region (callers have checked that the
// region is 32 + clen bytes long).
crypto::Poly1305Key mac_key(const SecretBytes& region) {
  static_assert(kMacKeySize == crypto::kPoly1305KeyLen && kTagSize == crypto::kPoly1305TagLen);
  return crypto::Poly1305Key(region.data(), kMacKeySize);
}
}  // namespace

Result<Bytes> seal_packet(const PacketHeader& header, const SecretBytes& region, ByteView inner) {
  if (inner.empty() || inner.size() > kMaxClen) return make_error(ErrorCode::InvalidArgument, "inner size out of range");
  if (header.clen != inner.size()) return make_error(ErrorCode::InvalidArgument, "clen differs from the inner size");
  if (region.size() != header.region_len()) return make_error(ErrorCode::InvalidArgument, "region size differs from 32 + clen");
  if (header.offset > std::numeric_limits<std::uint64_t>::max() - header.region_len())
    return make_error(ErrorCode::InvalidArgument, "offset + region overflows");
  Bytes out = encode_header(header);
  out.reserve(kHeaderSize + inner.size() + kTagSize);
  const std::uint8_t* key_enc = region.data() + kMacKeySize;
  for (std::size_t i = 0; i < inner.size(); ++i) out.push_back(static_cast<std::uint8_t>(inner[i] ^ key_enc[i]));
  const crypto::Poly1305Tag tag = crypto::poly1305(mac_key(region), view(out));
  append(out, view(tag));
  return out;
}

Result<ParsedPacket> parse_packet(ByteView packet) {
  if (packet.size() > kMaxPacket) return make_error(ErrorCode::DecodeOversize, "packet above kMaxPacket");
  Reader r(packet);
  MPOTR_TRY(auto magic, r.uint(1, "magic"));
  if (magic != kPacketMagic) return make_error(ErrorCode::DecodeBadVersion, "not an OTP packet (magic)");
  MPOTR_TRY(auto version, r.uint(1, "version"));
  if (version != kPacketVersion) return make_error(ErrorCode::DecodeBadVersion, "unsupported OTP packet version " + std::to_string(version));
  MPOTR_TRY(auto flags, r.uint(1, "flags"));
  if (flags > 1) return make_error(ErrorCode::DecodeBadValue, "reserved flag bits set");
  ParsedPacket p;
  p.header.sender = static_cast<Role>(flags);
  MPOTR_TRY(auto id, r.take(kPadIdSize, "pad id"));
  std::copy(id.begin(), id.end(), p.header.pad_id.begin());
  MPOTR_TRY(p.header.offset, r.uint(8, "offset"));
  MPOTR_TRY(auto clen, r.uint(4, "clen"));
  if (clen == 0) return make_error(ErrorCode::DecodeBadValue, "empty ciphertext");
  if (clen > kMaxClen) return make_error(ErrorCode::DecodeOversize, "clen above kMaxClen");
  p.header.clen = static_cast<std::uint32_t>(clen);
  if (p.header.offset > std::numeric_limits<std::uint64_t>::max() - p.header.region_len())
    return make_error(ErrorCode::DecodeBadValue, "offset + region overflows");
  p.header_bytes.assign(packet.begin(), packet.begin() + kHeaderSize);
  MPOTR_TRY(auto c, r.take(clen, "ciphertext"));
  p.ciphertext.assign(c.begin(), c.end());
  MPOTR_TRY(auto tag, r.take(kTagSize, "tag"));
  std::copy(tag.begin(), tag.end(), p.tag.begin());
  if (r.left() != 0) return make_error(ErrorCode::DecodeTrailingBytes, "bytes after the tag");
  return p;
}

Result<Bytes> open_packet(const ParsedPacket& packet, const SecretBytes& region) {
  if (region.size() != packet.header.region_len() || packet.ciphertext.size() != packet.header.clen ||
      packet.header_bytes.size() != kHeaderSize)
    return make_error(ErrorCode::InvalidArgument, "region or packet sizes inconsistent");
  Bytes authed = packet.header_bytes;
  append(authed, view(packet.ciphertext));
  // poly1305_verify compares in constant time.
  if (!crypto::poly1305_verify(packet.tag, mac_key(region), view(authed)))
    return make_error(ErrorCode::BadMac, "one-time MAC does not verify");
  Bytes inner(packet.ciphertext.size());
  const std::uint8_t* key_enc = region.data() + kMacKeySize;
  for (std::size_t i = 0; i < inner.size(); ++i) inner[i] = static_cast<std::uint8_t>(packet.ciphertext[i] ^ key_enc[i]);
  return inner;
}

std::string pad_id_hex(const PadId& id) { return to_hex(view(id)); }

Result<PadId> pad_id_from_hex(std::string_view hex) {
  Bytes b;
  if (hex.size() != 2 * kPadIdSize || !from_hex(hex, b) || b.size() != kPadIdSize)
    return make_error(ErrorCode::InvalidArgument, "pad id must be 32 hex digits");
  PadId id{};
  std::copy(b.begin(), b.end(), id.begin());
  return id;
}

}  // namespace mpotr::otp
