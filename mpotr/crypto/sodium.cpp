// SPDX-License-Identifier: MIT
// The libsodium primitives of the one-time-pad mode: Poly1305 (crypto_onetimeauth) and BLAKE2b
// (crypto_generichash). Nothing outside mpotr/crypto/ includes <sodium.h>.
#include <sodium.h>

#include <cstdlib>
#include <new>

#include "mpotr/crypto/crypto.h"
#include "mpotr/crypto/internal.h"

namespace mpotr::crypto {

static_assert(crypto_onetimeauth_KEYBYTES == kPoly1305KeyLen && crypto_onetimeauth_BYTES == kPoly1305TagLen);
static_assert(crypto_generichash_BYTES_MIN == kBlake2bMinLen && crypto_generichash_BYTES_MAX == kBlake2bMaxLen);

namespace {

// libsodium reads nothing through the pointer of an empty input; a non-null one keeps that
// independent of how a ByteView spells "empty".
const std::uint8_t* bytes_of(ByteView v) noexcept {
  static const std::uint8_t s_empty = 0;
  return v.empty() ? &s_empty : v.data();
}

// The calls below fail only for lengths outside libsodium's limits, which the types rule out;
// a failure would be a broken invariant of this file, not a condition to report.
void require(int rc) noexcept {
  if (rc != 0) {
    std::abort();
  }
}

}  // namespace

void detail::ensure_sodium() noexcept {
  // sodium_init picks the fastest implementations for this CPU and seeds the RNG; once, and
  // thread-safely (function-local static). Failing means no usable CSPRNG: stop.
  static const int s_init = ::sodium_init();
  if (s_init < 0) {
    std::abort();
  }
}

Poly1305Tag poly1305(Poly1305Key key, ByteView msg) noexcept {
  detail::ensure_sodium();
  Poly1305Tag tag{};
  require(::crypto_onetimeauth(tag.data(), bytes_of(msg), msg.size(), key.data()));
  return tag;
}

bool poly1305_verify(const Poly1305Tag& tag, Poly1305Key key, ByteView msg) noexcept {
  detail::ensure_sodium();
  // crypto_onetimeauth_verify recomputes the tag and compares it in constant time.
  return ::crypto_onetimeauth_verify(tag.data(), bytes_of(msg), msg.size(), key.data()) == 0;
}

void detail::blake2b(std::uint8_t* out, std::size_t out_len, ByteView data) noexcept {
  detail::ensure_sodium();
  require(::crypto_generichash(out, out_len, bytes_of(data), data.size(), nullptr, 0));
}

struct detail::Blake2bState::State {
  crypto_generichash_state h;
};

detail::Blake2bState::Blake2bState(std::size_t out_len) : m_state(std::make_unique<State>()), m_out_len(out_len) {
  ensure_sodium();
  require(::crypto_generichash_init(&m_state->h, nullptr, 0, m_out_len));
}

detail::Blake2bState::~Blake2bState() {
  if (m_state) {
    secure_zero(&m_state->h, sizeof(m_state->h));
  }
}

void detail::Blake2bState::update(ByteView data) noexcept {
  require(::crypto_generichash_update(&m_state->h, bytes_of(data), data.size()));
}

void detail::Blake2bState::finish(std::uint8_t* out) noexcept {
  require(::crypto_generichash_final(&m_state->h, out, m_out_len));
  secure_zero(&m_state->h, sizeof(m_state->h));
  require(::crypto_generichash_init(&m_state->h, nullptr, 0, m_out_len));
}

}  // namespace mpotr::crypto
