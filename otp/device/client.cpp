// SPDX-License-Identifier: MIT
#include "otp/device/client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mpotr::otp::device {
namespace {
Error sys_error(const std::string& what) { return make_error(ErrorCode::Storage, what + ": " + std::strerror(errno)); }
}  // namespace

Result<Client> Client::connect_unix(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) return make_error(ErrorCode::InvalidArgument, "socket path too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return sys_error("socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    auto e = sys_error("cannot connect to " + path);
    ::close(fd);
    return e;
  }
  return Client(fd);
}

Result<Client> Client::connect_tcp(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || res == nullptr) {
    return make_error(ErrorCode::InvalidArgument, "not a numeric address: " + host);
  }
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool ok = fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0;
  ::freeaddrinfo(res);
  if (!ok) {
    auto e = sys_error("cannot connect to " + host + ":" + std::to_string(port));
    if (fd >= 0) ::close(fd);
    return e;
  }
  return Client(fd);
}

Client& Client::operator=(Client&& o) noexcept {
  if (this != &o) {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = o.m_fd;
    m_in = std::move(o.m_in);
    o.m_fd = -1;
  }
  return *this;
}

Client::~Client() {
  if (m_fd >= 0) ::close(m_fd);
}

Result<void> Client::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("send");
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<std::string> Client::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto nl = m_in.find('\n');
    if (nl != std::string::npos) {
      std::string line = m_in.substr(0, nl);
      m_in.erase(0, nl + 1);
      return line;
    }
    if (m_in.size() > kMaxResponseLine) return make_error(ErrorCode::DecodeOversize, "response line too long");
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return make_error(ErrorCode::Storage, "no response in time");
    pollfd p{m_fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) return sys_error("poll");
    if (r <= 0) continue;
    char buf[16384];
    const ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("recv");
    if (n == 0) return make_error(ErrorCode::Storage, "connection closed by the daemon");
    m_in.append(buf, static_cast<std::size_t>(n));
  }
}

Result<nlohmann::json> Client::call(const nlohmann::json& request) {
  MPOTR_CHECK(send_raw(request.dump() + "\n"));
  MPOTR_TRY(std::string line, read_line());
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(ErrorCode::DecodeBadValue, "malformed response from the daemon");
  return j;
}

}  // namespace mpotr::otp::device
