// SPDX-License-Identifier: MIT
// Long-term identity: one P-256 key pair per user, used only inside the deniable triple-DH
// (never to sign), and the fingerprint people compare.
#pragma once

#include <string>

#include "mpotr/bytes.h"
#include "mpotr/crypto/crypto.h"
#include "mpotr/result.h"
#include "mpotr/rng.h"

namespace mpotr {

struct Fingerprint {
  Hash32 bytes{};  // SHA-256 of the 65-byte uncompressed public point

  // 64 upper-case hex digits in 8 groups of 8: "1A2B3C4D 5E6F7081 …".
  std::string grouped() const;
  static Result<Fingerprint> parse(std::string_view text);  // accepts grouped or plain hex
  friend bool operator==(const Fingerprint& a, const Fingerprint& b) noexcept { return ct_equal(view(a.bytes), view(b.bytes)); }
};

Fingerprint fingerprint_of(const crypto::PublicKey& key);

class IdentityKey {
 public:
  static Result<IdentityKey> generate(Rng& rng);
  static Result<IdentityKey> from_scalar(ByteView scalar);

  const crypto::PrivateKey& private_key() const noexcept { return m_key; }
  const crypto::PublicKey& public_key() const noexcept { return m_key.public_key(); }
  Fingerprint fingerprint() const { return fingerprint_of(public_key()); }

 private:
  explicit IdentityKey(crypto::PrivateKey key) : m_key(std::move(key)) {}
  crypto::PrivateKey m_key;
};

}  // namespace mpotr
