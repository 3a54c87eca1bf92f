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
#include <span>

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

// --- one-time-pad mode primitives (libsodium) ---

// Poly1305 (RFC 8439 §2.5), libsodium's crypto_onetimeauth. A key MUST authenticate one message
// only: the one-time-pad mode takes it from pad bytes that are never used again.
inline constexpr std::size_t kPoly1305KeyLen = 32;
inline constexpr std::size_t kPoly1305TagLen = 16;
using Poly1305Key = std::span<const std::uint8_t, kPoly1305KeyLen>;
using Poly1305Tag = std::array<std::uint8_t, kPoly1305TagLen>;

Poly1305Tag poly1305(Poly1305Key key, ByteView msg) noexcept;
// Whether tag is poly1305(key, msg), compared in constant time.
bool poly1305_verify(const Poly1305Tag& tag, Poly1305Key key, ByteView msg) noexcept;

// BLAKE2b (RFC 7693), unkeyed, with an N-byte output, 16 ≤ N ≤ 64 (libsodium's
// crypto_generichash). N is a parameter of BLAKE2b, not a truncation: blake2b<32> is not the
// first half of blake2b<64>. The lengths are fixed at compile time, so these cannot fail.
inline constexpr std::size_t kBlake2bMinLen = 16;
inline constexpr std::size_t kBlake2bMaxLen = 64;

namespace detail {
void blake2b(std::uint8_t* out, std::size_t out_len, ByteView data) noexcept;

// The length-erased state behind Blake2b<N>.
class Blake2bState {
 public:
  explicit Blake2bState(std::size_t out_len);
  ~Blake2bState();  // wipes the state
  Blake2bState(const Blake2bState&) = delete;
  Blake2bState& operator=(const Blake2bState&) = delete;
  void update(ByteView data) noexcept;
  void finish(std::uint8_t* out) noexcept;  // then starts over, as a fresh object

 private:
  struct State;
  std::unique_ptr<State> m_state;
  std::size_t m_out_len;
};
}  // namespace detail

template <std::size_t N>
  requires(N >= kBlake2bMinLen && N <= kBlake2bMaxLen)
std::array<std::uint8_t, N> blake2b(ByteView data) noexcept {
  std::array<std::uint8_t, N> out{};
  detail::blake2b(out.data(), N, data);
  return out;
}

// Incremental BLAKE2b with an N-byte output; one object per hash computation (finish() leaves it
// as new). The state is wiped when the object is destroyed.
template <std::size_t N>
  requires(N >= kBlake2bMinLen && N <= kBlake2bMaxLen)
class Blake2b {
 public:
  Blake2b() : m_state(N) {}
  Blake2b& update(ByteView data) noexcept {
    m_state.update(data);
    return *this;
  }
  std::array<std::uint8_t, N> finish() noexcept {
    std::array<std::uint8_t, N> out{};
    m_state.finish(out.data());
    return out;
  }

 private:
  detail::Blake2bState m_state;
};

}  // namespace mpotr::crypto
