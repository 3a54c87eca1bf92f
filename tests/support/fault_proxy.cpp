// SPDX-License-Identifier: MIT
#include "support/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include "mpotr/store/unique_fd.h"

namespace mpotr::test {
namespace {

using Kind = StanzaSplitter::Kind;
using Piece = StanzaSplitter::Piece;
using Clock = std::chrono::steady_clock;
using store::UniqueFd;

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::size_t kReadChunk = 64 * 1024;
// A source is not read while this much waits for its receiver, so a stalled receiver cannot
// grow the queue without bound.
constexpr std::size_t kMaxQueued = 1 << 20;
// An injected stream's next chunk is pulled once less than this waits for the receiver.
constexpr std::size_t kInjectLowWater = 256 * 1024;
constexpr Direction kDirections[] = {Direction::ToServer, Direction::ToClient};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// "<a:b x='1'>" -> "a:b", "</a>" -> "a", "<?xml version='1.0'?>" -> "xml".
std::string_view element_name(std::string_view tag) {
  std::size_t begin = 1;
  if (begin < tag.size() && (tag[begin] == '/' || tag[begin] == '?')) ++begin;
  std::size_t end = begin;
  while (end < tag.size() && !is_space(tag[end]) && tag[end] != '/' && tag[end] != '>' &&
         tag[end] != '?') {
    ++end;
  }
  return tag.substr(begin, end - begin);
}

std::string errno_text(const std::string& what, int err = errno) {
  return what + ": " + std::system_category().message(err);
}

// Closes with SO_LINGER 0: the peer gets a RST, as when the network drops the connection.
void reset_fd(UniqueFd& fd) {
  if (!fd.valid()) return;
  const linger lin{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
  fd.reset();
}

// Stanzas are small and latency matters more than packet count in tests.
void set_nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool transient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

// Bytes the proxy sends as if the peer had: fixed, or pulled chunk by chunk until "".
struct Injection {
  std::string bytes;
  std::function<std::string()> next_chunk;
};

// One direction of a connection: bytes read from its source, split, queued for its receiver.
struct Flow {
  StanzaSplitter splitter;
  std::string out;       // waiting to be written to the receiver
  std::string waiting;   // the source's traffic held behind an injection (one stream)
  std::deque<Injection> injections;
  bool opened = false;   // a stream header went to the receiver: injections may begin
  std::size_t held = 0;  // stanzas of this flow waiting out a Delay
  bool eof = false;      // the source closed its side...
  bool shut = false;     // ...and that close was passed on to the receiver

  bool injecting() const { return opened && !injections.empty(); }
  std::size_t queued() const { return out.size() + waiting.size(); }
};

struct Connection {
  std::uint64_t id = 0;
  UniqueFd client;
  UniqueFd server;
  bool connected = false;  // the upstream connect has completed
  bool dead = false;       // closed; removed at the end of the loop iteration
  Flow flows[2];           // indexed by index(Direction)

  Flow& flow(Direction d) { return flows[index(d)]; }
  int source(Direction d) const { return d == Direction::ToServer ? client.get() : server.get(); }
  int receiver(Direction d) const { return d == Direction::ToServer ? server.get() : client.get(); }
  // The upstream socket is neither read nor written before its connect completes.
  bool reading(Direction d) {
    const Flow& f = flow(d);
    return !f.eof && f.queued() < kMaxQueued && (d == Direction::ToServer || connected);
  }
  bool writing(Direction d) {
    return !flow(d).out.empty() && (d == Direction::ToClient || connected);
  }
};

struct HeldStanza {
  std::uint64_t connection;
  Direction direction;
  int copies;
  std::string bytes;
};

struct RuleState {
  FaultRule rule;
  std::uint64_t matches = 0;
};

}  // namespace

// ---- StanzaSplitter ------------------------------------------------------------------------

std::vector<Piece> StanzaSplitter::feed(std::string_view bytes) {
  std::vector<Piece> out;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (m_raw != RawReason::None) {
      if (out.empty() || out.back().kind != Kind::Raw) out.push_back({Kind::Raw, {}});
      out.back().bytes.append(bytes.substr(i));
      break;
    }
    const char c = bytes[i];
    if (m_in_tag) {
      m_buf += c;
      scan_tag(c, out);
    } else if (c == '<') {
      if (m_depth <= 1) emit(Kind::Whitespace, out);
      m_in_tag = true;
      m_quote = 0;
      m_tag_start = m_buf.size();
      m_buf += c;
    } else if (m_depth <= 1 && !is_space(c)) {
      emit(Kind::Whitespace, out);  // what came before was fine
      m_buf += c;
      fail(out);
    } else {
      m_buf += c;
    }
  }
  // Whitespace between stanzas (keepalives) is passed on now, not held for the next tag.
  if (m_raw == RawReason::None && m_depth <= 1 && !m_in_tag) emit(Kind::Whitespace, out);
  return out;
}

std::string StanzaSplitter::take_pending() {
  m_in_tag = false;
  m_quote = 0;
  return std::exchange(m_buf, {});
}

void StanzaSplitter::scan_tag(char c, std::vector<Piece>& out) {
  // Comments, CDATA and PIs are not allowed in XMPP; the XML declaration (a PI at depth <= 1,
  // where stream restarts put it) is the one exception, checked in on_tag_end.
  if (m_buf.size() - m_tag_start == 2 && (c == '!' || (c == '?' && m_depth >= 2))) {
    fail(out);
  } else if (m_quote != 0) {
    if (c == m_quote) m_quote = 0;
  } else if (c == '"' || c == '\'') {
    m_quote = c;
  } else if (c == '>') {
    m_in_tag = false;
    on_tag_end(out);
  }
}

void StanzaSplitter::on_tag_end(std::vector<Piece>& out) {
  const std::string_view tag = std::string_view(m_buf).substr(m_tag_start);
  const std::string_view name = element_name(tag);  // into m_buf: read before any emit
  if (tag[1] == '?') {
    if (name == "xml" && tag.ends_with("?>")) {
      emit(Kind::Declaration, out);
    } else {
      fail(out);
    }
  } else if (tag[1] == '/') {
    if (m_depth >= 2) {
      if (--m_depth == 1) finish_stanza(out);
    } else if (m_depth == 1) {
      m_depth = 0;
      emit(Kind::StreamEnd, out);
    } else {
      fail(out);
    }
  } else if (tag.ends_with("/>")) {
    if (m_depth == 0) {
      fail(out);
    } else if (m_depth == 1) {
      finish_stanza(out);
    }
  } else if (name == "stream:stream") {
    // A restart can only come between stanzas; if one was unfinished, its bytes go along.
    m_depth = 1;
    emit(Kind::StreamHeader, out);
  } else if (m_depth == 0) {
    fail(out);
  } else {
    ++m_depth;
  }
}

void StanzaSplitter::finish_stanza(std::vector<Piece>& out) {
  const std::string_view name = element_name(m_buf);
  // After <starttls/> the client speaks TLS, after <proceed/> so does the server.
  const bool tls = name == "starttls" || name == "proceed";
  emit(Kind::Stanza, out);
  if (tls) m_raw = RawReason::Starttls;
}

void StanzaSplitter::emit(Kind kind, std::vector<Piece>& out) {
  if (m_buf.empty()) return;
  out.push_back({kind, std::exchange(m_buf, {})});
}

void StanzaSplitter::fail(std::vector<Piece>& out) {
  m_raw = RawReason::ParseError;
  m_in_tag = false;
  emit(Kind::Raw, out);
}

// ---- Corruption ----------------------------------------------------------------------------

bool corrupt_longest_text(std::string& stanza, std::mt19937_64& rng) {
  std::size_t best_begin = 0;
  std::size_t best_size = 0;
  std::size_t text_begin = std::string::npos;  // just after the last tag's '>'
  bool in_tag = false;
  char quote = 0;
  for (std::size_t i = 0; i < stanza.size(); ++i) {
    const char c = stanza[i];
    if (in_tag) {
      if (quote != 0) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '>') {
        in_tag = false;
        text_begin = i + 1;
      }
    } else if (c == '<') {
      if (text_begin != std::string::npos && i - text_begin > best_size) {
        best_begin = text_begin;
        best_size = i - text_begin;
      }
      in_tag = true;
    }
  }

  std::vector<std::size_t> candidates;
  bool in_entity = false;
  for (std::size_t i = best_begin; i < best_begin + best_size; ++i) {
    const char c = stanza[i];
    if (c == '&') {
      in_entity = true;
    } else if (in_entity) {
      in_entity = c != ';';
    } else if (kBase64Alphabet.find(c) != std::string_view::npos) {
      candidates.push_back(i);
    }
  }
  if (candidates.empty()) return false;

  const std::size_t pos = candidates[rng() % candidates.size()];
  const std::size_t old = kBase64Alphabet.find(stanza[pos]);
  const std::size_t shift = 1 + rng() % (kBase64Alphabet.size() - 1);  // never 0: must differ
  stanza[pos] = kBase64Alphabet[(old + shift) % kBase64Alphabet.size()];
  return true;
}

// ---- FaultProxy ----------------------------------------------------------------------------

struct FaultProxy::Impl {
  Impl(const std::string& target_host, std::uint16_t target_port, std::uint64_t seed);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void wake() const;
  void record_error(std::string message);
  void await_applied(std::unique_lock<std::mutex>& lock);

  // Proxy thread.
  void run() noexcept;
  void loop();
  void cut_all();
  void accept_all();
  void service(Connection& c, short client_events, short server_events);
  void read_from(Connection& c, Direction d);
  void write_to(Connection& c, Direction d);
  void apply_faults(Connection& c, Direction d, std::string stanza);          // mutex held
  bool fires(RuleState& r);                                                   // mutex held
  void deliver(Flow& f, Direction d, const std::string& stanza, int copies);  // mutex held
  static void pass(Flow& f, std::string_view bytes);                          // mutex held
  void distribute(std::vector<std::pair<Direction, Injection>> injections);
  void feed_injections(Flow& f, Direction d);
  void release_due();
  void finish(Connection& c);
  static void abort(Connection& c);

  // Fixed once the thread runs.
  sockaddr_storage target{};
  socklen_t target_len = 0;
  UniqueFd listener;
  UniqueFd wake_read;  // self-pipe: control calls interrupt poll()
  UniqueFd wake_write;
  std::uint16_t port = 0;

  // Shared with the control API.
  mutable std::mutex mutex;
  mutable std::condition_variable changed;  // after every loop iteration and at thread exit
  std::vector<RuleState> rules;
  std::mt19937_64 rng;
  ProxyStats stats;
  std::string recording[2];
  bool blackhole = false;
  bool cut_pending = false;
  std::vector<std::pair<Direction, Injection>> pending_injections;
  bool stopping = false;
  bool running = true;
  // Control calls wait until the thread has acted on them, so that what a test does next
  // (send through a blackholed link, reconnect after a cut) meets the new state.
  std::uint64_t requests = 0;
  std::uint64_t applied = 0;

  // Proxy thread only.
  std::list<Connection> connections;  // stable addresses while a poll round refers to them
  std::multimap<Clock::time_point, HeldStanza> held;  // equal times keep arrival order
  std::uint64_t next_id = 1;
  std::vector<char> read_buf = std::vector<char>(kReadChunk);

  std::thread thread;  // last: started once everything above exists
};

FaultProxy::Impl::Impl(const std::string& target_host, std::uint16_t target_port,
                       std::uint64_t seed)
    : rng(seed) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(target_port);
  if (const int rc = ::getaddrinfo(target_host.c_str(), port_text.c_str(), &hints, &found); rc) {
    throw std::runtime_error("FaultProxy: resolve " + target_host + ": " + ::gai_strerror(rc));
  }
  std::memcpy(&target, found->ai_addr, found->ai_addrlen);
  target_len = found->ai_addrlen;
  ::freeaddrinfo(found);

  listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listener.valid()) throw std::runtime_error(errno_text("FaultProxy: socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
      ::listen(listener.get(), SOMAXCONN) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error(errno_text("FaultProxy: listen on 127.0.0.1"));
  }
  port = ntohs(addr.sin_port);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    throw std::runtime_error(errno_text("FaultProxy: pipe"));
  }
  wake_read.reset(pipe_fds[0]);
  wake_write.reset(pipe_fds[1]);

  thread = std::thread([this] { run(); });
}

FaultProxy::Impl::~Impl() {
  {
    const std::lock_guard lock(mutex);
    stopping = true;
  }
  wake();
  thread.join();
}

void FaultProxy::Impl::wake() const {
  // A full pipe already guarantees a wake-up, so a failed write needs no handling.
  const char byte = 0;
  [[maybe_unused]] const ssize_t n = ::write(wake_write.get(), &byte, 1);
}

void FaultProxy::Impl::await_applied(std::unique_lock<std::mutex>& lock) {
  const std::uint64_t ticket = ++requests;
  wake();
  changed.wait(lock, [&] { return applied >= ticket || !running; });
}

void FaultProxy::Impl::record_error(std::string message) {
  const std::lock_guard lock(mutex);
  stats.last_error = std::move(message);
}

void FaultProxy::Impl::run() noexcept {
  try {
    loop();
  } catch (const std::exception& e) {
    record_error(std::string("FaultProxy thread: ") + e.what());
  } catch (...) {
    record_error("FaultProxy thread: unknown exception");
  }
  connections.clear();
  held.clear();
  const std::lock_guard lock(mutex);
  running = false;
  changed.notify_all();
}

void FaultProxy::Impl::loop() {
  std::vector<pollfd> fds;
  struct Polled {
    Connection* connection;
    int client_slot;  // index in fds, or -1 when the socket is not polled
    int server_slot;
  };
  std::vector<Polled> polled;

  while (true) {
    bool hung = false;
    bool cut_now = false;
    std::uint64_t ticket = 0;
    std::vector<std::pair<Direction, Injection>> injections;
    {
      const std::lock_guard lock(mutex);
      if (stopping) return;
      hung = blackhole;
      cut_now = std::exchange(cut_pending, false);
      injections = std::exchange(pending_injections, {});
      ticket = requests;
    }
    if (cut_now) cut_all();
    distribute(std::move(injections));
    {
      // Everything below (the poll set included) follows the state just read.
      const std::lock_guard lock(mutex);
      if (applied != ticket) {
        applied = ticket;
        changed.notify_all();
      }
    }
    release_due();

    fds.clear();
    polled.clear();
    fds.push_back({wake_read.get(), POLLIN, 0});
    fds.push_back({listener.get(), POLLIN, 0});
    // A socket is polled only when something is wanted from it: a socket that hung up
    // reports POLLHUP whatever it is asked, and would spin the loop. Blackholed: nothing.
    const auto slot = [&fds](int fd, short events) {
      if (events == 0) return -1;
      fds.push_back({fd, events, 0});
      return static_cast<int>(fds.size() - 1);
    };
    if (!hung) {
      for (Connection& c : connections) {
        for (const Direction d : kDirections) feed_injections(c.flow(d), d);
        const short client_events =
            static_cast<short>((c.reading(Direction::ToServer) ? POLLIN : 0) |
                               (c.writing(Direction::ToClient) ? POLLOUT : 0));
        const short server_events =
            static_cast<short>(!c.connected ? POLLOUT
                                            : (c.reading(Direction::ToClient) ? POLLIN : 0) |
                                                  (c.writing(Direction::ToServer) ? POLLOUT : 0));
        const int client_slot = slot(c.client.get(), client_events);
        polled.push_back({&c, client_slot, slot(c.server.get(), server_events)});
      }
    }

    int timeout_ms = -1;
    if (!held.empty()) {
      const auto wait =
          std::chrono::ceil<std::chrono::milliseconds>(held.begin()->first - Clock::now());
      timeout_ms = static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, wait.count()));
    }
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "poll");
    }

    if (fds[0].revents != 0) {
      char drain[64];
      while (::read(wake_read.get(), drain, sizeof drain) > 0) {
      }
    }
    if ((fds[1].revents & POLLIN) != 0) accept_all();
    for (const Polled& p : polled) {
      const short client_events = p.client_slot < 0 ? 0 : fds[p.client_slot].revents;
      const short server_events = p.server_slot < 0 ? 0 : fds[p.server_slot].revents;
      if (client_events != 0 || server_events != 0) {
        service(*p.connection, client_events, server_events);
      }
    }
    if (!hung) {
      for (Connection& c : connections) finish(c);
    }
    connections.remove_if([](const Connection& c) { return c.dead; });
    changed.notify_all();
  }
}

void FaultProxy::Impl::cut_all() {
  for (Connection& c : connections) abort(c);
  connections.clear();
  held.clear();
}

void FaultProxy::Impl::accept_all() {
  while (true) {
    UniqueFd client(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!client.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (!transient(errno)) record_error(errno_text("accept"));
      return;
    }
    {
      const std::lock_guard lock(mutex);
      ++stats.connections;
    }
    Connection& c = connections.emplace_back();
    c.id = next_id++;
    c.client = std::move(client);
    set_nodelay(c.client.get());
    c.server.reset(::socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.server.valid()) {
      record_error(errno_text("socket"));
      abort(c);
      continue;
    }
    set_nodelay(c.server.get());
    if (::connect(c.server.get(), reinterpret_cast<const sockaddr*>(&target), target_len) == 0) {
      c.connected = true;
    } else if (errno != EINPROGRESS) {
      record_error(errno_text("connect to target"));
      abort(c);
    }
  }
}

void FaultProxy::Impl::service(Connection& c, short client_events, short server_events) {
  if (!c.connected && server_events != 0) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(c.server.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      record_error(errno_text("connect to target", err));
      abort(c);
      return;
    }
    c.connected = true;
    server_events = 0;  // only writability was asked for
  }
  constexpr short kReadable = POLLIN | POLLHUP | POLLERR;
  if ((client_events & kReadable) != 0 && c.reading(Direction::ToServer)) {
    read_from(c, Direction::ToServer);
  }
  if (!c.dead && (server_events & kReadable) != 0 && c.reading(Direction::ToClient)) {
    read_from(c, Direction::ToClient);
  }
  // Writes are tried whenever something waits: a failed send is how a hung-up receiver shows.
  for (const Direction d : kDirections) {
    if (!c.dead && c.writing(d)) write_to(c, d);
  }
}

void FaultProxy::Impl::read_from(Connection& c, Direction d) {
  Flow& f = c.flow(d);
  const ssize_t n = ::recv(c.source(d), read_buf.data(), read_buf.size(), 0);
  if (n < 0) {
    if (!transient(errno)) abort(c);
    return;
  }
  if (n == 0) {
    f.eof = true;
    const std::lock_guard lock(mutex);
    pass(f, f.splitter.take_pending());
    return;
  }
  const std::string_view bytes(read_buf.data(), static_cast<std::size_t>(n));
  const std::lock_guard lock(mutex);
  recording[index(d)].append(bytes);
  const auto before = f.splitter.raw_reason();
  for (Piece& piece : f.splitter.feed(bytes)) {
    if (piece.kind == Kind::Stanza) {
      apply_faults(c, d, std::move(piece.bytes));
    } else {
      pass(f, piece.bytes);
      f.opened = f.opened || piece.kind == Kind::StreamHeader;
    }
  }
  const auto after = f.splitter.raw_reason();
  if (after != before) {
    stats.raw_passthrough = true;
    if (after == StanzaSplitter::RawReason::ParseError) ++stats.parse_errors;
    // Raw bytes have no stanza boundaries (TLS, or a stream we lost track of): what was to be
    // injected would corrupt them.
    f.injections.clear();
    f.out += std::exchange(f.waiting, {});
  }
}

void FaultProxy::Impl::pass(Flow& f, std::string_view bytes) {
  (f.injecting() ? f.waiting : f.out) += bytes;
}

void FaultProxy::Impl::distribute(std::vector<std::pair<Direction, Injection>> injections) {
  for (auto& [d, injection] : injections) {
    for (Connection& c : connections) {
      Flow& f = c.flow(d);
      if (!c.dead && f.splitter.raw_reason() == StanzaSplitter::RawReason::None) {
        f.injections.push_back(injection);  // a copy each, generators included
      }
    }
  }
}

// Everything the flow's splitter passed on so far ended at a stanza boundary, so injected
// bytes go straight after it; the source's later traffic waits in `waiting` meanwhile.
void FaultProxy::Impl::feed_injections(Flow& f, Direction d) {
  while (f.injecting() && f.out.size() < kInjectLowWater) {
    Injection& front = f.injections.front();
    std::string chunk = front.next_chunk ? front.next_chunk() : std::exchange(front.bytes, {});
    const bool done = !front.next_chunk || chunk.empty();
    const std::lock_guard lock(mutex);
    recording[index(d)] += chunk;
    stats.injected_bytes[index(d)] += chunk.size();
    f.out += chunk;
    if (done) {
      f.injections.pop_front();
      ++stats.injections[index(d)];
      if (f.injections.empty()) f.out += std::exchange(f.waiting, {});
    }
  }
}

void FaultProxy::Impl::write_to(Connection& c, Direction d) {
  Flow& f = c.flow(d);
  const ssize_t n = ::send(c.receiver(d), f.out.data(), f.out.size(), MSG_NOSIGNAL);
  if (n < 0) {
    if (!transient(errno)) abort(c);
    return;
  }
  f.out.erase(0, static_cast<std::size_t>(n));
}

void FaultProxy::Impl::apply_faults(Connection& c, Direction d, std::string stanza) {
  bool drop = false;
  bool corrupt = false;
  bool duplicate = false;
  std::optional<std::uint32_t> delay_ms;
  std::vector<const FaultRule*> rewrites;
  for (RuleState& r : rules) {
    if (r.rule.direction != d || stanza.find(r.rule.match) == std::string::npos) continue;
    ++r.matches;
    if (!fires(r)) continue;
    switch (r.rule.action) {
      case FaultAction::Drop:
        drop = true;
        break;
      case FaultAction::Corrupt:
        corrupt = true;
        break;
      case FaultAction::Duplicate:
        duplicate = true;
        break;
      case FaultAction::Delay:
        delay_ms = std::max(delay_ms.value_or(0), r.rule.delay_ms);
        break;
      case FaultAction::Rewrite:
        rewrites.push_back(&r.rule);
        break;
    }
  }

  const std::size_t i = index(d);
  if (drop) {
    ++stats.dropped[i];
    return;
  }
  for (const FaultRule* rule : rewrites) {
    ++stats.rewritten[i];
    stanza = rule->rewrite(stanza);
    if (stanza.empty()) {
      ++stats.dropped[i];
      return;
    }
  }
  if (corrupt && corrupt_longest_text(stanza, rng)) ++stats.corrupted[i];
  const int copies = duplicate ? 2 : 1;
  if (duplicate) ++stats.duplicated[i];
  if (delay_ms) {
    ++stats.delayed[i];
    ++c.flow(d).held;
    held.emplace(Clock::now() + std::chrono::milliseconds(*delay_ms),
                 HeldStanza{c.id, d, copies, std::move(stanza)});
    return;
  }
  deliver(c.flow(d), d, stanza, copies);
}

bool FaultProxy::Impl::fires(RuleState& r) {
  if (r.rule.once_at != 0) return r.matches == r.rule.once_at;
  if (r.rule.every_nth != 0) return r.matches % r.rule.every_nth == 0;
  // 53 random bits as a double in [0, 1): the same on every standard library, unlike
  // std::uniform_real_distribution.
  return static_cast<double>(rng() >> 11) * 0x1p-53 < r.rule.probability;
}

void FaultProxy::Impl::deliver(Flow& f, Direction d, const std::string& stanza, int copies) {
  for (int k = 0; k < copies; ++k) pass(f, stanza);
  stats.forwarded[index(d)] += static_cast<std::uint64_t>(copies);
}

void FaultProxy::Impl::release_due() {
  const auto now = Clock::now();
  const std::lock_guard lock(mutex);
  while (!held.empty() && held.begin()->first <= now) {
    const auto node = held.extract(held.begin());
    const HeldStanza& h = node.mapped();
    // Gone when its connection was cut or reset meanwhile: discarded.
    const auto it = std::find_if(connections.begin(), connections.end(),
                                 [&h](const Connection& c) { return c.id == h.connection; });
    if (it == connections.end() || it->dead) continue;
    Flow& f = it->flow(h.direction);
    --f.held;
    deliver(f, h.direction, h.bytes, h.copies);
  }
}

void FaultProxy::Impl::finish(Connection& c) {
  if (c.dead || !c.connected) return;
  // A source's FIN is passed on once everything it sent (delayed stanzas included) is out.
  for (const Direction d : kDirections) {
    Flow& f = c.flow(d);
    if (f.eof && !f.shut && f.out.empty() && f.waiting.empty() && f.injections.empty() && f.held == 0) {
      ::shutdown(c.receiver(d), SHUT_WR);
      f.shut = true;
    }
  }
  if (c.flow(Direction::ToServer).shut && c.flow(Direction::ToClient).shut) {
    c.client.reset();
    c.server.reset();
    c.dead = true;
  }
}

void FaultProxy::Impl::abort(Connection& c) {
  reset_fd(c.client);
  reset_fd(c.server);
  c.dead = true;
}

FaultProxy::FaultProxy(std::string target_host, std::uint16_t target_port, std::uint64_t seed)
    : m_impl(std::make_unique<Impl>(target_host, target_port, seed)) {}

FaultProxy::~FaultProxy() = default;

std::uint16_t FaultProxy::port() const { return m_impl->port; }

void FaultProxy::add_rule(FaultRule rule) {
  const int triggers =
      (rule.every_nth != 0 ? 1 : 0) + (rule.once_at != 0 ? 1 : 0) + (rule.probability != 0 ? 1 : 0);
  if (triggers != 1 || !(rule.probability >= 0 && rule.probability <= 1)) {
    throw std::invalid_argument(
        "FaultRule needs exactly one trigger: every_nth, once_at or probability in (0, 1]");
  }
  if (rule.action == FaultAction::Rewrite && !rule.rewrite) {
    throw std::invalid_argument("FaultRule: a Rewrite needs its rewrite function");
  }
  const std::lock_guard lock(m_impl->mutex);
  m_impl->rules.push_back({std::move(rule)});
}

void FaultProxy::clear_rules() {
  const std::lock_guard lock(m_impl->mutex);
  m_impl->rules.clear();
}

void FaultProxy::cut() {
  std::unique_lock lock(m_impl->mutex);
  m_impl->cut_pending = true;
  m_impl->await_applied(lock);
}

void FaultProxy::set_blackhole(bool on) {
  std::unique_lock lock(m_impl->mutex);
  m_impl->blackhole = on;
  m_impl->await_applied(lock);
}

void FaultProxy::inject(Direction d, std::string bytes) {
  std::unique_lock lock(m_impl->mutex);
  m_impl->pending_injections.push_back({d, Injection{std::move(bytes), {}}});
  m_impl->await_applied(lock);
}

void FaultProxy::inject_stream(Direction d, std::function<std::string()> next_chunk) {
  std::unique_lock lock(m_impl->mutex);
  m_impl->pending_injections.push_back({d, Injection{{}, std::move(next_chunk)}});
  m_impl->await_applied(lock);
}

ProxyStats FaultProxy::stats() const {
  const std::lock_guard lock(m_impl->mutex);
  return m_impl->stats;
}

bool FaultProxy::wait_for(const std::function<bool(const ProxyStats&)>& pred,
                          std::chrono::milliseconds timeout) const {
  std::unique_lock lock(m_impl->mutex);
  return m_impl->changed.wait_for(lock, timeout, [&] { return pred(m_impl->stats); });
}

std::string FaultProxy::recorded(Direction d) const {
  const std::lock_guard lock(m_impl->mutex);
  return m_impl->recording[index(d)];
}

void FaultProxy::clear_recording() {
  const std::lock_guard lock(m_impl->mutex);
  for (std::string& r : m_impl->recording) r.clear();
}

}  // namespace mpotr::test
