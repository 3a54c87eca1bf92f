// SPDX-License-Identifier: MIT
#include "plugin/smp/smp_secret.h"

#include <cstdint>
#include <cstring>

#include "mpotr/crypto/crypto.h"

namespace mpotr::plugin {

namespace {

constexpr bool is_ascii_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

Result<void> check_jid(std::string_view jid, std::string_view what) {
  if (jid.empty()) {
    return make_error(ErrorCode::InvalidArgument, std::string(what) + " JID is empty");
  }
  if (jid.size() > kMaxJidLen) {
    return make_error(ErrorCode::InvalidArgument, std::string(what) + " JID is longer than kMaxJidLen");
  }
  return {};
}

// Unsigned byte order, spelled out rather than relying on char_traits<char>.
bool jid_less(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = a.size() < b.size() ? a.size() : b.size();
  const int c = n == 0 ? 0 : std::memcmp(a.data(), b.data(), n);
  return c != 0 ? c < 0 : a.size() < b.size();
}

void hash_party(crypto::Sha256& h, std::string_view jid, const Fingerprint& fp) {
  h.update_u32(static_cast<std::uint32_t>(jid.size()));
  h.update(jid);
  h.update(view(fp.bytes));
}

}  // namespace

std::string_view normalize_smp_secret(std::string_view user_secret) noexcept {
  while (!user_secret.empty() && is_ascii_space(user_secret.front())) {
    user_secret.remove_prefix(1);
  }
  while (!user_secret.empty() && is_ascii_space(user_secret.back())) {
    user_secret.remove_suffix(1);
  }
  return user_secret;
}

Result<SecretBytes> bound_smp_secret(std::string_view my_bare_jid, const Fingerprint& my_fp,
                                     std::string_view peer_bare_jid, const Fingerprint& peer_fp_seen,
                                     std::string_view user_secret) {
  MPOTR_CHECK(check_jid(my_bare_jid, "our"));
  MPOTR_CHECK(check_jid(peer_bare_jid, "peer"));
  if (my_bare_jid == peer_bare_jid) {
    return make_error(ErrorCode::InvalidArgument, "cannot verify a JID against itself");
  }
  const std::string_view secret = normalize_smp_secret(user_secret);
  if (secret.empty()) {
    return make_error(ErrorCode::InvalidArgument, "the shared secret is empty");
  }
  if (secret.size() > kMaxSmpSecretLen) {
    return make_error(ErrorCode::InvalidArgument, "the shared secret is longer than kMaxSmpSecretLen bytes");
  }

  // The inner hash is secret-derived: wiped as soon as it is absorbed.
  Hash32 inner = crypto::sha256(as_bytes(secret));
  const bool me_first = jid_less(my_bare_jid, peer_bare_jid);
  crypto::Sha256 h;
  h.update(kSmpSecretLabel);
  if (me_first) {
    hash_party(h, my_bare_jid, my_fp);
    hash_party(h, peer_bare_jid, peer_fp_seen);
  } else {
    hash_party(h, peer_bare_jid, peer_fp_seen);
    hash_party(h, my_bare_jid, my_fp);
  }
  h.update(view(inner));
  secure_zero(inner.data(), inner.size());
  Hash32 out = h.finish();
  SecretBytes result(view(out));
  secure_zero(out.data(), out.size());
  return result;
}

}  // namespace mpotr::plugin
