// SPDX-License-Identifier: MIT
#include "plugin/core/plugin_core.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include <sys/stat.h>
#include <unistd.h>

#include "mpotr/otp/bundle.h"
#include "mpotr/store/keyfile.h"
#include "mpotr/store/trust_file.h"
#include "mpotr/transport/stanza.h"
#include "otp/device/rpc_pad_device.h"
#include "plugin/smp/otr_verifier.h"
#include "plugin/smp/smp_secret.h"

namespace mpotr::plugin {

using transport::HostOutput;
using transport::MessageIn;
using transport::Notice;
using transport::PresenceIn;
using transport::Severity;
using transport::StanzaPtr;

namespace {

// What Profanity's message-stanza hook sends in place of a stanza it must not send: XML allows
// whitespace between stanzas (and servers read it as a keepalive), so nothing is transmitted.
constexpr const char* kSuppressed = " ";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string resource_of(std::string_view jid) {
  const auto slash = jid.find('/');
  return slash == std::string_view::npos ? std::string() : std::string(jid.substr(slash + 1));
}

Tone tone_of(Severity s) {
  switch (s) {
    case Severity::Alert:
      return Tone::Alert;
    case Severity::Warning:
      return Tone::Warning;
    default:
      return Tone::Info;
  }
}

// The member of the room's current session that `pick` chooses (none without a session).
// For a member out of the session (or while we are), member_named() below also knows the key
// the room showed for it: what a user verifies to let the session form with it (spec R-ADM-3).
template <class Pick>
std::optional<MemberInfo> session_member(const transport::RoomHost* host, Pick pick) {
  if (host == nullptr) return std::nullopt;
  const auto s = host->session();
  if (!s) return std::nullopt;
  for (const auto& m : s->members) {
    if (pick(m)) return m;
  }
  return std::nullopt;
}

std::optional<MemberInfo> member_named(const transport::RoomHost* host, std::string_view nick) {
  if (auto m = session_member(host, [&](const MemberInfo& x) { return x.nick == nick; })) return m;
  if (host == nullptr) return std::nullopt;
  const auto fp = host->identity_of(nick);
  const auto it = host->occupants().find(nick);
  if (!fp || it == host->occupants().end()) return std::nullopt;
  return MemberInfo{std::string(nick), it->second.real_jid, *fp};
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// RoomHost and OtpRoomMode word their advice for mpotr-chat's commands.
std::string plugin_wording(std::string text) {
  for (const auto& [from, to] : {std::pair<std::string_view, std::string_view>{"use /verify", "use /mpotr verify"},
                                 {" <fingerprint>", ""},
                                 {"or /trust", "or /mpotr trust"},
                                 {"/otp off", "/mpotr otp off"}}) {
    const auto at = text.find(from);
    if (at != std::string::npos) text.replace(at, from.size(), to);
  }
  return text;
}

// How an OTP line is marked: "[OTP] " when it went to the whole session, else who got it.
std::string otp_mark(const std::vector<std::string>& to) {
  return to.empty() ? std::string("[OTP] ") : "[OTP to " + join(to) + "] ";
}

// Whether a batch holds an OTP bundle someone sent (its "message" notice, before rewriting).
bool carries_bundle(const std::vector<Notice>& notices) {
  return std::any_of(notices.begin(), notices.end(), [](const Notice& n) {
    return n.kind == "message" && n.event && n.event->text.starts_with(otp::kBundlePrefix);
  });
}

std::string excerpt(const std::string& text) {
  constexpr std::size_t kMax = 40;
  return text.size() <= kMax ? text : text.substr(0, kMax) + "…";
}

// Profanity names account directories after the JID with '@' replaced; do the same, and keep
// anything else that could walk out of the directory away.
std::string account_dir_name(std::string_view bare) {
  std::string out;
  for (char c : bare) {
    if (c == '@') {
      out += "_at_";
    } else if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_') {
      out += c;
    } else {
      out += '_';
    }
  }
  return out;
}

}  // namespace

std::string default_pad_socket() {
  const char* env = std::getenv("MPOTR_PAD_SOCKET");
  if (env != nullptr && env[0] != '\0') return env;
  // The same place mpotr-padd's README puts it.
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime != nullptr && runtime[0] == '/') return std::string(runtime) + "/mpotr/padd.sock";
  return "/tmp/mpotr-" + std::to_string(::getuid()) + "/padd.sock";
}

PluginCore::PluginCore(Ui& ui, PluginPaths paths, std::unique_ptr<Rng> rng)
    : m_ui(ui),
      m_paths(std::move(paths)),
      m_rng(std::move(rng)),
      m_pad_socket(default_pad_socket()) {}

PluginCore::~PluginCore() = default;

// ---------------------------------------------------------------------------------------------
// Account

void PluginCore::on_connect(std::string_view full_jid, TimeMs now) {
  (void)now;
  const std::string bare = lower(transport::bare_jid(full_jid));
  if (bare.empty() || bare.find('@') == std::string::npos) {
    m_ui.console_line(Tone::Alert, "mpOTR: cannot tell which account is logged in ('" + std::string(full_jid) + "')");
    return;
  }
  if (m_identity_path && bare == m_account) {
    m_full_jid = std::string(full_jid);
    return;  // reconnect of the same account
  }
  const std::string dir = m_paths.data_dir + "/" + account_dir_name(bare);
  const std::string identity_path = dir + "/identity.key";
  bool created = false;
  auto identity = store::load_or_create_identity(identity_path, *m_rng, &created);
  if (!identity.ok()) {
    m_ui.console_line(Tone::Alert, "mpOTR: cannot use the identity key " + identity_path + ": " + identity.error().detail +
                                       ". mpOTR stays off for this account.");
    return;
  }
  auto trust = store::load_trust(dir + "/trust.json");
  if (!trust.ok()) {
    m_ui.console_line(Tone::Alert, "mpOTR: cannot read the trust store " + dir + "/trust.json: " + trust.error().detail +
                                       ". mpOTR stays off for this account; fix or move the file.");
    return;
  }
  m_account = bare;
  m_full_jid = std::string(full_jid);
  m_identity_path = identity_path;
  m_trust_path = dir + "/trust.json";
  m_trust = std::move(trust).value();
  m_policy_path = dir + "/verified-only-rooms";
  auto policy = load_verified_rooms(m_policy_path);
  if (policy.ok()) {
    m_verified_only = std::move(policy).value();
  } else {
    // Unreadable: no room is verified-only this run, and the user is told, so a setting is
    // never lost silently (the file is left as it is).
    m_verified_only.clear();
    m_ui.console_line(Tone::Alert, "mpOTR: cannot read the room policies " + m_policy_path + ": " + policy.error().detail +
                                       ". No room is \"verified only\" until you fix the file or set /mpotr policy again.");
  }
  auto otr = OtrVerifier::open(dir + "/otr", bare);
  if (otr.ok()) {
    m_otr = std::move(otr).value();
  } else {
    m_ui.console_line(Tone::Warning, "mpOTR: key verification by secret (SMP) is unavailable: " + otr.error().detail);
  }
  m_ui.console_line(Tone::Info, std::string("mpOTR: ") + (created ? "created" : "loaded") + " the identity key of " + bare +
                                    ", fingerprint " + identity.value().fingerprint().grouped());
}

void PluginCore::on_disconnect(TimeMs now) {
  (void)now;
  for (auto& [jid, r] : m_rooms) {
    if (r.host) {
      apply(r, r.host->on_disconnected("the connection was lost"));
      drop_session(r);
      show(jid, Tone::Warning, "mpOTR: disconnected; the session here is over. It restarts when you rejoin.");
    }
  }
  m_rooms.clear();
  m_pending.reset();
  m_verifications.clear();
  if (m_otr) m_otr->forget_all();
}

void PluginCore::shutdown(TimeMs now) {
  for (auto& [jid, r] : m_rooms) {
    if (r.host) {
      quit_session(r, now);
      // Withdraw the marker so the others re-key without us at once instead of timing out.
      send_marker_presence(r, false);
      drop_session(r);
      show(jid, Tone::Warning, "mpOTR: the plugin was unloaded; this room is no longer encrypted.");
    }
  }
  m_rooms.clear();
  m_wanted.clear();
  m_otp_wanted.clear();
  m_rpc_pad.reset();
  m_pending.reset();
  m_verifications.clear();
  if (m_otr) {
    m_otr->forget_all();
    m_otr.reset();
  }
}

// ---------------------------------------------------------------------------------------------
// Rooms

PluginCore::Room* PluginCore::room(std::string_view jid) {
  auto it = m_rooms.find(lower(jid));
  return it == m_rooms.end() ? nullptr : &it->second;
}

PluginCore::Room* PluginCore::secured_room(std::string_view jid) {
  Room* r = room(jid);
  return r != nullptr && r->host ? r : nullptr;
}

bool PluginCore::secured(std::string_view room_jid) const {
  auto it = m_rooms.find(lower(room_jid));
  return it != m_rooms.end() && it->second.host != nullptr;
}

const transport::RoomHost* PluginCore::host(std::string_view room_jid) const {
  auto it = m_rooms.find(lower(room_jid));
  return it == m_rooms.end() ? nullptr : it->second.host.get();
}

bool PluginCore::otp_enabled(std::string_view room_jid) const {
  auto it = m_rooms.find(lower(room_jid));
  return it != m_rooms.end() && it->second.otp && it->second.otp->enabled();
}

void PluginCore::show(const std::string& room_jid, Tone tone, const std::string& text) {
  if (room_jid.empty() || !m_ui.room_line(room_jid, tone, text)) {
    m_ui.console_line(tone, room_jid.empty() ? text : room_jid + ": " + text);
  }
}

std::string PluginCore::next_id() {
  const auto r = m_rng->array<6>();
  static const char* digits = "0123456789abcdef";
  std::string id = "mpotr-" + std::to_string(++m_id_counter) + "-";
  for (auto b : r) {
    id += digits[b >> 4];
    id += digits[b & 15];
  }
  return id;
}

void PluginCore::send_marker_presence(Room& r, bool with) {
  StanzaPtr base;
  if (!r.last_presence.empty()) {
    base = m_xml.parse(r.last_presence);
  }
  if (!base) {
    base.reset(xmpp_presence_new(m_xml.ctx()));
    const std::string to = r.jid + "/" + r.self_nick;
    xmpp_stanza_set_to(base.get(), to.c_str());
  }
  // A presence update, not a join: without the MUC element (no history request, no rejoin).
  StanzaPtr update = copy_without(m_xml.ctx(), base.get(), "x", transport::kMucNs);
  if (with) {
    update = with_marker(m_xml.ctx(), update.get(), r.host ? r.host->marker() : transport::Marker::In);
  } else {
    update = copy_without(m_xml.ctx(), update.get(), transport::kPayloadElement, transport::kPayloadNs);
  }
  m_ui.send_stanza(transport::stanza_text(update.get()));
}

void PluginCore::start(Room& r, TimeMs now) {
  auto identity = store::load_identity(*m_identity_path);
  if (!identity.ok()) {
    show(r.jid, Tone::Alert, "mpOTR: cannot load the identity key: " + identity.error().detail);
    return;
  }
  transport::RoomHostConfig config;
  config.room = r.jid;
  config.self_jid = m_account;
  config.admission = m_verified_only.contains(r.jid) ? AdmissionPolicy::VerifiedOnly : AdmissionPolicy::Trusted;
  r.host = std::make_unique<transport::RoomHost>(std::move(config), std::move(identity).value(), &m_trust);
  r.sent_text.clear();
  r.key_published = false;
  r.end_deadline.reset();
  m_wanted.insert(r.jid);
  HostOutput out;
  for (const auto& [nick, p] : r.occupants) {
    out.merge(r.host->on_occupant_present(transport::Occupant{nick, p.real_jid, p.mpotr, p.mpotr_out}, now, *m_rng));
  }
  out.merge(r.host->on_self_present(r.self_nick, r.shows_jids, now, *m_rng));
  send_marker_presence(r, true);
  m_ui.room_encrypted_char(r.jid, true);
  show(r.jid, Tone::Info,
       "mpOTR: securing this room. Members with mpOTR join the session; lines are only sent once it is secure.");
  r.otp.emplace(pad_device(false));
  if (m_otp_wanted.contains(r.jid)) {
    // Before the session exists, enabling checks no pad; the pads are checked once it is secure.
    r.otp->set_device(pad_device(true));
    auto on = r.otp->enable(*r.host);
    if (on.ok()) {
      show(r.jid, Tone::Info, "mpOTR: OTP mode is on again in this room (you turned it on before the session restarted).");
    } else {
      show(r.jid, Tone::Alert, "mpOTR: OTP mode could not be turned on again: " + on.error().detail +
                                   ". Lines are protected by mpOTR only; /mpotr otp on to retry.");
    }
  }
  apply(r, std::move(out));
  refresh_completions(r);
}

// Our Quit for every open session (R-SD-17): the others learn that we accept nothing more and
// may publish their keys; ours stay withheld. The caller ends the room itself.
void PluginCore::quit_session(Room& r, TimeMs now) {
  HostOutput out = r.host->quit(now, *m_rng);
  out.leave_room = false;
  apply(r, std::move(out));
}

void PluginCore::drop_session(Room& r) {
  r.otp.reset();
  r.host.reset();
  r.end_deadline.reset();
  r.title.clear();
  m_ui.room_title(r.jid, "");
  m_ui.room_encrypted_char(r.jid, false);
}

void PluginCore::finish_end(Room& r, const std::string& why) {
  send_marker_presence(r, false);
  drop_session(r);
  m_wanted.erase(r.jid);
  m_otp_wanted.erase(r.jid);
  show(r.jid, Tone::Warning, "mpOTR ended (" + why + "). This room is NOT encrypted any more: what you type now is sent in the clear.");
}

void PluginCore::hint_mpotr_used(Room& r, const std::string& nick) {
  if (r.hinted || !r.joined) return;
  r.hinted = true;
  show(r.jid, Tone::Info, "mpOTR: " + nick + " uses mpOTR in this room. Type /mpotr start to take part.");
}

void PluginCore::refresh_title(Room& r) {
  std::string title;
  if (r.host) {
    switch (r.host->phase()) {
      case Phase::Established: {
        title = "mpOTR";
        const auto s = r.host->session();
        bool all_verified = s && s->members.size() > 1;
        if (s) {
          for (const auto& m : s->members) {
            if (m.nick != r.self_nick && m_trust.level(m.jid) != TrustLevel::Verified) all_verified = false;
          }
        }
        if (all_verified) title += " verified";
        break;
      }
      case Phase::Leaving:
      case Phase::Left:
        title = "mpOTR ending";
        break;
      default:
        title = "mpOTR setup";
        break;
    }
  }
  if (title != r.title) {
    r.title = title;
    m_ui.room_title(r.jid, title);
  }
}

void PluginCore::refresh_completions(const Room& r) {
  std::vector<std::string> nicks;
  for (const auto& [nick, p] : r.occupants) nicks.push_back(nick);
  for (const auto& sub : nick_subcommands()) m_ui.completions("/mpotr " + sub, nicks);
  std::vector<std::string> aliases;
  if (r.otp) {
    for (const auto& a : r.otp->aliases()) aliases.push_back(a.name);
  }
  m_ui.completions("/mpotr otp to", aliases);
  m_ui.completions("/mpotr otp unalias", aliases);
}

void PluginCore::save_trust() {
  auto saved = store::save_trust(m_trust_path, m_trust);
  if (!saved.ok()) {
    m_ui.console_line(Tone::Alert, "mpOTR: could not save the trust store " + m_trust_path + ": " + saved.error().detail +
                                       " (trust decisions of this run will be forgotten)");
  }
}

void PluginCore::apply(Room& r, HostOutput out, std::vector<Notice>* messages) {
  for (const auto& payload : out.payloads) {
    StanzaPtr s = transport::build_payload_message(m_xml.ctx(), r.jid, next_id(), view(payload));
    if (!m_ui.send_stanza(transport::stanza_text(s.get()))) {
      show(r.jid, Tone::Warning, "mpOTR: offline, a protocol message could not be sent");
    }
  }
  if (out.trust_changed) save_trust();
  if (out.marker_changed && r.host) send_marker_presence(r, true);  // out of the session, or back
  if (r.otp && r.host) {
    // Bundles are opened whether or not OTP mode is on here; mpotr-padd may already listen
    // even if no OTP command ran yet.
    if (!r.otp->has_device() && carries_bundle(out.notices)) r.otp->set_device(pad_device(false));
    r.otp->rewrite(*r.host, out.notices);
  }
  bool new_session = false;
  for (auto& n : out.notices) {
    if ((n.kind == "message" || n.kind == "otp_message") && n.event) {
      // An OTP line takes the same path as an mpOTR line (the display hook when it can), marked.
      if (n.kind == "otp_message") n.text = otp_mark(n.event->nicks) + n.text;
      if (messages != nullptr) {
        messages->push_back(std::move(n));
      } else {
        show(r.jid, Tone::Info, n.nick + ": " + n.text);
      }
      continue;
    }
    if ((n.kind == "sent" || n.kind == "otp_sent") && n.event) {
      // For an OTP line this is our plaintext (not the bundle), quoted in confirmations.
      if (r.sent_text.size() >= transport::kMaxTrackedSent) r.sent_text.erase(r.sent_text.begin());
      r.sent_text[n.event->seq] = n.event->text;
      if (n.kind == "otp_sent" && messages != nullptr) {
        // Only the caller knows whether the client shows this line itself (a typed line) or not.
        const auto s = r.host ? r.host->session() : std::nullopt;
        const bool everyone = s && n.event->nicks.size() + 1 == s->members.size();
        n.text = otp_mark(everyone ? std::vector<std::string>{} : n.event->nicks) + n.event->text;
        n.nick = r.self_nick;
        messages->push_back(std::move(n));
      }
      continue;
    }
    if ((n.kind == "fully_confirmed" || n.kind == "unconfirmed") && n.event) {
      auto it = r.sent_text.find(n.event->seq);
      if (it == r.sent_text.end()) {
        m_ui.log(Tone::Info, "mpOTR " + r.jid + ": " + n.text);  // already reported, or sent before a re-key
        continue;
      }
      const std::string quote = " \"" + excerpt(it->second) + "\"";
      if (n.kind == "fully_confirmed") {
        show(r.jid, Tone::Good, "✓ delivered to everyone:" + quote);
        r.sent_text.erase(it);
      } else {
        show(r.jid, Tone::Warning, "✗ NOT confirmed by everyone:" + quote + " — " + n.text);
      }
      continue;
    }
    if (n.kind == "secure") new_session = true;
    if (n.event && n.event->kind == EventKind::KeyPublished) r.key_published = true;
    if (n.severity == Severity::Debug) {
      m_ui.log(Tone::Info, "mpOTR " + r.jid + ": " + n.text);
      continue;
    }
    n.text = plugin_wording(std::move(n.text));
    if (n.kind == "otp_failed" && r.otp && !r.otp->has_device()) {
      n.text += " (start mpotr-padd on " + m_pad_socket + ", or give its socket with /mpotr otp device <path>)";
    }
    Tone tone = tone_of(n.severity);
    if (n.kind == "secure" || n.kind == "verified") tone = Tone::Good;
    show(r.jid, tone, "mpOTR: " + n.text);
  }
  if (out.leave_room && r.host) {
    finish_end(r, r.key_published ? "transcripts compared, keys published"
                                  : "transcripts compared; our key stays withheld, a member did not confirm the end");
    return;
  }
  // A new session, maybe new members: say at once whose pad is missing or runs low (O-28).
  if (new_session && r.otp && r.otp->enabled()) show_otp_check(r);
  refresh_title(r);
}

// ---------------------------------------------------------------------------------------------
// Presence

void PluginCore::on_presence_stanza_receive(std::string_view xml, TimeMs now) {
  if (!connected()) return;
  StanzaPtr s = m_xml.parse(xml);
  if (!s || transport::stanza_child(s.get(), "x", transport::kMucUserNs) == nullptr) return;
  const std::string room_jid = lower(transport::bare_jid(transport::stanza_attribute(s.get(), "from")));
  auto in = transport::parse_muc_stanza(s.get(), room_jid);
  if (!in || !std::holds_alternative<PresenceIn>(*in)) return;
  const auto& p = std::get<PresenceIn>(*in);
  Room* r = room(room_jid);
  if (r == nullptr) {
    if (!p.available || (!p.self && p.nick.empty())) return;
    if (m_rooms.size() >= kMaxRooms) {
      m_ui.log(Tone::Warning, "mpOTR: tracking " + std::to_string(kMaxRooms) + " rooms already; ignoring " + room_jid);
      return;
    }
    r = &m_rooms[room_jid];
    r->jid = room_jid;
  }
  handle_presence(*r, p, now);
}

void PluginCore::handle_presence(Room& r, const PresenceIn& p, TimeMs now) {
  if (!p.error.empty()) return;  // the client reports join errors itself
  const bool is_self = p.self || (r.joined && p.nick == r.self_nick);
  if (is_self) {
    if (p.available) {
      r.shows_jids = r.shows_jids || p.shows_jids || p.room_created;
      const bool first = !r.joined || p.nick != r.self_nick;
      r.joined = true;
      r.self_nick = p.nick;
      if (r.host) {
        apply(r, r.host->on_self_present(p.nick, r.shows_jids, now, *m_rng));
      } else if (first && m_wanted.contains(r.jid)) {
        start(r, now);  // we secured this room before a reconnect or rejoin
      }
    } else if (!p.new_nick.empty()) {
      // The room renames us; our new presence follows.
    } else {
      if (r.host) {
        apply(r, r.host->on_disconnected(p.removed ? "removed from the room" : "left the room"));
        drop_session(r);
      }
      const std::string gone = r.jid;  // r dies with the erase
      if (!p.removed) {
        m_wanted.erase(gone);
        m_otp_wanted.erase(gone);
      }
      m_rooms.erase(gone);
    }
    return;
  }
  if (p.nick.empty()) return;
  if (p.available) {
    if (!r.occupants.contains(p.nick) && r.occupants.size() >= transport::kMaxOccupants) return;
    r.occupants[p.nick] = p;
    if (r.host) {
      apply(r, r.host->on_occupant_present(transport::Occupant{p.nick, p.real_jid, p.mpotr, p.mpotr_out}, now, *m_rng));
    }
    if (!r.host && p.mpotr) hint_mpotr_used(r, p.nick);
  } else if (!p.new_nick.empty()) {
    auto it = r.occupants.find(p.nick);
    if (it != r.occupants.end()) {
      PresenceIn moved = it->second;
      moved.nick = p.new_nick;
      r.occupants.erase(it);
      r.occupants[p.new_nick] = moved;
    }
    if (r.host) apply(r, r.host->on_nick_change(p.nick, p.new_nick, now, *m_rng));
  } else {
    r.occupants.erase(p.nick);
    if (r.host) apply(r, r.host->on_occupant_gone(p.nick, now, *m_rng));
  }
  if (r.host) refresh_completions(r);
}

std::optional<std::string> PluginCore::on_presence_stanza_send(std::string_view xml) {
  if (!connected()) return std::nullopt;
  StanzaPtr s = m_xml.parse(xml);
  if (!s) return std::nullopt;
  const std::string to = transport::stanza_attribute(s.get(), "to");
  const std::string type = transport::stanza_attribute(s.get(), "type");
  const std::string room_jid = lower(transport::bare_jid(to));
  if (to.find('/') == std::string::npos || (!type.empty() && type != "unavailable")) return std::nullopt;
  Room* r = room(room_jid);
  const bool joining = transport::stanza_child(s.get(), "x", transport::kMucNs) != nullptr;
  if (r == nullptr && !joining) return std::nullopt;
  if (type == "unavailable") {
    return std::nullopt;  // leaving: the room's unavailable presence ends the session
  }
  if (r != nullptr) {
    r->last_presence = transport::stanza_text(
        copy_without(m_xml.ctx(), s.get(), transport::kPayloadElement, transport::kPayloadNs).get());
    if (r->host) return transport::stanza_text(with_marker(m_xml.ctx(), s.get(), r->host->marker()).get());
  } else if (m_rooms.size() < kMaxRooms) {
    Room& created = m_rooms[room_jid];
    created.jid = room_jid;
    created.last_presence = std::string(xml);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Messages

bool PluginCore::on_message_stanza_receive(std::string_view xml, TimeMs now) {
  m_pending.reset();  // a display replacement only ever applies to the stanza that produced it
  StanzaPtr s = m_xml.parse(xml);
  if (!s) return true;
  const std::string type = transport::stanza_attribute(s.get(), "type");
  if (type == "chat") {
    if (const xmpp_stanza_t* otr = transport::stanza_child(s.get(), kOtrElement, kOtrNs)) {
      handle_otr(transport::stanza_attribute(s.get(), "from"), transport::stanza_element_text(otr), now);
      return false;  // never shown, never seen by the client's own OTR
    }
    return true;
  }
  if (type != "groupchat" && type != "error") return true;
  const std::string room_jid = lower(transport::bare_jid(transport::stanza_attribute(s.get(), "from")));
  auto in = transport::parse_muc_stanza(s.get(), room_jid);
  if (!in || !std::holds_alternative<MessageIn>(*in)) return true;
  const auto& m = std::get<MessageIn>(*in);
  if (m.payload_text && m.delayed) return false;  // history: an off-the-record session is not replayed
  Room* r = room(room_jid);
  if (!m.error.empty()) {
    if (r != nullptr && r->host && m.payload_text) {
      show(r->jid, Tone::Warning, "mpOTR: the server refused one of our messages: " + m.error);
      return false;
    }
    return true;
  }
  if (r == nullptr) return true;
  const bool has_body = transport::stanza_child(s.get(), "body", nullptr) != nullptr;
  return handle_groupchat(*r, m, has_body, now);
}

bool PluginCore::handle_groupchat(Room& r, const MessageIn& m, bool has_body, TimeMs now) {
  if (m.nick.empty()) return true;  // from the room itself (subject, configuration notices)
  if (!r.host) {
    if (m.payload_text) hint_mpotr_used(r, m.nick);
    return true;  // clients without a session see the fallback text, like clients without mpOTR
  }
  if (!m.payload_text) {
    if (m.delayed || !has_body) return true;
    apply(r, r.host->on_plaintext(m.nick, m.body));
    if (m.nick == r.self_nick) return true;
    m_pending = PendingDisplay{r.jid, m.nick, "[NOT ENCRYPTED] " + m.body};
    return true;
  }
  std::vector<Notice> messages;
  apply(r, r.host->on_payload(m.nick, *m.payload_text, now, *m_rng), &messages);
  if (has_body && messages.size() == 1 && messages[0].nick == m.nick && m.nick != r.self_nick) {
    m_pending = PendingDisplay{r.jid, m.nick, messages[0].text};
    return true;
  }
  for (const auto& n : messages) show(r.jid, Tone::Info, n.nick + ": " + n.text);
  return false;
}

std::optional<std::string> PluginCore::on_room_message_display(std::string_view room_jid, std::string_view nick,
                                                               std::string_view body) {
  (void)body;
  if (!m_pending || lower(room_jid) != m_pending->room || nick != m_pending->nick) return std::nullopt;
  std::string text = std::move(m_pending->text);
  m_pending.reset();
  return text;
}

SendVerdict PluginCore::on_room_message_send(std::string_view room_jid, std::string_view text, TimeMs now) {
  Room* r = secured_room(room_jid);
  if (r == nullptr) return SendVerdict::Unchanged;
  if (r->otp && r->otp->enabled()) {
    // The client shows the typed line itself, as for an mpOTR line.
    return send_otp(*r, text, {}, now, nullptr) ? SendVerdict::Unchanged : SendVerdict::Cancel;
  }
  HostOutput out = r->host->send_text(text, now, *m_rng);
  const bool sent = !out.payloads.empty();
  apply(*r, std::move(out));
  return sent ? SendVerdict::Unchanged : SendVerdict::Cancel;
}

std::optional<std::string> PluginCore::on_message_stanza_send(std::string_view xml) {
  const bool any_secured = std::any_of(m_rooms.begin(), m_rooms.end(), [](const auto& kv) { return kv.second.host != nullptr; });
  if (!any_secured) return std::nullopt;
  StanzaPtr s = m_xml.parse(xml);
  if (!s) {
    // Fail closed: while a room is secured, a stanza we cannot read is not sent.
    m_ui.log(Tone::Warning, "mpOTR: an outgoing message could not be parsed and was not sent");
    return std::string(kSuppressed);
  }
  if (transport::stanza_child(s.get(), "body", nullptr) == nullptr) return std::nullopt;  // chat states, receipts
  const std::string to = transport::stanza_attribute(s.get(), "to");
  Room* r = secured_room(transport::bare_jid(to));
  if (r == nullptr) return std::nullopt;
  const std::string type = transport::stanza_attribute(s.get(), "type");
  if (type == "groupchat") {
    // The line was encrypted and sent by the room send hook (or refused there): this is the
    // client's plaintext copy.
    return std::string(kSuppressed);
  }
  if (!resource_of(to).empty()) {
    show(r->jid, Tone::Warning,
         "mpOTR: private messages inside a secured room are not encrypted by mpOTR, so it was NOT sent. "
         "Use a 1:1 chat with OTR or OMEMO.");
  }
  return std::string(kSuppressed);
}

// ---------------------------------------------------------------------------------------------
// Timer

void PluginCore::on_timer(TimeMs now) {
  for (auto it = m_rooms.begin(); it != m_rooms.end(); ++it) {
    Room& r = it->second;
    if (!r.host) continue;
    if (r.end_deadline && now >= *r.end_deadline) {
      quit_session(r, now);
      finish_end(r, "the others did not finish the shutdown in time; our key stays withheld");
      continue;
    }
    const auto wake = r.host->wake_at();
    if (wake && *wake <= now) apply(r, r.host->tick(now, *m_rng));
  }
  if (m_otr && m_otr->poll_interval_seconds() > 0 &&
      now - m_last_otr_poll >= static_cast<TimeMs>(m_otr->poll_interval_seconds()) * 1000) {
    m_last_otr_poll = now;
    apply_otr(m_otr->poll(), now);
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

void PluginCore::on_command(const std::vector<std::string>& args, std::optional<std::string> current_room, TimeMs now,
                            std::string_view room_nick) {
  std::string out_room = current_room ? lower(*current_room) : std::string();
  auto parsed = parse_command(args);
  if (!parsed.ok()) {
    show(out_room, Tone::Warning, "mpOTR: " + parsed.error().detail);
    return;
  }
  Command c = std::move(parsed).value();
  if (std::holds_alternative<cmd::Help>(c)) {
    for (const auto& line : help_lines()) show(out_room, Tone::Info, line);
    return;
  }
  if (auto* o = std::get_if<cmd::Otp>(&c); o != nullptr && o->action == cmd::Otp::Action::Device) {
    command_otp_device(out_room, *o);  // the device is the user's, not a room's or an account's
    return;
  }
  if (!connected()) {
    show(out_room, Tone::Warning, "mpOTR: not logged in (or the identity key could not be loaded: see the console).");
    return;
  }
  Room* r = current_room ? room(*current_room) : nullptr;
  if (auto* fp = std::get_if<cmd::Fingerprint>(&c)) {
    command_fingerprint(out_room, r, fp->who);
    return;
  }
  if (std::holds_alternative<cmd::Trust>(c) || std::holds_alternative<cmd::Untrust>(c) ||
      std::holds_alternative<cmd::Block>(c)) {
    command_trust(out_room, r, c, now);
    return;
  }
  if (auto* s = std::get_if<cmd::Secret>(&c)) {
    command_secret(out_room, *s, now);
    return;
  }
  if (!current_room) {
    show(out_room, Tone::Warning, "mpOTR: use this in a room window.");
    return;
  }
  if ((r == nullptr || !r->joined) && std::holds_alternative<cmd::Start>(c) && !room_nick.empty() &&
      (r != nullptr || m_rooms.size() < kMaxRooms)) {
    // The plugin was loaded after we joined: the occupants' presence (with their real JIDs) was
    // never seen. Joining again makes the room send all of it; the session starts once our own
    // presence arrives.
    if (r == nullptr) {
      r = &m_rooms[out_room];
      r->jid = out_room;
    }
    m_wanted.insert(out_room);
    StanzaPtr join = transport::build_join_presence(m_xml.ctx(), out_room, room_nick);
    m_ui.send_stanza(transport::stanza_text(join.get()));
    show(out_room, Tone::Info, "mpOTR: fetching the member list of this room…");
    return;
  }
  if (r == nullptr || !r->joined) {
    show(out_room, Tone::Warning,
         "mpOTR: this room's member list is unknown (was the plugin loaded after you joined?). /leave and /join "
         "the room again, then /mpotr start.");
    return;
  }
  if (std::holds_alternative<cmd::Start>(c)) {
    if (r->host) {
      apply(*r, r->host->restart(now, *m_rng));
      show(r->jid, Tone::Info, "mpOTR: already secured here; restarting the key exchange.");
      return;
    }
    start(*r, now);
    return;
  }
  if (std::holds_alternative<cmd::End>(c)) {
    if (!r->host) {
      show(r->jid, Tone::Info, "mpOTR: this room is not secured.");
      return;
    }
    if (r->host->phase() != Phase::Established) {
      apply(*r, r->host->on_disconnected("ended by the user"));
      finish_end(*r, "ended before the session was secure");
      return;
    }
    r->end_deadline = now + kEndTimeoutMs;
    show(r->jid, Tone::Info, "mpOTR: ending the session: comparing transcripts, then publishing our keys…");
    apply(*r, r->host->leave(now, *m_rng));
    return;
  }
  if (std::holds_alternative<cmd::Status>(c)) {
    command_status(r->jid, r);
    return;
  }
  if (auto* o = std::get_if<cmd::Otp>(&c)) {
    if (!r->host) {
      show(r->jid, Tone::Warning, "mpOTR: this room is not secured; OTP mode works inside an mpOTR session (/mpotr start first).");
      return;
    }
    command_otp(*r, *o, now);
    return;
  }
  if (auto* v = std::get_if<cmd::Verify>(&c)) {
    command_verify(r->jid, r, *v, now);
    return;
  }
  if (auto* p = std::get_if<cmd::Policy>(&c)) {
    command_policy(*r, *p, now);
    return;
  }
}

void PluginCore::command_policy(Room& r, const cmd::Policy& p, TimeMs now) {
  using Admission = cmd::Policy::Admission;
  const bool verified_only = m_verified_only.contains(r.jid);
  if (p.admission == Admission::Show) {
    show(r.jid, Tone::Info,
         verified_only ? "mpOTR: this room admits verified members only (/mpotr policy trusted admits everyone not blocked)."
                       : "mpOTR: this room admits every member whose key is not blocked or changed (/mpotr policy verified: "
                         "verified members only).");
    return;
  }
  const bool want = p.admission == Admission::VerifiedOnly;
  const std::string admits = want ? "verified members only." : "every member whose key is not blocked or changed.";
  if (want == verified_only) {
    show(r.jid, Tone::Info, "mpOTR: this room already admits " + admits);
    return;
  }
  RoomSet next = m_verified_only;
  if (want) {
    next.insert(r.jid);
  } else {
    next.erase(r.jid);
  }
  auto saved = save_verified_rooms(m_policy_path, next);
  if (!saved.ok()) {
    show(r.jid, Tone::Warning, "mpOTR: the policy is unchanged: " + saved.error().detail);
    return;
  }
  m_verified_only = std::move(next);
  if (r.host) {
    apply(r, r.host->set_admission(want ? AdmissionPolicy::VerifiedOnly : AdmissionPolicy::Trusted, now, *m_rng));
  } else {
    show(r.jid, Tone::Info, "mpOTR: from the next session on, this room admits " + admits);
  }
}

void PluginCore::readmit_after_trust(TimeMs now) {
  for (auto& [jid, r] : m_rooms) {
    if (r.host && r.host->phase() == Phase::Out) {
      apply(r, r.host->restart(now, *m_rng));
    }
  }
}

void PluginCore::command_status(const std::string& out, Room* r) {
  if (!r->host) {
    show(out, Tone::Info, "mpOTR: this room is not secured (/mpotr start). Occupants: " + std::to_string(r->occupants.size() + 1));
    return;
  }
  const auto phase = r->host->phase();
  const auto s = r->host->session();
  std::string head = "mpOTR status: phase " + std::string(to_string(phase));
  if (s) head += ", session " + to_hex(ByteView(s->session_id.data(), 4)) + ", " + std::to_string(s->members.size()) + " members";
  show(out, Tone::Info, head);
  show(out, Tone::Info, "  you: " + r->self_nick + " (" + m_account + ") " + r->host->fingerprint().grouped());
  std::set<std::string> listed{r->self_nick};
  if (s) {
    for (const auto& m : s->members) {
      if (m.nick == r->self_nick) continue;
      listed.insert(m.nick);
      show(out, Tone::Info, "  " + m.nick + " (" + m.jid + ") " + m.fingerprint.grouped() + " [" +
                                std::string(to_string(m_trust.level(m.jid))) + "]");
    }
  }
  for (const auto& [nick, p] : r->occupants) {
    if (listed.contains(nick)) continue;
    show(out, Tone::Info, "  " + nick + " (" + (p.real_jid.empty() ? "JID hidden" : p.real_jid) + ") " +
                              (p.mpotr ? "not in the session yet" : "WITHOUT mpOTR: cannot read this room"));
  }
  std::size_t pending = 0;
  for (const auto& st : r->host->sent()) pending += st.fully_confirmed ? 0 : 1;
  if (pending > 0) show(out, Tone::Info, "  " + std::to_string(pending) + " of your lines are not confirmed by everyone yet");
}

// ---------------------------------------------------------------------------------------------
// One-time-pad mode (spec/otp.md §10)

otp::PadDevice* PluginCore::pad_device(bool create) {
  if (m_test_pad != nullptr) return m_test_pad;
  if (!m_rpc_pad) {
    struct stat st {};
    if (!create && ::stat(m_pad_socket.c_str(), &st) != 0) return nullptr;
    m_rpc_pad = std::make_unique<otp::device::RpcPadDevice>(m_pad_socket);
    set_room_devices(m_rpc_pad.get());
  }
  return m_rpc_pad.get();
}

void PluginCore::set_room_devices(otp::PadDevice* device) {
  for (auto& [jid, r] : m_rooms) {
    if (r.otp) r.otp->set_device(device);
  }
}

void PluginCore::use_pad_device_for_tests(otp::PadDevice* device) {
  m_test_pad = device;
  set_room_devices(device != nullptr ? device : m_rpc_pad.get());
}

bool PluginCore::send_otp(Room& r, std::string_view text, std::string_view alias, TimeMs now, std::vector<Notice>* mine) {
  auto sealed = r.otp->seal(*r.host, text, alias);
  if (!sealed.ok()) {
    show(r.jid, Tone::Warning, "mpOTR: OTP line not sent: " + plugin_wording(sealed.error().detail));
    return false;
  }
  HostOutput out = r.host->send_text(sealed.value(), now, *m_rng);
  const bool sent = !out.payloads.empty();
  apply(r, std::move(out), mine);
  return sent;
}

void PluginCore::show_otp_check(Room& r) {
  auto report = r.otp->check(*r.host);
  if (!report.ok()) {
    show(r.jid, Tone::Warning, "mpOTR: cannot check the pads: " + report.error().detail);
    return;
  }
  for (const auto& n : report.value().notices) show(r.jid, tone_of(n.severity), "mpOTR: " + plugin_wording(n.text));
}

void PluginCore::command_otp_device(const std::string& out, const cmd::Otp& c) {
  m_pad_socket = c.path;
  if (m_rpc_pad) {
    // Rooms switch before the old client goes: no mode ever points at a freed device.
    auto next = std::make_unique<otp::device::RpcPadDevice>(m_pad_socket);
    if (m_test_pad == nullptr) set_room_devices(next.get());
    m_rpc_pad = std::move(next);
  }
  show(out, Tone::Info, "mpOTR: pad device socket set to " + m_pad_socket +
                            " (for this run; set MPOTR_PAD_SOCKET to keep it).");
}

void PluginCore::command_otp(Room& r, const cmd::Otp& c, TimeMs now) {
  using Action = cmd::Otp::Action;
  switch (c.action) {
    case Action::On: {
      pad_device(true);
      auto report = r.otp->enable(*r.host);
      if (!report.ok()) {
        show(r.jid, Tone::Warning, "mpOTR: OTP mode not turned on: " + report.error().detail + " (pad device socket " +
                                       m_pad_socket + "; /mpotr otp device <path> changes it).");
        return;
      }
      m_otp_wanted.insert(r.jid);
      for (const auto& n : report.value().notices) show(r.jid, tone_of(n.severity), "mpOTR: " + plugin_wording(n.text));
      return;
    }
    case Action::Off: {
      const bool was_on = r.otp->enabled();
      r.otp->disable();
      m_otp_wanted.erase(r.jid);
      show(r.jid, Tone::Info, was_on ? "mpOTR: OTP mode off: lines are protected by mpOTR only."
                                     : "mpOTR: OTP mode is already off here.");
      return;
    }
    case Action::Status:
      show(r.jid, Tone::Info, std::string("mpOTR: OTP mode is ") + (r.otp->enabled() ? "on" : "off") +
                                  " in this room; pad device socket " + m_pad_socket);
      pad_device(true);
      show_otp_check(r);
      return;
    case Action::Device:
      command_otp_device(r.jid, c);
      return;
    case Action::Alias: {
      auto defined = r.otp->define_alias(*r.host, c.name, c.members);
      if (!defined.ok()) {
        show(r.jid, Tone::Warning, "mpOTR: alias not defined: " + defined.error().detail);
        return;
      }
      for (const auto& a : r.otp->aliases()) {
        if (a.name == c.name) {
          show(r.jid, Tone::Info, "mpOTR: alias " + a.name + ": " + join(a.jids) + ". /mpotr otp to " + a.name +
                                      " <text> sends an OTP line to them only.");
        }
      }
      refresh_completions(r);
      return;
    }
    case Action::Unalias: {
      auto removed = r.otp->remove_alias(c.name);
      if (!removed.ok()) {
        show(r.jid, Tone::Warning, "mpOTR: " + removed.error().detail);
        return;
      }
      show(r.jid, Tone::Info, "mpOTR: alias " + c.name + " forgotten.");
      refresh_completions(r);
      return;
    }
    case Action::Aliases:
      if (r.otp->aliases().empty()) {
        show(r.jid, Tone::Info, "mpOTR: no aliases here (/mpotr otp alias <name> <nick|jid>... defines one).");
      }
      for (const auto& a : r.otp->aliases()) show(r.jid, Tone::Info, "mpOTR: alias " + a.name + ": " + join(a.jids));
      return;
    case Action::To: {
      // Explicit, so it works with OTP mode off too. The client does not show a command's
      // text: our line is shown here, from its "otp_sent" notice.
      pad_device(true);
      std::vector<Notice> mine;
      if (!send_otp(r, c.text, c.name, now, &mine)) return;
      for (const auto& n : mine) show(r.jid, Tone::Info, n.nick + ": " + n.text);
      return;
    }
  }
}

std::optional<std::string> PluginCore::resolve_jid(const Room* r, const std::string& who) const {
  if (r != nullptr) {
    auto it = r->occupants.find(who);
    if (it != r->occupants.end() && !it->second.real_jid.empty()) return lower(it->second.real_jid);
    if (const auto m = member_named(r->host.get(), who)) return lower(m->jid);
  }
  if (who.find('@') != std::string::npos && who.find('/') == std::string::npos) return lower(who);
  return std::nullopt;
}

void PluginCore::command_fingerprint(const std::string& out, Room* r, const std::string& who) {
  if (who.empty()) {
    auto identity = store::load_identity(*m_identity_path);
    if (!identity.ok()) {
      show(out, Tone::Alert, "mpOTR: cannot load the identity key: " + identity.error().detail);
      return;
    }
    show(out, Tone::Info, "mpOTR: your fingerprint (" + m_account + "): " + identity.value().fingerprint().grouped());
    return;
  }
  const auto m = session_member(r != nullptr ? r->host.get() : nullptr, [&](const MemberInfo& x) {
    return x.nick == who || lower(x.jid) == lower(who);
  });
  if (m) {
    show(out, Tone::Info, "mpOTR: " + m->nick + " (" + m->jid + ") uses " + m->fingerprint.grouped() + " [" +
                              std::string(to_string(m_trust.level(m->jid))) + "]");
    return;
  }
  const auto jid = resolve_jid(r, who);
  if (jid) {
    if (const TrustRecord* rec = m_trust.find(*jid)) {
      show(out, Tone::Info, "mpOTR: recorded key of " + *jid + ": " + rec->fingerprint.grouped() + " [" +
                                std::string(to_string(rec->level)) + "]");
      return;
    }
  }
  show(out, Tone::Warning, "mpOTR: no key known for " + who);
}

void PluginCore::command_trust(const std::string& out, Room* r, const Command& c, TimeMs now) {
  std::string who;
  if (auto* t = std::get_if<cmd::Trust>(&c)) who = t->who;
  if (auto* t = std::get_if<cmd::Untrust>(&c)) who = t->who;
  if (auto* t = std::get_if<cmd::Block>(&c)) who = t->who;
  const auto jid = resolve_jid(r, who);
  if (!jid) {
    show(out, Tone::Warning, "mpOTR: no member '" + who + "' here; give a nick in this room or a bare JID.");
    return;
  }
  Result<void> done;
  std::string what;
  if (std::holds_alternative<cmd::Trust>(c)) {
    // The key the member uses in this room's session, else the recorded one.
    std::optional<Fingerprint> fp;
    std::string nick;
    if (r != nullptr && r->host) {
      if (const auto m = session_member(r->host.get(), [&](const MemberInfo& x) { return lower(x.jid) == *jid; })) {
        fp = m->fingerprint;
        nick = m->nick;
      }
      if (!fp) {
        for (const auto& [n, p] : r->occupants) {
          if (lower(p.real_jid) == *jid) nick = n;
        }
        if (!nick.empty()) {
          // Not in the session: typically a changed key that is being refused. Accepting it
          // re-keys; the key becomes verified once it is seen (trust again then).
          auto accepted = r->host->accept_new_key(nick, now, *m_rng);
          if (!accepted.ok()) {
            show(out, Tone::Warning, "mpOTR: " + accepted.error().detail);
            return;
          }
          apply(*r, std::move(accepted).value());
          show(out, Tone::Info, "mpOTR: accepted " + nick + "'s new key; run /mpotr trust " + nick +
                                    " again once the session is secure to mark it verified.");
          return;
        }
      }
    }
    if (!fp) {
      if (const TrustRecord* rec = m_trust.find(*jid)) fp = rec->fingerprint;
    }
    if (!fp) {
      show(out, Tone::Warning, "mpOTR: no key known for " + *jid + " yet.");
      return;
    }
    done = m_trust.verify(*jid, *fp);
    what = "marked " + *jid + "'s key " + fp->grouped() + " as verified";
  } else if (std::holds_alternative<cmd::Untrust>(c)) {
    done = m_trust.untrust(*jid);
    what = "forgot " + *jid + "'s key: it will be trusted on first use again";
  } else {
    // A member of this room: the room host blocks the JID and the key it showed (under any
    // JID), and says who stays out. Otherwise the JID alone.
    std::string nick;
    if (r != nullptr && r->host) {
      for (const auto& [n, p] : r->occupants) {
        if (lower(p.real_jid) == *jid) nick = n;
      }
    }
    if (!nick.empty()) {
      auto blocked = r->host->block(nick, now, *m_rng);
      if (!blocked.ok()) {
        show(out, Tone::Warning, "mpOTR: " + blocked.error().detail);
        return;
      }
      apply(*r, std::move(blocked).value());
      for (auto& [jid_r, room_state] : m_rooms) refresh_title(room_state);
      return;
    }
    done = m_trust.block(*jid);
    what = "blocked " + *jid + ": their key is refused";
  }
  if (!done.ok()) {
    show(out, Tone::Warning, "mpOTR: " + done.error().detail);
    return;
  }
  save_trust();
  show(out, Tone::Good, "mpOTR: " + what + ".");
  // A member refused for a changed key or an unmet "verified only" may now be admitted.
  if (std::holds_alternative<cmd::Trust>(c)) readmit_after_trust(now);
  for (auto& [jid_r, room_state] : m_rooms) refresh_title(room_state);
}

// ---------------------------------------------------------------------------------------------
// Verification by SMP (spec/verification.md)

PluginCore::Verification* PluginCore::verification_by_jid(std::string_view full_jid) {
  for (auto& v : m_verifications) {
    if (v.peer_full_jid == full_jid) return &v;
  }
  return nullptr;
}

void PluginCore::command_verify(const std::string& out, Room* r, const cmd::Verify& v, TimeMs now) {
  if (!m_otr) {
    show(out, Tone::Warning, "mpOTR: verification by secret is unavailable (see the console).");
    return;
  }
  if (!r->host) {
    show(out, Tone::Warning, "mpOTR: this room is not secured (/mpotr start first).");
    return;
  }
  // A member out of the session (or while we are) can be verified too: the room host knows the
  // key its offer showed (spec R-ADM-3), and verifying it lets the session re-form with them.
  const auto member = v.nick == r->self_nick ? std::nullopt : member_named(r->host.get(), v.nick);
  auto occ = r->occupants.find(v.nick);
  if (!member || occ == r->occupants.end() || occ->second.real_full_jid.empty()) {
    show(out, Tone::Warning, "mpOTR: no key of " + v.nick + " is known here yet (they must run mpOTR in this room).");
    return;
  }
  const std::string full = occ->second.real_full_jid;
  if (Verification* existing = verification_by_jid(full)) {
    apply_otr(m_otr->abort(full), now);
    *existing = Verification{};
    existing->peer_full_jid = full;
  } else {
    if (m_verifications.size() >= kMaxPendingVerifications) {
      show(out, Tone::Warning, "mpOTR: too many verifications at once; finish one first.");
      return;
    }
    m_verifications.push_back(Verification{});
    m_verifications.back().peer_full_jid = full;
  }
  Verification& ver = *verification_by_jid(full);
  ver.room = r->jid;
  ver.nick = v.nick;
  ver.peer_jid = lower(member->jid);
  ver.peer_fp = member->fingerprint;
  ver.question = v.question;
  ver.we_started = true;
  show(out, Tone::Info, "mpOTR: to verify " + v.nick + ", type the secret you agreed on outside this chat: /mpotr secret " +
                            v.nick + " <secret>. " + v.nick + " will be asked for it too.");
}

void PluginCore::command_secret(const std::string& out, cmd::Secret& s, TimeMs now) {
  // Whatever happens, the secret does not stay in this buffer.
  struct Wipe {
    std::string& text;
    ~Wipe() { secure_zero(text.data(), text.size()); }
  } wipe{s.secret};
  Verification* ver = nullptr;
  for (auto& v : m_verifications) {
    if (v.nick == s.nick) ver = &v;
  }
  if (ver == nullptr || !m_otr) {
    show(out, Tone::Warning, "mpOTR: no verification with " + s.nick + " is waiting; start one with /mpotr verify " + s.nick + ".");
    return;
  }
  Room* r = secured_room(ver->room);
  const auto now_seen = member_named(r != nullptr ? r->host.get() : nullptr, ver->nick);
  if (!now_seen || !(now_seen->fingerprint == ver->peer_fp)) {
    show(ver->room, Tone::Alert, "mpOTR: " + ver->nick + "'s key changed or they left since the verification began; start again.");
    apply_otr(m_otr->abort(ver->peer_full_jid), now);
    m_verifications.erase(m_verifications.begin() + (ver - m_verifications.data()));
    return;
  }
  auto identity = store::load_identity(*m_identity_path);
  if (!identity.ok()) {
    show(ver->room, Tone::Alert, "mpOTR: cannot load the identity key: " + identity.error().detail);
    return;
  }
  auto bound = bound_smp_secret(m_account, identity.value().fingerprint(), ver->peer_jid, ver->peer_fp, s.secret);
  if (!bound.ok()) {
    show(ver->room, Tone::Warning, "mpOTR: " + bound.error().detail);
    return;
  }
  Result<OtrOutput> result = ver->asked ? m_otr->answer(ver->peer_full_jid, bound.value())
                                        : m_otr->start(ver->peer_full_jid,
                                                       ver->question.empty() ? std::nullopt : std::optional<std::string>(ver->question),
                                                       bound.value());
  if (!result.ok()) {
    show(ver->room, Tone::Warning, "mpOTR: verification of " + ver->nick + " could not start: " + result.error().detail);
    return;
  }
  ver->running = true;
  show(ver->room, Tone::Info, "mpOTR: verifying " + ver->nick + "…");
  apply_otr(std::move(result).value(), now);
}

bool PluginCore::handle_otr(std::string_view from, std::string_view text, TimeMs now) {
  if (!m_otr || from.find('/') == std::string_view::npos) return false;
  auto result = m_otr->receive(from, text);
  if (!result.ok()) {
    m_ui.log(Tone::Warning, "mpOTR: rejected an OTR message from " + std::string(from) + ": " + result.error().detail);
    return false;
  }
  apply_otr(std::move(result).value(), now);
  return true;
}

void PluginCore::apply_otr(OtrOutput out, TimeMs now) {
  for (const auto& o : out.send) {
    StanzaPtr s = build_otr_message(m_xml.ctx(), o.to_full_jid, next_id(), o.text);
    m_ui.send_stanza(transport::stanza_text(s.get()));
  }
  for (const auto& ev : out.events) {
    Verification* ver = verification_by_jid(ev.peer);
    if (ev.kind == SmpEventKind::SecretRequested) {
      // Someone asks us: they must be a member of one of our secured sessions, seen with a key.
      std::string room_jid;
      std::string nick;
      Fingerprint fp;
      bool found = false;
      for (auto& [jid, r] : m_rooms) {
        for (const auto& [n, p] : r.occupants) {
          if (p.real_full_jid != ev.peer) continue;
          if (const auto m = member_named(r.host.get(), n)) {
            room_jid = jid;
            nick = n;
            fp = m->fingerprint;
            found = true;
          }
        }
      }
      if (!found) {
        m_ui.log(Tone::Warning, "mpOTR: " + ev.peer + " asked for a verification but is in none of our sessions");
        apply_otr(m_otr->abort(ev.peer), now);
        continue;
      }
      if (ver == nullptr) {
        if (m_verifications.size() >= kMaxPendingVerifications) {
          apply_otr(m_otr->abort(ev.peer), now);
          continue;
        }
        m_verifications.push_back(Verification{});
        ver = &m_verifications.back();
      }
      ver->room = room_jid;
      ver->nick = nick;
      ver->peer_full_jid = ev.peer;
      ver->peer_jid = lower(transport::bare_jid(ev.peer));
      ver->peer_fp = fp;
      ver->asked = true;
      ver->running = false;
      show(room_jid, Tone::Info,
           "mpOTR: " + nick + " wants to verify your keys" +
               (ev.question.empty() ? std::string() : " and asks: \"" + ev.question + "\"") +
               ". Answer with /mpotr secret " + nick + " <secret you agreed on>.");
      continue;
    }
    if (ver == nullptr) {
      if (ev.kind != SmpEventKind::ChannelSecure) m_ui.log(Tone::Info, "mpOTR SMP " + ev.peer + ": " + ev.detail);
      continue;
    }
    const std::string room_jid = ver->room;
    const std::string nick = ver->nick;
    switch (ev.kind) {
      case SmpEventKind::ChannelSecure:
        m_ui.log(Tone::Info, "mpOTR: private channel with " + ev.peer + " is secure");
        continue;
      case SmpEventKind::Succeeded: {
        // Only the key that was bound into the secret becomes verified, and only if the room
        // still shows it (spec/verification.md V-5).
        Room* r = secured_room(room_jid);
        const auto seen = member_named(r != nullptr ? r->host.get() : nullptr, nick);
        const bool same = seen && seen->fingerprint == ver->peer_fp;
        if (same && m_trust.verify(ver->peer_jid, ver->peer_fp).ok()) {
          save_trust();
          show(room_jid, Tone::Good, "mpOTR: verified " + nick + " (" + ver->peer_jid + "): you share the secret and see the same keys.");
          if (r != nullptr) refresh_title(*r);
          readmit_after_trust(now);
        } else {
          show(room_jid, Tone::Alert, "mpOTR: the secret matched, but " + nick + "'s key changed meanwhile: NOT verified.");
        }
        break;
      }
      case SmpEventKind::Failed:
        show(room_jid, Tone::Alert, "mpOTR: verification of " + nick +
                                        " FAILED: a different secret, or one of you sees a different key (a possible attacker).");
        break;
      case SmpEventKind::Aborted:
        show(room_jid, Tone::Warning, "mpOTR: verification of " + nick + " was aborted" +
                                          (ev.detail.empty() ? std::string() : ": " + ev.detail));
        break;
      default:
        show(room_jid, Tone::Warning, "mpOTR: verification of " + nick + " failed: " + ev.detail);
        break;
    }
    m_verifications.erase(m_verifications.begin() + (ver - m_verifications.data()));
  }
}

}  // namespace mpotr::plugin
