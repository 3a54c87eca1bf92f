// SPDX-License-Identifier: MIT
// The libstrophe transport: one XMPP connection joined to one MUC room, driving a RoomHost.
//
// Threading: everything runs on the thread that calls XmppLoop::run_once() and pump().
// libstrophe's handlers only copy what arrived into a queue; pump() processes the queue
// outside libstrophe, so engine work never runs inside a library callback and a stanza the
// engine cannot use yields a notice, never a crash.
//
// libstrophe never talks to the server itself: each connection goes through a GuardedStream
// (guarded_stream.h), which owns the server socket and TLS and passes on only stanzas within
// the scanner's limits (spec/mpotr.md §13.4, §13.5).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mpotr/transport/guarded_stream.h"
#include "mpotr/transport/room_host.h"
#include "mpotr/transport/xmpp_stanza.h"

struct _xmpp_ctx_t;
struct _xmpp_conn_t;

namespace mpotr::transport {

inline constexpr std::size_t kMaxInboundQueue = 65536;  // stanzas queued between two pump() calls

struct XmppAccount {
  std::string jid;            // bare JID; the resource is chosen by the server
  std::string password;
  std::string host;           // empty: the JID's domain (SRV lookup)
  std::uint16_t port = 0;     // 0: default
  TlsPolicy tls;
};

struct ReconnectPolicy {
  bool enabled = true;
  TimeMs first_delay_ms = 250;
  TimeMs max_delay_ms = 30'000;  // doubling backoff, capped
};

// One libstrophe context for many clients (the benchmark and load test run hundreds), and the
// event loop that drives their guards and libstrophe together.
// The first XmppLoop of a process sets SIGPIPE to be ignored (libstrophe writes with send()).
class XmppLoop {
 public:
  // libstrophe reads at most 4 KiB per connection per xmpp_run_once(): one turn calls it up to
  // this many times while its loopback sockets hold unread bytes (a legitimate 87 KiB payload
  // in one turn, not 22), and no more, so every turn ends and the timers run.
  static constexpr int kStropheReadsPerTurn = 128;

  // What one client's connection gives the loop to watch; owned by the client, attached for
  // the client's lifetime.
  struct Link {
    GuardedStream* guard = nullptr;
    _xmpp_conn_t* conn = nullptr;
    int strophe_fd = -1;  // libstrophe's loopback socket (not owned), -1 once it closed it
  };

  XmppLoop();
  ~XmppLoop();
  XmppLoop(const XmppLoop&) = delete;
  XmppLoop& operator=(const XmppLoop&) = delete;

  // One turn: libstrophe sends what it queued; then the guards' and libstrophe's sockets are
  // polled together for up to timeout_ms; the guards move bytes (each within its budget) and
  // libstrophe reads and parses what they passed on.
  void run_once(TimeMs timeout_ms);
  _xmpp_ctx_t* ctx() const noexcept { return m_ctx; }

  void attach(Link& link);
  void detach(Link& link) noexcept;

 private:
  bool strophe_has_unread();

  _xmpp_ctx_t* m_ctx = nullptr;
  std::vector<Link*> m_links;
  std::vector<pollfd> m_fds;           // reused every turn
  std::vector<std::size_t> m_counts;   // per link: entries of its guard, entries in all
  std::vector<int> m_unread;           // libstrophe sockets that may still hold unread bytes
                                       // (a guard wrote to them, or the last turn's reads ran out)
};

enum class ClientState : std::uint8_t {
  Idle,          // not started
  Connecting,    // TCP, STARTTLS, SASL
  Joining,       // presence sent to the room, waiting for our own presence
  InRoom,        // joined: the engine runs
  Leaving,       // leave(): shutdown protocol running, then unavailable presence
  Reconnecting,  // connection lost, waiting to reconnect
  Closed,        // left or quit
  Failed,        // unrecoverable (authentication refused, nick conflict, semi-anonymous room)
};
std::string_view to_string(ClientState s) noexcept;

struct ClientStats {
  std::uint64_t stanzas_sent = 0;
  std::uint64_t payloads_received = 0;
  std::uint64_t bytes_sent = 0;  // payload text bytes
  std::uint64_t reconnects = 0;
};

class MucClient {
 public:
  // room: bare room JID; nick: the nick we ask for. The RoomHost's config must name the same room.
  MucClient(XmppLoop& loop, XmppAccount account, std::string room, std::string nick, RoomHost host, Rng& rng,
            ReconnectPolicy reconnect = {});
  ~MucClient();
  MucClient(const MucClient&) = delete;
  MucClient& operator=(const MucClient&) = delete;

  void start(TimeMs now);
  // Processes queued stanzas, connection changes, engine timers and reconnection.
  void pump(TimeMs now);
  std::vector<Notice> take_notices();
  // True once since the last call if the TrustStore changed and should be saved.
  bool take_trust_changed();

  // A refusal (session not secure yet) comes back as a notice.
  void send_text(std::string_view text, TimeMs now);
  // Graceful: run the shutdown protocol (transcript check, key publication), then leave the
  // room and disconnect. State becomes Closed.
  void leave(TimeMs now);
  // Leave at once without finishing the shutdown: a Quit for every open session (the others
  // may publish their keys; ours stay withheld), then the unavailable presence.
  void quit();
  // Tests: drop the TCP connection as a network failure would; reconnection follows.
  void drop_connection();
  void restart(TimeMs now);
  Result<void> verify(std::string_view nick, std::string_view fingerprint, TimeMs now);
  Result<void> accept_new_key(std::string_view nick, TimeMs now);
  Result<void> block(std::string_view nick, TimeMs now);
  void set_admission(AdmissionPolicy policy, TimeMs now);

  ClientState state() const noexcept { return m_state; }
  std::optional<TimeMs> wake_at() const;
  const RoomHost& host() const noexcept { return m_host; }
  const ClientStats& stats() const noexcept { return m_stats; }
  const std::string& bound_jid() const noexcept { return m_bound_jid; }  // full JID after login

 private:
  struct Callbacks;
  friend struct Callbacks;

  // After leave(), how long the shutdown protocol may take before we leave regardless.
  static constexpr TimeMs kLeaveGraceMs = 30'000;

  void set_state(ClientState s);
  void connect(TimeMs now);
  void release_connection();
  void on_connected();
  void on_connection_lost(std::string why);
  void handle(const Inbound& in, TimeMs now);
  void apply(HostOutput out);
  void finish_leave();
  std::string next_id();
  void send_stanza(const StanzaPtr& stanza);
  void send_payload(const Bytes& payload);
  void send_join();
  void notice(std::string kind, Severity severity, std::string text);
  void report_drops(const DropCounts& drops);

  XmppLoop& m_loop;
  XmppAccount m_account;
  std::string m_room;
  std::string m_nick;
  RoomHost m_host;
  Rng& m_rng;
  ReconnectPolicy m_reconnect;
  _xmpp_conn_t* m_conn = nullptr;
  std::unique_ptr<GuardedStream> m_guard;     // the server connection libstrophe talks through
  XmppLoop::Link m_link;
  ClientState m_state = ClientState::Idle;
  // Written by libstrophe callbacks, read by pump().
  std::deque<Inbound> m_inbound;
  std::uint64_t m_dropped_inbound = 0;
  bool m_connected_flag = false;
  std::optional<std::string> m_lost;
  // pump()'s own state.
  bool m_connected_once = false;              // a failure before the first login is final
  bool m_quitting = false;
  TimeMs m_now = 0;
  TimeMs m_backoff = 0;
  std::optional<TimeMs> m_reconnect_at;
  std::optional<TimeMs> m_leave_deadline;
  std::vector<Notice> m_notices;
  bool m_trust_changed = false;
  ClientStats m_stats;
  std::string m_bound_jid;
  std::uint64_t m_next_id = 1;
};

}  // namespace mpotr::transport
