// SPDX-License-Identifier: MIT
#include "support/xmpp_room.h"

#include <algorithm>
#include <stdexcept>

namespace mpotr::test {

using transport::MucClient;
using transport::Notice;
using transport::Severity;

XmppRooms::XmppRooms(XmppRoomOptions options) : m_options(std::move(options)) {}

XmppRooms::~XmppRooms() {
  // Leave abruptly and let libstrophe flush the closing stream briefly; the server cleans up.
  for (auto& m : m_members) {
    m->client->quit();
  }
  for (int i = 0; i < 20; ++i) {
    step(5);
  }
  m_members.clear();
}

TimeMs XmppRooms::now_ms() {
  return static_cast<TimeMs>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

XmppMember& XmppRooms::add(const std::string& nick, const std::string& room, std::uint16_t port_override) {
  auto m = std::make_unique<XmppMember>();
  m->nick = nick;
  m->room = room;
  if (m_options.deterministic_keys) {
    std::uint64_t seed = 0;
    for (char c : nick + "/" + room) {
      seed = seed * 131 + static_cast<unsigned char>(c);
    }
    m->rng = std::make_unique<DeterministicRng>(seed);
  } else {
    m->rng = std::make_unique<SystemRng>();
  }
  m->trust = std::make_unique<TrustStore>();
  auto identity = IdentityKey::generate(*m->rng);
  if (!identity.ok()) {
    throw std::runtime_error("identity: " + identity.error().detail);
  }
  const std::string jid = nick + "@localhost";
  transport::RoomHost host(transport::RoomHostConfig{room, jid, m_options.timeouts, m_options.roster_settle_ms},
                           std::move(identity).value(), m->trust.get());
  transport::XmppAccount account{jid, "pw-" + nick, m_options.host,
                                 port_override != 0 ? port_override : m_options.port, m_options.tls};
  transport::ReconnectPolicy reconnect;
  reconnect.enabled = m_options.reconnect;
  m->client = std::make_unique<MucClient>(m_loop, account, room, nick, std::move(host), *m->rng, reconnect);
  m_members.push_back(std::move(m));
  return *m_members.back();
}

XmppMember& XmppRooms::get(const std::string& nick, const std::string& room) {
  for (auto& m : m_members) {
    if (m->nick == nick && (room.empty() || m->room == room)) {
      return *m;
    }
  }
  throw std::out_of_range("no member " + nick);
}

void XmppRooms::start(XmppMember& m) { m.client->start(now_ms()); }

void XmppRooms::step(TimeMs wait_ms) {
  m_loop.run_once(wait_ms);
  const TimeMs now = now_ms();
  for (auto& m : m_members) {
    m->client->pump(now);
    for (auto& n : m->client->take_notices()) {
      ++m->counts[n.kind];
      if (m_options.keep_all_notices || n.severity >= Severity::Warning) {
        m->notices.push_back(std::move(n));
      }
    }
  }
}

bool XmppRooms::run_until(const std::function<bool()>& pred, TimeMs timeout_ms) {
  const TimeMs deadline = now_ms() + timeout_ms;
  while (!pred()) {
    if (now_ms() >= deadline) {
      return pred();
    }
    step(2);
  }
  return true;
}

void XmppRooms::run_for(TimeMs ms) {
  const TimeMs deadline = now_ms() + ms;
  while (now_ms() < deadline) {
    step(2);
  }
}

std::optional<Hash32> XmppRooms::session_of(const XmppMember& m) const {
  const auto& host = m.client->host();
  if (host.phase() != Phase::Established) {
    return std::nullopt;
  }
  const auto info = host.session();
  return info ? std::optional<Hash32>(info->session_id) : std::nullopt;
}

bool XmppRooms::secure_together(const std::vector<std::string>& nicks, const std::string& room) {
  std::vector<std::string> want = nicks;
  std::sort(want.begin(), want.end());
  std::optional<Hash32> sid;
  for (const auto& nick : nicks) {
    const XmppMember& m = get(nick, room);
    const auto info = m.client->host().session();
    if (m.client->host().phase() != Phase::Established || !info) {
      return false;
    }
    std::vector<std::string> have;
    for (const auto& mi : info->members) {
      have.push_back(mi.nick);
    }
    if (have != want) {
      return false;
    }
    if (sid && *sid != info->session_id) {
      return false;
    }
    sid = info->session_id;
  }
  return true;
}

std::size_t XmppRooms::count(const XmppMember& m, std::string_view kind) const {
  const auto it = m.counts.find(kind);
  return it == m.counts.end() ? 0 : it->second;
}

std::vector<std::string> XmppRooms::messages_from(const XmppMember& m, const std::string& author) const {
  std::vector<std::string> out;
  for (const auto& n : m.notices) {
    if (n.kind == "message" && n.nick == author && n.event) {
      out.push_back(n.event->text);
    }
  }
  return out;
}

std::string XmppRooms::problems(const XmppMember& m) const {
  std::string out;
  for (const auto& n : m.notices) {
    if (n.severity >= Severity::Warning) {
      out += std::string(n.kind) + ": " + n.text + "\n";
    }
  }
  return out;
}

std::string XmppRooms::dump(const XmppMember& m) const {
  std::string out = m.nick + " (" + std::string(transport::to_string(m.client->state())) + "):\n";
  for (const auto& n : m.notices) {
    out += "  [" + std::string(transport::to_string(n.severity)) + "] " + n.kind + ": " + n.text + "\n";
  }
  return out;
}

}  // namespace mpotr::test
