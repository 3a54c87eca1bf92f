// SPDX-License-Identifier: MIT
// Randomness is injected: the engine never reaches for a global RNG, so tests and fuzzing
// replay whole conversations from a seed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mpotr/bytes.h"

namespace mpotr {

class Rng {
 public:
  virtual ~Rng() = default;
  virtual void fill(std::uint8_t* out, std::size_t len) = 0;
  // True only for a stream that is a pure function of a seed, kept for tests, published vectors
  // and fuzzing. It is the one switch that selects the reproducible ECDSA signer
  // (crypto::PrivateKey::sign_digest, spec §3.5): signatures made with such an rng are
  // byte-exact and reproducible, which production signatures must never be. Hosts use
  // SystemRng, which never returns true.
  virtual bool reproducible() const noexcept { return false; }
  template <std::size_t N>
  std::array<std::uint8_t, N> array() {
    std::array<std::uint8_t, N> a{};
    fill(a.data(), N);
    return a;
  }
  SecretBytes secret(std::size_t n) {
    SecretBytes s(n);
    fill(s.data(), n);
    return s;
  }
};

// The operating system's CSPRNG (libsodium randombytes_buf → getrandom). Final, and never
// reproducible(): signatures made with it always take OpenSSL's production path.
class SystemRng final : public Rng {
 public:
  void fill(std::uint8_t* out, std::size_t len) override;
  bool reproducible() const noexcept override { return false; }
};

// Reproducible stream for tests, vectors and fuzzing: ChaCha20 keyed by SHA-256(seed),
// a fresh block per call (libsodium randombytes_buf_deterministic with a counter in the key).
// Never use it outside tests and tools. reproducible() is true: signatures made with it use the
// hedged deterministic nonce, so a seeded conversation replays byte for byte.
class DeterministicRng final : public Rng {
 public:
  explicit DeterministicRng(std::uint64_t seed);
  explicit DeterministicRng(ByteView seed);
  void fill(std::uint8_t* out, std::size_t len) override;
  bool reproducible() const noexcept override { return true; }

 private:
  std::array<std::uint8_t, 32> m_key{};
  std::uint64_t m_counter = 0;
};

}  // namespace mpotr
