// SPDX-License-Identifier: MIT
// The guard between the XMPP server and libstrophe (spec/mpotr.md §13.4, §13.5).
//
//   server  <-- TCP (STARTTLS) -->  GuardedStream  <-- loopback, plain -->  libstrophe
//
// libstrophe 0.12 parses a whole stanza into a tree, then renders it for its debug log and
// frees it, both recursively, even with logging off: one deeply nested stanza overflows the
// stack, and it reads 4 KiB per event-loop turn, so one huge stanza stalls every timer. The
// guard owns the real socket (DNS with SRV, TCP, STARTTLS and the certificate decision) and
// passes the server's bytes to libstrophe only through a StanzaScanner: a stanza over
// kMaxStanzaDepth or kMaxStanzaBytes is skipped as it streams and counted. What libstrophe
// sends is relayed unchanged.
//
// libstrophe cannot be handed a socket, so it connects to a one-shot listener of the guard on
// 127.0.0.1. Its socket is bound to 127.0.0.1:0 before it connects (adopt_client_socket(), from
// libstrophe's sockopt callback), and the listener accepts only the connection coming from that
// port: no other local process can take its place.
//
// Non-blocking; driven by XmppLoop::run_once() through want() and service(). Every turn moves
// at most kGuardTurnBudget bytes each way, so a 10 MB stanza takes many short turns and the
// clients' timers run in between. Memory per connection is bounded: kMaxStanzaBytes in the
// scanner plus kGuardMaxPending queued each way plus one read chunk.
#pragma once

#include <poll.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mpotr/result.h"
#include "mpotr/store/unique_fd.h"
#include "mpotr/transport/stanza_scanner.h"
#include "mpotr/transport/xmpp_resolve.h"

namespace mpotr::transport {

class TlsClient;

enum class TlsMode : std::uint8_t {
  Required,  // STARTTLS must succeed (default)
  Disabled,  // never use TLS: loopback tests only
};

struct TlsPolicy {
  TlsMode mode = TlsMode::Required;
  std::string ca_file;        // extra CA bundle (PEM) to verify the server with
  // Accept a certificate that fails normal verification when its SHA-256 fingerprint equals
  // this (hex, any case, colons optional): for self-signed servers such as testserver/.
  std::string pin_sha256;
  bool trust_any = false;     // accept any certificate: tests only, reported as a warning
};

// One read from either side (a TLS record is at most 16 KiB, so this is several).
inline constexpr std::size_t kGuardReadChunk = 64 * 1024;
// Bytes moved each way per XmppLoop turn: two full-size stanzas, and as much as libstrophe
// reads in one turn (XmppLoop's kStropheReadsPerTurn × 4 KiB).
inline constexpr std::size_t kGuardTurnBudget = 512 * 1024;
// Bytes queued for one side before the guard stops reading the other.
inline constexpr std::size_t kGuardMaxPending = 512 * 1024;
// Per address, as libstrophe's own connect timeout.
inline constexpr std::chrono::milliseconds kGuardConnectTimeout{5'000};
// From TCP connected to TLS established (stream header, features, STARTTLS, handshake).
inline constexpr std::chrono::milliseconds kGuardNegotiationTimeout{30'000};

struct GuardConfig {
  std::string domain;      // the JID's domain: the stream's 'to', SNI, the certificate's name
  std::string host;        // empty: SRV lookup of the domain, then domain:5222
  std::uint16_t port = 0;  // 0: 5222 (or the SRV records' ports)
  TlsPolicy tls;
  std::chrono::milliseconds connect_timeout = kGuardConnectTimeout;
  std::chrono::milliseconds negotiation_timeout = kGuardNegotiationTimeout;
};

// Stanzas dropped since the last take_drops(): counts, so a server sending millions of them
// cannot grow anything.
struct DropCounts {
  std::uint64_t over_depth = 0;
  std::uint64_t over_depth_bytes = 0;
  std::uint64_t over_size = 0;
  std::uint64_t over_size_bytes = 0;
  bool any() const noexcept { return over_depth != 0 || over_size != 0; }
};

class GuardedStream {
 public:
  enum class Phase : std::uint8_t {
    Connecting,   // TCP to the server (address after address)
    Negotiating,  // our stream header, the server's features, <starttls/>, <proceed/>
    Handshaking,  // TLS
    Relaying,     // both ways, inbound through the scanner
    Closed,       // both sides closed their streams
    Failed,       // see failure(); every socket is closed
  };

  // Resolves the server (blocking DNS, as libstrophe's own connect did), starts connecting
  // and opens the loopback listener. Errors: InvalidArgument (no address), Storage (sockets).
  static Result<std::unique_ptr<GuardedStream>> open(GuardConfig config);
  // With explicit addresses (tests).
  static Result<std::unique_ptr<GuardedStream>> open(GuardConfig config, std::vector<SocketAddress> addresses);
  ~GuardedStream();
  GuardedStream(const GuardedStream&) = delete;
  GuardedStream& operator=(const GuardedStream&) = delete;

  std::uint16_t listen_port() const noexcept { return m_listen_port; }
  // Binds libstrophe's socket (not owned) to 127.0.0.1:0 before it connects; only a
  // connection from that port is accepted. Errors: Storage.
  Result<void> adopt_client_socket(int fd);

  // One turn: want() appends the sockets to wait for and returns how many; service() gets
  // those entries back after poll() (revents may be 0: deadlines are checked every turn).
  std::size_t want(std::vector<pollfd>& fds);
  void service(std::span<const pollfd> polled);
  // Work is left that needs no waiting (bytes OpenSSL holds, a budget used up): poll with 0.
  bool busy() const noexcept;
  // True once after the guard gave libstrophe something to read (bytes, or the end).
  bool take_client_activity() noexcept { return std::exchange(m_client_activity, false); }

  Phase phase() const noexcept { return m_phase; }
  bool failed() const noexcept { return m_phase == Phase::Failed; }
  const std::string& failure() const noexcept { return m_failure; }
  bool secured() const noexcept { return m_secured; }
  // How the server's certificate was accepted; empty when a CA vouched for it or without TLS.
  const std::string& certificate_note() const noexcept { return m_certificate_note; }
  bool certificate_unverified() const noexcept { return m_unverified; }
  DropCounts take_drops() noexcept { return std::exchange(m_drops, {}); }
  // Tests: the server connection dies as on a network failure (libstrophe sees the end).
  void drop() noexcept;

 private:
  GuardedStream(GuardConfig config, std::vector<SocketAddress> addresses);
  using Clock = std::chrono::steady_clock;

  void connect_next();
  void on_connect_ready();
  void on_connected();
  void accept_client();
  void negotiate(std::string_view bytes);
  void start_handshake();
  void handshake();
  void start_relaying();
  void read_server();
  void write_server();
  void read_client();
  void write_client();
  void scan(std::string_view bytes);
  void finish_directions();
  std::size_t server_recv(char* buf, std::size_t cap, bool& eof, bool& again);
  std::size_t server_send(const char* buf, std::size_t len, bool& again);
  void fail(std::string why);
  void close_all() noexcept;

  GuardConfig m_config;
  std::vector<SocketAddress> m_addresses;
  std::size_t m_next_address = 0;
  std::string m_connect_errors;       // why earlier addresses failed
  Phase m_phase = Phase::Connecting;
  std::string m_failure;
  Clock::time_point m_deadline{};

  store::UniqueFd m_server;
  store::UniqueFd m_listener;
  store::UniqueFd m_client;           // our end of libstrophe's loopback connection
  std::uint16_t m_listen_port = 0;
  std::uint16_t m_client_port = 0;    // libstrophe's bound port: the only one accepted
  std::unique_ptr<TlsClient> m_tls;
  bool m_awaiting_proceed = false;    // <starttls/> sent

  StanzaScanner m_scanner;
  ScanResult m_scanned;               // reused between reads
  std::string m_to_client;            // scanned server bytes for libstrophe
  std::string m_to_server;            // libstrophe's bytes (held until TLS is up)
  std::string m_negotiation_out;      // our own bytes before TLS
  std::vector<char> m_read_buf;
  bool m_server_eof = false;
  bool m_client_eof = false;
  bool m_client_shut = false;         // the server's end passed on to libstrophe
  bool m_server_shut = false;         // libstrophe's end passed on to the server
  bool m_budget_used = false;         // a side still had bytes when its budget ran out
  bool m_client_activity = false;     // see take_client_activity()
  bool m_tls_wants_write = false;     // OpenSSL must write before it can read (or finish)
  bool m_secured = false;
  bool m_unverified = false;
  std::string m_certificate_note;
  DropCounts m_drops;
  // Indices of our entries in the span given to service(), or -1.
  int m_poll_listener = -1;
  int m_poll_server = -1;
  int m_poll_client = -1;
};

}  // namespace mpotr::transport
