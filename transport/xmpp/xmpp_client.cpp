// SPDX-License-Identifier: MIT
#include "mpotr/transport/xmpp_client.h"

#include <sys/ioctl.h>
#include <sys/select.h>

#include <csignal>

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include <strophe.h>

namespace mpotr::transport {

std::string_view to_string(ClientState s) noexcept {
  switch (s) {
    case ClientState::Idle: return "idle";
    case ClientState::Connecting: return "connecting";
    case ClientState::Joining: return "joining";
    case ClientState::InRoom: return "in_room";
    case ClientState::Leaving: return "leaving";
    case ClientState::Reconnecting: return "reconnecting";
    case ClientState::Closed: return "closed";
    case ClientState::Failed: return "failed";
  }
  return "?";
}

// --- the libstrophe context -------------------------------------------------------------------

namespace {

std::once_flag g_strophe_init;

// libstrophe's sockopt callback carries no user data, and the connection's own user data is
// set only after the callback ran. It runs synchronously inside xmpp_connect_client(), on the
// thread that calls it, so the client connecting on this thread is known.
thread_local MucClient* t_connecting = nullptr;

// The JID's domain: what the stream is addressed to and the certificate must name.
std::string jid_domain(std::string_view jid) {
  const auto slash = jid.find('/');
  std::string_view bare = jid.substr(0, slash);
  const auto at = bare.find('@');
  return std::string(at == std::string_view::npos ? bare : bare.substr(at + 1));
}

std::string plural(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

XmppLoop::XmppLoop() {
  std::call_once(g_strophe_init, [] {
    xmpp_initialize();
    // libstrophe writes to sockets with plain send(): a peer that closed first would kill the
    // process with SIGPIPE instead of giving EPIPE, which the library handles as a disconnect.
    ::signal(SIGPIPE, SIG_IGN);
  });
  // libstrophe's own log is off unless asked for: it would print stanzas, i.e. metadata.
  const xmpp_log_t* log = std::getenv("MPOTR_XMPP_DEBUG") != nullptr ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG) : nullptr;
  m_ctx = xmpp_ctx_new(nullptr, log);
  if (m_ctx == nullptr) {
    throw std::bad_alloc();
  }
}

XmppLoop::~XmppLoop() { xmpp_ctx_free(m_ctx); }

void XmppLoop::attach(Link& link) { m_links.push_back(&link); }

void XmppLoop::detach(Link& link) noexcept { std::erase(m_links, &link); }

// Keeps the sockets in m_unread that still hold bytes for libstrophe; true if any does.
bool XmppLoop::strophe_has_unread() {
  std::erase_if(m_unread, [](int fd) {
    int unread = 0;
    return ::ioctl(fd, FIONREAD, &unread) != 0 || unread <= 0;
  });
  return !m_unread.empty();
}

void XmppLoop::run_once(TimeMs timeout_ms) {
  // libstrophe sends only from inside xmpp_run_once(): what pump() queued goes out now, and a
  // loopback connect completes.
  bool strophe_waits = false;
  for (const Link* link : m_links) {
    strophe_waits = strophe_waits || (link->conn != nullptr && link->strophe_fd >= 0 &&
                                      (xmpp_conn_send_queue_len(link->conn) > 0 || xmpp_conn_is_connecting(link->conn) != 0));
  }
  if (strophe_waits) {
    xmpp_run_once(m_ctx, 0);
  }

  m_fds.clear();
  m_counts.clear();
  bool busy = !m_unread.empty();  // libstrophe did not get through everything last turn
  for (Link* link : m_links) {
    const std::size_t before = m_fds.size();
    const std::size_t guard = link->guard != nullptr ? link->guard->want(m_fds) : 0;
    busy = busy || (link->guard != nullptr && link->guard->busy());
    // libstrophe waiting to write (a full loopback buffer, a connect) wakes the loop too.
    if (link->conn != nullptr && link->strophe_fd >= 0 &&
        (xmpp_conn_send_queue_len(link->conn) > 0 || xmpp_conn_is_connecting(link->conn) != 0)) {
      m_fds.push_back({link->strophe_fd, POLLOUT, 0});
    }
    m_counts.push_back(guard);
    m_counts.push_back(m_fds.size() - before);
  }
  const int wait = busy ? 0 : static_cast<int>(std::min<TimeMs>(timeout_ms, 60'000));
  if (::poll(m_fds.data(), m_fds.size(), wait) < 0) {
    for (auto& p : m_fds) {
      p.revents = 0;  // EINTR: deadlines are still checked below
    }
  }

  std::size_t at = 0;
  for (std::size_t i = 0; i < m_links.size(); ++i) {
    Link* link = m_links[i];
    const std::size_t guard = m_counts[2 * i];
    if (link->guard != nullptr) {
      link->guard->service(std::span<const pollfd>(m_fds).subspan(at, guard));
      if (link->guard->take_client_activity() && link->strophe_fd >= 0) {
        m_unread.push_back(link->strophe_fd);
      }
    }
    at += m_counts[2 * i + 1];  // the guard's entries, then libstrophe's (its own select() reads it)
  }

  // libstrophe reads what the guards passed on, 4 KiB per call and connection, and runs its
  // timers. Only the sockets a guard wrote to (or that were left unread) are asked again; what
  // is still unread after kStropheReadsPerTurn calls waits for the next turn.
  xmpp_run_once(m_ctx, 0);
  for (int i = 1; i < kStropheReadsPerTurn && strophe_has_unread(); ++i) {
    xmpp_run_once(m_ctx, 0);
  }
}

// --- callbacks: copy what arrived, decide nothing -----------------------------------------------

struct MucClient::Callbacks {
  static void on_connection(xmpp_conn_t* /*conn*/, xmpp_conn_event_t event, int error, xmpp_stream_error_t* stream_error,
                            void* userdata) {
    auto* self = static_cast<MucClient*>(userdata);
    if (event == XMPP_CONN_CONNECT) {
      self->m_connected_flag = true;
      return;
    }
    if (event == XMPP_CONN_RAW_CONNECT) {
      return;
    }
    std::string why = event == XMPP_CONN_FAIL ? "connection failed" : "disconnected";
    if (stream_error != nullptr && stream_error->text != nullptr) {
      why += ": " + std::string(stream_error->text);
    } else if (stream_error != nullptr) {
      why += ": stream error";
    } else if (error != 0) {
      why += ": socket error " + std::to_string(error);
    }
    self->m_lost = why;
    self->m_link.strophe_fd = -1;  // libstrophe closed it before telling us
  }

  static int on_stanza(xmpp_conn_t* /*conn*/, xmpp_stanza_t* stanza, void* userdata) {
    auto* self = static_cast<MucClient*>(userdata);
    if (auto in = parse_muc_stanza(stanza, self->m_room)) {
      if (self->m_inbound.size() < kMaxInboundQueue) {
        self->m_inbound.push_back(std::move(*in));
      } else {
        ++self->m_dropped_inbound;
      }
    }
    return 1;  // keep the handler
  }

  // Runs inside xmpp_connect_client(), after socket() and before connect(): the socket is
  // bound to 127.0.0.1:0 so that the guard's listener accepts only this connection.
  static int on_socket(xmpp_conn_t* /*conn*/, void* sock) {
    MucClient* self = t_connecting;
    const int fd = *static_cast<int*>(sock);
    // libstrophe waits with select(): a descriptor past FD_SETSIZE would corrupt its fd_set.
    if (self == nullptr || self->m_guard == nullptr || fd >= FD_SETSIZE) {
      return -1;
    }
    if (!self->m_guard->adopt_client_socket(fd).ok()) {
      return -1;
    }
    self->m_link.strophe_fd = fd;
    return 0;
  }
};

// --- the client -------------------------------------------------------------------------------

MucClient::MucClient(XmppLoop& loop, XmppAccount account, std::string room, std::string nick, RoomHost host, Rng& rng,
                     ReconnectPolicy reconnect)
    : m_loop(loop),
      m_account(std::move(account)),
      m_room(std::move(room)),
      m_nick(std::move(nick)),
      m_host(std::move(host)),
      m_rng(rng),
      m_reconnect(reconnect) {
  m_loop.attach(m_link);
}

MucClient::~MucClient() {
  release_connection();
  m_loop.detach(m_link);
}

void MucClient::notice(std::string kind, Severity severity, std::string text) {
  m_notices.push_back(make_notice(std::move(kind), severity, std::move(text)));
}

std::vector<Notice> MucClient::take_notices() { return std::exchange(m_notices, {}); }

bool MucClient::take_trust_changed() { return std::exchange(m_trust_changed, false); }

void MucClient::set_state(ClientState s) {
  m_state = s;
}

void MucClient::start(TimeMs now) {
  if (m_state != ClientState::Idle) {
    return;
  }
  m_now = now;
  connect(now);
}

void MucClient::connect(TimeMs now) {
  m_now = now;
  release_connection();
  m_connected_flag = false;
  m_lost.reset();
  set_state(ClientState::Connecting);
  GuardConfig config;
  config.domain = jid_domain(m_account.jid);
  config.host = m_account.host;
  config.port = m_account.port;
  config.tls = m_account.tls;
  auto guard = GuardedStream::open(std::move(config));
  if (!guard.ok()) {
    m_lost = guard.error().detail;
    return;
  }
  m_guard = std::move(guard).value();
  m_link.guard = m_guard.get();
  m_conn = xmpp_conn_new(m_loop.ctx());
  if (m_conn == nullptr) {
    throw std::bad_alloc();
  }
  m_link.conn = m_conn;
  // TLS is the guard's: libstrophe speaks plain XMPP to it over loopback. A lost connection
  // means a lost room: no stream resumption.
  xmpp_conn_set_flags(m_conn, XMPP_CONN_FLAG_DISABLE_SM | XMPP_CONN_FLAG_DISABLE_TLS);
  xmpp_conn_set_jid(m_conn, m_account.jid.c_str());
  xmpp_conn_set_pass(m_conn, m_account.password.c_str());
  xmpp_conn_set_sockopt_callback(m_conn, &Callbacks::on_socket);
  xmpp_handler_add(m_conn, &Callbacks::on_stanza, nullptr, nullptr, nullptr, this);
  t_connecting = this;
  const int rc = xmpp_connect_client(m_conn, "127.0.0.1", m_guard->listen_port(), &Callbacks::on_connection, this);
  t_connecting = nullptr;
  if (rc != XMPP_EOK) {
    m_lost = "could not connect libstrophe to its guard on 127.0.0.1";
  }
}

void MucClient::release_connection() {
  if (m_conn != nullptr) {
    xmpp_conn_release(m_conn);  // a live connection reports its end from in here: not news
    m_conn = nullptr;
  }
  m_link = XmppLoop::Link{};
  m_guard.reset();
  m_lost.reset();
  m_connected_flag = false;
}

void MucClient::report_drops(const DropCounts& drops) {
  if (drops.over_depth != 0) {
    notice("stanza_dropped", Severity::Warning,
           "The server sent " + plural(drops.over_depth, "stanza", "stanzas") + " nested deeper than " +
               std::to_string(kMaxStanzaDepth) + " elements (" + plural(drops.over_depth_bytes, "byte", "bytes") +
               "); dropped unread");
  }
  if (drops.over_size != 0) {
    notice("stanza_dropped", Severity::Warning,
           "The server sent " + plural(drops.over_size, "stanza", "stanzas") + " larger than " +
               std::to_string(kMaxStanzaBytes / 1024) + " KiB (" + plural(drops.over_size_bytes, "byte", "bytes") +
               "); dropped unread");
  }
}

void MucClient::pump(TimeMs now) {
  m_now = now;
  if (m_connected_flag) {
    m_connected_flag = false;
    on_connected();
  }
  // Stanzas first: what arrived before a disconnect still counts.
  while (!m_inbound.empty()) {
    Inbound in = std::move(m_inbound.front());
    m_inbound.pop_front();
    handle(in, now);
  }
  if (m_guard) {
    report_drops(m_guard->take_drops());
    if (m_guard->failed()) {
      m_lost = m_guard->failure();  // says why; libstrophe would only have seen the socket close
    }
  }
  if (m_dropped_inbound != 0) {
    notice("overload", Severity::Warning,
           std::to_string(m_dropped_inbound) + " stanzas were dropped because they arrived faster than they could be processed");
    m_dropped_inbound = 0;
  }
  if (m_lost) {
    std::string why = std::move(*m_lost);
    m_lost.reset();
    on_connection_lost(std::move(why));
  }
  if (m_reconnect_at && *m_reconnect_at <= now) {
    m_reconnect_at.reset();
    ++m_stats.reconnects;
    notice("reconnecting", Severity::Info, "Reconnecting to the server");
    connect(now);
  }
  if (m_leave_deadline && *m_leave_deadline <= now && m_state == ClientState::Leaving) {
    notice("leave_timeout", Severity::Warning, "The shutdown did not finish in time: leaving anyway");
    m_leave_deadline.reset();
    apply(m_host.quit(now, m_rng));  // a Quit lets the others publish their keys (spec R-SD-17)
  }
  const auto wake = m_host.wake_at();
  if (wake && *wake <= now) {
    apply(m_host.tick(now, m_rng));
  }
}

void MucClient::on_connected() {
  m_connected_once = true;
  m_backoff = 0;
  const char* bound = xmpp_conn_get_bound_jid(m_conn);
  m_bound_jid = bound != nullptr ? bound : m_account.jid;
  // libstrophe's own view (xmpp_conn_is_secured) is always plain: the guard holds the TLS.
  const bool secured = m_guard && m_guard->secured();
  std::string text = "Connected as " + m_bound_jid + (secured ? " over TLS" : " WITHOUT TLS (loopback test mode)");
  if (secured && !m_guard->certificate_note().empty()) {
    text += "; " + m_guard->certificate_note();
  }
  const bool unverified = secured && m_guard->certificate_unverified();
  notice("connected", unverified ? Severity::Warning : Severity::Info, std::move(text));
  if (m_quitting) {
    xmpp_disconnect(m_conn);
    return;
  }
  set_state(ClientState::Joining);
  send_join();
}

void MucClient::on_connection_lost(std::string why) {
  release_connection();
  if (m_quitting || m_state == ClientState::Closed) {
    // We ended it (leave or quit): not a loss.
    set_state(m_state == ClientState::Failed ? ClientState::Failed : ClientState::Closed);
    notice("closed", Severity::Info, "Disconnected");
    return;
  }
  if (m_state == ClientState::InRoom || m_state == ClientState::Leaving || m_host.in_room()) {
    apply(m_host.on_disconnected(why));
  }
  if (!m_connected_once) {
    // Never got in: wrong password, unreachable server or a refused certificate. Retrying
    // would hide the reason.
    set_state(ClientState::Failed);
    notice("connect_failed", Severity::Alert, "Could not connect: " + why);
    return;
  }
  if (!m_reconnect.enabled) {
    set_state(ClientState::Failed);
    notice("connection_lost", Severity::Warning, "Connection lost (" + why + ")");
    return;
  }
  m_backoff = m_backoff == 0 ? m_reconnect.first_delay_ms : std::min(m_backoff * 2, m_reconnect.max_delay_ms);
  m_reconnect_at = m_now + m_backoff;
  set_state(ClientState::Reconnecting);
  notice("connection_lost", Severity::Warning,
         "Connection lost (" + why + "); reconnecting in " + std::to_string(m_backoff) + " ms, then re-keying the room");
}

void MucClient::handle(const Inbound& in, TimeMs now) {
  if (const auto* p = std::get_if<PresenceIn>(&in)) {
    if (!p->error.empty()) {
      if (m_state == ClientState::Joining) {
        set_state(ClientState::Failed);
        notice("join_failed", Severity::Alert,
               "Could not join " + m_room + " as " + m_nick + ": " + p->error +
                   (p->error == "conflict" ? " (the nick is taken)" : ""));
        m_quitting = true;
        if (m_conn != nullptr) {
          xmpp_disconnect(m_conn);
        }
      } else {
        notice("presence_error", Severity::Warning, "The room reported an error: " + p->error);
      }
      return;
    }
    if (p->self || (m_state == ClientState::Joining && p->nick == m_nick)) {
      if (p->available) {
        if (p->room_created) {
          // We created the room; it stays locked until configured. Configure it non-anonymous.
          send_stanza(build_room_config(m_loop.ctx(), m_room, next_id()));
          notice("room_created", Severity::Info, "Created " + m_room + " (non-anonymous, not logged)");
        }
        if (m_state == ClientState::Joining) {
          set_state(ClientState::InRoom);
        }
        apply(m_host.on_self_present(p->nick, p->shows_jids || p->room_created, now, m_rng));
      } else if (!p->new_nick.empty()) {
        m_nick = p->new_nick;  // the room renamed us; our new presence follows
      } else if (m_state == ClientState::Leaving || m_quitting) {
        if (m_conn != nullptr) {
          xmpp_disconnect(m_conn);
        }
      } else {
        apply(m_host.on_disconnected(p->removed ? "removed from the room" : "left the room"));
        set_state(ClientState::Failed);
        m_quitting = true;
        notice("removed", Severity::Alert, "We are no longer in " + m_room + (p->removed ? ": removed by the room" : ""));
        if (m_conn != nullptr) {
          xmpp_disconnect(m_conn);
        }
      }
      return;
    }
    if (p->available) {
      apply(m_host.on_occupant_present(Occupant{p->nick, p->real_jid, p->mpotr, p->mpotr_out}, now, m_rng));
    } else if (!p->new_nick.empty()) {
      apply(m_host.on_nick_change(p->nick, p->new_nick, now, m_rng));
    } else {
      apply(m_host.on_occupant_gone(p->nick, now, m_rng));
    }
    return;
  }
  const auto& m = std::get<MessageIn>(in);
  if (!m.error.empty()) {
    notice("message_error", Severity::Warning, "The server refused one of our messages: " + m.error);
    return;
  }
  if (m.delayed) {
    return;  // history replay is never part of an off-the-record session
  }
  if (m.payload_text) {
    ++m_stats.payloads_received;
    apply(m_host.on_payload(m.nick, *m.payload_text, now, m_rng));
    return;
  }
  apply(m_host.on_plaintext(m.nick, m.body));
}

void MucClient::apply(HostOutput out) {
  for (const auto& payload : out.payloads) {
    send_payload(payload);
  }
  for (auto& n : out.notices) {
    m_notices.push_back(std::move(n));
  }
  m_trust_changed = m_trust_changed || out.trust_changed;
  if (out.marker_changed && m_state == ClientState::InRoom) {
    // Our marker says whether we stay out of the session (spec X-13).
    send_stanza(build_marker_presence(m_loop.ctx(), m_room, m_host.self_nick(), m_host.marker()));
  }
  if (out.leave_room) {
    finish_leave();
  }
}

void MucClient::finish_leave() {
  m_quitting = true;
  m_leave_deadline.reset();
  if (m_conn == nullptr || xmpp_conn_is_connected(m_conn) == 0) {
    set_state(ClientState::Closed);
    return;
  }
  send_stanza(build_leave_presence(m_loop.ctx(), m_room, m_host.in_room() ? m_host.self_nick() : m_nick));
  xmpp_disconnect(m_conn);
}

std::string MucClient::next_id() { return "mpotr-" + std::to_string(m_next_id++); }

void MucClient::send_stanza(const StanzaPtr& stanza) {
  if (m_conn == nullptr || xmpp_conn_is_connected(m_conn) == 0) {
    return;
  }
  xmpp_send(m_conn, stanza.get());
  ++m_stats.stanzas_sent;
}

void MucClient::send_payload(const Bytes& payload) {
  if (m_conn == nullptr || xmpp_conn_is_connected(m_conn) == 0) {
    notice("not_sent", Severity::Debug, "A protocol message could not be sent: not connected");
    return;
  }
  send_stanza(build_payload_message(m_loop.ctx(), m_room, next_id(), view(payload)));
  m_stats.bytes_sent += payload.size();
}

void MucClient::send_join() { send_stanza(build_join_presence(m_loop.ctx(), m_room, m_nick)); }

void MucClient::send_text(std::string_view text, TimeMs now) {
  m_now = now;
  if (m_state != ClientState::InRoom) {
    Notice n = make_notice("not_sent", Severity::Warning, "Not sent: not in the room (" + std::string(to_string(m_state)) + ")");
    n.code = ErrorCode::NotReady;
    m_notices.push_back(std::move(n));
    return;
  }
  apply(m_host.send_text(text, now, m_rng));
}

void MucClient::leave(TimeMs now) {
  m_now = now;
  if (m_state != ClientState::InRoom) {
    quit();
    return;
  }
  set_state(ClientState::Leaving);
  // The engine's own shutdown timeout ends the protocol; this cap only guards against a host
  // that never reaches it (e.g. a room that stops relaying).
  m_leave_deadline = now + kLeaveGraceMs;
  apply(m_host.leave(now, m_rng));
}

void MucClient::quit() {
  m_quitting = true;
  m_reconnect_at.reset();
  if (m_conn == nullptr || xmpp_conn_is_disconnected(m_conn) != 0) {
    release_connection();
    set_state(ClientState::Closed);
    return;
  }
  if (xmpp_conn_is_connected(m_conn) != 0 && m_host.in_room()) {
    // Quit messages first (spec R-SD-17): the others may then publish their keys.
    for (const auto& payload : m_host.quit(m_now, m_rng).payloads) {
      send_payload(payload);
    }
    send_stanza(build_leave_presence(m_loop.ctx(), m_room, m_host.self_nick()));
  }
  xmpp_disconnect(m_conn);
}

void MucClient::drop_connection() {
  if (m_guard) {
    m_guard->drop();  // the server socket dies, as on a network failure; libstrophe sees the end
  }
}

void MucClient::restart(TimeMs now) {
  m_now = now;
  apply(m_host.restart(now, m_rng));
}

Result<void> MucClient::verify(std::string_view nick, std::string_view fingerprint, TimeMs now) {
  m_now = now;
  MPOTR_TRY(HostOutput out, m_host.verify(nick, fingerprint, now, m_rng));
  apply(std::move(out));
  return {};
}

Result<void> MucClient::accept_new_key(std::string_view nick, TimeMs now) {
  m_now = now;
  MPOTR_TRY(HostOutput out, m_host.accept_new_key(nick, now, m_rng));
  apply(std::move(out));
  return {};
}

Result<void> MucClient::block(std::string_view nick, TimeMs now) {
  m_now = now;
  MPOTR_TRY(HostOutput out, m_host.block(nick, now, m_rng));
  apply(std::move(out));
  return {};
}

void MucClient::set_admission(AdmissionPolicy policy, TimeMs now) {
  m_now = now;
  apply(m_host.set_admission(policy, now, m_rng));
}

std::optional<TimeMs> MucClient::wake_at() const {
  std::optional<TimeMs> w = m_host.wake_at();
  for (const auto& t : {m_reconnect_at, m_leave_deadline}) {
    if (t && (!w || *t < *w)) {
      w = t;
    }
  }
  return w;
}

}  // namespace mpotr::transport
