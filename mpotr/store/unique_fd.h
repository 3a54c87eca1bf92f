// SPDX-License-Identifier: MIT
// Owning file descriptor: closed exactly once, on scope exit unless closed explicitly first.
#pragma once

#include <unistd.h>

#include <utility>

namespace mpotr::store {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : m_fd(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset(std::exchange(other.m_fd, -1));
    }
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const noexcept { return m_fd; }
  bool valid() const noexcept { return m_fd >= 0; }

  void reset(int fd = -1) noexcept {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = fd;
  }

  // Closes now and reports the result: on some file systems (NFS) close() is where a
  // deferred write error surfaces, so writers must check it. Never retried on EINTR
  // (Linux releases the descriptor even then).
  int close() noexcept {
    const int fd = std::exchange(m_fd, -1);
    return fd >= 0 ? ::close(fd) : 0;
  }

 private:
  int m_fd = -1;
};

}  // namespace mpotr::store
