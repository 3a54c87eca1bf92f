// SPDX-License-Identifier: MIT
// The one error type of the project: every fallible path returns Result<T>.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mpotr {

// Grouped by source (dependency, API misuse, invalid payload, protocol violation, internal).
// Numeric values are stable: they appear in logs, JSON events and the spec's error table.
enum class ErrorCode : std::uint16_t {
  // dependency
  Crypto = 1,           // an OpenSSL/libsodium call failed
  Storage = 2,          // file missing, unreadable, unsafe permissions, corrupt
  // API misuse
  InvalidArgument = 10,
  InvalidState = 11,    // call not allowed in the current phase
  NotReady = 12,        // no established session to send in
  // invalid payload (decoding)
  DecodeTruncated = 20,
  DecodeTrailingBytes = 21,
  DecodeBadVersion = 22,
  DecodeUnknownType = 23,
  DecodeOversize = 24,
  DecodeBadValue = 25,  // a field with a value the spec forbids (bad point, bad varint, …)
  // protocol rule violations (validation)
  UnknownSession = 40,     // session tag belongs to no session we know
  UnexpectedMessage = 41,  // valid message, wrong phase
  NickMismatch = 42,       // transport sender differs from the member the message claims
  NotAMember = 43,         // sender not in the roster / index out of range
  RosterMismatch = 44,     // offer made for a different member list
  BadSignature = 45,
  BadMac = 46,             // pairwise deniable authentication failed
  SessionIdMismatch = 47,  // reserved: no longer produced (stale setup messages are UnknownSession)
  TranscriptMismatch = 48, // setup transcript or final transcript digest differs
  GroupKeyMismatch = 49,   // key confirmation differs: someone sent inconsistent secrets
  Duplicate = 50,          // exact message seen before (replay)
  Equivocation = 51,       // same sender and sequence number, different content
  KeyRevoked = 52,         // signed with an ephemeral key already published
  BadKeyReveal = 53,       // published private key does not match the registered key
  SplitView = 54,          // sender's view digest differs from ours
  LimitExceeded = 55,      // a named limit in limits.h would be exceeded
  IdentityBlocked = 56,    // trust store says blocked
  IdentityChanged = 57,    // key differs from the one trusted for this JID
  Replay = 58,             // message from an earlier attempt or session replayed
  IdentityUnverified = 59, // "verified only" admission: the key is not verified by the user
  FalseAccusation = 60,    // an accusation that the accused's own signed key share refutes
  // internal
  Internal = 90,
};

std::string_view to_string(ErrorCode code) noexcept;

struct Error {
  ErrorCode code = ErrorCode::Internal;
  std::string detail;  // never contains secret material
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : m_v(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : m_v(std::in_place_index<1>, std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const noexcept { return m_v.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(m_v); }
  const T& value() const& { return std::get<0>(m_v); }
  T&& value() && { return std::get<0>(std::move(m_v)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { return std::get<1>(m_v); }
  Error&& error() && { return std::get<1>(std::move(m_v)); }

 private:
  std::variant<T, Error> m_v;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : m_error(std::move(error)), m_ok(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const noexcept { return m_ok; }
  explicit operator bool() const noexcept { return m_ok; }
  const Error& error() const& { return m_error; }
  Error&& error() && { return std::move(m_error); }

 private:
  Error m_error;
  bool m_ok = true;
};

inline Error make_error(ErrorCode code, std::string detail = {}) { return Error{code, std::move(detail)}; }

}  // namespace mpotr

// Propagate an error from an expression returning Result<...>; bind the value otherwise.
#define MPOTR_CONCAT_INNER(a, b) a##b
#define MPOTR_CONCAT(a, b) MPOTR_CONCAT_INNER(a, b)
#define MPOTR_TRY_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                    \
  if (!tmp.ok()) return std::move(tmp).error(); \
  decl = std::move(tmp).value()
#define MPOTR_TRY(decl, expr) MPOTR_TRY_IMPL(MPOTR_CONCAT(mpotr_try_, __LINE__), decl, expr)
#define MPOTR_CHECK(expr)                          \
  do {                                             \
    auto mpotr_check_ = (expr);                    \
    if (!mpotr_check_.ok()) return std::move(mpotr_check_).error(); \
  } while (0)
