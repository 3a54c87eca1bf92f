// SPDX-License-Identifier: MIT
#include "mpotr/otp/room_mode.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "mpotr/limits.h"
#include "mpotr/otp/bundle.h"

namespace mpotr::otp {
namespace {

using transport::Notice;
using transport::RoomHost;
using transport::Severity;

Notice notice(std::string kind, Severity severity, std::string text, std::string nick = {}) {
  return transport::make_notice(std::move(kind), severity, std::move(text), std::move(nick));
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// The authenticated nick → JID binding of the current session, or the room's (presence) one.
std::string jid_of(const RoomHost& host, std::string_view nick) {
  if (const auto s = host.session()) {
    for (const auto& m : s->members) {
      if (m.nick == nick) return m.jid;
    }
  }
  const auto it = host.occupants().find(nick);
  return it == host.occupants().end() ? std::string() : it->second.real_jid;
}

std::string nick_of(const RoomHost& host, std::string_view jid) {
  if (const auto s = host.session()) {
    for (const auto& m : s->members) {
      if (m.jid == jid) return m.nick;
    }
  }
  return std::string(jid);
}

// Members of the current session other than us.
std::vector<MemberInfo> others_of(const SessionInfo& s) {
  std::vector<MemberInfo> out;
  for (std::size_t i = 0; i < s.members.size(); ++i) {
    if (i != s.self_index) out.push_back(s.members[i]);
  }
  return out;
}

// The recipient set of a group message: us and the members it goes to, sorted (O-27).
std::vector<std::string> recipient_set(const MemberInfo& self, const std::vector<MemberInfo>& to) {
  std::vector<std::string> r{self.jid};
  for (const auto& m : to) r.push_back(m.jid);
  std::sort(r.begin(), r.end());
  return r;
}

const DeviceContact* find_contact(const DeviceStatus& status, std::string_view jid) {
  const auto it = std::find_if(status.contacts.begin(), status.contacts.end(),
                               [&](const DeviceContact& c) { return c.contact == jid; });
  return it == status.contacts.end() ? nullptr : &*it;
}

// Pad bytes one copy of a group message costs, and its packet length.
Result<std::size_t> group_cost(const std::vector<std::string>& recipients, std::size_t body_len) {
  Plaintext probe;
  probe.type = MessageType::Group;
  probe.group = GroupContext{{}, recipients};
  probe.body.resize(body_len);
  return pad_cost(probe);
}

std::string bytes_text(std::uint64_t n) {
  if (n >= 10u * 1024 * 1024) return std::to_string(n / (1024 * 1024)) + " MiB";
  if (n >= 10u * 1024) return std::to_string(n / 1024) + " KiB";
  return std::to_string(n) + " bytes";
}

bool valid_alias_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxAliasNameLen) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; });
}

}  // namespace

Result<PadReport> OtpRoomMode::check(const RoomHost& host) {
  if (m_device == nullptr) return make_error(ErrorCode::InvalidState, "no pad device connected");
  PadReport report;
  const auto session = host.session();
  if (!session) {
    report.notices.push_back(notice("otp_pads", Severity::Info, "No secure session yet: pads are checked when it starts"));
    return report;
  }
  MPOTR_TRY(auto status, m_device->status());
  const auto& self = session->members[session->self_index];
  if (status.me != self.jid) {
    report.notices.push_back(notice("otp_pads", Severity::Warning,
                                    "The pad device holds pads for " + status.me + ", but you are " + self.jid +
                                        " in this room: OTP messages cannot be sent"));
    return report;
  }
  const auto others = others_of(*session);
  MPOTR_TRY(std::size_t typical, group_cost(recipient_set(self, others), kTypicalMessageLen));
  bool all_ok = !others.empty();
  for (const auto& m : others) {
    const DeviceContact* it = find_contact(status, m.jid);
    const std::string who = m.nick + " (" + m.jid + ")";
    if (it == nullptr) {
      all_ok = false;
      report.notices.push_back(notice("otp_pads", Severity::Warning,
                                      "No pad shared with " + who + ": OTP messages cannot be sent while " + m.nick +
                                          " is in the session",
                                      m.nick));
    } else if (it->health != "healthy") {
      all_ok = false;
      report.notices.push_back(notice("otp_pads", Severity::Warning,
                                      "The pad shared with " + who + " is " + it->health +
                                          ": OTP messages cannot be sent to " + m.nick,
                                      m.nick));
    } else if (it->send_remaining < kLowPadBytes) {
      if (it->send_remaining < typical) all_ok = false;
      report.notices.push_back(notice("otp_pads", Severity::Warning,
                                      "The pad shared with " + who + " runs low: " + bytes_text(it->send_remaining) +
                                          " left, about " + std::to_string(it->send_remaining / typical) +
                                          " messages of " + std::to_string(kTypicalMessageLen) + " bytes",
                                      m.nick));
    } else {
      report.notices.push_back(notice("otp_pads", Severity::Info,
                                      "Pad with " + who + ": " + bytes_text(it->send_remaining) + " left, about " +
                                          std::to_string(it->send_remaining / typical) + " messages of " +
                                          std::to_string(kTypicalMessageLen) + " bytes",
                                      m.nick));
    }
  }
  if (others.empty()) {
    report.notices.push_back(notice("otp_pads", Severity::Info, "Nobody else is in the session"));
  }
  report.can_send = all_ok;
  return report;
}

Result<PadReport> OtpRoomMode::enable(const RoomHost& host) {
  MPOTR_TRY(auto report, check(host));
  m_enabled = true;
  report.notices.push_back(notice(
      "otp_mode", report.can_send || !host.session() ? Severity::Info : Severity::Warning,
      std::string("OTP mode on: every line is now encrypted with the one-time pads shared with each member") +
          (report.can_send || !host.session() ? "" : ". Lines are refused until every member has a usable pad")));
  return report;
}

Result<std::string> OtpRoomMode::seal(const RoomHost& host, std::string_view text, std::string_view alias_name) {
  // The phase, not just a session: a session that is closing or being replaced would refuse the
  // bundle after the device had used pad for it.
  const auto session = host.session();
  if (!session || host.phase() != Phase::Established) {
    return make_error(ErrorCode::NotReady, "the session is not secure yet (" + std::string(to_string(host.phase())) +
                                               "). Nothing leaves unencrypted; send it again once the session is secure");
  }
  if (m_device == nullptr) return make_error(ErrorCode::InvalidState, "no pad device connected: nothing was sent");
  const auto& self = session->members[session->self_index];
  const auto members = others_of(*session);
  std::vector<MemberInfo> to;
  if (alias_name.empty()) {
    to = members;
  } else {
    const auto a = std::find_if(m_aliases.begin(), m_aliases.end(), [&](const Alias& x) { return x.name == alias_name; });
    if (a == m_aliases.end()) {
      return make_error(ErrorCode::InvalidArgument, "no alias '" + std::string(alias_name) + "': nothing was sent");
    }
    for (const auto& jid : a->jids) {
      const auto m = std::find_if(members.begin(), members.end(), [&](const MemberInfo& x) { return x.jid == jid; });
      if (m == members.end()) {
        return make_error(ErrorCode::InvalidArgument, jid + " (alias '" + a->name +
                                                          "') is not in this session: nothing was sent");
      }
      to.push_back(*m);
    }
  }
  if (to.empty()) return make_error(ErrorCode::NotReady, "nobody else is in the session: nothing was sent");
  if (text.size() > kMaxBody) {
    return make_error(ErrorCode::LimitExceeded, "an OTP message holds at most " + std::to_string(kMaxBody) + " bytes");
  }
  const std::vector<std::string> recipients = recipient_set(self, to);
  MPOTR_TRY(std::size_t cost, group_cost(recipients, text.size()));

  // The bundle must fit in one mpOTR message: say how long a line may be, before any pad is used.
  // Each byte of the line adds one byte to every copy.
  std::vector<std::pair<std::size_t, std::size_t>> empty_copies;
  for (const auto& m : to) empty_copies.emplace_back(m.jid.size(), kPacketOverhead + cost - kMacKeySize - text.size());
  const std::size_t raw_without_text = bundle_raw_size(empty_copies);
  if (bundle_text_size(raw_without_text + to.size() * text.size()) > kMaxTextLen) {
    const std::size_t raw_max = bundle_raw_capacity(kMaxTextLen);
    const std::size_t body_max = raw_max > raw_without_text ? (raw_max - raw_without_text) / to.size() : 0;
    return make_error(ErrorCode::LimitExceeded, "too long for an OTP message to " + std::to_string(to.size()) +
                                                    " members: at most " + std::to_string(body_max) +
                                                    " bytes (nothing was sent)");
  }

  // Every recipient's pad, checked before the device is asked to use any.
  MPOTR_TRY(auto status, m_device->status());
  if (status.me != self.jid) {
    return make_error(ErrorCode::InvalidArgument, "the pad device holds pads for " + status.me + ", but you are " +
                                                      self.jid + " in this room: nothing was sent");
  }
  for (const auto& m : to) {
    const DeviceContact* it = find_contact(status, m.jid);
    const std::string who = m.nick + " (" + m.jid + ")";
    if (it == nullptr) {
      return make_error(ErrorCode::InvalidArgument, "no pad shared with " + who +
                                                        ": nothing was sent (/otp off sends with mpOTR only)");
    }
    if (it->health != "healthy") {
      return make_error(ErrorCode::InvalidState, "the pad shared with " + who + " is " + it->health + ": nothing was sent");
    }
    if (it->send_remaining < cost) {
      return make_error(ErrorCode::LimitExceeded, "the pad shared with " + who + " is too low: " +
                                                      std::to_string(it->send_remaining) + " bytes left, " +
                                                      std::to_string(cost) + " needed (nothing was sent)");
    }
  }

  std::vector<std::string> jids;
  for (const auto& m : to) jids.push_back(m.jid);
  MPOTR_TRY(auto sealed, m_device->package_group(jids, as_bytes(text)));
  if (sealed.group.recipients != recipients || sealed.packets.size() != to.size()) {
    // The device disagrees on who gets this message: do not send what receivers would refuse.
    return make_error(ErrorCode::InvalidState, "the pad device packaged the message for " +
                                                   join(sealed.group.recipients) + ", not " + join(recipients) +
                                                   ": nothing was sent");
  }
  Bundle bundle;
  for (auto& p : sealed.packets) bundle.copies.push_back({p.contact, std::move(p.packet)});
  MPOTR_TRY(std::string bundle_text, encode_bundle_text(std::move(bundle)));
  if (m_pending.size() >= kMaxPendingOwn) m_pending.pop_front();
  m_pending.push_back({bundle_text, std::string(text), jids});
  return bundle_text;
}

void OtpRoomMode::rewrite(const RoomHost& host, std::vector<Notice>& notices) {
  std::vector<Notice> out;
  out.reserve(notices.size());
  for (auto& n : notices) {
    if (!n.event) {
      out.push_back(std::move(n));
      continue;
    }
    if (n.kind == "sent") {
      const auto it = std::find_if(m_pending.begin(), m_pending.end(),
                                   [&](const Pending& p) { return p.bundle_text == n.event->text; });
      if (it != m_pending.end()) {
        n.kind = "otp_sent";
        n.event->text = it->text;
        n.event->nicks.clear();
        for (const auto& jid : it->recipients) n.event->nicks.push_back(nick_of(host, jid));
        m_pending.erase(it);
      }
      out.push_back(std::move(n));
      continue;
    }
    if (n.kind == "message") {
      std::vector<Notice> extra;
      open_received(host, n, extra);
      out.push_back(std::move(n));
      for (auto& e : extra) out.push_back(std::move(e));
      continue;
    }
    out.push_back(std::move(n));
  }
  notices = std::move(out);
}

void OtpRoomMode::open_received(const RoomHost& host, Notice& n, std::vector<Notice>& extra) {
  auto decoded = decode_bundle_text(n.event->text);
  const std::string nick = n.event->nick.empty() ? n.nick : n.event->nick;
  const bool late = n.event->late;
  auto fail = [&](Severity s, const std::string& text, std::optional<ErrorCode> code) {
    n.kind = "otp_failed";
    n.severity = s;
    n.text = text;
    n.code = code;
    n.event->text.clear();
  };
  if (!decoded) {
    fail(Severity::Alert, nick + " sent a malformed OTP message (" + decoded.error().detail + ")", decoded.error().code);
    return;
  }
  if (!decoded.value()) return;  // an ordinary mpOTR message
  const Bundle& bundle = **decoded;
  const auto session = host.session();
  const std::string sender = jid_of(host, nick);
  if (!session || sender.empty()) {
    fail(Severity::Warning, "An OTP message from " + nick + " arrived, but " + nick + "'s JID is unknown: not opened",
         ErrorCode::NotAMember);
    return;
  }
  const std::string self = session->members[session->self_index].jid;
  std::vector<std::string> copy_recipients;
  for (const auto& c : bundle.copies) copy_recipients.push_back(c.recipient);
  const BundleCopy* mine = bundle.find(self);
  if (mine == nullptr) {
    std::vector<std::string> names;
    for (const auto& r : copy_recipients) names.push_back(nick_of(host, r));
    n.kind = "otp_not_for_you";
    n.severity = Severity::Info;
    n.text = nick + " sent an OTP message to " + join(names) + " (not to you)";
    n.event->text.clear();
    n.event->nicks = names;
    return;
  }
  if (m_device == nullptr) {
    fail(Severity::Warning, nick + " sent you an OTP message, but no pad device is connected: it cannot be read",
         ErrorCode::InvalidState);
    return;
  }
  auto opened = m_device->unpackage(sender, mine->packet);
  if (!opened) {
    const auto& e = opened.error();
    const std::string what = "The OTP message from " + nick;
    switch (e.code) {
      case ErrorCode::BadMac:
        fail(Severity::Alert, what + " failed its one-time MAC: forged or corrupted. Nothing was decrypted, no pad used",
             e.code);
        break;
      case ErrorCode::Replay:
      case ErrorCode::Duplicate:
        fail(Severity::Alert, what + " reuses pad already read: a replay, refused", e.code);
        break;
      case ErrorCode::NickMismatch:
        fail(Severity::Alert, what + " was made with another member's pad: refused (" + e.detail + ")", e.code);
        break;
      case ErrorCode::UnknownSession:
        fail(Severity::Warning, what + " uses a pad your device does not hold", e.code);
        break;
      default:
        fail(Severity::Warning, what + " could not be opened: " + e.detail, e.code);
        break;
    }
    return;
  }
  DeviceOpened& m = opened.value();
  if (m.type != MessageType::Group || !m.group) {
    fail(Severity::Alert, "The OTP message from " + nick + " is a one-to-one packet, not a group message: refused",
         ErrorCode::UnexpectedMessage);
    return;
  }
  // The pad authenticates the recipient list; the copies in the bundle must match it exactly.
  std::set<std::string> said(m.group->recipients.begin(), m.group->recipients.end());
  std::set<std::string> sent(copy_recipients.begin(), copy_recipients.end());
  sent.insert(sender);
  if (said != sent || said.size() != m.group->recipients.size()) {
    fail(Severity::Alert, "The OTP message from " + nick + " names recipients (" + join(m.group->recipients) +
                              ") other than those it was sent to: refused",
         ErrorCode::RosterMismatch);
    return;
  }
  std::vector<std::string> outside;
  std::set<std::string> in_session;
  for (const auto& member : session->members) in_session.insert(member.jid);
  for (const auto& r : said) {
    if (in_session.count(r) == 0) outside.push_back(r);
  }
  n.kind = "otp_message";
  n.severity = Severity::Info;
  n.text = std::string(reinterpret_cast<const char*>(m.body.view().data()), m.body.size());
  n.event->text = n.text;
  if (late) n.text += " [arrived late, after later messages]";
  n.event->nicks.clear();
  if (said != in_session) {
    for (const auto& r : m.group->recipients) {
      if (r != sender) n.event->nicks.push_back(r == self ? std::string("you") : nick_of(host, r));
    }
  }
  if (!outside.empty()) {
    extra.push_back(notice("otp_recipients", Severity::Warning,
                           nick + "'s OTP message was also sent to " + join(outside) + ", not in this session", nick));
  }
  for (const auto& w : m.warnings) {
    if (w == "skipped_offset") {
      extra.push_back(notice("otp_gap", Severity::Warning,
                             "Pad between " + nick + " and you was skipped: an earlier OTP message from " + nick +
                                 " may never have arrived (or " + nick + "'s device restarted)",
                             nick));
    }
  }
}

Result<void> OtpRoomMode::define_alias(const RoomHost& host, std::string name, const std::vector<std::string>& members) {
  if (!valid_alias_name(name)) {
    return make_error(ErrorCode::InvalidArgument, "an alias name is 1-" + std::to_string(kMaxAliasNameLen) +
                                                      " letters, digits, '-' or '_'");
  }
  if (members.empty() || members.size() > kMaxBundleCopies) {
    return make_error(ErrorCode::InvalidArgument, "an alias names 1-" + std::to_string(kMaxBundleCopies) + " members");
  }
  const auto session = host.session();
  const std::string self = session ? session->members[session->self_index].jid : std::string();
  std::set<std::string> jids;
  for (const auto& m : members) {
    std::string jid = m.find('@') != std::string::npos ? m : jid_of(host, m);
    if (jid.empty()) return make_error(ErrorCode::InvalidArgument, "no member '" + m + "' with a known JID");
    if (jid.size() > kMaxRecipientLen) return make_error(ErrorCode::InvalidArgument, "JID too long: " + jid);
    if (jid == self) return make_error(ErrorCode::InvalidArgument, "an alias does not include yourself");
    if (!jids.insert(jid).second) return make_error(ErrorCode::InvalidArgument, jid + " is named twice");
  }
  Alias a{std::move(name), std::vector<std::string>(jids.begin(), jids.end())};
  const auto it = std::find_if(m_aliases.begin(), m_aliases.end(), [&](const Alias& x) { return x.name == a.name; });
  if (it != m_aliases.end()) {
    *it = std::move(a);
    return {};
  }
  if (m_aliases.size() >= kMaxAliases) {
    return make_error(ErrorCode::LimitExceeded, "at most " + std::to_string(kMaxAliases) + " aliases");
  }
  m_aliases.push_back(std::move(a));
  return {};
}

Result<void> OtpRoomMode::remove_alias(std::string_view name) {
  const auto it = std::find_if(m_aliases.begin(), m_aliases.end(), [&](const Alias& x) { return x.name == name; });
  if (it == m_aliases.end()) return make_error(ErrorCode::InvalidArgument, "no alias '" + std::string(name) + "'");
  m_aliases.erase(it);
  return {};
}

}  // namespace mpotr::otp
