// SPDX-License-Identifier: MIT
#include "mpotr/engine/key_schedule.h"

#include <algorithm>

namespace mpotr::ks {

namespace {

void update_vec8(crypto::Sha256& h, std::string_view s) {
  h.update_u8(static_cast<std::uint8_t>(s.size()));
  h.update(s);
}

Bytes labelled(std::string_view label, std::initializer_list<ByteView> parts) {
  Bytes out(label.begin(), label.end());
  for (ByteView p : parts) {
    append(out, p);
  }
  return out;
}

Hash32 digest_of_counts(std::string_view label, const std::vector<std::uint32_t>& counts,
                        const std::vector<Hash32>& chains) {
  crypto::Sha256 h;
  h.update(label);
  for (std::size_t m = 0; m < counts.size(); ++m) {
    h.update_u32(counts[m]).update(view(chains[m]));
  }
  return h.finish();
}

}  // namespace

Hash32 roster_digest(std::string_view room, const std::vector<std::string>& sorted_nicks) {
  crypto::Sha256 h;
  h.update(kLabelRoster);
  update_vec8(h, room);
  h.update_u8(static_cast<std::uint8_t>(sorted_nicks.size()));
  for (const auto& nick : sorted_nicks) {
    update_vec8(h, nick);
  }
  return h.finish();
}

Hash32 session_id(std::string_view room, const std::vector<codec::Offer>& offers_in_order) {
  crypto::Sha256 h;
  h.update(kLabelSessionId);
  update_vec8(h, room);
  h.update_u32(offers_in_order.empty() ? 0 : offers_in_order.front().attempt);
  h.update_u8(static_cast<std::uint8_t>(offers_in_order.size()));
  for (const auto& o : offers_in_order) {
    update_vec8(h, o.nick);
    h.update(view(o.nonce)).update(view(o.identity_key)).update(view(o.dh_key)).update(view(o.signing_key));
  }
  return h.finish();
}

codec::SessionTag session_tag(const Hash32& sid) {
  codec::SessionTag tag{};
  std::copy_n(sid.begin(), tag.size(), tag.begin());
  return tag;
}

Result<SecretBytes> dake_key(const Hash32& sid, std::uint8_t from, std::uint8_t to, const SecretBytes& dh_a_from_e_to,
                             const SecretBytes& dh_e_from_e_to) {
  SecretBytes ikm(2 * crypto::kSharedSecretLen);
  std::copy_n(dh_a_from_e_to.data(), crypto::kSharedSecretLen, ikm.data());
  std::copy_n(dh_e_from_e_to.data(), crypto::kSharedSecretLen, ikm.data() + crypto::kSharedSecretLen);
  Bytes info(kLabelDakeKey.begin(), kLabelDakeKey.end());
  info.push_back(from);
  info.push_back(to);
  return crypto::hkdf_sha256(view(sid), ikm.view(), view(info), 32);
}

Result<SecretBytes> dake_key_to(const Hash32& sid, std::uint8_t from, std::uint8_t to, const crypto::PrivateKey& identity,
                                const crypto::PrivateKey& dh, const crypto::PublicKey& to_dh) {
  MPOTR_TRY(SecretBytes static_eph, identity.ecdh(to_dh));  // a_from · E_to
  MPOTR_TRY(SecretBytes eph_eph, dh.ecdh(to_dh));           // e_from · E_to
  return dake_key(sid, from, to, static_eph, eph_eph);
}

Result<SecretBytes> dake_key_from(const Hash32& sid, std::uint8_t from, std::uint8_t to, const crypto::PrivateKey& to_dh,
                                  const crypto::PublicKey& from_identity, const crypto::PublicKey& from_dh) {
  MPOTR_TRY(SecretBytes static_eph, to_dh.ecdh(from_identity));  // e_to · A_from
  MPOTR_TRY(SecretBytes eph_eph, to_dh.ecdh(from_dh));           // e_to · E_from
  return dake_key(sid, from, to, static_eph, eph_eph);
}

Result<DakeKeys> dake_keys(const Hash32& sid, std::uint8_t self, std::uint8_t peer, const crypto::PrivateKey& identity,
                           const crypto::PrivateKey& dh, const crypto::PublicKey& peer_identity,
                           const crypto::PublicKey& peer_dh) {
  MPOTR_TRY(SecretBytes eph_eph, dh.ecdh(peer_dh));             // e_self · E_peer, both ways
  MPOTR_TRY(SecretBytes ours_static, identity.ecdh(peer_dh));   // a_self · E_peer
  MPOTR_TRY(SecretBytes theirs_static, dh.ecdh(peer_identity)); // e_self · A_peer
  MPOTR_TRY(SecretBytes to_peer, dake_key(sid, self, peer, ours_static, eph_eph));
  MPOTR_TRY(SecretBytes from_peer, dake_key(sid, peer, self, theirs_static, eph_eph));
  return DakeKeys{std::move(to_peer), std::move(from_peer)};
}

Hash32 dake_mac(const SecretBytes& mac_key, const Hash32& sid, std::uint8_t from, std::uint8_t to,
                const crypto::Point& signing_key, const crypto::Point& dh_key, const crypto::Point& elgamal_r) {
  const std::uint8_t idx[2] = {from, to};
  const Bytes data = labelled(kLabelDake, {view(sid), ByteView(idx, 2), view(signing_key), view(dh_key), view(elgamal_r)});
  return crypto::hmac_sha256(mac_key.view(), view(data));
}

Result<SecretBytes> elgamal_pad(const Hash32& sid, std::uint8_t from, std::uint8_t to, const SecretBytes& shared,
                                const crypto::Point& elgamal_r, const crypto::Point& recipient_dh) {
  const std::uint8_t idx[2] = {from, to};
  const Bytes info = labelled(kLabelElGamal, {ByteView(idx, 2), view(elgamal_r), view(recipient_dh)});
  return crypto::hkdf_sha256(view(sid), shared.view(), view(info), 32);
}

Hash32 commit(const Hash32& sid, std::uint8_t sender, const SecretBytes& secret) {
  crypto::Sha256 h;
  h.update(kLabelCommit).update(view(sid)).update_u8(sender).update(secret.view());
  return h.finish();
}

SecretBytes group_secret(const Hash32& sid, const std::vector<SecretBytes>& secrets_in_order) {
  crypto::Sha256 h;
  h.update(kLabelGroupSecret).update(view(sid));
  for (const auto& x : secrets_in_order) {
    h.update(x.view());
  }
  Hash32 out = h.finish();
  SecretBytes secret{view(out)};
  secure_zero(out.data(), out.size());
  return secret;
}

Hash32 setup_transcript_hash(const std::vector<Bytes>& offers_in_order, const std::vector<Bytes>& key_share_signed_parts_in_order) {
  crypto::Sha256 h;
  h.update(kLabelSetupTranscript);
  for (const auto* list : {&offers_in_order, &key_share_signed_parts_in_order}) {
    for (const auto& m : *list) {
      h.update_u32(static_cast<std::uint32_t>(m.size())).update(view(m));
    }
  }
  return h.finish();
}

Result<Hash32> key_confirm(const SecretBytes& group_secret, const Hash32& transcript_hash) {
  MPOTR_TRY(SecretBytes confirm_key, crypto::hkdf_expand(group_secret.view(), as_bytes(kLabelConfirm), 32));
  const Bytes data = labelled(kLabelKeyConfirm, {view(transcript_hash)});
  return crypto::hmac_sha256(confirm_key.view(), view(data));
}

Result<SecretBytes> auth_key(const SecretBytes& group_secret) {
  return crypto::hkdf_expand(group_secret.view(), as_bytes(kLabelAuth), 32);
}

Hash32 message_mac(const SecretBytes& auth_key, ByteView mac_part) { return crypto::hmac_sha256(auth_key.view(), mac_part); }

Result<SenderKey> sender_key(const SecretBytes& group_secret, std::uint8_t sender) {
  Bytes info(kLabelSender.begin(), kLabelSender.end());
  info.push_back(sender);
  MPOTR_TRY(SecretBytes okm, crypto::hkdf_expand(group_secret.view(), view(info), 24));
  SenderKey key;
  key.key = SecretBytes(okm.view().first(16));
  std::copy_n(okm.data() + 16, 8, key.iv_prefix.begin());
  return key;
}

crypto::AesIv message_iv(const SenderKey& key, std::uint32_t seq) {
  crypto::AesIv iv{};
  std::copy(key.iv_prefix.begin(), key.iv_prefix.end(), iv.begin());
  iv[8] = static_cast<std::uint8_t>(seq >> 24);
  iv[9] = static_cast<std::uint8_t>(seq >> 16);
  iv[10] = static_cast<std::uint8_t>(seq >> 8);
  iv[11] = static_cast<std::uint8_t>(seq);
  return iv;  // last 4 bytes: block counter from 0; kMaxTextLen keeps it far below 2^32
}

Hash32 signed_digest(const Hash32& sid, ByteView signed_part) {
  crypto::Sha256 h;
  h.update(kLabelSigned).update(view(sid)).update(signed_part);
  return h.finish();
}

Hash32 chain_start(const Hash32& sid, std::uint8_t sender) {
  crypto::Sha256 h;
  h.update(kLabelChain).update(view(sid)).update_u8(sender);
  return h.finish();
}

Hash32 chain_next(const Hash32& previous, const Hash32& message_id) {
  crypto::Sha256 h;
  h.update(view(previous)).update(view(message_id));
  return h.finish();
}

Hash32 chain_lost(const Hash32& previous, std::uint32_t first, std::uint32_t last) {
  crypto::Sha256 h;
  h.update(view(previous)).update(kLabelLost).update_u32(first).update_u32(last);
  return h.finish();
}

Hash32 view_digest(const std::vector<std::uint32_t>& counts, const std::vector<Hash32>& chains) {
  return digest_of_counts(kLabelView, counts, chains);
}

Hash32 transcript_digest(const std::vector<std::uint32_t>& counts, const std::vector<Hash32>& chains) {
  return digest_of_counts(kLabelTranscript, counts, chains);
}

Hash32 end_digest(const std::vector<std::optional<Hash32>>& digests_in_order) {
  crypto::Sha256 h;
  h.update(kLabelEnd);
  for (const auto& d : digests_in_order) {
    h.update_u8(d ? 1 : 0).update(view(d.value_or(Hash32{})));
  }
  return h.finish();
}

}  // namespace mpotr::ks
