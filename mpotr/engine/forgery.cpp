// SPDX-License-Identifier: MIT
#include "mpotr/engine/forgery.h"

#include "mpotr/codec/messages.h"
#include "mpotr/engine/key_schedule.h"

namespace mpotr::forgery {

namespace {
Result<codec::Decoded> decode_entry(ByteView payload) {
  MPOTR_TRY(codec::Decoded d, codec::decode(payload));
  if (!std::holds_alternative<codec::Data>(d.message)) {
    return make_error(ErrorCode::DecodeUnknownType, "not a chat entry");
  }
  return d;
}
}  // namespace

Result<bool> entry_signature_valid(const Hash32& session_id, const crypto::PublicKey& signer, ByteView payload) {
  MPOTR_TRY(codec::Decoded d, decode_entry(payload));
  const auto& entry = std::get<codec::Data>(d.message);
  return signer.verify_digest(ks::signed_digest(session_id, payload.first(d.signed_len)), view(entry.signature));
}

Result<Bytes> forge_entry(const Hash32& session_id, ByteView template_payload, ByteView new_ciphertext,
                          ByteView published_scalar, std::uint32_t seq, Rng& rng) {
  MPOTR_TRY(codec::Decoded d, decode_entry(template_payload));
  MPOTR_TRY(crypto::PrivateKey key, crypto::PrivateKey::from_scalar(published_scalar));
  if (new_ciphertext.empty() || new_ciphertext.size() > kMaxTextLen) {
    return make_error(ErrorCode::InvalidArgument, "ciphertext must have 1.." + std::to_string(kMaxTextLen) + " bytes");
  }
  auto entry = std::get<codec::Data>(d.message);
  entry.type = codec::MessageType::Data;
  entry.ciphertext.assign(new_ciphertext.begin(), new_ciphertext.end());
  if (seq != 0) {
    entry.seq = seq;
  }
  const Bytes signed_part = codec::encode_signed_part(entry);
  MPOTR_TRY(entry.signature, key.sign_digest(ks::signed_digest(session_id, view(signed_part)), rng));
  return codec::encode(entry);
}

}  // namespace mpotr::forgery
