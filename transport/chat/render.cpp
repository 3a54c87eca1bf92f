// SPDX-License-Identifier: MIT
#include "render.h"

#include <algorithm>

namespace mpotr::chat {

using transport::Notice;
using transport::RoomHost;
using transport::SentStatus;
using transport::Severity;

namespace {

bool is_zero(const Hash32& h) {
  return std::all_of(h.begin(), h.end(), [](std::uint8_t b) { return b == 0; });
}

nlohmann::json session_json(const std::optional<Hash32>& id) {
  if (!id || is_zero(*id)) {
    return nullptr;
  }
  return to_hex(view(*id));
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    out += out.empty() ? n : ", " + n;
  }
  return out;
}

// The engine event's fields that mean something for its kind, always with the same JSON type.
void add_event_fields(nlohmann::json& j, const Event& ev) {
  j["engine_event"] = to_string(ev.kind);
  const bool has_code = ev.kind == EventKind::SetupFailed || ev.kind == EventKind::SetupTimeout ||
                        ev.kind == EventKind::Rejected;
  if (has_code && !j.contains("code")) {
    j["code"] = to_string(ev.code);
  }
  switch (ev.kind) {
    case EventKind::SetupStarted:
    case EventKind::SessionEstablished:
    case EventKind::SetupTimeout:
    case EventKind::ShutdownIncomplete:
      j["nicks"] = ev.nicks;
      break;
    case EventKind::MemberOut:
    case EventKind::IdentityShared:
    case EventKind::KeyWithheld:
      j["nicks"] = ev.nicks;
      break;
    case EventKind::MemberExcluded:
      j["code"] = to_string(ev.code);
      if (!ev.by.empty()) {
        j["by"] = ev.by;
      }
      break;
    case EventKind::UnauthenticatedOffers:
      break;
    case EventKind::Refusing:
      j["code"] = to_string(ev.code);
      [[fallthrough]];
    case EventKind::NewIdentity:
      if (ev.data.size() == Fingerprint{}.bytes.size()) {
        Fingerprint fp;
        std::copy(ev.data.begin(), ev.data.end(), fp.bytes.begin());
        j["fingerprint"] = fp.grouped();
      }
      break;
    case EventKind::MessageReceived:
      j["seq"] = ev.seq;
      j["message"] = ev.text;
      j["late"] = ev.late;
      if (!ev.nicks.empty()) {
        j["recipients"] = ev.nicks;  // OTP lines: who else it went to, when not the whole session
      }
      break;
    case EventKind::Heartbeat:
    case EventKind::FullyConfirmed:
    case EventKind::SplitView:
      j["seq"] = ev.seq;
      break;
    case EventKind::Confirmed:
      j["seq"] = ev.seq;
      j["by"] = ev.by;
      break;
    case EventKind::ConfirmationOverdue:
      j["seq"] = ev.seq;
      j["nicks"] = ev.nicks;
      break;
    case EventKind::Gap:
    case EventKind::MessageLost:
      j["seq"] = ev.seq;
      j["seq_end"] = ev.seq_end;
      if (!ev.by.empty()) {
        j["claimed_by"] = ev.by;
      }
      break;
    case EventKind::SetupFailed:
    case EventKind::SessionClosing:
    case EventKind::TranscriptConsistent:
    case EventKind::TranscriptMismatch:
    case EventKind::KeyPublished:
    case EventKind::PeerKeyPublished:  // ev.data is the revealed key: of no use to a consumer
    case EventKind::SessionClosed:
    case EventKind::ReadyToLeave:
    case EventKind::Rejected:
      break;
  }
  if (!is_zero(ev.session_id)) {
    j["session"] = to_hex(view(ev.session_id));
  }
  if (!ev.detail.empty()) {
    j["detail"] = ev.detail;
  }
}

std::string severity_prefix(Severity s) {
  switch (s) {
    case Severity::Debug: return "- ";
    case Severity::Info: return "* ";
    case Severity::Warning: return "! WARNING: ";
    case Severity::Alert: return "!! ALERT: ";
  }
  return "? ";
}

std::string stamp(std::string_view clock) { return "[" + std::string(clock) + "] "; }

std::string trust_name(TrustLevel level) { return std::string(to_string(level)); }

TrustLevel trust_of(const RoomHost& host, const std::string& jid) {
  return host.trust() != nullptr && !jid.empty() ? host.trust()->level(jid) : TrustLevel::Unknown;
}

std::string self_nick_of(const RoomHost& host, const SelfInfo& self) {
  return host.self_nick().empty() ? self.nick : host.self_nick();
}

}  // namespace

// --- primitives ---------------------------------------------------------------------------------

std::string json_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

std::string sanitize_for_terminal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      out.push_back('?');
    } else if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      out.push_back('?');  // U+0080..U+009F: C1 controls (U+009B is a one-character CSI)
      ++i;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string short_session_id(const Hash32& id) { return to_hex(ByteView(id.data(), 4)); }

// --- notices ----------------------------------------------------------------------------------

nlohmann::json notice_to_json(const Notice& notice, TimeMs now) {
  nlohmann::json j;
  j["event"] = notice.kind;
  j["severity"] = to_string(notice.severity);
  j["attribution"] = to_string(notice.attribution);  // "claimed": only the server's word (spec §13.4)
  j["text"] = notice.text;
  j["time_ms"] = now;
  j["nick"] = notice.nick.empty() ? nlohmann::json(nullptr) : nlohmann::json(notice.nick);
  if (notice.code) {
    j["code"] = to_string(*notice.code);
  }
  if (notice.event) {
    add_event_fields(j, *notice.event);
  }
  return j;
}

std::optional<std::string> notice_to_line(const Notice& notice, std::string_view clock, const LineStyle& style) {
  const std::string nick = sanitize_for_terminal(notice.nick);
  const Event* ev = notice.event ? &*notice.event : nullptr;
  // Chat lines, ours and theirs.
  if (notice.kind == "message" && ev != nullptr) {
    return stamp(clock) + "<" + nick + "> " + sanitize_for_terminal(notice.text);
  }
  if ((notice.kind == "otp_message" || notice.kind == "otp_sent") && ev != nullptr) {
    // One-time-pad lines are marked, with the recipients when not the whole session.
    const std::string to = ev->nicks.empty() || notice.kind == "otp_sent" ? std::string() : " to " + join(ev->nicks);
    const std::string seq = notice.kind == "otp_sent" ? "  (#" + std::to_string(ev->seq) + ")" : std::string();
    const std::string text = notice.kind == "otp_sent" ? ev->text : notice.text;
    return stamp(clock) + "<" + nick + "> [OTP" + sanitize_for_terminal(to) + "] " + sanitize_for_terminal(text) + seq;
  }
  if (notice.kind == "sent" && ev != nullptr) {
    // Shown although it is Debug: the number is what later confirmations refer to.
    return stamp(clock) + "<" + nick + "> " + sanitize_for_terminal(ev->text) + "  (#" + std::to_string(ev->seq) + ")";
  }
  // Confirmation of our own messages, short.
  if (notice.kind == "fully_confirmed" && ev != nullptr && !style.self_nick.empty() && ev->nick == style.self_nick) {
    return stamp(clock) + "\xE2\x9C\x93 #" + std::to_string(ev->seq) + " confirmed by everyone";
  }
  if (notice.kind == "unconfirmed" && ev != nullptr) {
    return stamp(clock) + severity_prefix(Severity::Warning) + "#" + std::to_string(ev->seq) +
           " overdue: not confirmed by " + sanitize_for_terminal(join(ev->nicks)) + "; it may not have reached them";
  }
  if (notice.severity == Severity::Debug && !style.verbose) {
    return std::nullopt;
  }
  return stamp(clock) + severity_prefix(notice.severity) + sanitize_for_terminal(notice.text);
}

std::string error_line(std::string_view clock, std::string_view text) {
  return stamp(clock) + "! " + sanitize_for_terminal(text);
}

std::string info_line(std::string_view clock, std::string_view text) {
  return stamp(clock) + "* " + sanitize_for_terminal(text);
}

// --- lifecycle and command replies -----------------------------------------------------------------

nlohmann::json started_event(std::string_view nick, std::string_view jid, std::string_view room, const Fingerprint& fp,
                             TimeMs now) {
  return {{"event", "started"}, {"nick", nick},         {"jid", jid},
          {"room", room},       {"fingerprint", fp.grouped()}, {"time_ms", now}};
}

nlohmann::json state_event(std::string_view state, TimeMs now) {
  return {{"event", "state"}, {"state", state}, {"time_ms", now}};
}

nlohmann::json exit_event(int code, TimeMs now) { return {{"event", "exit"}, {"code", code}, {"time_ms", now}}; }

nlohmann::json command_error_event(std::string_view error, const nlohmann::json& id, TimeMs now) {
  return {{"event", "command_error"}, {"error", error}, {"id", id}, {"time_ms", now}};
}

nlohmann::json command_ok_event(std::string_view cmd, const nlohmann::json& id, TimeMs now) {
  return {{"event", "command_ok"}, {"cmd", cmd}, {"id", id}, {"time_ms", now}};
}

// --- /who -------------------------------------------------------------------------------------

WhoView make_who_view(const RoomHost& host, const SelfInfo& self) {
  WhoView who;
  who.self_nick = self_nick_of(host, self);
  who.self_jid = self.jid;
  who.self_fingerprint = host.fingerprint();
  who.phase = host.phase();
  const auto session = host.session();
  if (session) {
    who.session = session->session_id;
  }
  auto session_member = [&](std::string_view nick) -> const MemberInfo* {
    if (!session) {
      return nullptr;
    }
    for (const auto& m : session->members) {
      if (m.nick == nick) {
        return &m;
      }
    }
    return nullptr;
  };
  auto fill = [&](WhoEntry& e) {
    if (const MemberInfo* m = session_member(e.nick)) {
      e.in_session = true;
      e.fingerprint = m->fingerprint;
      e.fingerprint_source = "session";
      if (e.jid.empty()) {
        e.jid = m->jid;
      }
    } else if (host.trust() != nullptr && !e.jid.empty()) {
      if (const TrustRecord* r = host.trust()->find(e.jid)) {
        e.fingerprint = r->fingerprint;
        e.fingerprint_source = "recorded";
      }
    }
    e.trust = trust_of(host, e.jid);
  };
  for (const auto& [nick, occupant] : host.occupants()) {
    WhoEntry e;
    e.nick = nick;
    e.jid = occupant.real_jid;
    fill(e);
    who.others.push_back(std::move(e));
  }
  if (session) {
    for (const auto& m : session->members) {
      if (m.nick == who.self_nick || host.occupants().contains(m.nick)) {
        continue;
      }
      WhoEntry e;
      e.nick = m.nick;
      e.jid = m.jid;
      e.in_room = false;
      fill(e);
      who.others.push_back(std::move(e));
    }
  }
  std::sort(who.others.begin(), who.others.end(), [](const WhoEntry& a, const WhoEntry& b) { return a.nick < b.nick; });
  return who;
}

nlohmann::json who_to_json(const WhoView& who, const nlohmann::json& id, TimeMs now) {
  nlohmann::json occupants = nlohmann::json::array();
  for (const auto& e : who.others) {
    occupants.push_back({
        {"nick", e.nick},
        {"jid", e.jid.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.jid)},
        {"in_room", e.in_room},
        {"in_session", e.in_session},
        {"fingerprint", e.fingerprint ? nlohmann::json(e.fingerprint->grouped()) : nlohmann::json(nullptr)},
        {"fingerprint_source", e.fingerprint_source.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.fingerprint_source)},
        {"trust", trust_name(e.trust)},
    });
  }
  return {
      {"event", "who"},
      {"occupants", std::move(occupants)},
      {"self", {{"nick", who.self_nick}, {"jid", who.self_jid}, {"fingerprint", who.self_fingerprint.grouped()}}},
      {"session", session_json(who.session)},
      {"phase", to_string(who.phase)},
      {"id", id},
      {"time_ms", now},
  };
}

std::vector<std::string> who_to_lines(const WhoView& who) {
  std::vector<std::string> lines;
  std::size_t in_room = 0;
  for (const auto& e : who.others) {
    in_room += e.in_room ? 1 : 0;
  }
  lines.push_back("Room: you and " + std::to_string(in_room) + " other occupant(s); " +
                  (who.session ? "secured session " + short_session_id(*who.session) : std::string("no secured session")) +
                  " (" + std::string(to_string(who.phase)) + ")");
  lines.push_back("  " + sanitize_for_terminal(who.self_nick) + " (you) <" + sanitize_for_terminal(who.self_jid) +
                  ">  fingerprint " + who.self_fingerprint.grouped());
  for (const auto& e : who.others) {
    std::string line = "  " + sanitize_for_terminal(e.nick) + " <" +
                       (e.jid.empty() ? std::string("JID hidden") : sanitize_for_terminal(e.jid)) + ">  trust: " +
                       trust_name(e.trust) + ", " + (e.in_session ? "in the session" : "NOT in the session");
    if (!e.in_room) {
      line += ", has left the room";
    }
    if (e.fingerprint) {
      line += ", fingerprint " + e.fingerprint->grouped();
      if (e.fingerprint_source == "recorded") {
        line += " (recorded)";
      }
    } else {
      line += ", fingerprint unknown";
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

// --- /status ----------------------------------------------------------------------------------

StatusView make_status_view(const RoomHost& host, std::string_view state) {
  StatusView s;
  s.state = std::string(state);
  s.phase = host.phase();
  if (const auto session = host.session()) {
    s.session = session->session_id;
    for (const auto& m : session->members) {
      s.members.push_back(m.nick);
    }
    s.confirmations_needed = session->members.empty() ? 0 : session->members.size() - 1;
  }
  s.sent = host.sent();
  return s;
}

nlohmann::json status_to_json(const StatusView& status, const nlohmann::json& id, TimeMs now) {
  nlohmann::json sent = nlohmann::json::array();
  for (const SentStatus& m : status.sent) {
    sent.push_back({
        {"seq", m.seq},
        {"confirmed_by", std::vector<std::string>(m.confirmed_by.begin(), m.confirmed_by.end())},
        {"fully_confirmed", m.fully_confirmed},
        {"overdue", m.overdue},
    });
  }
  return {
      {"event", "status"},
      {"state", status.state},
      {"phase", to_string(status.phase)},
      {"session", session_json(status.session)},
      {"members", status.members},
      {"confirmations_needed", status.confirmations_needed},
      {"sent", std::move(sent)},
      {"id", id},
      {"time_ms", now},
  };
}

std::vector<std::string> status_to_lines(const StatusView& status) {
  std::vector<std::string> lines;
  lines.push_back("Connection: " + status.state + "; session: " + std::string(to_string(status.phase)) +
                  (status.session ? " " + short_session_id(*status.session) : std::string()));
  lines.push_back("Members: " + (status.members.empty() ? std::string("none") : sanitize_for_terminal(join(status.members))));
  if (status.sent.empty()) {
    lines.push_back("Your messages in this session: none");
    return lines;
  }
  const std::size_t first = status.sent.size() > kStatusRecentMessages ? status.sent.size() - kStatusRecentMessages : 0;
  lines.push_back("Your recent messages:");
  for (std::size_t i = first; i < status.sent.size(); ++i) {
    const SentStatus& m = status.sent[i];
    std::string line = "  #" + std::to_string(m.seq) + ": ";
    if (m.fully_confirmed) {
      line += "confirmed by everyone";
    } else {
      line += "confirmed by " + std::to_string(m.confirmed_by.size()) + "/" + std::to_string(status.confirmations_needed);
      if (!m.confirmed_by.empty()) {
        line += " (" + sanitize_for_terminal(join(std::vector<std::string>(m.confirmed_by.begin(), m.confirmed_by.end()))) + ")";
      }
      if (m.overdue) {
        line += ", OVERDUE";
      }
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

// --- /fingerprint -----------------------------------------------------------------------------

Result<FingerprintView> find_fingerprint(const RoomHost& host, const SelfInfo& self, std::string_view nick) {
  const std::string self_nick = self_nick_of(host, self);
  FingerprintView v;
  if (nick.empty() || nick == self_nick) {
    v.nick = self_nick;
    v.jid = self.jid;
    v.fingerprint = host.fingerprint();
    v.self = true;
    v.source = "self";
    v.trust = TrustLevel::Verified;  // our own key
    return v;
  }
  const WhoView who = make_who_view(host, self);
  for (const auto& e : who.others) {
    if (e.nick != nick) {
      continue;
    }
    if (!e.fingerprint) {
      return make_error(ErrorCode::InvalidArgument,
                        "no key known for " + e.nick + " yet: they are not in the secured session and have no recorded key");
    }
    v.nick = e.nick;
    v.jid = e.jid;
    v.fingerprint = *e.fingerprint;
    v.source = e.fingerprint_source;
    v.trust = e.trust;
    return v;
  }
  return make_error(ErrorCode::InvalidArgument, "no occupant called '" + std::string(nick) + "' (see /who)");
}

nlohmann::json fingerprint_to_json(const FingerprintView& fp, const nlohmann::json& id, TimeMs now) {
  return {
      {"event", "fingerprint"},
      {"nick", fp.nick},
      {"jid", fp.jid.empty() ? nlohmann::json(nullptr) : nlohmann::json(fp.jid)},
      {"fingerprint", fp.fingerprint.grouped()},
      {"self", fp.self},
      {"source", fp.source},
      {"trust", fp.self ? std::string("self") : trust_name(fp.trust)},
      {"id", id},
      {"time_ms", now},
  };
}

std::string fingerprint_to_line(const FingerprintView& fp) {
  if (fp.self) {
    return "Your fingerprint (" + sanitize_for_terminal(fp.jid) + "): " + fp.fingerprint.grouped();
  }
  return "Fingerprint of " + sanitize_for_terminal(fp.nick) + " <" +
         (fp.jid.empty() ? std::string("JID hidden") : sanitize_for_terminal(fp.jid)) + ">: " + fp.fingerprint.grouped() +
         " (" + (fp.source == "session" ? "key in use in this session" : "recorded key") + ", trust: " + trust_name(fp.trust) +
         ")";
}

}  // namespace mpotr::chat
