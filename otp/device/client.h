// SPDX-License-Identifier: MIT
// A blocking client of the pad device (the CLI and tests): one request line, one response line.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "mpotr/result.h"

namespace mpotr::otp::device {

// Bound on a response line the client accepts (a packet of kMaxPacket bytes in base64 fits).
constexpr std::size_t kMaxResponseLine = 512 * 1024;

class Client {
 public:
  // Connects to the daemon's Unix socket. Errors: Storage with the system's reason.
  static Result<Client> connect_unix(const std::string& path);
  static Result<Client> connect_tcp(const std::string& host, std::uint16_t port);
  Client(Client&& o) noexcept : m_fd(o.m_fd), m_in(std::move(o.m_in)) { o.m_fd = -1; }
  Client& operator=(Client&& o) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // Sends raw bytes (tests send malformed requests with it).
  Result<void> send_raw(std::string_view bytes);
  // Reads one response line (without '\n'). Errors: Storage (closed, timeout, too long).
  Result<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Sends request + '\n' and parses the response line.
  Result<nlohmann::json> call(const nlohmann::json& request);
  int fd() const { return m_fd; }

 private:
  explicit Client(int fd) : m_fd(fd) {}
  int m_fd = -1;
  std::string m_in;
};

}  // namespace mpotr::otp::device
