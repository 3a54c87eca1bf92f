// SPDX-License-Identifier: MIT
// The byte language fuzz_conversation interprets (shared with make_seeds.cpp, which writes
// seed scripts in it). A script is:
//   8 bytes  seed of the DeterministicRng every engine draws from (little-endian)
//   1 byte   setup: bits 0-1 pick the trust stores (TrustSetup)
//   then actions, each an opcode byte (taken modulo kOpCount) followed by its operand bytes.
// Reading past the end yields zero bytes, so every byte string is a valid script.
#pragma once

#include <cstdint>

namespace mpotr::fuzz {

enum class TrustSetup : std::uint8_t {
  None = 0,        // no trust store: every identity is new
  AllTofu = 1,     // everyone has recorded everyone's real key (TOFU)
  ChangedKey = 2,  // as AllTofu, but alice has a wrong key recorded for carol
  Blocked = 3,     // as AllTofu, but alice has blocked bob
};

enum class Op : std::uint8_t {
  DeliverNext = 0,   // deliver the next queued payload to every member in the room
  DeliverAll = 1,    // deliver queued payloads (at most 64) to everyone, in order
  Drop = 2,          // drop the next queued payload
  Duplicate = 3,     // append a copy of the next queued payload to the queue
  FlipBit = 4,       // [pos_hi, pos_lo, bit] flip one bit of the next queued payload
  DeliverSome = 5,   // [who] who%3 = member, who&4: deliver only to it, else to all but it
  Swap = 6,          // [a, b] swap two queued payloads
  AdvanceTime = 7,   // [ms] advance the clock by 1 + ms*250 ms, tick everyone
  SendText = 8,      // [who, len] who%3 sends a text of len bytes (0 is invalid on purpose)
  Leave = 9,         // [who] who%3 leaves gracefully (host leaves the room on ReadyToLeave)
  Inject = 10,       // [nick, len, bytes…] deliver len raw input bytes from nick%4 (3 = "mallory")
  Roster = 11,       // [mask] room = mask%8 members; mask&8: only the first of them is told
  Restart = 12,      // [who] who%3 restarts its attempt
  Replay = 13,       // [k] deliver an already delivered payload (k-th most recent) to everyone
  Delay = 14,        // move the next queued payload to the back of the queue
  WakeUp = 15,       // advance the clock to the earliest wake_at and tick everyone
  kCount
};

inline constexpr std::uint8_t kOpCount = static_cast<std::uint8_t>(Op::kCount);

}  // namespace mpotr::fuzz
