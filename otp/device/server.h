// SPDX-License-Identifier: MIT
// The pad device daemon's core: connection handling (Unix socket, optional TCP with a bearer
// token), request dispatch, the confirmation policy and the anomaly log. Single-threaded:
// one poll() loop, one store operation at a time.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "mpotr/bytes.h"
#include "mpotr/result.h"
#include "otp/device/pad_service.h"
#include "otp/device/protocol.h"

namespace mpotr::otp::device {

constexpr std::size_t kMaxClients = 16;
// Connections past kMaxClients still waiting for their "too many clients" answer; beyond
// this a new connection is closed at once (a connection flood costs no memory).
constexpr std::size_t kMaxRefusedPending = 16;
// Unanswered output per client; past it the daemon stops reading that client's requests.
constexpr std::size_t kMaxPendingOutput = 1024 * 1024;
constexpr std::chrono::seconds kIdleTimeout{60};     // no request at all
constexpr std::chrono::seconds kPartialTimeout{10};  // a request line started but not finished
constexpr std::chrono::seconds kConfirmTimeout{60};  // unanswered prompt = refused
constexpr std::size_t kMinTokenLength = 16;
constexpr std::size_t kMaxLogField = 200;

// Append-only anomaly log: one line per event, "<ISO-8601 UTC> <event> key=value ...".
// Values are sanitized (no control characters) so a client cannot forge lines.
class AnomalyLog {
 public:
  AnomalyLog() = default;
  ~AnomalyLog();
  AnomalyLog(const AnomalyLog&) = delete;
  AnomalyLog& operator=(const AnomalyLog&) = delete;
  // Opens (creates 0600) path for appending; empty path = log to nowhere.
  Result<void> open(const std::string& path);
  void record(std::string_view event, std::string_view details);

 private:
  int m_fd = -1;
};

enum class ConfirmMode { Auto, Ask };

// Asks the device owner. Prompts on out_fd, reads one line from in_fd: "y"/"yes" allows;
// anything else, EOF, a signal (shutdown) or kConfirmTimeout refuses.
class Confirmer {
 public:
  // stop (optional) is polled while waiting: a shutdown refuses at once.
  Confirmer(ConfirmMode mode, int in_fd, int out_fd, std::function<bool()> stop = {})
      : m_mode(mode), m_in(in_fd), m_out(out_fd), m_stop(std::move(stop)) {}
  bool ask(const std::string& question);

 private:
  ConfirmMode m_mode;
  int m_in;
  int m_out;
  std::function<bool()> m_stop;
  std::string m_buffer;  // bytes read past the last answer line
};

// Per connection: how it came in and whether it may use the pad.
struct ConnContext {
  bool tcp = false;
  bool authenticated = false;
  std::string peer;  // "uid=1000" or "127.0.0.1:5555", for the log
};

// Handles one request line; everything the RPC does is here, testable without sockets.
class Dispatcher {
 public:
  Dispatcher(PadService& pads, Confirmer& confirmer, AnomalyLog& log, SecretBytes token)
      : m_pads(pads), m_confirm(confirmer), m_log(log), m_token(std::move(token)) {}
  // Returns the response line; sets close to true when the connection must end after it.
  std::string handle(std::string_view line, ConnContext& ctx, bool& close);

 private:
  std::string dispatch(const Request& req, ConnContext& ctx, bool& close);
  PadService& m_pads;
  Confirmer& m_confirm;
  AnomalyLog& m_log;
  SecretBytes m_token;
};

struct ServerConfig {
  std::string socket_path;
  std::string tcp_host;  // empty = no TCP listener
  std::uint16_t tcp_port = 0;
  std::chrono::milliseconds idle_timeout = kIdleTimeout;
  std::chrono::milliseconds partial_timeout = kPartialTimeout;
};

class Server {
 public:
  Server(ServerConfig config, Dispatcher& dispatcher, AnomalyLog& log);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Binds the listeners (socket dir must be 0700 and ours; the socket is made 0600).
  Result<void> open();
  std::uint16_t tcp_port() const { return m_bound_tcp_port; }
  // Serves until stop() returns true (checked at least once a second).
  Result<void> run(const std::function<bool()>& stop);

 private:
  struct Client;
  void accept_from(int listen_fd, bool tcp);
  void serve(Client& c);
  ServerConfig m_config;
  Dispatcher& m_dispatcher;
  AnomalyLog& m_log;
  int m_unix_fd = -1;
  int m_tcp_fd = -1;
  std::uint16_t m_bound_tcp_port = 0;
  std::vector<std::unique_ptr<Client>> m_clients;
};

}  // namespace mpotr::otp::device
