// SPDX-License-Identifier: MIT
// The pad state machine (spec/otp.md §4): which bytes of a pairwise pad this party may still send
// from, and which regions of the peer's half it has consumed. Pure values: every operation
// returns a NEW state and leaves its input untouched, so the caller commits only on success
// (and, in the store, only after the new state is durable).
#pragma once

#include <cstdint>
#include <vector>

#include "mpotr/bytes.h"
#include "mpotr/otp/packet.h"
#include "mpotr/result.h"

namespace mpotr::otp {

// Limits.
constexpr std::size_t kMaxReceivedRanges = 4096;           // disjoint consumed ranges (gaps + 1)
constexpr std::uint64_t kMaxReserveBlock = 1u << 20;       // one durable reservation, bytes
constexpr std::uint64_t kDefaultReserveBlock = 64u << 10;  // ≈ 500 short messages per fdatasync
constexpr std::uint64_t kMinPadSize = 2 * 1024;
constexpr std::uint64_t kMaxPadSize = std::uint64_t{1} << 40;  // 1 TiB

struct Range {
  std::uint64_t begin = 0;  // half-open [begin, end)
  std::uint64_t end = 0;
  std::uint64_t size() const noexcept { return end - begin; }
  friend bool operator==(const Range&, const Range&) = default;
};

// Phase of the sending side (explicit, not inferred from pointers).
enum class SendPhase : std::uint8_t {
  Healthy = 0,    // may reserve and send
  Exhausted = 1,  // nothing left in our half (receiving still works)
  Halted = 2,     // inconsistency detected (rollback, corrupt state): never sends again
};

// Layout: A owns [0, fence) and allocates upward; B owns [fence, size) and allocates downward.
// Within a region bytes are always used in increasing address order.
struct PadState {
  PadId pad_id{};
  Role me = Role::A;
  std::uint64_t size = 0;
  std::uint64_t fence = 0;
  std::uint64_t generation = 0;  // +1 on every persisted change; never decreases
  SendPhase phase = SendPhase::Healthy;
  // Sending. A: used [0, send_ptr), reserved-not-used [send_ptr, reserve_ptr).
  //          B: used [send_ptr, size), reserved-not-used [reserve_ptr, send_ptr).
  // Only reserve_ptr and seq_reserved are persisted: after a restart send_ptr := reserve_ptr
  // (the unused rest of a reservation is burnt, never reused).
  std::uint64_t send_ptr = 0;
  std::uint64_t reserve_ptr = 0;
  std::uint64_t next_seq = 1;
  std::uint64_t seq_reserved = 1;  // seq values < seq_reserved may have been used
  // Receiving: consumed regions of the peer's half, sorted, disjoint, adjacent ones merged.
  std::vector<Range> received;
  std::uint64_t peer_max_seq = 0;
  friend bool operator==(const PadState&, const PadState&) = default;
};

// A fresh state for a pad of `size` bytes split at fence (0 < fence < size).
// Errors: InvalidArgument (size outside [kMinPadSize, kMaxPadSize], fence outside the pad).
Result<PadState> initial_state(const PadId& id, Role me, std::uint64_t size, std::uint64_t fence);

// The conventional fence: half of the pad.
inline std::uint64_t default_fence(std::uint64_t size) noexcept { return size / 2; }

// Whole-state invariants (ranges sorted and disjoint, pointers inside our half, reserve_ptr
// not behind send_ptr, seq counters ordered). Storage error "pad state inconsistent: …".
Result<void> check_consistent(const PadState& s);

// The range a party owns (A: [0, fence), B: [fence, size)).
Range half_of(const PadState& s, Role r) noexcept;
// Bytes we may still reserve (not yet reserved or used) / reserved but not yet handed out.
std::uint64_t unreserved_bytes(const PadState& s) noexcept;
std::uint64_t reserved_bytes(const PadState& s) noexcept;
// Unconsumed holes of the peer's half below its furthest consumed region (lost or reordered
// messages). At most kMaxReceivedRanges entries.
std::vector<Range> gaps(const PadState& s);

struct Reservation {
  PadState state;  // to persist before any byte of `block` is used
  Range block;     // the newly reserved bytes (contiguous with the previous reservation)
};
// Extends the reservation by up to `want` bytes (≤ kMaxReserveBlock, clamped to what is left);
// reserves seq numbers for the worst case (block / kMinPadCost messages). Errors:
// InvalidState (phase Halted), LimitExceeded "pad exhausted" (no unreserved byte left),
// InvalidArgument (want 0 or above kMaxReserveBlock). The phase field is never set to
// Exhausted here: PadStore::status() reports Exhausted when nothing is left to send from.
Result<Reservation> reserve_block(const PadState& s, std::uint64_t want);

struct Taken {
  PadState state;
  Range region;       // the pad bytes this message uses
  std::uint64_t seq;  // the sequence number to put in the inner header
};
// Hands out `len` bytes from the current reservation (A: the lowest, B: the highest ones).
// Errors: InvalidState (Halted, or less than len reserved: call reserve_block first),
// InvalidArgument (len 0).
Result<Taken> take(const PadState& s, std::uint64_t len);

// Records a peer region as consumed AFTER its MAC verified. Errors: DecodeBadValue (region
// outside the peer's half, empty), Duplicate (exactly a region already consumed), Replay
// (overlaps a consumed region), LimitExceeded (more than kMaxReceivedRanges disjoint ranges).
Result<PadState> accept(const PadState& s, Range region, std::uint64_t seq);

// Checks a region would be accepted, without changing anything (before touching the pad file).
Result<void> check_acceptable(const PadState& s, Range region);

// A copy of s with phase Halted (after an inconsistency: sending stops for good).
PadState halted(const PadState& s);

// Deterministic binary snapshot of the persisted fields (format: spec/otp.md O-14), with a
// BLAKE2b-256 checksum; decode is strict (Storage on any corruption, checksum mismatch or
// inconsistency). After decode, send_ptr == reserve_ptr and next_seq == seq_reserved.
Bytes encode_state(const PadState& s);
Result<PadState> decode_state(ByteView data);

}  // namespace mpotr::otp
