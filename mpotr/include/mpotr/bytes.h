// SPDX-License-Identifier: MIT
// Public and secret byte buffers. Secrets zeroize on every deallocation (including vector
// growth), cannot be streamed or implicitly converted to public bytes, and compare in constant time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mpotr {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;
using Hash32 = std::array<std::uint8_t, 32>;

void secure_zero(void* p, std::size_t n) noexcept;
// Constant-time equality of two equal-length buffers (false when lengths differ).
bool ct_equal(ByteView a, ByteView b) noexcept;

template <class T>
struct ZeroizingAllocator {
  using value_type = T;
  ZeroizingAllocator() noexcept = default;
  template <class U>
  ZeroizingAllocator(const ZeroizingAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(std::size_t n) { return std::allocator<T>{}.allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept {
    secure_zero(p, n * sizeof(T));
    std::allocator<T>{}.deallocate(p, n);
  }
  template <class U>
  bool operator==(const ZeroizingAllocator<U>&) const noexcept { return true; }
};

// Variable-length secret. No operator<<, no implicit conversion to Bytes.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t n) : m_data(n, 0) {}
  explicit SecretBytes(ByteView v) : m_data(v.begin(), v.end()) {}
  SecretBytes(const SecretBytes&) = default;
  SecretBytes(SecretBytes&&) noexcept = default;
  SecretBytes& operator=(const SecretBytes&) = default;
  SecretBytes& operator=(SecretBytes&& o) noexcept {
    if (this != &o) {
      clear();
      m_data = std::move(o.m_data);
    }
    return *this;
  }
  ~SecretBytes() { clear(); }

  std::uint8_t* data() noexcept { return m_data.data(); }
  const std::uint8_t* data() const noexcept { return m_data.data(); }
  std::size_t size() const noexcept { return m_data.size(); }
  bool empty() const noexcept { return m_data.empty(); }
  ByteView view() const noexcept { return {m_data.data(), m_data.size()}; }
  void resize(std::size_t n) { m_data.resize(n, 0); }
  void clear() noexcept {
    secure_zero(m_data.data(), m_data.size());
    m_data.clear();
  }
  // Explicit, greppable escape hatch for the rare place a secret must become public (key reveal).
  Bytes expose_copy() const { return Bytes(m_data.begin(), m_data.end()); }

  friend bool operator==(const SecretBytes& a, const SecretBytes& b) noexcept { return ct_equal(a.view(), b.view()); }

 private:
  std::vector<std::uint8_t, ZeroizingAllocator<std::uint8_t>> m_data;
};

inline ByteView as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline ByteView view(const Bytes& b) noexcept { return {b.data(), b.size()}; }
template <std::size_t N>
inline ByteView view(const std::array<std::uint8_t, N>& a) noexcept { return {a.data(), N}; }

std::string to_hex(ByteView v);
// Returns false on odd length or a non-hex character.
bool from_hex(std::string_view hex, Bytes& out);

// RFC 4648 base64 with padding, no line breaks (XMPP payloads, key files).
std::string to_base64(ByteView v);
// Strict: only the canonical encoding of some byte string is accepted (no whitespace, padding
// required, unused bits zero). Returns false otherwise, leaving `out` untouched.
bool from_base64(std::string_view text, Bytes& out);

inline void append(Bytes& out, ByteView v) { out.insert(out.end(), v.begin(), v.end()); }

}  // namespace mpotr
