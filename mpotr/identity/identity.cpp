// SPDX-License-Identifier: MIT
// Fingerprints and the long-term identity key (a thin wrapper around crypto::PrivateKey).
#include "mpotr/identity.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace mpotr {

namespace {

constexpr std::size_t kFingerprintHexLen = 64;
constexpr std::size_t kGroupLen = 8;
// Longest text worth scanning: 64 digits with generous spacing. Bounds the work and the
// size of any detail we echo back.
constexpr std::size_t kMaxFingerprintText = 256;

bool is_hex_digit(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

std::string Fingerprint::grouped() const {
  const std::string hex = to_hex(view(bytes));
  std::string out;
  out.reserve(kFingerprintHexLen + kFingerprintHexLen / kGroupLen - 1);
  for (std::size_t i = 0; i < hex.size(); ++i) {
    if (i != 0 && i % kGroupLen == 0) {
      out.push_back(' ');
    }
    // to_hex is lower case; people compare fingerprints read aloud, upper case is easier.
    // (Plain arithmetic rather than std::toupper, which depends on the locale.)
    const char c = hex[i];
    out.push_back(c >= 'a' && c <= 'f' ? static_cast<char>(c - 'a' + 'A') : c);
  }
  return out;
}

Result<Fingerprint> Fingerprint::parse(std::string_view text) {
  if (text.size() > kMaxFingerprintText) {
    return make_error(ErrorCode::DecodeBadValue,
                      "fingerprint text is too long (" + std::to_string(text.size()) + " characters)");
  }
  std::string digits;
  digits.reserve(kFingerprintHexLen);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ') {
      continue;  // grouping separators are cosmetic
    }
    if (!is_hex_digit(c)) {
      return make_error(ErrorCode::DecodeBadValue,
                        "fingerprint has a non-hex character at position " + std::to_string(i) +
                            " (expected 64 hex digits, optionally in groups separated by spaces)");
    }
    digits.push_back(c);
  }
  if (digits.size() != kFingerprintHexLen) {
    return make_error(ErrorCode::DecodeBadValue, "fingerprint must have exactly 64 hex digits, got " +
                                                     std::to_string(digits.size()));
  }
  Bytes raw;
  if (!from_hex(digits, raw) || raw.size() != Fingerprint{}.bytes.size()) {
    return make_error(ErrorCode::DecodeBadValue, "fingerprint is not valid hex");
  }
  Fingerprint fp;
  std::copy(raw.begin(), raw.end(), fp.bytes.begin());
  return fp;
}

Fingerprint fingerprint_of(const crypto::PublicKey& key) {
  return Fingerprint{crypto::sha256(view(key.point()))};
}

Result<IdentityKey> IdentityKey::generate(Rng& rng) {
  MPOTR_TRY(crypto::PrivateKey key, crypto::PrivateKey::generate(rng));
  return IdentityKey(std::move(key));
}

Result<IdentityKey> IdentityKey::from_scalar(ByteView scalar) {
  MPOTR_TRY(crypto::PrivateKey key, crypto::PrivateKey::from_scalar(scalar));
  return IdentityKey(std::move(key));
}

}  // namespace mpotr
