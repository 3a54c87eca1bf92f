// SPDX-License-Identifier: MIT
#include "mpotr/transport/room_host.h"

#include <algorithm>
#include <utility>

#include "mpotr/transport/stanza.h"

namespace mpotr::transport {

std::string_view to_string(Severity s) noexcept {
  switch (s) {
    case Severity::Debug: return "debug";
    case Severity::Info: return "info";
    case Severity::Warning: return "warning";
    case Severity::Alert: return "alert";
  }
  return "?";
}

std::string_view to_string(Attribution a) noexcept {
  switch (a) {
    case Attribution::Local: return "local";
    case Attribution::Member: return "member";
    case Attribution::Claimed: return "claimed";
  }
  return "?";
}

std::string normalise_room(std::string_view room) {
  std::string out(room);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

void HostOutput::merge(HostOutput&& other) {
  for (auto& p : other.payloads) {
    payloads.push_back(std::move(p));
  }
  for (auto& n : other.notices) {
    notices.push_back(std::move(n));
  }
  trust_changed = trust_changed || other.trust_changed;
  leave_room = leave_room || other.leave_room;
  marker_changed = marker_changed || other.marker_changed;
}

Notice make_notice(std::string kind, Severity severity, std::string text, std::string nick) {
  Notice n;
  n.kind = std::move(kind);
  n.severity = severity;
  n.text = std::move(text);
  n.nick = std::move(nick);
  return n;
}

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    out += out.empty() ? n : ", " + n;
  }
  return out.empty() ? "nobody" : out;
}

std::string short_id(const Hash32& id) { return to_hex(ByteView(id.data(), 4)); }

std::string range(std::uint32_t from, std::uint32_t to) {
  return from == to ? "#" + std::to_string(from) : "#" + std::to_string(from) + "–#" + std::to_string(to);
}

// A rejected payload, explained. Nothing rejected is authenticated, so the sender nick is only
// the server's claim (R-GEN-4): the wording never says that the member did it. Old-session
// traffic is normal after every re-key, so it is Debug; anything that means "someone forged,
// replayed or tampered" is an Alert.
Notice explain_rejection(const Error& e, std::string_view nick) {
  const std::string who = "a message claiming to be from " + std::string(nick);
  const std::string Who = "A message claiming to be from " + std::string(nick);
  const std::string why = " (" + std::string(to_string(e.code)) + ": " + e.detail + ")";
  const std::string server = " (the server could have written this)";
  Notice n;
  switch (e.code) {
    case ErrorCode::UnknownSession:
    case ErrorCode::UnexpectedMessage:
      n = make_notice("ignored", Severity::Debug, "Ignored " + who + " for another session or phase" + why);
      break;
    case ErrorCode::Duplicate:
    case ErrorCode::Replay:
      n = make_notice("replay", Severity::Alert, Who + " was delivered again (replayed) and was dropped" + why);
      break;
    case ErrorCode::BadSignature:
    case ErrorCode::BadMac:
      n = make_notice("tampered", Severity::Alert,
                      Who + " failed authentication: it was forged or altered in transit" + server + ", and was dropped" + why);
      break;
    case ErrorCode::DecodeTruncated:
    case ErrorCode::DecodeTrailingBytes:
    case ErrorCode::DecodeBadVersion:
    case ErrorCode::DecodeUnknownType:
    case ErrorCode::DecodeOversize:
    case ErrorCode::DecodeBadValue:
      n = make_notice("malformed", Severity::Alert,
                      Who + " was malformed (corrupted in transit, or not from a real client)" + server + " and was dropped" + why);
      break;
    case ErrorCode::NickMismatch:
    case ErrorCode::NotAMember:
      n = make_notice("spoofed", Severity::Alert, Who + " names another sender inside" + server + ", and was dropped" + why);
      break;
    case ErrorCode::Equivocation:
      n = make_notice("equivocation", Severity::Alert,
                      Who + " contradicts one already received with the same number: members may be shown different "
                            "conversations" + why);
      break;
    case ErrorCode::KeyRevoked:
      n = make_notice("revoked_key", Severity::Warning,
                      Who + " was signed with a key that was already published, so it proves nothing and was dropped" + why);
      break;
    default:
      n = make_notice("rejected", Severity::Warning, Who + " was rejected" + why);
      break;
  }
  n.nick = std::string(nick);
  n.code = e.code;
  n.attribution = Attribution::Claimed;
  return n;
}

// Who vouches for an engine event (R-GEN-4).
Attribution attribution_of(const Event& ev) {
  switch (ev.kind) {
    case EventKind::MessageReceived:
    case EventKind::Heartbeat:
    case EventKind::Confirmed:
    case EventKind::FullyConfirmed:
    case EventKind::ConfirmationOverdue:
    case EventKind::Gap:          // the author's own entries, or `by`'s signed acknowledgement
    case EventKind::MessageLost:
    case EventKind::SplitView:
    case EventKind::MemberOut:    // from signed key shares
    case EventKind::MemberExcluded:
    case EventKind::SetupFailed:
    case EventKind::TranscriptConsistent:
    case EventKind::TranscriptMismatch:
    case EventKind::PeerKeyPublished:
    case EventKind::SessionEstablished:
      return Attribution::Member;
    case EventKind::IdentityShared:         // from offers, which nothing authenticates yet
    case EventKind::UnauthenticatedOffers:
    case EventKind::Rejected:
      return Attribution::Claimed;
    case EventKind::SetupStarted:
    case EventKind::SetupTimeout:
    case EventKind::NewIdentity:
    case EventKind::Refusing:
    case EventKind::SessionClosing:
    case EventKind::ShutdownIncomplete:
    case EventKind::KeyWithheld:
    case EventKind::KeyPublished:
    case EventKind::SessionClosed:
    case EventKind::ReadyToLeave:
      return Attribution::Local;
  }
  return Attribution::Local;
}

}  // namespace

RoomHost::RoomHost(RoomHostConfig config, IdentityKey identity, TrustStore* trust)
    : m_config(std::move(config)), m_identity(std::move(identity)), m_trust(trust) {
  m_config.room = normalise_room(m_config.room);  // every member must hash the same bytes (§13.2)
}

Phase RoomHost::phase() const noexcept { return m_engine ? m_engine->phase() : Phase::Idle; }

std::optional<SessionInfo> RoomHost::session() const {
  return m_engine ? m_engine->session() : std::nullopt;
}

std::vector<Member> RoomHost::roster() const {
  std::vector<Member> r;
  r.reserve(m_occupants.size() + 1);
  r.push_back(Member{m_self_nick, m_config.self_jid});
  for (const auto& [nick, o] : m_occupants) {
    if (o.mpotr && !o.out) {
      r.push_back(Member{nick, o.real_jid});
    }
  }
  return r;
}

std::optional<Fingerprint> RoomHost::identity_of(std::string_view nick) const {
  if (m_engine) {
    for (const auto& m : m_engine->identities()) {
      if (m.nick == nick) {
        return m.fingerprint;
      }
    }
  }
  if (auto it = m_out_keys.find(nick); it != m_out_keys.end()) {
    return it->second;
  }
  return std::nullopt;
}

HostOutput RoomHost::on_occupant_present(const Occupant& occupant, TimeMs now, Rng& rng) {
  HostOutput out;
  if (occupant.nick.empty() || (occupant.nick == m_self_nick && m_in_room)) {
    return out;  // our own presence is reported through on_self_present
  }
  auto it = m_occupants.find(occupant.nick);
  if (it != m_occupants.end()) {
    const Occupant before = it->second;
    if (before.real_jid == occupant.real_jid && before.mpotr == occupant.mpotr && before.out == occupant.out) {
      return out;  // a status update, not a membership change
    }
    it->second = occupant;
    if (!m_in_room || (!before.mpotr && !occupant.mpotr)) {
      return out;  // an outsider stays an outsider: the session is unchanged
    }
    if (before.mpotr != occupant.mpotr) {
      Notice n = make_notice(
          occupant.mpotr ? "joined" : "left", Severity::Info,
          occupant.mpotr ? occupant.nick + " (" + occupant.real_jid + ") turned mpOTR on and joins the session (says the server)"
                         : occupant.nick + " turned mpOTR off and left the session (still in the room, reads nothing; says the server)",
          occupant.nick);
      n.attribution = Attribution::Claimed;
      out.notices.push_back(std::move(n));
    } else if (before.out != occupant.out) {
      Notice n = make_notice(occupant.out ? "member_out" : "joined", Severity::Info,
                             occupant.out ? occupant.nick + " stays out of the session: they do not accept a member (says the server)"
                                          : occupant.nick + " wants to rejoin the session (says the server)",
                             occupant.nick);
      n.attribution = Attribution::Claimed;
      out.notices.push_back(std::move(n));
    }
    out.merge(roster_changed(now, rng));
    return out;
  } else {
    if (m_occupants.size() >= kMaxOccupants) {
      out.notices.push_back(make_notice("limit", Severity::Warning,
                                        "The room has more than " + std::to_string(kMaxOccupants) +
                                            " occupants; " + occupant.nick + " is not tracked and not in the session",
                                        occupant.nick));
      return out;
    }
    m_occupants.emplace(occupant.nick, occupant);
  }
  if (!m_in_room) {
    return out;  // join burst: the roster is applied at our own presence
  }
  if (!occupant.mpotr) {
    Notice n = make_notice("outsider", Severity::Warning,
                           occupant.nick + " joined the room without mpOTR: they cannot read the conversation",
                           occupant.nick);
    n.attribution = Attribution::Claimed;
    out.notices.push_back(std::move(n));
    return out;
  }
  Notice joined = make_notice("joined", Severity::Info,
                              occupant.nick + " (" + (occupant.real_jid.empty() ? "JID hidden" : occupant.real_jid) +
                                  ") joined the room" + (occupant.out ? ", out of the session (they do not accept a member)" : ""),
                              occupant.nick);
  joined.attribution = Attribution::Claimed;
  out.notices.push_back(std::move(joined));
  out.merge(roster_changed(now, rng));
  return out;
}

HostOutput RoomHost::on_occupant_gone(std::string_view nick, TimeMs now, Rng& rng) {
  HostOutput out;
  auto it = m_occupants.find(nick);
  if (it == m_occupants.end()) {
    return out;
  }
  const bool member = it->second.mpotr;
  m_occupants.erase(it);
  m_out_keys.erase(std::string(nick));
  if (!m_in_room || !member) {
    return out;
  }
  out.notices.push_back(make_notice("left", Severity::Info, std::string(nick) + " left the room", std::string(nick)));
  out.merge(roster_changed(now, rng));
  return out;
}

HostOutput RoomHost::on_nick_change(std::string_view old_nick, std::string_view new_nick, TimeMs now, Rng& rng) {
  HostOutput out;
  auto it = m_occupants.find(old_nick);
  if (it == m_occupants.end() || m_occupants.contains(new_nick)) {
    return out;
  }
  Occupant o = it->second;
  m_occupants.erase(it);
  m_out_keys.erase(std::string(old_nick));
  o.nick = std::string(new_nick);
  m_occupants.emplace(o.nick, o);
  if (!m_in_room || !o.mpotr) {
    return out;
  }
  out.notices.push_back(make_notice("nick_changed", Severity::Info,
                                    std::string(old_nick) + " is now known as " + std::string(new_nick), o.nick));
  out.merge(roster_changed(now, rng));
  return out;
}

HostOutput RoomHost::on_self_present(std::string_view nick, bool room_shows_jids, TimeMs now, Rng& rng) {
  HostOutput out;
  if (m_in_room && nick == m_self_nick) {
    return out;  // a presence update about ourselves
  }
  // First entry, or the room renamed us: either way a fresh engine under the nick the room uses.
  m_self_nick = std::string(nick);
  m_occupants.erase(m_self_nick);
  m_in_room = true;
  m_engine.reset();
  m_roster_due.reset();
  m_restart_due.reset();
  m_auto_restarts = 0;
  const bool jid_missing = std::any_of(m_occupants.begin(), m_occupants.end(),
                                       [](const auto& kv) { return kv.second.mpotr && kv.second.real_jid.empty(); });
  if (!room_shows_jids || jid_missing) {
    m_refused = true;
    out.notices.push_back(make_notice(
        "anonymous_room", Severity::Alert,
        "This room hides members' real JIDs, so their identity keys cannot be bound to who they are. "
        "mpOTR will not run here: ask the room owner to make it non-anonymous"));
    return out;
  }
  m_refused = false;
  m_engine = std::make_unique<Engine>(EngineConfig{m_config.room, m_self_nick, m_config.timeouts, m_config.admission},
                                      m_identity, m_trust);
  out.notices.push_back(make_notice("in_room", Severity::Info,
                                    "Joined " + m_config.room + " as " + m_self_nick + " with " +
                                        std::to_string(m_occupants.size()) + " other occupant(s), " +
                                        std::to_string(roster().size() - 1) + " with mpOTR"));
  out.merge(apply_roster(now, rng));
  return out;
}

HostOutput RoomHost::roster_changed(TimeMs now, Rng& rng) {
  if (!m_engine) {
    return {};
  }
  if (m_config.roster_settle_ms == 0) {
    return apply_roster(now, rng);
  }
  if (!m_roster_due) {
    m_roster_due = now + m_config.roster_settle_ms;
  }
  return {};
}

HostOutput RoomHost::apply_roster(TimeMs now, Rng& rng) {
  m_roster_due.reset();
  if (!m_engine) {
    return {};
  }
  m_auto_restarts = 0;
  m_restart_due.reset();
  HostOutput out;
  const auto members = roster();
  if (members.size() == 1) {
    out.notices.push_back(make_notice("alone", Severity::Info,
                                      m_occupants.empty() ? "You are alone in the room: a secure session starts when someone joins"
                                                          : "Nobody else in the room uses mpOTR: a secure session starts when someone does"));
  }
  out.merge(absorb(m_engine->set_roster(members, now, rng)));
  return out;
}

HostOutput RoomHost::on_payload(std::string_view nick, std::string_view payload_text, TimeMs now, Rng& rng) {
  HostOutput out;
  if (!m_engine) {
    out.notices.push_back(make_notice("ignored", Severity::Debug,
                                      "Ignored an mpOTR message from " + std::string(nick) + ": no session in this room yet",
                                      std::string(nick)));
    return out;
  }
  auto payload = decode_payload_text(payload_text);
  if (!payload.ok()) {
    out.notices.push_back(explain_rejection(payload.error(), nick));
    return out;
  }
  auto result = m_engine->receive(nick, view(payload.value()), now, rng);
  if (!result.ok()) {
    out.notices.push_back(explain_rejection(result.error(), nick));
    return out;
  }
  return absorb(std::move(result));
}

HostOutput RoomHost::on_plaintext(std::string_view nick, std::string_view body) {
  HostOutput out;
  if (nick.empty() || body.empty()) {
    return out;
  }
  // Unauthenticated: the server can put any text under any nick (R-GEN-4, X-5).
  Notice n = make_notice("plaintext", Severity::Warning,
                         "An UNENCRYPTED message claiming to be from " + std::string(nick) +
                             " (the server could have written it, and everyone can read it): " + std::string(body),
                         std::string(nick));
  n.attribution = Attribution::Claimed;
  out.notices.push_back(std::move(n));
  return out;
}

HostOutput RoomHost::on_disconnected(std::string_view why) {
  HostOutput out;
  const bool had_session = m_engine && m_engine->session().has_value();
  m_engine.reset();
  m_occupants.clear();
  m_in_room = false;
  m_refused = false;
  m_roster_due.reset();
  m_restart_due.reset();
  m_auto_restarts = 0;
  out.notices.push_back(make_notice(
      "disconnected", Severity::Warning,
      "Lost the room (" + std::string(why) + ")" +
          (had_session ? ": the session ended without a transcript check and our key was not published" : "")));
  return out;
}

HostOutput RoomHost::send_text(std::string_view text, TimeMs now, Rng& rng) {
  HostOutput out;
  if (!m_engine || m_engine->phase() != Phase::Established) {
    Notice n = make_notice("not_sent", Severity::Warning,
                           std::string("Not sent: the session is not secure yet (") +
                               std::string(to_string(phase())) + "). Nothing leaves unencrypted; send it again once the session is secure");
    n.code = ErrorCode::NotReady;
    out.notices.push_back(std::move(n));
    return out;
  }
  auto result = m_engine->send_text(text, now, rng);
  if (!result.ok()) {
    Notice n = make_notice("not_sent", Severity::Warning, "Not sent: " + result.error().detail);
    n.code = result.error().code;
    out.notices.push_back(std::move(n));
    return out;
  }
  const auto info = m_engine->session();
  SentStatus status;
  status.seq = info ? info->messages_sent : 0;
  if (m_sent.size() >= kMaxTrackedSent) {
    m_sent.erase(m_sent.begin());
  }
  m_sent.push_back(status);
  Notice n = make_notice("sent", Severity::Debug, "Sent #" + std::to_string(status.seq), m_self_nick);
  Event ev;
  ev.kind = EventKind::MessageReceived;
  ev.nick = m_self_nick;
  ev.seq = status.seq;
  ev.text = std::string(text);
  if (info) {
    ev.session_id = info->session_id;
  }
  n.event = std::move(ev);
  out.notices.push_back(std::move(n));
  out.merge(absorb(std::move(result)));
  return out;
}

HostOutput RoomHost::leave(TimeMs now, Rng& rng) {
  HostOutput out;
  if (!m_engine) {
    out.leave_room = true;
    return out;
  }
  auto result = m_engine->leave(now, rng);
  if (!result.ok()) {
    // Already leaving (a second /leave) changes nothing; anything else means we cannot
    // shut down cleanly, so leave at once rather than hang.
    if (result.error().code != ErrorCode::InvalidState) {
      out.leave_room = true;
    }
    out.notices.push_back(make_notice("leave", Severity::Debug, "leave: " + result.error().detail));
    return out;
  }
  out.notices.push_back(make_notice("leaving", Severity::Info, "Leaving: checking transcripts and publishing our key"));
  out.merge(absorb(std::move(result)));
  return out;
}

HostOutput RoomHost::quit(TimeMs now, Rng& rng) {
  HostOutput out;
  out.leave_room = true;
  if (!m_engine || m_engine->phase() == Phase::Left) {
    return out;
  }
  auto result = m_engine->quit(now, rng);
  if (!result.ok()) {
    out.notices.push_back(make_notice("leave", Severity::Debug, "quit: " + result.error().detail));
    return out;
  }
  out.notices.push_back(make_notice("quitting", Severity::Info,
                                    "Leaving at once: the others are told we accept nothing more, our signing key stays withheld"));
  out.merge(absorb(std::move(result)));
  out.leave_room = true;
  return out;
}

HostOutput RoomHost::set_admission(AdmissionPolicy policy, TimeMs now, Rng& rng) {
  HostOutput out;
  if (m_config.admission == policy) {
    return out;
  }
  m_config.admission = policy;
  out.notices.push_back(make_notice("policy", Severity::Info,
                                    policy == AdmissionPolicy::VerifiedOnly
                                        ? "This room now admits verified members only: you stay out of any session with a member you have not verified"
                                        : "This room now admits every member whose key is not blocked or changed (trust on first use)"));
  if (m_engine) {
    out.merge(absorb(m_engine->set_admission(policy, now, rng)));
  }
  return out;
}

Result<HostOutput> RoomHost::block(std::string_view nick, TimeMs now, Rng& rng) {
  if (m_trust == nullptr) {
    return Error{ErrorCode::InvalidState, "no trust store"};
  }
  auto it = m_occupants.find(nick);
  if (it == m_occupants.end() || it->second.real_jid.empty()) {
    return Error{ErrorCode::InvalidArgument, "no occupant '" + std::string(nick) + "' with a known JID"};
  }
  MPOTR_CHECK(m_trust->block(it->second.real_jid));
  HostOutput out;
  out.trust_changed = true;
  std::string also;
  if (const auto fp = identity_of(nick)) {
    MPOTR_CHECK(m_trust->block_fingerprint(*fp));
    also = " and key " + fp->grouped() + " (under any JID)";
  }
  out.notices.push_back(make_notice("blocked", Severity::Info,
                                    "Blocked " + std::string(nick) + " (" + it->second.real_jid + ")" + also +
                                        ": you stay out of the session while they are in it",
                                    std::string(nick)));
  out.merge(restart(now, rng));
  return out;
}

HostOutput RoomHost::restart(TimeMs now, Rng& rng) {
  m_restart_due.reset();
  if (!m_engine) {
    return {};
  }
  auto result = m_engine->restart(now, rng);
  if (!result.ok()) {
    HostOutput out;
    out.notices.push_back(make_notice("restart", Severity::Debug, "restart: " + result.error().detail));
    return out;
  }
  return absorb(std::move(result));
}

HostOutput RoomHost::tick(TimeMs now, Rng& rng) {
  HostOutput out;
  if (m_roster_due && *m_roster_due <= now) {
    out.merge(apply_roster(now, rng));
  }
  if (m_restart_due && *m_restart_due <= now) {
    out.merge(restart(now, rng));
  }
  if (m_engine) {
    auto result = m_engine->tick(now, rng);
    if (!result.ok()) {
      out.notices.push_back(make_notice("internal", Severity::Warning, "Timer processing failed: " + result.error().detail));
    } else {
      out.merge(absorb(std::move(result)));
    }
  }
  return out;
}

std::optional<TimeMs> RoomHost::wake_at() const {
  std::optional<TimeMs> w = m_engine ? m_engine_wake : std::nullopt;
  for (const auto& t : {m_roster_due, m_restart_due}) {
    if (t && (!w || *t < *w)) {
      w = t;
    }
  }
  return w;
}

Result<HostOutput> RoomHost::verify(std::string_view nick, std::string_view fingerprint, TimeMs now, Rng& rng) {
  if (m_trust == nullptr) {
    return Error{ErrorCode::InvalidState, "no trust store"};
  }
  auto it = m_occupants.find(nick);
  if (it == m_occupants.end() || it->second.real_jid.empty()) {
    return Error{ErrorCode::InvalidArgument, "no occupant '" + std::string(nick) + "' with a known JID"};
  }
  MPOTR_TRY(Fingerprint fp, Fingerprint::parse(fingerprint));
  MPOTR_CHECK(m_trust->verify(it->second.real_jid, fp));
  HostOutput out;
  out.trust_changed = true;
  out.notices.push_back(make_notice("verified", Severity::Info,
                                    std::string(nick) + " (" + it->second.real_jid + ") is now verified with fingerprint " + fp.grouped(),
                                    std::string(nick)));
  // If the session runs with a different key for this member, the user's check failed.
  if (const auto info = session()) {
    for (const auto& m : info->members) {
      if (m.nick == nick && !(m.fingerprint == fp)) {
        out.notices.push_back(make_notice("verify_mismatch", Severity::Alert,
                                          "The fingerprint you verified is NOT the key " + std::string(nick) +
                                              " uses in this session (" + m.fingerprint.grouped() + "): re-keying without them",
                                          std::string(nick)));
        out.merge(restart(now, rng));
        return out;
      }
    }
  }
  if (phase() != Phase::Established && m_engine) {
    out.merge(restart(now, rng));  // a member refused for a changed key may now be admitted
  }
  return out;
}

Result<HostOutput> RoomHost::accept_new_key(std::string_view nick, TimeMs now, Rng& rng) {
  if (m_trust == nullptr) {
    return Error{ErrorCode::InvalidState, "no trust store"};
  }
  auto it = m_occupants.find(nick);
  if (it == m_occupants.end() || it->second.real_jid.empty()) {
    return Error{ErrorCode::InvalidArgument, "no occupant '" + std::string(nick) + "' with a known JID"};
  }
  HostOutput out;
  if (m_trust->find(it->second.real_jid) != nullptr) {
    MPOTR_CHECK(m_trust->untrust(it->second.real_jid));
    out.trust_changed = true;
  }
  out.notices.push_back(make_notice("trust_reset", Severity::Info,
                                    "Forgot the recorded key of " + std::string(nick) +
                                        "; their current key will be trusted on first use",
                                    std::string(nick)));
  out.merge(restart(now, rng));
  return out;
}

HostOutput RoomHost::absorb(Result<Output> result) {
  HostOutput out;
  if (!result.ok()) {
    Notice n = make_notice("engine_error", Severity::Warning, "mpOTR: " + result.error().detail);
    n.code = result.error().code;
    out.notices.push_back(std::move(n));
    return out;
  }
  Output& o = result.value();
  m_engine_wake = o.wake_at;
  out.payloads = std::move(o.broadcasts);
  for (const auto& ev : o.events) {
    translate(ev, out);
  }
  // X-13: our presence marker follows whether our engine stays out of the session.
  const bool self_out = m_engine && m_engine->phase() == Phase::Out;
  if (self_out != m_self_out) {
    m_self_out = self_out;
    out.marker_changed = true;
  }
  return out;
}

void RoomHost::track_sent(const Event& ev) {
  if (ev.nick != m_self_nick) {
    return;
  }
  for (auto& s : m_sent) {
    if (ev.kind == EventKind::Confirmed && s.seq <= ev.seq) {
      s.confirmed_by.insert(ev.by);
    } else if (ev.kind == EventKind::FullyConfirmed && s.seq <= ev.seq) {
      s.fully_confirmed = true;
      s.overdue = false;
    } else if (ev.kind == EventKind::ConfirmationOverdue && s.seq == ev.seq) {
      s.overdue = true;
    }
  }
}

void RoomHost::translate(const Event& ev, HostOutput& out) {
  Notice n;
  n.event = ev;
  n.nick = ev.nick;
  n.attribution = attribution_of(ev);
  const std::string who = ev.nick;
  switch (ev.kind) {
    case EventKind::SetupStarted:
      n.kind = "setup";
      n.severity = Severity::Info;
      n.text = "Setting up a secure session with " + join(ev.nicks);
      break;
    case EventKind::SessionEstablished:
      m_auto_restarts = 0;
      m_sent.clear();
      n.kind = "secure";
      n.severity = Severity::Info;
      n.text = "Session secure with " + join(ev.nicks) + " (session " + short_id(ev.session_id) + ")";
      break;
    case EventKind::SetupFailed:
      n.kind = "setup_failed";
      n.severity = Severity::Alert;
      n.code = ev.code;
      n.text = "Session setup FAILED" + (who.empty() ? std::string() : " because of " + who) + ": " + ev.detail;
      break;
    case EventKind::SetupTimeout:
      n.kind = "setup_timeout";
      n.severity = Severity::Warning;
      n.code = ev.code;
      n.text = "Session setup timed out waiting for " + join(ev.nicks) +
               (ev.detail.empty() ? std::string() : " (last problem: " + ev.detail + ")");
      if (m_auto_restarts < kMaxAutoRestarts) {
        ++m_auto_restarts;
        m_restart_due = 0;  // at the next tick
        n.text += "; retrying";
      } else {
        n.text += "; use /restart to try again";
      }
      break;
    case EventKind::NewIdentity: {
      n.kind = "new_identity";
      n.severity = Severity::Info;
      std::string jid;
      if (auto it = m_occupants.find(who); it != m_occupants.end()) {
        jid = it->second.real_jid;
      }
      n.text = "First time we see " + who + "'s key (" + ev.detail +
               "): trusted on first use. Compare it with them and use /verify to be sure";
      if (m_trust != nullptr && !jid.empty() && ev.data.size() == 32) {
        Fingerprint fp;
        std::copy(ev.data.begin(), ev.data.end(), fp.bytes.begin());
        if (m_trust->record_first_use(jid, fp).ok()) {
          out.trust_changed = true;
        }
      }
      break;
    }
    case EventKind::Refusing: {
      n.kind = "refusing";
      n.code = ev.code;
      std::string fp = "unknown";
      if (ev.data.size() == Fingerprint{}.bytes.size()) {
        Fingerprint key;
        std::copy(ev.data.begin(), ev.data.end(), key.bytes.begin());
        m_out_keys.insert_or_assign(who, key);  // what the user may verify while we are out
        fp = key.grouped();
      }
      if (ev.code == ErrorCode::IdentityChanged) {
        n.severity = Severity::Alert;
        n.text = who + "'s identity key has CHANGED (now " + fp + "). Until you check it you stay out of the session " +
                 "and the others continue without you. If they really changed devices, compare fingerprints and use " +
                 "/verify " + who + " <fingerprint> or /trust " + who;
      } else if (ev.code == ErrorCode::IdentityUnverified) {
        n.severity = Severity::Warning;
        n.text = who + " is not verified and this room admits verified members only: you stay out of the session " +
                 "while " + who + " is in it. Verify " + who + " (fingerprint " + fp + ") to join";
      } else {
        n.severity = Severity::Warning;
        n.text = "You blocked " + who + ": you stay out of the session while " + who + " is in it";
      }
      break;
    }
    case EventKind::MemberOut:
      if (who == m_self_nick) {
        n.kind = "self_out";
        n.severity = Severity::Warning;
        n.text = "You are out of the session: you do not accept " + join(ev.nicks) +
                 ". The others continue without you; nothing you type is sent";
      } else {
        n.kind = "member_out";
        n.severity = Severity::Info;
        n.text = who + " stays out of the session: " + who + " does not accept " + join(ev.nicks);
        // Its marker will take it out of the roster; keep the key it showed so that it can
        // still be verified (SMP) while out (R-ADM-3).
        if (const auto key = identity_of(who)) m_out_keys.insert_or_assign(who, *key);
      }
      break;
    case EventKind::MemberExcluded: {
      n.kind = "excluded";
      n.severity = Severity::Alert;
      n.code = ev.code;
      const std::string by = ev.by.empty() || ev.by == who ? std::string() : " (shown by " + ev.by + ")";
      n.text = who + " is left out of the session" + by + ": " + ev.detail;
      break;
    }
    case EventKind::IdentityShared:
      n.kind = "identity_shared";
      n.severity = Severity::Alert;
      n.text = who + " presents the same identity key as " + join(ev.nicks) +
               " under another JID: the same person twice, or a copied key (" + ev.detail + ")";
      break;
    case EventKind::UnauthenticatedOffers:
      n.kind = "forged_offers";
      n.severity = Severity::Alert;
      n.text = "Restart offers keep arriving in " + who + "'s name without " + who +
               "'s session key: probably forged by the server. The session stays up and " + who + " is not to blame";
      break;
    case EventKind::KeyWithheld:
      n.kind = "key_withheld";
      n.severity = Severity::Warning;
      n.text = "Our signing key for session " + short_id(ev.session_id) + " is WITHHELD: " + join(ev.nicks) + " (" +
               ev.detail + "). Deniability is lost for this session until they do; publishing now would let the " +
               "server forge our messages to them";
      break;
    case EventKind::MessageReceived:
      n.kind = "message";
      n.severity = Severity::Info;
      n.text = ev.text;
      if (ev.late) {
        n.text += " [arrived late, after later messages]";
      }
      if (ev.nick == m_self_nick) {
        return;  // our own echo: already shown as "sent"
      }
      break;
    case EventKind::Heartbeat:
      n.kind = "heartbeat";
      n.severity = Severity::Debug;
      n.text = who + " acknowledged the conversation";
      break;
    case EventKind::Confirmed:
      track_sent(ev);
      n.kind = "confirmed";
      n.severity = Severity::Debug;
      n.text = ev.by + " confirmed " + (who == m_self_nick ? "your" : who + "'s") + " messages up to #" + std::to_string(ev.seq);
      break;
    case EventKind::FullyConfirmed:
      track_sent(ev);
      n.kind = "fully_confirmed";
      n.severity = who == m_self_nick ? Severity::Info : Severity::Debug;
      n.text = (who == m_self_nick ? std::string("Your") : who + "'s") + " message #" + std::to_string(ev.seq) +
               " reached every member";
      break;
    case EventKind::ConfirmationOverdue:
      track_sent(ev);
      n.kind = "unconfirmed";
      n.severity = Severity::Warning;
      n.text = "Your message #" + std::to_string(ev.seq) + " has not been confirmed by " + join(ev.nicks) +
               ": it may not have reached them";
      break;
    case EventKind::Gap:
      n.kind = "gap";
      n.severity = Severity::Warning;
      n.text = "Messages " + range(ev.seq, ev.seq_end) + " from " + who +
               (ev.by.empty() ? std::string() : " (acknowledged by " + ev.by + ")") +
               " are missing; later ones are held until they arrive";
      break;
    case EventKind::MessageLost:
      n.kind = "lost";
      n.severity = Severity::Alert;
      n.text = "Messages " + range(ev.seq, ev.seq_end) + " from " + who +
               (ev.by.empty() ? " never arrived: they were lost or suppressed by the server"
                              : " never arrived; only " + ev.by + "'s acknowledgement claims they exist");
      break;
    case EventKind::SplitView:
      n.kind = "split_view";
      n.severity = Severity::Alert;
      n.text = who + " sees a different conversation than you: the server may be showing members different messages";
      break;
    case EventKind::SessionClosing:
      n.kind = "closing";
      n.severity = Severity::Info;
      n.text = "Closing session " + short_id(ev.session_id) + " (" + ev.detail + ")";
      break;
    case EventKind::TranscriptConsistent:
      n.kind = "transcript_consistent";
      n.severity = Severity::Info;
      n.text = "Every member saw the same conversation in session " + short_id(ev.session_id);
      break;
    case EventKind::TranscriptMismatch:
      n.kind = "transcript_mismatch";
      n.severity = Severity::Alert;
      n.text = who + "'s final transcript differs from yours: the conversation was not the same for everyone";
      break;
    case EventKind::ShutdownIncomplete:
      n.kind = "shutdown_incomplete";
      n.severity = Severity::Warning;
      n.text = "Could not confirm the final transcript with " + join(ev.nicks) + " (they did not finish the shutdown)";
      break;
    case EventKind::KeyPublished:
      n.kind = "key_published";
      n.severity = Severity::Info;
      n.text = "Published our signing key for session " + short_id(ev.session_id) +
               ": anyone can now forge its messages, so the transcript proves nothing (deniability)";
      break;
    case EventKind::PeerKeyPublished:
      n.kind = "peer_key_published";
      n.severity = Severity::Debug;
      n.text = who + " published their signing key for session " + short_id(ev.session_id) + " and it checked out";
      break;
    case EventKind::SessionClosed:
      n.kind = "closed";
      n.severity = Severity::Debug;
      n.text = "Session " + short_id(ev.session_id) + " closed";
      break;
    case EventKind::ReadyToLeave:
      n.kind = "ready_to_leave";
      n.severity = Severity::Info;
      n.text = "Shutdown finished: leaving the room";
      out.leave_room = true;
      break;
    case EventKind::Rejected: {
      Notice r = explain_rejection(Error{ev.code, ev.detail}, ev.nick);
      r.event = ev;
      out.notices.push_back(std::move(r));
      return;
    }
  }
  out.notices.push_back(std::move(n));
}

}  // namespace mpotr::transport
