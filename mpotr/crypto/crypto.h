// SPDX-License-Identifier: MIT
// The engine's whole view of cryptography. Only files under mpotr/crypto/ include OpenSSL or
// libsodium headers; every OpenSSL object is owned by an RAII handle.
//
// Choices (see spec/mpotr.md §3): P-256 for ECDH and ECDSA, points always uncompressed
// (65 bytes, 0x04‖X‖Y) on the wire, signatures fixed 64 bytes r‖s (IEEE P1363), SHA-256 for
// every hash, HMAC-SHA-256 and HKDF-SHA-256 (RFC 5869), AES-128-CTR with a 128-bit big-endian counter block.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "mpotr/bytes.h"
#include "mpotr/result.h"
#include "mpotr/rng.h"

namespace mpotr::crypto {

inline constexpr std::size_t kScalarLen = 32;
inline constexpr std::size_t kPointLen = 65;
inline constexpr std::size_t kSignatureLen = 64;
inline constexpr std::size_t kSharedSecretLen = 32;
inline constexpr std::size_t kAesKeyLen = 16;
inline constexpr std::size_t kAesBlockLen = 16;

using Point = std::array<std::uint8_t, kPointLen>;
using Signature = std::array<std::uint8_t, kSignatureLen>;
using AesIv = std::array<std::uint8_t, kAesBlockLen>;

struct KeyHandle;  // opaque, holds the OpenSSL EVP_PKEY; immutable once built, shared by copies

// A validated P-256 public point (on the curve, not the point at infinity).
class PublicKey {
 public:
  // Accepts only the 65-byte uncompressed encoding. Errors: DecodeBadValue.
  static Result<PublicKey> from_point(ByteView encoded);

  const Point& point() const noexcept { return m_point; }
  // ECDSA verification of a 32-byte digest against a 64-byte r‖s signature.
  // False (never an error) for any malformed signature: wrong length, r or s = 0 or ≥ n.
  bool verify_digest(const Hash32& digest, ByteView signature) const noexcept;

  friend bool operator==(const PublicKey& a, const PublicKey& b) noexcept { return a.m_point == b.m_point; }

 private:
  friend class PrivateKey;
  Point m_point{};
  std::shared_ptr<const KeyHandle> m_key;
};

// A P-256 private scalar d with 0 < d < n. Usable for both ECDH and ECDSA.
class PrivateKey {
 public:
  // Draws 32 bytes from rng and rejection-samples until 0 < d < n (so a seeded rng gives a
  // reproducible key).
  static Result<PrivateKey> generate(Rng& rng);
  // Big-endian 32-byte scalar. Errors: DecodeBadValue when d = 0 or d ≥ n or the length is wrong.
  static Result<PrivateKey> from_scalar(ByteView scalar);

  SecretBytes scalar() const;  // 32 bytes, big-endian
  const PublicKey& public_key() const noexcept { return m_public; }

  // ECDSA over a 32-byte digest, two modes chosen by rng.reproducible() (spec §3.5):
  // * production (false: SystemRng, any host rng): OpenSSL's EVP_PKEY_sign, whose nonce OpenSSL
  //   draws from its own DRBG hedged with d and the digest. Nothing is drawn from rng, so a
  //   broken host rng cannot weaken a signature; signatures are randomised.
  // * reproducible (true: DeterministicRng, tests and vectors only): the hedged deterministic
  //   nonce k = HMAC-SHA-256(d, rnd32 ‖ digest ‖ be32(ctr)) (first ctr giving k in [1, n−1],
  //   r ≠ 0, s ≠ 0), rnd32 one 32-byte draw from rng: a seeded rng gives byte-exact signatures.
  // Errors: InvalidState for an empty key, Crypto when OpenSSL fails.
  Result<Signature> sign_digest(const Hash32& digest, Rng& rng) const;

  // ECDH: the 32-byte big-endian x-coordinate of d·Q.
  Result<SecretBytes> ecdh(const PublicKey& peer) const;

 private:
  std::shared_ptr<const KeyHandle> m_key;
  PublicKey m_public;
};

// --- hashing, MAC, KDF ---
Hash32 sha256(ByteView data);

// Incremental SHA-256; one object per hash computation.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256& update(ByteView data);
  Sha256& update(std::string_view s) { return update(as_bytes(s)); }
  Sha256& update_u8(std::uint8_t v);
  Sha256& update_u32(std::uint32_t v);  // big-endian
  Hash32 finish();

 private:
  struct State;
  std::unique_ptr<State> m_state;
};

Hash32 hmac_sha256(ByteView key, ByteView data);
// RFC 5869. Errors: InvalidArgument when length > 255·32.
Result<SecretBytes> hkdf_sha256(ByteView salt, ByteView ikm, ByteView info, std::size_t length);
SecretBytes hkdf_extract(ByteView salt, ByteView ikm);
Result<SecretBytes> hkdf_expand(ByteView prk, ByteView info, std::size_t length);

// AES-128 in CTR mode (NIST SP 800-38A): the whole 16-byte IV is the initial counter block,
// incremented as a 128-bit big-endian integer. out may alias in. Errors: InvalidArgument, Crypto.
Result<void> aes128_ctr(ByteView key, const AesIv& iv, ByteView in, std::uint8_t* out);

}  // namespace mpotr::crypto
