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
  Refusing,            // we do not accept nick: code = IdentityBlocked / IdentityChanged / IdentityUnverified,
                       // detail/data = its fingerprint; we stay out of the session while it is in (R-ADM-1)
  MemberOut,           // nick refuses the members in nicks, so nick stays out of the next attempt (R-ADM-2);
                       // nick may be ourselves (then Engine::phase() is Out)
  MemberExcluded,      // nick is left out of the next attempt: code = why (GroupKeyMismatch: inconsistent
                       // secret; BadMac: its key share failed authentication; Equivocation; FalseAccusation),
                       // by = the accuser if any (R-KS-13, R-AT-7)
  IdentityShared,      // nick presents the same identity key as nicks (another JID): data = fingerprint
  UnauthenticatedOffers, // offers in nick's name that its session key does not authenticate keep coming:
                       // probably forged by the server; the session is not closed for them (R-OFF-9)
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
  KeyWithheld,         // our signing key for session_id is NOT published: nicks have not authenticated
                       // that they accept nothing more (no End or Quit); published if they still do
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
  ErrorCode code = ErrorCode::Internal;  // meaningful for SetupFailed, SetupTimeout, Rejected, Refusing,
                                         // MemberExcluded
  std::string nick;
  std::string by;                         // Confirmed: the confirming member; Gap/MessageLost: the member
                                          // whose acknowledgement alone claims the entries exist;
                                          // MemberExcluded: the accuser
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
