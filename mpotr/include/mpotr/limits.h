// SPDX-License-Identifier: MIT
// Every resource that grows with input has a named bound here (spec/mpotr.md §9).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mpotr {

inline constexpr std::uint8_t kProtocolVersion = 2;   // wire version byte and urn:mpotr:2

inline constexpr std::size_t kMaxMembers = 128;          // roster size, member index fits a u8
inline constexpr std::size_t kMaxNickLen = 64;           // bytes of UTF-8
inline constexpr std::size_t kMaxRoomLen = 255;
inline constexpr std::size_t kMaxTextLen = 16 * 1024;    // plaintext bytes per chat message
inline constexpr std::size_t kMaxWireMessageLen = 64 * 1024;
inline constexpr std::size_t kMaxHeldMessages = 256;     // out-of-order messages kept per session
inline constexpr std::size_t kMaxPendingOffersPerSender = 4;  // offers for rosters we have not seen yet
inline constexpr std::size_t kMaxEarlyPerSender = 4;     // key shares/attests kept before their phase
inline constexpr std::uint32_t kMaxAttemptJump = 64;     // how far ahead an offer's attempt number may be
inline constexpr std::size_t kMaxRememberedNonces = 512;     // offer nonces kept to detect replays
inline constexpr std::size_t kMaxClosingSessions = 4;    // old sessions still shutting down
inline constexpr std::uint32_t kMaxMessagesPerSession = 1u << 20;  // transcript length; then re-key
// Also the largest seq, ack and final count a receiver accepts: a number a member signs can never
// make a receiver do more than a message's worth of work (losses are kept as ranges, so a claim
// costs O(1) however large, and every stored range is followed by a received entry).

// Default timers, milliseconds. The host may override them in EngineConfig.
inline constexpr std::uint64_t kDefaultSetupTimeoutMs = 30'000;
inline constexpr std::uint64_t kDefaultHeartbeatMs = 5'000;      // idle time before acknowledging
inline constexpr std::uint64_t kDefaultGapTimeoutMs = 10'000;    // wait for a missing message
inline constexpr std::uint64_t kDefaultConfirmTimeoutMs = 20'000;
inline constexpr std::uint64_t kDefaultShutdownTimeoutMs = 15'000;

}  // namespace mpotr
