// SPDX-License-Identifier: MIT
// What the engine tells its host. The engine never performs I/O: every call returns the
// broadcasts to send to the room, the events to show, and when to call tick() next.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mpotr/bytes.h"
#include "mpotr/result.h"

namespace mpotr {

using TimeMs = std::uint64_t;  // host's monotonic clock, milliseconds

enum class EventKind : std::uint8_t {
  // setup
  SetupStarted,        // nicks = roster of the new attempt
  SessionEstablished,  // nicks = members in canonical order; session_id set; sending allowed
  SetupFailed,         // code + detail; nick = member whose authenticated message proved disagreement
  SetupTimeout,        // nicks = members whose messages are missing; detail = last rejection seen
  NewIdentity,         // nick/jid/fingerprint of a key seen for the first time (host records TOFU)
  // communication
  MessageReceived,     // nick, seq, text (late = true when it arrived after later messages)
  Heartbeat,           // nick, seq: an acknowledgement-only message was received (not shown)
  Confirmed,           // nick = author, seq = last message now confirmed by `by`
  FullyConfirmed,      // nick = author, seq: every other member has confirmed it
  ConfirmationOverdue, // nicks = members that have not confirmed our message `seq` in time
  Gap,                 // nick = author, seq..seq_end missing; later messages are held
  MessageLost,         // nick = author, seq..seq_end never arrived; held messages released
  SplitView,           // nick = member whose view of the transcript differs from ours
  // shutdown
  SessionClosing,      // session_id; detail = why (roster change, leave, peer leaving)
  TranscriptConsistent,// session_id: every member's final transcript digest equals ours
  TranscriptMismatch,  // nick = member whose final digest differs
  ShutdownIncomplete,  // nicks = members that never completed shutdown
  KeyPublished,        // we published our ephemeral signing key for session_id
  PeerKeyPublished,    // nick published theirs; data = the 32-byte private scalar (now public)
  SessionClosed,       // session_id: nothing more will be accepted for it
  ReadyToLeave,        // after leave(): shutdown done, host may leave the room
  // problems found while processing buffered input (the triggering call itself succeeded)
  Rejected,            // code + detail; nick = apparent sender
};

std::string_view to_string(EventKind kind) noexcept;

struct Event {
  EventKind kind{};
  ErrorCode code = ErrorCode::Internal;  // meaningful for SetupFailed / SetupTimeout
  std::string nick;
  std::string by;                         // Confirmed: the confirming member
  std::vector<std::string> nicks;
  std::uint32_t seq = 0;
  std::uint32_t seq_end = 0;
  std::string text;
  bool late = false;
  Hash32 session_id{};
  std::string detail;
  Bytes data;
};

struct Output {
  std::vector<Bytes> broadcasts;  // to send to the whole room, in order
  std::vector<Event> events;
  std::optional<TimeMs> wake_at;  // call Engine::tick() no later than this

  void merge(Output&& other);
};

}  // namespace mpotr
