// SPDX-License-Identifier: MIT
// Bounded binary decoding (a span cursor in the spirit of BoringSSL's CBS). Every read checks
// bounds; variable-length reads take an explicit maximum; callers finish with expect_end().
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "mpotr/bytes.h"
#include "mpotr/result.h"

namespace mpotr::codec {

class Reader {
 public:
  explicit Reader(ByteView data) noexcept : m_data(data) {}

  std::size_t remaining() const noexcept { return m_data.size() - m_pos; }
  std::size_t position() const noexcept { return m_pos; }

  Result<std::uint8_t> u8();
  Result<std::uint16_t> u16();  // big-endian
  Result<std::uint32_t> u32();  // big-endian
  // Unsigned LEB128, at most 5 bytes, value ≤ UINT32_MAX, minimal encoding only.
  Result<std::uint32_t> varint();
  Result<ByteView> fixed(std::size_t n);
  template <std::size_t N>
  Result<std::array<std::uint8_t, N>> array() {
    MPOTR_TRY(ByteView v, fixed(N));
    std::array<std::uint8_t, N> a{};
    std::copy(v.begin(), v.end(), a.begin());
    return a;
  }
  // Length-prefixed (u8 / u16) byte strings; DecodeOversize above max.
  Result<ByteView> vec8(std::size_t max);
  Result<ByteView> vec16(std::size_t max);
  // DecodeTrailingBytes if anything is left.
  Result<void> expect_end() const;

 private:
  ByteView m_data;
  std::size_t m_pos = 0;
};

class Writer {
 public:
  Writer() = default;
  explicit Writer(std::size_t reserve) { m_out.reserve(reserve); }
  Writer& u8(std::uint8_t v);
  Writer& u16(std::uint16_t v);
  Writer& u32(std::uint32_t v);
  Writer& varint(std::uint32_t v);
  Writer& bytes(ByteView v);
  // Length-prefixed; the caller guarantees the size fits (checked: throws std::length_error,
  // which only a programming error can trigger).
  Writer& vec8(ByteView v);
  Writer& vec16(ByteView v);
  const Bytes& data() const noexcept { return m_out; }
  Bytes take() && { return std::move(m_out); }

 private:
  Bytes m_out;
};

}  // namespace mpotr::codec
