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

// A write-once secret shared the same way; dropping the last holder zeroizes it (SecretBytes).
class SharedSecret {
 public:
  SharedSecret() = default;
  explicit SharedSecret(SecretBytes s) : m_secret(std::make_shared<const SecretBytes>(std::move(s))) {}

  bool empty() const noexcept { return !m_secret || m_secret->empty(); }
  const SecretBytes& get() const noexcept {
    static const SecretBytes none;
    return m_secret ? *m_secret : none;
  }
  void clear() noexcept { m_secret.reset(); }

 private:
  std::shared_ptr<const SecretBytes> m_secret;
};

}  // namespace mpotr::detail
