// SPDX-License-Identifier: MIT
// Immutable bytes shared between copies of the engine's state. Every step works on a copy and
// commits on success; a message kept whole (a key share carries 64 bytes per member) would
// otherwise be copied with every step, O(n²) bytes per received message in a large room.
#pragma once

#include <memory>

#include "mpotr/bytes.h"

namespace mpotr::detail {

class SharedBytes {
 public:
  SharedBytes() = default;
  explicit SharedBytes(ByteView b) : m_bytes(std::make_shared<const Bytes>(b.begin(), b.end())) {}

  bool empty() const noexcept { return !m_bytes || m_bytes->empty(); }
  std::size_t size() const noexcept { return m_bytes ? m_bytes->size() : 0; }
  ByteView view() const noexcept { return m_bytes ? ByteView(*m_bytes) : ByteView(); }
  Bytes copy() const { return m_bytes ? *m_bytes : Bytes(); }

 private:
  std::shared_ptr<const Bytes> m_bytes;
};

}  // namespace mpotr::detail
