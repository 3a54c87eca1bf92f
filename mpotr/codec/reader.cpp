// SPDX-License-Identifier: MIT
#include "mpotr/codec/reader.h"

#include <stdexcept>
#include <string>

namespace mpotr::codec {

namespace {
Error truncated(std::size_t need, std::size_t have) {
  return make_error(ErrorCode::DecodeTruncated,
                    "need " + std::to_string(need) + " bytes, " + std::to_string(have) + " left");
}
}  // namespace

Result<ByteView> Reader::fixed(std::size_t n) {
  if (remaining() < n) {
    return truncated(n, remaining());
  }
  ByteView v = m_data.subspan(m_pos, n);
  m_pos += n;
  return v;
}

Result<std::uint8_t> Reader::u8() {
  MPOTR_TRY(ByteView v, fixed(1));
  return v[0];
}

Result<std::uint16_t> Reader::u16() {
  MPOTR_TRY(ByteView v, fixed(2));
  return static_cast<std::uint16_t>((v[0] << 8) | v[1]);
}

Result<std::uint32_t> Reader::u32() {
  MPOTR_TRY(ByteView v, fixed(4));
  return (std::uint32_t{v[0]} << 24) | (std::uint32_t{v[1]} << 16) | (std::uint32_t{v[2]} << 8) | v[3];
}

Result<std::uint32_t> Reader::varint() {
  std::uint64_t value = 0;
  for (unsigned i = 0; i < 5; ++i) {
    MPOTR_TRY(std::uint8_t b, u8());
    value |= std::uint64_t{static_cast<std::uint8_t>(b & 0x7f)} << (7 * i);
    if ((b & 0x80) == 0) {
      // Minimal encoding only: a trailing zero group means the same value had a shorter form,
      // and two encodings of one value would make signed bytes malleable.
      if (i > 0 && b == 0) {
        return make_error(ErrorCode::DecodeBadValue, "non-minimal varint");
      }
      if (value > 0xffffffffu) {
        return make_error(ErrorCode::DecodeBadValue, "varint exceeds 32 bits");
      }
      return static_cast<std::uint32_t>(value);
    }
  }
  return make_error(ErrorCode::DecodeBadValue, "varint longer than 5 bytes");
}

Result<ByteView> Reader::vec8(std::size_t max) {
  MPOTR_TRY(std::uint8_t len, u8());
  if (len > max) {
    return make_error(ErrorCode::DecodeOversize, "field of " + std::to_string(len) + " bytes, max " + std::to_string(max));
  }
  return fixed(len);
}

Result<ByteView> Reader::vec16(std::size_t max) {
  MPOTR_TRY(std::uint16_t len, u16());
  if (len > max) {
    return make_error(ErrorCode::DecodeOversize, "field of " + std::to_string(len) + " bytes, max " + std::to_string(max));
  }
  return fixed(len);
}

Result<void> Reader::expect_end() const {
  if (remaining() != 0) {
    return make_error(ErrorCode::DecodeTrailingBytes, std::to_string(remaining()) + " trailing bytes");
  }
  return {};
}

Writer& Writer::u8(std::uint8_t v) {
  m_out.push_back(v);
  return *this;
}

Writer& Writer::u16(std::uint16_t v) {
  m_out.push_back(static_cast<std::uint8_t>(v >> 8));
  m_out.push_back(static_cast<std::uint8_t>(v));
  return *this;
}

Writer& Writer::u32(std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    m_out.push_back(static_cast<std::uint8_t>(v >> shift));
  }
  return *this;
}

Writer& Writer::varint(std::uint32_t v) {
  while (v >= 0x80) {
    m_out.push_back(static_cast<std::uint8_t>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  m_out.push_back(static_cast<std::uint8_t>(v));
  return *this;
}

Writer& Writer::bytes(ByteView v) {
  m_out.insert(m_out.end(), v.begin(), v.end());
  return *this;
}

Writer& Writer::vec8(ByteView v) {
  if (v.size() > 0xff) {
    throw std::length_error("vec8 field too long");
  }
  u8(static_cast<std::uint8_t>(v.size()));
  return bytes(v);
}

Writer& Writer::vec16(ByteView v) {
  if (v.size() > 0xffff) {
    throw std::length_error("vec16 field too long");
  }
  u16(static_cast<std::uint16_t>(v.size()));
  return bytes(v);
}

}  // namespace mpotr::codec
