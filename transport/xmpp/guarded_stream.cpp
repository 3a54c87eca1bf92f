// SPDX-License-Identifier: MIT
#include "mpotr/transport/guarded_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <system_error>

#include "tls_client.h"

namespace mpotr::transport {

namespace {

constexpr std::string_view kTlsNs = "urn:ietf:params:xml:ns:xmpp-tls";

std::string errno_text(int err) { return std::system_category().message(err); }

bool transient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

// The relay writes whatever it has at once; Nagle would hold small stanzas back for an ACK.
void set_nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// The keepalive libstrophe set on its own socket (xmpp_sockopt_cb_keepalive: idle 60 s, then
// 3 probes 30 s apart), now on the socket that actually reaches the server.
void set_keepalive(int fd) {
  const int one = 1;
  const int idle = 60;
  const int interval = 30;
  const int count = 3;
  const unsigned user_timeout = (idle + interval * count) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

// The name of the first child element of a <stream:error/>, e.g. "host-unknown".
std::string stream_error_condition(std::string_view stanza) {
  const std::size_t open_end = stanza.find('>');
  if (open_end == std::string_view::npos || open_end + 1 >= stanza.size() || stanza[open_end + 1] != '<') {
    return "unknown condition";
  }
  std::size_t end = open_end + 2;
  while (end < stanza.size() && stanza[end] != ' ' && stanza[end] != '/' && stanza[end] != '>') {
    ++end;
  }
  return std::string(stanza.substr(open_end + 2, end - open_end - 2));
}

}  // namespace

Result<std::unique_ptr<GuardedStream>> GuardedStream::open(GuardConfig config) {
  MPOTR_TRY(std::vector<ServerTarget> targets, xmpp_client_targets(config.domain, config.host, config.port));
  MPOTR_TRY(std::vector<SocketAddress> addresses, resolve_targets(targets));
  return open(std::move(config), std::move(addresses));
}

Result<std::unique_ptr<GuardedStream>> GuardedStream::open(GuardConfig config, std::vector<SocketAddress> addresses) {
  // OpenSSL writes with plain write(): a server that closed first would kill the process with
  // SIGPIPE instead of giving EPIPE (XmppLoop does the same for libstrophe).
  static std::once_flag sigpipe;
  std::call_once(sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });
  std::unique_ptr<GuardedStream> g(new GuardedStream(std::move(config), std::move(addresses)));
  g->m_listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!g->m_listener.valid() || ::bind(g->m_listener.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
      ::listen(g->m_listener.get(), 4) != 0 ||
      ::getsockname(g->m_listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return make_error(ErrorCode::Storage, "cannot listen on 127.0.0.1: " + errno_text(errno));
  }
  g->m_listen_port = ntohs(addr.sin_port);
  g->connect_next();
  return g;
}

GuardedStream::GuardedStream(GuardConfig config, std::vector<SocketAddress> addresses)
    : m_config(std::move(config)), m_addresses(std::move(addresses)), m_read_buf(kGuardReadChunk) {}

GuardedStream::~GuardedStream() { close_all(); }

Result<void> GuardedStream::adopt_client_socket(int fd) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return make_error(ErrorCode::Storage, "cannot bind libstrophe's socket to 127.0.0.1: " + errno_text(errno));
  }
  set_nodelay(fd);
  m_client_port = ntohs(addr.sin_port);
  return {};
}

// --- connecting -----------------------------------------------------------------------------

void GuardedStream::connect_next() {
  while (m_next_address < m_addresses.size()) {
    const SocketAddress& a = m_addresses[m_next_address++];
    store::UniqueFd fd(::socket(a.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      m_connect_errors += (m_connect_errors.empty() ? "" : "; ") + a.label + ": " + errno_text(errno);
      continue;
    }
    set_keepalive(fd.get());
    set_nodelay(fd.get());
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a.addr), a.len) == 0) {
      m_server = std::move(fd);
      on_connected();
      return;
    }
    if (errno == EINPROGRESS) {
      m_server = std::move(fd);
      m_deadline = Clock::now() + m_config.connect_timeout;
      return;
    }
    m_connect_errors += (m_connect_errors.empty() ? "" : "; ") + a.label + ": " + errno_text(errno);
  }
  fail("cannot connect to the server (" + (m_connect_errors.empty() ? "no address" : m_connect_errors) + ")");
}

void GuardedStream::on_connect_ready() {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(m_server.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    err = errno;
  }
  if (err != 0) {
    m_connect_errors += (m_connect_errors.empty() ? "" : "; ") + m_addresses[m_next_address - 1].label + ": " + errno_text(err);
    m_server.reset();
    connect_next();
    return;
  }
  on_connected();
}

void GuardedStream::on_connected() {
  m_deadline = Clock::now() + m_config.negotiation_timeout;
  if (m_config.tls.mode == TlsMode::Disabled) {
    start_relaying();
    return;
  }
  // STARTTLS (RFC 6120 §5.4.2) on our own stream; libstrophe's stream begins after the handshake.
  m_phase = Phase::Negotiating;
  m_negotiation_out = "<?xml version='1.0'?><stream:stream to='" + xml_escape(m_config.domain) +
                      "' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
  write_server();
}

void GuardedStream::accept_client() {
  while (m_listener.valid()) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    store::UniqueFd fd(::accept4(m_listener.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      return;
    }
    const auto* in = reinterpret_cast<const sockaddr_in*>(&peer);
    const bool ours = peer.ss_family == AF_INET && in->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
                      m_client_port != 0 && ntohs(in->sin_port) == m_client_port;
    if (!ours) {
      continue;  // another local process: closed at once, the slot stays libstrophe's
    }
    set_nodelay(fd.get());
    m_client = std::move(fd);
    m_listener.reset();
  }
}

// --- before TLS: our stream, the server's features, STARTTLS ---------------------------------

void GuardedStream::negotiate(std::string_view bytes) {
  m_scanned.clear();
  m_scanner.feed(bytes, m_scanned);
  for (const ScanEvent& e : m_scanned.events) {
    const std::string_view text = m_scanned.bytes(e);
    switch (e.kind) {
      case ScanKind::Declaration:
      case ScanKind::StreamHeader:
      case ScanKind::Whitespace:
        continue;
      case ScanKind::StreamEnd:
        fail("the server closed the stream before TLS was established");
        return;
      case ScanKind::Dropped:
        fail("the server sent an oversized stanza before TLS was established");
        return;
      case ScanKind::ProtocolError:
        fail("the server does not speak XMPP (" + e.error + ")");
        return;
      case ScanKind::Stanza:
        break;
    }
    if (text.starts_with("<stream:error")) {
      fail("the server refused the stream: " + stream_error_condition(text));
      return;
    }
    if (!m_awaiting_proceed) {
      if (!text.starts_with("<stream:features")) {
        fail("the server sent a stanza before its stream features");
        return;
      }
      if (text.find("<starttls") == std::string_view::npos || text.find(kTlsNs) == std::string_view::npos) {
        fail("the server does not offer STARTTLS, and TLS is required");
        return;
      }
      m_negotiation_out += "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
      m_awaiting_proceed = true;
      write_server();
      continue;
    }
    if (!text.starts_with("<proceed")) {
      fail(text.starts_with("<failure") ? "the server refused STARTTLS" : "the server did not answer STARTTLS");
      return;
    }
    // The server speaks TLS only after our ClientHello: nothing may follow <proceed/>.
    if (&e != &m_scanned.events.back() || m_scanner.held() != 0) {
      fail("the server sent data after <proceed/>");
      return;
    }
    start_handshake();
    return;
  }
}

void GuardedStream::start_handshake() {
  auto tls = TlsClient::start(m_server.get(), m_config.domain, m_config.tls);
  if (!tls.ok()) {
    fail(tls.error().detail);
    return;
  }
  m_tls = std::move(tls).value();
  m_phase = Phase::Handshaking;
  handshake();
}

void GuardedStream::handshake() {
  m_tls_wants_write = false;
  switch (m_tls->handshake()) {
    case TlsClient::Io::Ok: {
      auto verdict = m_tls->judge();
      if (!verdict.ok()) {
        fail(verdict.error().detail);
        return;
      }
      m_secured = true;
      m_certificate_note = verdict->note;
      m_unverified = verdict->unverified;
      start_relaying();
      return;
    }
    case TlsClient::Io::WantRead:
      return;
    case TlsClient::Io::WantWrite:
      m_tls_wants_write = true;
      return;
    case TlsClient::Io::Closed:
    case TlsClient::Io::Failed:
      fail("TLS handshake with the server failed" + (m_tls->error().empty() ? std::string() : ": " + m_tls->error()));
      return;
  }
}

// --- relaying ---------------------------------------------------------------------------------

void GuardedStream::start_relaying() {
  m_phase = Phase::Relaying;
  m_scanner = StanzaScanner{};  // after TLS the server starts a new stream
  write_server();               // what libstrophe sent meanwhile (its stream header)
}

std::size_t GuardedStream::server_recv(char* buf, std::size_t cap, bool& eof, bool& again) {
  if (m_tls) {
    std::size_t got = 0;
    m_tls_wants_write = false;
    switch (m_tls->read(buf, cap, got)) {
      case TlsClient::Io::Ok: return got;
      case TlsClient::Io::WantWrite: m_tls_wants_write = true; [[fallthrough]];
      case TlsClient::Io::WantRead: again = true; return 0;
      case TlsClient::Io::Closed: eof = true; return 0;
      case TlsClient::Io::Failed: fail("connection to the server lost (" + m_tls->error() + ")"); return 0;
    }
    return 0;
  }
  const ssize_t n = ::recv(m_server.get(), buf, cap, 0);
  if (n > 0) {
    return static_cast<std::size_t>(n);
  }
  if (n == 0) {
    eof = true;
  } else if (transient(errno)) {
    again = true;
  } else {
    fail("connection to the server lost (" + errno_text(errno) + ")");
  }
  return 0;
}

std::size_t GuardedStream::server_send(const char* buf, std::size_t len, bool& again) {
  if (m_tls) {
    std::size_t put = 0;
    m_tls_wants_write = false;
    switch (m_tls->write(buf, len, put)) {
      case TlsClient::Io::Ok: return put;
      case TlsClient::Io::WantWrite: m_tls_wants_write = true; [[fallthrough]];
      case TlsClient::Io::WantRead: again = true; return 0;
      case TlsClient::Io::Closed:
      case TlsClient::Io::Failed: fail("connection to the server lost (" + m_tls->error() + ")"); return 0;
    }
    return 0;
  }
  const ssize_t n = ::send(m_server.get(), buf, len, MSG_NOSIGNAL);
  if (n >= 0) {
    return static_cast<std::size_t>(n);
  }
  if (transient(errno)) {
    again = true;
  } else {
    fail("connection to the server lost (" + errno_text(errno) + ")");
  }
  return 0;
}

void GuardedStream::read_server() {
  std::size_t budget = kGuardTurnBudget;
  while (!m_server_eof && !failed()) {
    if (budget == 0 || m_to_client.size() >= kGuardMaxPending) {
      m_budget_used = budget == 0;
      return;
    }
    bool eof = false;
    bool again = false;
    const std::size_t n = server_recv(m_read_buf.data(), std::min(m_read_buf.size(), budget), eof, again);
    if (n == 0) {
      m_server_eof = eof;
      return;
    }
    budget -= n;
    const std::string_view bytes(m_read_buf.data(), n);
    if (m_phase == Phase::Negotiating) {
      negotiate(bytes);
      if (m_phase != Phase::Negotiating) {
        return;  // TLS from here: the next read goes through OpenSSL
      }
    } else {
      scan(bytes);
    }
  }
}

void GuardedStream::scan(std::string_view bytes) {
  m_scanned.clear();
  m_scanner.feed(bytes, m_scanned);
  m_to_client += m_scanned.pass;
  for (const ScanEvent& e : m_scanned.events) {
    if (e.kind == ScanKind::Dropped) {
      if (e.limit == StanzaLimit::Depth) {
        ++m_drops.over_depth;
        m_drops.over_depth_bytes += e.size;
      } else {
        ++m_drops.over_size;
        m_drops.over_size_bytes += e.size;
      }
    } else if (e.kind == ScanKind::ProtocolError) {
      fail("the server sent what is not XMPP (" + e.error + ")");
      return;
    }
  }
}

void GuardedStream::write_server() {
  std::string& out = m_phase == Phase::Relaying ? m_to_server : m_negotiation_out;
  while (!out.empty() && m_server.valid() && !failed()) {
    bool again = false;
    const std::size_t n = server_send(out.data(), out.size(), again);
    if (n == 0) {
      return;
    }
    out.erase(0, n);
  }
}

void GuardedStream::read_client() {
  std::size_t budget = kGuardTurnBudget;
  while (!m_client_eof && m_client.valid()) {
    if (budget == 0 || m_to_server.size() >= kGuardMaxPending) {
      m_budget_used = m_budget_used || budget == 0;
      return;
    }
    const ssize_t n = ::recv(m_client.get(), m_read_buf.data(), std::min(m_read_buf.size(), budget), 0);
    if (n > 0) {
      m_to_server.append(m_read_buf.data(), static_cast<std::size_t>(n));
      budget -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && transient(errno)) {
      return;
    }
    m_client_eof = true;  // libstrophe closed its end (or it broke): nothing more comes
  }
}

void GuardedStream::write_client() {
  while (!m_to_client.empty() && m_client.valid() && !m_client_shut) {
    const ssize_t n = ::send(m_client.get(), m_to_client.data(), m_to_client.size(), MSG_NOSIGNAL);
    if (n > 0) {
      m_to_client.erase(0, static_cast<std::size_t>(n));
      m_client_activity = true;
      continue;
    }
    if (n < 0 && transient(errno)) {
      return;
    }
    m_to_client.clear();  // libstrophe is gone: what it would have read no longer matters
    m_client_eof = true;
    m_client_shut = true;
  }
}

// Each side's end of stream is passed on once everything before it is through.
void GuardedStream::finish_directions() {
  if (m_phase != Phase::Relaying) {
    return;
  }
  if (m_server_eof && m_to_client.empty() && m_client.valid() && !m_client_shut) {
    ::shutdown(m_client.get(), SHUT_WR);
    m_client_shut = true;
    m_client_activity = true;
  }
  if (m_client_eof && m_to_server.empty() && !m_server_shut) {
    if (m_tls) {
      m_tls->close_notify();
    }
    ::shutdown(m_server.get(), SHUT_WR);
    m_server_shut = true;
  }
  if (m_client_shut && m_server_shut) {
    m_phase = Phase::Closed;
    close_all();
  }
}

// --- the loop's side ----------------------------------------------------------------------------

std::size_t GuardedStream::want(std::vector<pollfd>& fds) {
  const std::size_t first = fds.size();
  m_poll_listener = m_poll_server = m_poll_client = -1;
  const auto add = [&](int fd, short events) {
    if (fd < 0 || events == 0) {
      return -1;  // a socket that hung up reports POLLHUP whatever it is asked: not polled idle
    }
    fds.push_back({fd, events, 0});
    return static_cast<int>(fds.size() - 1 - first);
  };
  m_poll_listener = add(m_listener.get(), POLLIN);
  short server = 0;
  switch (m_phase) {
    case Phase::Connecting:
      server = POLLOUT;
      break;
    case Phase::Negotiating:
      server = static_cast<short>(POLLIN | (m_negotiation_out.empty() ? 0 : POLLOUT));
      break;
    case Phase::Handshaking:
      server = m_tls_wants_write ? POLLOUT : POLLIN;
      break;
    case Phase::Relaying:
      server = static_cast<short>(((!m_server_eof && m_to_client.size() < kGuardMaxPending) ? POLLIN : 0) |
                                  ((!m_to_server.empty() || m_tls_wants_write) ? POLLOUT : 0));
      break;
    case Phase::Closed:
    case Phase::Failed:
      break;
  }
  m_poll_server = add(m_server.get(), server);
  if (m_client.valid() && !failed()) {
    const short client = static_cast<short>(((!m_client_eof && m_to_server.size() < kGuardMaxPending) ? POLLIN : 0) |
                                            ((!m_to_client.empty() && !m_client_shut) ? POLLOUT : 0));
    m_poll_client = add(m_client.get(), client);
  }
  return fds.size() - first;
}

void GuardedStream::service(std::span<const pollfd> polled) {
  const auto revents = [&](int slot) -> short {
    return slot >= 0 && static_cast<std::size_t>(slot) < polled.size() ? polled[static_cast<std::size_t>(slot)].revents : 0;
  };
  const short listener = revents(m_poll_listener);
  const short server = revents(m_poll_server);
  const short client = revents(m_poll_client);
  m_poll_listener = m_poll_server = m_poll_client = -1;
  m_budget_used = false;
  if (m_phase == Phase::Closed || m_phase == Phase::Failed) {
    return;
  }
  if ((listener & POLLIN) != 0) {
    accept_client();
  }
  constexpr short kReadable = POLLIN | POLLHUP | POLLERR;
  const auto now = Clock::now();
  switch (m_phase) {
    case Phase::Connecting:
      if (server != 0) {
        on_connect_ready();
      } else if (now >= m_deadline) {
        m_connect_errors += (m_connect_errors.empty() ? "" : "; ") + m_addresses[m_next_address - 1].label + ": timed out";
        m_server.reset();
        connect_next();
      }
      break;
    case Phase::Negotiating:
      if ((server & POLLOUT) != 0) {
        write_server();
      }
      if ((server & kReadable) != 0) {
        read_server();
        if (m_server_eof && m_phase == Phase::Negotiating) {
          fail("the server closed the connection before TLS was established");
        }
      }
      break;
    case Phase::Handshaking:
      if (server != 0) {
        handshake();
      }
      break;
    case Phase::Relaying:
    case Phase::Closed:
    case Phase::Failed:
      break;
  }
  if ((m_phase == Phase::Negotiating || m_phase == Phase::Handshaking) && now >= m_deadline) {
    fail("the server did not complete STARTTLS in time");
  }
  if (failed()) {
    return;
  }
  if ((client & kReadable) != 0) {
    read_client();
  }
  if (m_phase == Phase::Relaying) {
    const bool tls_ready = m_tls && (m_tls->pending() || (m_tls_wants_write && (server & POLLOUT) != 0));
    if ((server & kReadable) != 0 || tls_ready) {
      read_server();
    }
    write_client();
    write_server();
    finish_directions();
  }
}

bool GuardedStream::busy() const noexcept {
  return m_budget_used || (m_phase == Phase::Relaying && m_tls && m_tls->pending());
}

void GuardedStream::drop() noexcept {
  if (m_server.valid()) {
    ::shutdown(m_server.get(), SHUT_RDWR);
  }
}

void GuardedStream::fail(std::string why) {
  if (m_phase == Phase::Failed) {
    return;
  }
  m_phase = Phase::Failed;
  m_failure = std::move(why);
  close_all();
}

void GuardedStream::close_all() noexcept {
  m_client_activity = m_client_activity || m_client.valid();  // libstrophe will read the end
  m_tls.reset();  // before the socket it refers to
  m_server.reset();
  m_listener.reset();
  m_client.reset();
  m_to_client.clear();
  m_to_server.clear();
}

}  // namespace mpotr::transport
