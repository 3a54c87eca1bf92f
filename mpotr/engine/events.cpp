// SPDX-License-Identifier: MIT
#include "mpotr/events.h"

#include <algorithm>

#include "mpotr/engine.h"
#include "mpotr/engine/context.h"

namespace mpotr {

std::string_view to_string(EventKind kind) noexcept {
  switch (kind) {
    case EventKind::SetupStarted: return "setup_started";
    case EventKind::SessionEstablished: return "session_established";
    case EventKind::SetupFailed: return "setup_failed";
    case EventKind::SetupTimeout: return "setup_timeout";
    case EventKind::NewIdentity: return "new_identity";
    case EventKind::Refusing: return "refusing";
    case EventKind::MemberOut: return "member_out";
    case EventKind::MemberExcluded: return "member_excluded";
    case EventKind::IdentityShared: return "identity_shared";
    case EventKind::UnauthenticatedOffers: return "unauthenticated_offers";
    case EventKind::MessageReceived: return "message_received";
    case EventKind::Heartbeat: return "heartbeat";
    case EventKind::Confirmed: return "confirmed";
    case EventKind::FullyConfirmed: return "fully_confirmed";
    case EventKind::ConfirmationOverdue: return "confirmation_overdue";
    case EventKind::Gap: return "gap";
    case EventKind::MessageLost: return "message_lost";
    case EventKind::SplitView: return "split_view";
    case EventKind::SessionClosing: return "session_closing";
    case EventKind::TranscriptConsistent: return "transcript_consistent";
    case EventKind::TranscriptMismatch: return "transcript_mismatch";
    case EventKind::ShutdownIncomplete: return "shutdown_incomplete";
    case EventKind::KeyWithheld: return "key_withheld";
    case EventKind::KeyPublished: return "key_published";
    case EventKind::PeerKeyPublished: return "peer_key_published";
    case EventKind::SessionClosed: return "session_closed";
    case EventKind::ReadyToLeave: return "ready_to_leave";
    case EventKind::Rejected: return "rejected";
  }
  return "unknown";
}

std::string_view to_string(Phase phase) noexcept {
  switch (phase) {
    case Phase::Idle: return "idle";
    case Phase::SettingUp: return "setting_up";
    case Phase::Established: return "established";
    case Phase::Out: return "out";
    case Phase::Leaving: return "leaving";
    case Phase::Left: return "left";
  }
  return "unknown";
}

void Output::merge(Output&& other) {
  broadcasts.insert(broadcasts.end(), std::make_move_iterator(other.broadcasts.begin()),
                    std::make_move_iterator(other.broadcasts.end()));
  events.insert(events.end(), std::make_move_iterator(other.events.begin()), std::make_move_iterator(other.events.end()));
  if (other.wake_at && (!wake_at || *other.wake_at < *wake_at)) {
    wake_at = other.wake_at;
  }
}

namespace detail {

int index_of(const std::vector<Member>& roster, std::string_view nick) {
  auto it = std::lower_bound(roster.begin(), roster.end(), nick,
                             [](const Member& m, std::string_view n) { return m.nick < n; });
  if (it == roster.end() || it->nick != nick) {
    return -1;
  }
  return static_cast<int>(it - roster.begin());
}

Result<std::uint8_t> check_sender(const std::vector<Member>& roster, std::string_view from_nick, std::uint8_t claimed) {
  if (claimed >= roster.size()) {
    return make_error(ErrorCode::NotAMember, "sender index " + std::to_string(claimed) + " outside the roster");
  }
  if (roster[claimed].nick != from_nick) {
    return make_error(ErrorCode::NickMismatch, "message claims member '" + roster[claimed].nick + "' but came from '" +
                                                   std::string(from_nick) + "'");
  }
  return claimed;
}

Event make_event(EventKind kind, std::string nick) {
  Event e;
  e.kind = kind;
  e.nick = std::move(nick);
  return e;
}

Event rejected_event(const Error& error, std::string_view nick) {
  Event e = make_event(EventKind::Rejected, std::string(nick));
  e.code = error.code;
  e.detail = error.detail;
  return e;
}

bool same_bytes(ByteView a, ByteView b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

Error repeated(ByteView stored_signed, ByteView signed_part, std::string_view what) {
  if (same_bytes(stored_signed, signed_part)) {
    return make_error(ErrorCode::Duplicate, std::string(what) + " received twice");
  }
  return make_error(ErrorCode::Equivocation, "two different " + std::string(what) + " messages from one member");
}

}  // namespace detail
}  // namespace mpotr
