// SPDX-License-Identifier: MIT
#include "otp/device/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <exception>

#include "mpotr/crypto/crypto.h"
#include "mpotr/store/atomic_file.h"

namespace mpotr::otp::device {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr std::size_t kReadChunk = 64 * 1024;
// After refusing a connection we drain (and discard) what the client still sends for a short
// while, so TCP does not answer with a reset that destroys our error response.
constexpr std::chrono::seconds kDrainTime{2};
constexpr std::size_t kMaxDrain = 4 * 1024 * 1024;
constexpr int kListenBacklog = 32;

Error sys_error(const std::string& what) {
  return make_error(ErrorCode::Storage, what + ": " + std::strerror(errno));
}

// A log value: printable, bounded, quoted; a client's text cannot start a new log line.
std::string field(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < kMaxLogField; ++i) {
    const auto ch = static_cast<unsigned char>(s[i]);
    out += (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') ? '?' : static_cast<char>(ch);
  }
  if (s.size() > kMaxLogField) out += "...";
  return out + "\"";
}

bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
AnomalyLog::~AnomalyLog() {
  if (m_fd >= 0) ::close(m_fd);
}

Result<void> AnomalyLog::open(const std::string& path) {
  if (path.empty()) return {};
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return sys_error("cannot open anomaly log " + path);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
    ::close(fd);
    return make_error(ErrorCode::Storage, "anomaly log " + path + " must be a regular file owned by you");
  }
  if (m_fd >= 0) ::close(m_fd);
  m_fd = fd;
  return {};
}

void AnomalyLog::record(std::string_view event, std::string_view details) {
  char stamp[32] = {};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string line = std::string(stamp) + " " + std::string(event);
  if (!details.empty()) line += " " + std::string(details);
  line += "\n";
  // One write per line: O_APPEND keeps concurrent writers' lines whole.
  (void)write_all(m_fd >= 0 ? m_fd : STDERR_FILENO, line);
}

// ---------------------------------------------------------------------------------------------
bool Confirmer::ask(const std::string& question) {
  if (m_mode == ConfirmMode::Auto) return true;
  if (!write_all(m_out, question)) return false;
  const auto deadline = Clock::now() + kConfirmTimeout;
  for (;;) {
    const auto nl = m_buffer.find('\n');
    if (nl != std::string::npos) {
      std::string answer = m_buffer.substr(0, nl);
      m_buffer.erase(0, nl + 1);
      while (!answer.empty() && (answer.back() == '\r' || answer.back() == ' ')) answer.pop_back();
      for (auto& ch : answer) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return answer == "y" || answer == "yes";
    }
    if (m_buffer.size() > 1024) m_buffer.clear();  // nobody types that much: drop it, keep asking
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      (void)write_all(m_out, "\n(no answer: refused)\n");
      return false;
    }
    // A signal may arrive just before poll(): wait in slices and check for shutdown each time.
    if (m_stop && m_stop()) return false;
    pollfd p{m_in, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 100)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) continue;
    char buf[256];
    const ssize_t n = ::read(m_in, buf, sizeof buf);
    if (n <= 0) return false;  // EOF, error or signal: nobody answered, so nothing is released
    m_buffer.append(buf, static_cast<std::size_t>(n));
  }
}

// ---------------------------------------------------------------------------------------------
std::string Dispatcher::handle(std::string_view line, ConnContext& ctx, bool& close) {
  close = false;
  try {
    auto parsed = parse_request(line);
    if (auto* fail = std::get_if<ParseFailure>(&parsed)) {
      m_log.record("refused_request", "peer=" + field(ctx.peer) + " code=" +
                                          std::string(to_string(fail->error.code)) + " detail=" +
                                          field(fail->error.detail));
      if (ctx.tcp && !ctx.authenticated) {
        close = true;
        m_log.record("auth_failure", "peer=" + field(ctx.peer) + " reason=\"bad request before auth\"");
      }
      return error_response(fail->id_json, fail->error);
    }
    return dispatch(std::get<Request>(parsed), ctx, close);
  } catch (const std::exception& e) {
    // Nothing may escape the daemon silently: the client gets an error, the log a line.
    m_log.record("internal_error", "detail=" + field(e.what()));
    close = true;
    return error_response("null", make_error(ErrorCode::Internal, "internal error"));
  }
}

std::string Dispatcher::dispatch(const Request& req, ConnContext& ctx, bool& close) {
  const auto fail = [&](const Error& e, std::string_view event) {
    m_log.record(event, "peer=" + field(ctx.peer) + " code=" + std::string(to_string(e.code)) +
                            " detail=" + field(e.detail));
    return error_response(req.id_json, e);
  };

  if (req.op == Op::Auth) {
    if (!ctx.tcp) {
      return fail(make_error(ErrorCode::InvalidState, "auth is for TCP connections only (Unix socket clients are authenticated by their uid)"),
                  "refused_request");
    }
    // Digests first, so the comparison takes the same time whatever the length tried;
    // ct_equal compares in constant time (mpotr/crypto).
    const auto want = crypto::sha256(m_token.view());
    const auto got = crypto::sha256(as_bytes(req.token));
    if (m_token.empty() || !ct_equal(view(want), view(got))) {
      close = true;
      return fail(make_error(ErrorCode::InvalidState, "authentication failed"), "auth_failure");
    }
    ctx.authenticated = true;
    return ok_response(req.id_json, json::object());
  }
  if (ctx.tcp && !ctx.authenticated) {
    close = true;
    return fail(make_error(ErrorCode::InvalidState, "authentication required: send {\"op\":\"auth\",\"token\":…} first"),
                "auth_failure");
  }

  switch (req.op) {
    case Op::List: {
      auto contacts = m_pads.contacts();
      if (!contacts) return fail(contacts.error(), "request_failed");
      return ok_response(req.id_json, json{{"contacts", contacts.value()}});
    }
    case Op::Status: {
      std::vector<std::string> names;
      if (!req.contact.empty()) {
        names.push_back(req.contact);
      } else {
        auto contacts = m_pads.contacts();
        if (!contacts) return fail(contacts.error(), "request_failed");
        names = std::move(contacts).value();
      }
      json arr = json::array();
      for (const auto& name : names) {
        auto st = m_pads.status(name);
        if (!st) return fail(st.error(), "request_failed");
        arr.push_back({{"contact", st->contact},
                       {"send_remaining", st->send_remaining},
                       {"receive_remaining", st->receive_remaining},
                       {"health", st->health}});
      }
      return ok_response(req.id_json, json{{"me", m_pads.me()}, {"contacts", arr}});
    }
    case Op::Package: {
      auto cost = m_pads.package_cost(req.contact, req.payload.size());
      if (!cost) return fail(cost.error(), "request_failed");
      const std::string question = m_pads.me() + " wants " + std::to_string(*cost) + " pad bytes to send a " +
                                   std::to_string(req.payload.size()) + "-byte message to " + req.contact +
                                   " — allow? [y/N] ";
      if (!m_confirm.ask(question)) {
        return fail(make_error(ErrorCode::InvalidState, "refused by the device owner"), "refused_request");
      }
      auto packaged = m_pads.package(req.contact, req.payload.view());
      if (!packaged) return fail(packaged.error(), "request_failed");
      return ok_response(req.id_json, json{{"packet_b64", to_base64(packaged->packet)},
                                           {"offset", packaged->offset},
                                           {"pad_bytes", packaged->pad_bytes}});
    }
    case Op::PackageGroup: {
      // One question for the whole group message (notes §3.9): who, to whom, how much.
      auto costs = m_pads.group_cost(req.to, req.payload.size());
      if (!costs) return fail(costs.error(), "request_failed");
      std::uint64_t total = 0;
      std::string names;
      for (std::size_t i = 0; i < req.to.size(); ++i) {
        total += (*costs)[i];
        names += (i == 0 ? "" : ", ") + req.to[i];
      }
      const std::string question = m_pads.me() + " wants " + std::to_string(total) + " pad bytes to send a " +
                                   std::to_string(req.payload.size()) + "-byte group message to " + names +
                                   " — allow? [y/N] ";
      if (!m_confirm.ask(question)) {
        return fail(make_error(ErrorCode::InvalidState, "refused by the device owner"), "refused_request");
      }
      auto packaged = m_pads.package_group(req.to, req.payload.view());
      if (!packaged) return fail(packaged.error(), "request_failed");
      json packets = json::array();
      for (const auto& [contact, p] : packaged->copies) {
        packets.push_back({{"contact", contact},
                           {"packet_b64", to_base64(p.packet)},
                           {"offset", p.offset},
                           {"pad_bytes", p.pad_bytes}});
      }
      return ok_response(req.id_json, json{{"group", group_to_json(packaged->group)}, {"packets", std::move(packets)}});
    }
    case Op::Unpackage: {
      const std::string question = "a " + std::to_string(req.payload.size()) + "-byte packet from " + req.contact +
                                   " — decrypt? [y/N] ";
      if (!m_confirm.ask(question)) {
        return fail(make_error(ErrorCode::InvalidState, "refused by the device owner"), "refused_request");
      }
      auto opened = m_pads.unpackage(req.contact, req.payload.view());
      if (!opened) {
        const auto code = opened.error().code;
        const char* event = code == ErrorCode::BadMac                                ? "mac_failure"
                            : (code == ErrorCode::Replay || code == ErrorCode::Duplicate) ? "replay"
                                                                                          : "request_failed";
        return fail(opened.error(), event);
      }
      for (const auto& w : opened->warnings) {
        m_log.record(w, "peer=" + field(ctx.peer) + " contact=" + field(req.contact) +
                            " offset=" + std::to_string(opened->offset));
      }
      std::string b64 = to_base64(opened->message.view());
      json fields{{"message_b64", b64},
                  {"type", type_name(opened->type)},
                  {"seq", opened->seq},
                  {"offset", opened->offset},
                  {"pad_bytes", opened->pad_bytes},
                  {"warnings", opened->warnings}};
      if (opened->group) fields["group"] = group_to_json(*opened->group);
      auto response = ok_response(req.id_json, fields);
      secure_zero(b64.data(), b64.size());
      return response;
    }
    case Op::Auth: break;
  }
  return error_response(req.id_json, make_error(ErrorCode::Internal, "unhandled op"));
}

// ---------------------------------------------------------------------------------------------
struct Server::Client {
  int fd = -1;
  ConnContext ctx;
  std::string in;
  std::string out;
  Clock::time_point last_activity = Clock::now();
  std::optional<Clock::time_point> partial_since;
  bool closing = false;  // flush out, then drain
  std::optional<Clock::time_point> drain_until;
  std::size_t drained = 0;
  bool dead = false;
};

Server::Server(ServerConfig config, Dispatcher& dispatcher, AnomalyLog& log)
    : m_config(std::move(config)), m_dispatcher(dispatcher), m_log(log) {}

Server::~Server() {
  for (auto& c : m_clients) ::close(c->fd);
  if (m_unix_fd >= 0) {
    ::close(m_unix_fd);
    ::unlink(m_config.socket_path.c_str());
  }
  if (m_tcp_fd >= 0) ::close(m_tcp_fd);
}

Result<void> Server::open() {
  const std::string& path = m_config.socket_path;
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return make_error(ErrorCode::InvalidArgument, "socket path must be 1-" + std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::string dir = store::parent_dir(path);
  if (dir.empty()) dir = ".";
  MPOTR_CHECK(store::ensure_private_dir(dir));
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return sys_error("cannot stat " + dir);
  // The socket's directory is the authentication: only we may enter it.
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return make_error(ErrorCode::Storage, "socket directory " + dir + " must be a directory owned by you with mode 0700 (chmod 700 " + dir + ")");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  addr.sun_family = AF_UNIX;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return make_error(ErrorCode::Storage, path + " exists and is not a socket");
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) ::close(probe);
    if (live) return make_error(ErrorCode::InvalidState, "another daemon is listening on " + path);
    ::unlink(path.c_str());  // stale socket of a daemon that died
  }
  m_unix_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (m_unix_fd < 0) return sys_error("socket");
  const mode_t old_mask = ::umask(0177);
  const int rc = ::bind(m_unix_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old_mask);
  if (rc != 0) {
    auto e = sys_error("cannot bind " + path);
    ::close(m_unix_fd);
    m_unix_fd = -1;
    return e;
  }
  if (::chmod(path.c_str(), 0600) != 0 || ::listen(m_unix_fd, kListenBacklog) != 0) return sys_error("cannot listen on " + path);

  if (!m_config.tcp_host.empty()) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(m_config.tcp_port);
    if (::getaddrinfo(m_config.tcp_host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
      return make_error(ErrorCode::InvalidArgument, "TCP address must be a numeric IP: " + m_config.tcp_host);
    }
    m_tcp_fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int one = 1;
    const bool ok = m_tcp_fd >= 0 && ::setsockopt(m_tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                    ::bind(m_tcp_fd, res->ai_addr, res->ai_addrlen) == 0 && ::listen(m_tcp_fd, kListenBacklog) == 0;
    ::freeaddrinfo(res);
    if (!ok) return sys_error("cannot listen on " + m_config.tcp_host + ":" + port);
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (::getsockname(m_tcp_fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) return sys_error("getsockname");
    m_bound_tcp_port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                        : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  }
  return {};
}

void Server::accept_from(int listen_fd, bool tcp) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&sa), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;  // EAGAIN, or the client gave up: nothing to do
  if (m_clients.size() >= kMaxClients + kMaxRefusedPending) {
    ::close(fd);
    return;
  }
  auto c = std::make_unique<Client>();
  c->fd = fd;
  c->ctx.tcp = tcp;
  if (tcp) {
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa.ss_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&sa);
      ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
      port = ntohs(in->sin_port);
    } else if (sa.ss_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&sa);
      ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
      port = ntohs(in6->sin6_port);
    }
    c->ctx.peer = std::string(host) + ":" + std::to_string(port);
  } else {
    ucred cred{};
    socklen_t clen = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) cred.uid = static_cast<uid_t>(-1);
    c->ctx.peer = "uid=" + std::to_string(cred.uid) + " pid=" + std::to_string(cred.pid);
    // Directory permissions are the first line; the peer's uid is the second.
    if (cred.uid != ::geteuid()) {
      m_log.record("auth_failure", "peer=" + field(c->ctx.peer) + " reason=\"foreign uid\"");
      c->out = error_response("null", make_error(ErrorCode::InvalidState, "connection from another user refused"));
      c->closing = true;
    } else {
      c->ctx.authenticated = true;
    }
  }
  std::size_t active = 0;
  for (const auto& other : m_clients) active += other->closing ? 0 : 1;
  if (active >= kMaxClients) {
    m_log.record("refused_connection", "peer=" + field(c->ctx.peer) + " reason=\"too many clients\"");
    c->out = error_response("null", make_error(ErrorCode::LimitExceeded,
                                               "too many clients (at most " + std::to_string(kMaxClients) + ")"));
    c->closing = true;
  }
  m_clients.push_back(std::move(c));
}

// Processes complete lines while there is room for the answers.
void Server::serve(Client& c) {
  bool consumed = false;
  while (!c.closing && c.out.size() < kMaxPendingOutput) {
    const auto nl = c.in.find('\n');
    if (nl == std::string::npos) {
      if (c.in.size() > kMaxRequestLine) {
        // Refuse without buffering the rest: the client is told, the connection ends.
        m_log.record("refused_request", "peer=" + field(c.ctx.peer) + " reason=\"request line too long\"");
        c.out += error_response("null", make_error(ErrorCode::DecodeOversize, "request line longer than " +
                                                                                  std::to_string(kMaxRequestLine) + " bytes"));
        c.in.clear();
        c.in.shrink_to_fit();
        c.closing = true;
      }
      break;
    }
    bool close = false;
    c.out += m_dispatcher.handle(std::string_view(c.in).substr(0, nl), c.ctx, close);
    secure_zero(c.in.data(), nl + 1);  // the request may carry a message in clear
    c.in.erase(0, nl + 1);
    consumed = true;
    if (close) {
      c.in.clear();
      c.closing = true;
    }
  }
  // The request-line clock runs from the first byte of the line now at the front.
  if (c.in.empty()) {
    c.partial_since.reset();
  } else if (consumed || !c.partial_since) {
    c.partial_since = Clock::now();
  }
}

Result<void> Server::run(const std::function<bool()>& stop) {
  std::vector<pollfd> fds;
  std::string buf(kReadChunk, '\0');
  while (!stop()) {
    fds.clear();
    fds.push_back({m_unix_fd, POLLIN, 0});
    if (m_tcp_fd >= 0) fds.push_back({m_tcp_fd, POLLIN, 0});
    const std::size_t first_client = fds.size();
    const auto now = Clock::now();
    auto next_deadline = now + std::chrono::seconds(1);
    for (auto& c : m_clients) {
      short events = 0;
      const bool reading = c->closing ? c->out.empty() : c->out.size() < kMaxPendingOutput;
      if (reading) events |= POLLIN;
      if (!c->out.empty()) events |= POLLOUT;
      fds.push_back({c->fd, events, 0});
      next_deadline = std::min(next_deadline, c->last_activity + m_config.idle_timeout);
      if (c->partial_since) next_deadline = std::min(next_deadline, *c->partial_since + m_config.partial_timeout);
      if (c->drain_until) next_deadline = std::min(next_deadline, *c->drain_until);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_deadline - now).count();
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(0, wait)) + 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("poll");
    }
    for (std::size_t i = first_client; i < fds.size(); ++i) {
      Client& c = *m_clients[i - first_client];
      const short re = fds[i].revents;
      if (re & POLLOUT) {
        const ssize_t w = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (w > 0) {
          secure_zero(c.out.data(), static_cast<std::size_t>(w));  // may have been a decrypted message
          c.out.erase(0, static_cast<std::size_t>(w));
          c.last_activity = Clock::now();
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          c.dead = true;
          continue;
        }
        if (!c.closing) serve(c);  // more answers may now fit
      }
      if (re & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t r = ::recv(c.fd, buf.data(), buf.size(), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          c.dead = true;
          continue;
        }
        if (r > 0) {
          c.last_activity = Clock::now();
          if (c.closing) {
            c.drained += static_cast<std::size_t>(r);  // discarded, never kept
            if (c.drained > kMaxDrain) c.dead = true;
          } else {
            c.in.append(buf.data(), static_cast<std::size_t>(r));
            secure_zero(buf.data(), static_cast<std::size_t>(r));
            serve(c);
          }
        }
      }
    }
    // Timeouts and finished connections.
    const auto later = Clock::now();
    for (auto& c : m_clients) {
      if (c->dead) continue;
      if (c->closing && c->out.empty()) {
        if (!c->drain_until) {
          ::shutdown(c->fd, SHUT_WR);
          c->drain_until = later + kDrainTime;
        } else if (later >= *c->drain_until) {
          c->dead = true;
        }
        continue;
      }
      const bool idle = later - c->last_activity >= m_config.idle_timeout;
      const bool stuck = c->partial_since && later - *c->partial_since >= m_config.partial_timeout;
      if ((idle || stuck) && !c->closing) {
        m_log.record("timeout", "peer=" + field(c->ctx.peer) + (stuck ? " reason=\"unfinished request\"" : " reason=\"idle\""));
        c->out += error_response("null", make_error(ErrorCode::InvalidState, stuck ? "request not finished in time" : "idle timeout"));
        c->in.clear();
        c->partial_since.reset();
        c->closing = true;
      } else if (c->closing && later - c->last_activity >= m_config.idle_timeout) {
        c->dead = true;  // a client that never reads its error
      }
    }
    std::erase_if(m_clients, [](const std::unique_ptr<Client>& c) {
      if (c->dead) ::close(c->fd);
      return c->dead;
    });
    if (fds[0].revents & POLLIN) accept_from(m_unix_fd, false);
    if (m_tcp_fd >= 0 && (fds[1].revents & POLLIN)) accept_from(m_tcp_fd, true);
  }
  return {};
}

}  // namespace mpotr::otp::device
