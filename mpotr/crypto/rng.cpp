// SPDX-License-Identifier: MIT
#include "mpotr/rng.h"

#include <sodium.h>

#include "mpotr/crypto/crypto.h"
#include "mpotr/crypto/internal.h"

namespace mpotr {

namespace {

using crypto::detail::ensure_sodium;

constexpr std::string_view kRngLabel = "mpotr-v1 test rng";

}  // namespace

void SystemRng::fill(std::uint8_t* out, std::size_t len) {
  if (len == 0) {
    return;
  }
  ensure_sodium();
  ::randombytes_buf(out, len);
}

// DeterministicRng is for tests, published vectors and fuzzing only: its whole output is a
// function of the seed. key = SHA-256(label ‖ seed); the u64 constructor uses the 8-byte
// big-endian encoding of the seed, so DeterministicRng(s) equals DeterministicRng(be64(s)).
DeterministicRng::DeterministicRng(std::uint64_t seed) {
  std::array<std::uint8_t, 8> be{};
  for (std::size_t i = 0; i < be.size(); ++i) {
    be[i] = static_cast<std::uint8_t>(seed >> (56 - 8 * i));
  }
  m_key = crypto::Sha256().update(kRngLabel).update(ByteView(be)).finish();
}

DeterministicRng::DeterministicRng(ByteView seed) {
  m_key = crypto::Sha256().update(kRngLabel).update(seed).finish();
}

void DeterministicRng::fill(std::uint8_t* out, std::size_t len) {
  ensure_sodium();
  // A fresh ChaCha20 key per call (SHA-256(key ‖ counter)) keeps every call's output
  // independent of how much earlier calls asked for.
  crypto::Sha256 h;
  h.update(ByteView(m_key));
  h.update_u32(static_cast<std::uint32_t>(m_counter >> 32));
  h.update_u32(static_cast<std::uint32_t>(m_counter));
  Hash32 call_seed = h.finish();
  ++m_counter;
  if (len != 0) {
    ::randombytes_buf_deterministic(out, len, call_seed.data());
  }
  secure_zero(call_seed.data(), call_seed.size());
}

}  // namespace mpotr
