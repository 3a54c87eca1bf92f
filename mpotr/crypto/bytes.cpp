// SPDX-License-Identifier: MIT
#include "mpotr/bytes.h"

#include <sodium.h>

namespace mpotr {

void secure_zero(void* p, std::size_t n) noexcept {
  if (p != nullptr && n != 0) {
    ::sodium_memzero(p, n);
  }
}

bool ct_equal(ByteView a, ByteView b) noexcept {
  // Lengths are public (they are visible on the wire), so comparing them first leaks nothing.
  if (a.size() != b.size()) {
    return false;
  }
  if (a.empty()) {
    return true;
  }
  return ::sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string to_hex(ByteView v) {
  if (v.empty()) {
    return {};
  }
  // sodium_bin2hex writes a terminating NUL, hence the extra byte, trimmed afterwards.
  std::string out(v.size() * 2 + 1, '\0');
  ::sodium_bin2hex(out.data(), out.size(), v.data(), v.size());
  out.resize(v.size() * 2);
  return out;
}

namespace {

constexpr bool is_hex_digit(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

bool from_hex(std::string_view hex, Bytes& out) {
  // sodium_hex2bin stops quietly at the first non-hex character, so validate up front:
  // strict parsing means a truncated or padded value is an error, not a shorter result.
  if (hex.size() % 2 != 0) {
    return false;
  }
  for (char c : hex) {
    if (!is_hex_digit(c)) {
      return false;
    }
  }
  Bytes tmp(hex.size() / 2);
  if (hex.empty()) {
    out = std::move(tmp);
    return true;
  }
  std::size_t bin_len = 0;
  const char* hex_end = nullptr;
  if (::sodium_hex2bin(tmp.data(), tmp.size(), hex.data(), hex.size(), nullptr, &bin_len, &hex_end) != 0 ||
      bin_len != tmp.size() || hex_end != hex.data() + hex.size()) {
    return false;
  }
  out = std::move(tmp);
  return true;
}

std::string to_base64(ByteView v) {
  // sodium_bin2base64 writes a terminating NUL, included in sodium_base64_ENCODED_LEN.
  std::string out(sodium_base64_ENCODED_LEN(v.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  ::sodium_bin2base64(out.data(), out.size(), v.data(), v.size(), sodium_base64_VARIANT_ORIGINAL);
  out.pop_back();
  return out;
}

bool from_base64(std::string_view text, Bytes& out) {
  if (text.size() % 4 != 0) {
    return false;
  }
  Bytes tmp(text.size() / 4 * 3);
  std::size_t bin_len = 0;
  const char* end = nullptr;
  if (!text.empty() && (::sodium_base642bin(tmp.data(), tmp.size(), text.data(), text.size(), nullptr, &bin_len,
                                            &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
                        end != text.data() + text.size())) {
    return false;
  }
  tmp.resize(bin_len);
  // libsodium tolerates non-zero unused bits; a re-encode comparison rejects every
  // non-canonical spelling, so one byte string has exactly one accepted encoding.
  if (to_base64(tmp) != text) {
    return false;
  }
  out = std::move(tmp);
  return true;
}

}  // namespace mpotr
