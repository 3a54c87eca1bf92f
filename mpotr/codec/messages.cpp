// SPDX-License-Identifier: MIT
#include "mpotr/codec/messages.h"

#include <string>

#include "mpotr/codec/reader.h"

namespace mpotr::codec {

bool MemberSet::empty() const noexcept {
  for (std::uint8_t b : bits) {
    if (b != 0) {
      return false;
    }
  }
  return true;
}

std::size_t MemberSet::bound() const noexcept {
  for (std::size_t i = kMaxMembers; i-- > 0;) {
    if (test(i)) {
      return i + 1;
    }
  }
  return 0;
}

namespace {

Error field_error(Error e, std::string_view field) {
  e.detail = std::string(field) + ": " + e.detail;
  return e;
}

// Names the field an error happened in.
template <class T>
Result<T> named(Result<T> r, std::string_view field) {
  if (!r.ok()) {
    return field_error(std::move(r).error(), field);
  }
  return r;
}

Writer header(MessageType type, std::size_t reserve) {
  Writer w(reserve);
  w.u8(kProtocolVersion).u8(static_cast<std::uint8_t>(type));
  return w;
}

Result<Point> read_point(Reader& r, std::string_view field) {
  MPOTR_TRY(Point p, named(r.array<crypto::kPointLen>(), field));
  if (p[0] != 0x04) {
    return make_error(ErrorCode::DecodeBadValue, std::string(field) + ": not an uncompressed point");
  }
  return p;
}

// A count of transcript entries (seq, ack, final count): at most kMaxMessagesPerSession, so no
// number a member signs can make a receiver work or allocate beyond a message's worth.
Result<std::uint32_t> check_count(std::uint32_t v, std::string_view field) {
  if (v > kMaxMessagesPerSession) {
    return make_error(ErrorCode::DecodeBadValue,
                      std::string(field) + ": " + std::to_string(v) + " exceeds " + std::to_string(kMaxMessagesPerSession));
  }
  return v;
}

Result<MemberSet> read_member_set(Reader& r, std::string_view field) {
  MemberSet s;
  MPOTR_TRY(s.bits, named(r.array<kMemberSetLen>(), field));
  return s;
}

Result<Offer> decode_offer(Reader& r) {
  Offer m;
  MPOTR_TRY(m.roster_digest, named(r.array<32>(), "roster_digest"));
  MPOTR_TRY(m.attempt, named(r.u32(), "attempt"));
  MPOTR_TRY(ByteView nick, named(r.vec8(kMaxNickLen), "nick"));
  if (nick.empty()) {
    return make_error(ErrorCode::DecodeBadValue, "nick: empty");
  }
  m.nick.assign(nick.begin(), nick.end());
  MPOTR_TRY(m.nonce, named(r.array<32>(), "nonce"));
  MPOTR_TRY(m.identity_key, read_point(r, "identity_key"));
  MPOTR_TRY(m.dh_key, read_point(r, "dh_key"));
  MPOTR_TRY(m.signing_key, read_point(r, "signing_key"));
  return m;
}

Result<KeyShare> decode_key_share(Reader& r) {
  KeyShare m;
  MPOTR_TRY(m.session_id, named(r.array<32>(), "session_id"));
  MPOTR_TRY(m.sender, named(r.u8(), "sender"));
  MPOTR_TRY(m.elgamal_r, read_point(r, "elgamal_r"));
  MPOTR_TRY(m.commit, named(r.array<32>(), "commit"));
  MPOTR_TRY(m.refused, read_member_set(r, "refused"));
  MPOTR_TRY(std::uint8_t count, named(r.u8(), "count"));
  if (count == 0) {
    return make_error(ErrorCode::DecodeBadValue, "count: no shares");
  }
  if (count >= kMaxMembers) {
    return make_error(ErrorCode::DecodeOversize, "count: " + std::to_string(count) + " shares");
  }
  m.shares.resize(count);
  for (auto& share : m.shares) {
    MPOTR_TRY(share.mac, named(r.array<32>(), "mac"));
    MPOTR_TRY(share.secret_ct, named(r.array<32>(), "secret_ct"));
  }
  return m;
}

Result<Attest> decode_attest(Reader& r) {
  Attest m;
  MPOTR_TRY(m.session_id, named(r.array<32>(), "session_id"));
  MPOTR_TRY(m.sender, named(r.u8(), "sender"));
  MPOTR_TRY(m.transcript_hash, named(r.array<32>(), "transcript_hash"));
  MPOTR_TRY(m.key_confirm, named(r.array<32>(), "key_confirm"));
  return m;
}

Result<Accuse> decode_accuse(Reader& r) {
  Accuse m;
  MPOTR_TRY(m.session_id, named(r.array<32>(), "session_id"));
  MPOTR_TRY(m.sender, named(r.u8(), "sender"));
  MPOTR_TRY(m.accused, named(r.u8(), "accused"));
  if (m.accused == m.sender) {
    return make_error(ErrorCode::DecodeBadValue, "accused: the sender accuses itself");
  }
  MPOTR_TRY(m.dh_private, named(r.array<32>(), "dh_private"));
  MPOTR_TRY(ByteView ks, named(r.vec16(kMaxWireMessageLen), "key_share"));
  if (ks.empty()) {
    return make_error(ErrorCode::DecodeBadValue, "key_share: empty");
  }
  m.key_share.assign(ks.begin(), ks.end());
  return m;
}

Result<Data> decode_data(Reader& r, MessageType type) {
  Data m;
  m.type = type;
  MPOTR_TRY(m.session_tag, named(r.array<kSessionTagLen>(), "session_tag"));
  MPOTR_TRY(m.sender, named(r.u8(), "sender"));
  MPOTR_TRY(m.seq, named(r.u32(), "seq"));
  if (m.seq == 0) {
    return make_error(ErrorCode::DecodeBadValue, "seq: 0");
  }
  MPOTR_CHECK(check_count(m.seq, "seq"));
  MPOTR_TRY(std::uint8_t count, named(r.u8(), "ack_count"));
  if (count == 0) {
    return make_error(ErrorCode::DecodeBadValue, "ack_count: no acknowledgements");
  }
  if (count >= kMaxMembers) {
    return make_error(ErrorCode::DecodeOversize, "ack_count: " + std::to_string(count));
  }
  m.acks.resize(count);
  for (auto& ack : m.acks) {
    MPOTR_TRY(ack, named(r.varint(), "acks"));
    MPOTR_CHECK(check_count(ack, "acks"));
  }
  MPOTR_TRY(m.view_digest, named(r.array<32>(), "view_digest"));
  MPOTR_TRY(ByteView ct, named(r.vec16(kMaxTextLen), "ciphertext"));
  if (type == MessageType::Heartbeat && !ct.empty()) {
    return make_error(ErrorCode::DecodeBadValue, "ciphertext: heartbeat carries text");
  }
  if (type == MessageType::Data && ct.empty()) {
    return make_error(ErrorCode::DecodeBadValue, "ciphertext: empty chat message");
  }
  m.ciphertext.assign(ct.begin(), ct.end());
  return m;
}

Result<Shutdown> decode_shutdown(Reader& r) {
  Shutdown m;
  MPOTR_TRY(m.session_tag, named(r.array<kSessionTagLen>(), "session_tag"));
  MPOTR_TRY(m.sender, named(r.u8(), "sender"));
  MPOTR_TRY(m.final_count, named(r.u32(), "final_count"));
  MPOTR_CHECK(check_count(m.final_count, "final_count"));
  return m;
}

Result<Digest> decode_digest(Reader& r) {
  Digest m;
  MPOTR_TRY(m.session_tag, named(r.array<kSessionTagLen>(), "session_tag"));
  MPOTR_TRY(m.sender, named(r.u8(), "sender"));
  MPOTR_TRY(m.transcript_digest, named(r.array<32>(), "transcript_digest"));
  return m;
}

Result<End> decode_end(Reader& r) {
  End m;
  MPOTR_TRY(m.session_tag, named(r.array<kSessionTagLen>(), "session_tag"));
  MPOTR_TRY(m.sender, named(r.u8(), "sender"));
  MPOTR_TRY(m.present, read_member_set(r, "present"));
  MPOTR_TRY(m.digests_hash, named(r.array<32>(), "digests_hash"));
  return m;
}

Result<KeyReveal> decode_key_reveal(Reader& r) {
  KeyReveal m;
  MPOTR_TRY(m.session_tag, named(r.array<kSessionTagLen>(), "session_tag"));
  MPOTR_TRY(m.sender, named(r.u8(), "sender"));
  MPOTR_TRY(m.private_key, named(r.array<32>(), "private_key"));
  return m;
}

Result<Quit> decode_quit(Reader& r) {
  Quit m;
  MPOTR_TRY(m.session_tag, named(r.array<kSessionTagLen>(), "session_tag"));
  MPOTR_TRY(m.sender, named(r.u8(), "sender"));
  MPOTR_TRY(m.final_count, named(r.u32(), "final_count"));
  MPOTR_CHECK(check_count(m.final_count, "final_count"));
  return m;
}

// Reads the trailing signature of a signed message and records where the signed part ends.
template <class M>
Result<Decoded> finish_signed(Reader& r, M m) {
  const std::size_t signed_len = r.position();
  MPOTR_TRY(m.signature, named(r.array<crypto::kSignatureLen>(), "signature"));
  MPOTR_CHECK(r.expect_end());
  return Decoded{Message{std::move(m)}, signed_len, 0};
}

// The same for messages that carry the group MAC before their signature.
template <class M>
Result<Decoded> finish_authed(Reader& r, M m) {
  const std::size_t mac_len = r.position();
  MPOTR_TRY(m.mac, named(r.array<kMacLen>(), "mac"));
  MPOTR_TRY(Decoded d, finish_signed(r, std::move(m)));
  d.mac_len = mac_len;
  return d;
}

template <class M>
Result<Decoded> finish_unsigned(Reader& r, M m) {
  MPOTR_CHECK(r.expect_end());
  const std::size_t len = r.position();
  return Decoded{Message{std::move(m)}, len, 0};
}

void write_data_body(Writer& w, const Data& m) {
  w.bytes(view(m.session_tag)).u8(m.sender).u32(m.seq).u8(static_cast<std::uint8_t>(m.acks.size()));
  for (std::uint32_t ack : m.acks) {
    w.varint(ack);
  }
  w.bytes(view(m.view_digest)).vec16(view(m.ciphertext));
}

Bytes with_tail(Bytes body, ByteView tail) {
  append(body, tail);
  return body;
}

}  // namespace

Result<MessageType> peek_type(ByteView payload) {
  Reader r(payload);
  MPOTR_TRY(std::uint8_t version, named(r.u8(), "version"));
  if (version != kProtocolVersion) {
    return make_error(ErrorCode::DecodeBadVersion, "version " + std::to_string(version));
  }
  MPOTR_TRY(std::uint8_t type, named(r.u8(), "type"));
  switch (static_cast<MessageType>(type)) {
    case MessageType::Offer:
    case MessageType::KeyShare:
    case MessageType::Attest:
    case MessageType::Accuse:
    case MessageType::Data:
    case MessageType::Heartbeat:
    case MessageType::Shutdown:
    case MessageType::Digest:
    case MessageType::End:
    case MessageType::KeyReveal:
    case MessageType::Quit:
      return static_cast<MessageType>(type);
  }
  return make_error(ErrorCode::DecodeUnknownType, "type 0x" + to_hex(ByteView(&type, 1)));
}

Result<Decoded> decode(ByteView payload) {
  if (payload.size() > kMaxWireMessageLen) {
    return make_error(ErrorCode::DecodeOversize, "message of " + std::to_string(payload.size()) + " bytes");
  }
  MPOTR_TRY(MessageType type, peek_type(payload));
  Reader r(payload);
  (void)r.fixed(2);  // version and type, already checked
  switch (type) {
    case MessageType::Offer: {
      MPOTR_TRY(Offer m, decode_offer(r));
      return finish_unsigned(r, std::move(m));
    }
    case MessageType::KeyShare: {
      MPOTR_TRY(KeyShare m, decode_key_share(r));
      return finish_signed(r, std::move(m));
    }
    case MessageType::Attest: {
      MPOTR_TRY(Attest m, decode_attest(r));
      return finish_signed(r, std::move(m));
    }
    case MessageType::Accuse: {
      MPOTR_TRY(Accuse m, decode_accuse(r));
      return finish_signed(r, std::move(m));
    }
    case MessageType::Data:
    case MessageType::Heartbeat: {
      MPOTR_TRY(Data m, decode_data(r, type));
      return finish_authed(r, std::move(m));
    }
    case MessageType::Shutdown: {
      MPOTR_TRY(Shutdown m, decode_shutdown(r));
      return finish_authed(r, std::move(m));
    }
    case MessageType::Digest: {
      MPOTR_TRY(Digest m, decode_digest(r));
      return finish_authed(r, std::move(m));
    }
    case MessageType::End: {
      MPOTR_TRY(End m, decode_end(r));
      return finish_authed(r, std::move(m));
    }
    case MessageType::KeyReveal: {
      MPOTR_TRY(KeyReveal m, decode_key_reveal(r));
      return finish_unsigned(r, std::move(m));
    }
    case MessageType::Quit: {
      MPOTR_TRY(Quit m, decode_quit(r));
      return finish_authed(r, std::move(m));
    }
  }
  return make_error(ErrorCode::Internal, "unhandled message type");
}

Bytes encode(const Offer& m) {
  Writer w = header(MessageType::Offer, 2 + 32 + 4 + 1 + m.nick.size() + 32 + 3 * crypto::kPointLen);
  w.bytes(view(m.roster_digest)).u32(m.attempt).vec8(as_bytes(m.nick)).bytes(view(m.nonce));
  w.bytes(view(m.identity_key)).bytes(view(m.dh_key)).bytes(view(m.signing_key));
  return std::move(w).take();
}

Bytes encode_signed_part(const KeyShare& m) {
  Writer w = header(MessageType::KeyShare, 2 + 32 + 1 + 65 + 32 + kMemberSetLen + 1 + 64 * m.shares.size() + 64);
  w.bytes(view(m.session_id)).u8(m.sender).bytes(view(m.elgamal_r)).bytes(view(m.commit)).bytes(view(m.refused.bits));
  w.u8(static_cast<std::uint8_t>(m.shares.size()));
  for (const auto& share : m.shares) {
    w.bytes(view(share.mac)).bytes(view(share.secret_ct));
  }
  return std::move(w).take();
}

Bytes encode_signed_part(const Attest& m) {
  Writer w = header(MessageType::Attest, 2 + 32 + 1 + 32 + 32 + 64);
  w.bytes(view(m.session_id)).u8(m.sender).bytes(view(m.transcript_hash)).bytes(view(m.key_confirm));
  return std::move(w).take();
}

Bytes encode_signed_part(const Accuse& m) {
  Writer w = header(MessageType::Accuse, 2 + 32 + 1 + 1 + 32 + 2 + m.key_share.size() + 64);
  w.bytes(view(m.session_id)).u8(m.sender).u8(m.accused).bytes(view(m.dh_private)).vec16(view(m.key_share));
  return std::move(w).take();
}

Bytes encode_mac_part(const Data& m) {
  Writer w = header(m.type, 2 + 8 + 1 + 4 + 1 + 3 * m.acks.size() + 32 + 2 + m.ciphertext.size() + kMacLen + 64);
  write_data_body(w, m);
  return std::move(w).take();
}

Bytes encode_mac_part(const Shutdown& m) {
  Writer w = header(MessageType::Shutdown, 2 + 8 + 1 + 4 + kMacLen + 64);
  w.bytes(view(m.session_tag)).u8(m.sender).u32(m.final_count);
  return std::move(w).take();
}

Bytes encode_mac_part(const Digest& m) {
  Writer w = header(MessageType::Digest, 2 + 8 + 1 + 32 + kMacLen + 64);
  w.bytes(view(m.session_tag)).u8(m.sender).bytes(view(m.transcript_digest));
  return std::move(w).take();
}

Bytes encode_mac_part(const End& m) {
  Writer w = header(MessageType::End, 2 + 8 + 1 + kMemberSetLen + 32 + kMacLen + 64);
  w.bytes(view(m.session_tag)).u8(m.sender).bytes(view(m.present.bits)).bytes(view(m.digests_hash));
  return std::move(w).take();
}

Bytes encode_mac_part(const Quit& m) {
  Writer w = header(MessageType::Quit, 2 + 8 + 1 + 4 + kMacLen + 64);
  w.bytes(view(m.session_tag)).u8(m.sender).u32(m.final_count);
  return std::move(w).take();
}

Bytes encode_signed_part(const Data& m) { return with_tail(encode_mac_part(m), view(m.mac)); }
Bytes encode_signed_part(const Shutdown& m) { return with_tail(encode_mac_part(m), view(m.mac)); }
Bytes encode_signed_part(const Digest& m) { return with_tail(encode_mac_part(m), view(m.mac)); }
Bytes encode_signed_part(const End& m) { return with_tail(encode_mac_part(m), view(m.mac)); }
Bytes encode_signed_part(const Quit& m) { return with_tail(encode_mac_part(m), view(m.mac)); }

Bytes encode(const KeyShare& m) { return with_tail(encode_signed_part(m), view(m.signature)); }
Bytes encode(const Attest& m) { return with_tail(encode_signed_part(m), view(m.signature)); }
Bytes encode(const Accuse& m) { return with_tail(encode_signed_part(m), view(m.signature)); }
Bytes encode(const Data& m) { return with_tail(encode_signed_part(m), view(m.signature)); }
Bytes encode(const Shutdown& m) { return with_tail(encode_signed_part(m), view(m.signature)); }
Bytes encode(const Digest& m) { return with_tail(encode_signed_part(m), view(m.signature)); }
Bytes encode(const End& m) { return with_tail(encode_signed_part(m), view(m.signature)); }
Bytes encode(const Quit& m) { return with_tail(encode_signed_part(m), view(m.signature)); }

Bytes encode(const KeyReveal& m) {
  Writer w = header(MessageType::KeyReveal, 2 + 8 + 1 + 32);
  w.bytes(view(m.session_tag)).u8(m.sender).bytes(view(m.private_key));
  return std::move(w).take();
}

std::string_view to_string(MessageType type) noexcept {
  switch (type) {
    case MessageType::Offer: return "offer";
    case MessageType::KeyShare: return "key_share";
    case MessageType::Attest: return "attest";
    case MessageType::Accuse: return "accuse";
    case MessageType::Data: return "data";
    case MessageType::Heartbeat: return "heartbeat";
    case MessageType::Shutdown: return "shutdown";
    case MessageType::Digest: return "digest";
    case MessageType::End: return "end";
    case MessageType::KeyReveal: return "key_reveal";
    case MessageType::Quit: return "quit";
  }
  return "unknown";
}

}  // namespace mpotr::codec
