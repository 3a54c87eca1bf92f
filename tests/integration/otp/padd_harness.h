// SPDX-License-Identifier: MIT
// Test harness for the pad device: temp dirs, pads, real mpotr-padd processes (started with
// fork/exec, watched by --owner-pid, always killed by PID and reaped).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mpotr/otp/pad_store.h"
#include "mpotr/rng.h"
#include "otp/device/client.h"

namespace padd_test {

using json = nlohmann::json;
using mpotr::otp::device::Client;

// A private temp dir, removed at the end.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/padd-test-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    m_path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return m_path; }
  std::string sub(const std::string& name) const {
    const std::string p = m_path + "/" + name;
    ::mkdir(p.c_str(), 0700);
    return p;
  }

 private:
  std::string m_path;
};

// One pad between a and b: a's copy in <root>/<a>, b's in <root>/<b>.
inline void make_pad_between(const TempDir& root, const std::string& a, const std::string& b, std::uint64_t size) {
  mpotr::SystemRng rng;
  mpotr::otp::RngByteSource src(rng);
  auto r = mpotr::otp::generate_pad(root.sub(a), a, root.sub(b), b, size, src);
  if (!r) throw std::runtime_error("generate_pad: " + r.error().detail);
}
inline void make_pad(const TempDir& root, std::uint64_t size) { make_pad_between(root, "alice", "bob", size); }

struct DaemonOptions {
  std::vector<std::string> extra;  // more command-line arguments
  int confirm_fd = -1;  // becomes fd 3 in the child (--confirm-fd 3); open it with O_CLOEXEC
};

// (Not brace-initialized: {"a", "b"} would pick vector's iterator-pair constructor.)
inline DaemonOptions opts(std::initializer_list<std::string> extra, int confirm_fd = -1) {
  DaemonOptions o;
  o.extra = extra;
  o.confirm_fd = confirm_fd;
  return o;
}

// A running mpotr-padd. The constructor returns once the daemon printed its ready line.
class Daemon {
 public:
  Daemon(const std::string& pad_dir, const std::string& socket_path, DaemonOptions opts = {}) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    std::vector<std::string> args = {MPOTR_PADD_PATH, "--dir", pad_dir, "--socket", socket_path, "--owner-pid",
                                     std::to_string(::getpid())};
    if (opts.confirm_fd >= 0) {
      args.push_back("--confirm-fd");
      args.push_back("3");
    }
    args.insert(args.end(), opts.extra.begin(), opts.extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    m_pid = ::fork();
    if (m_pid < 0) throw std::runtime_error("fork");
    if (m_pid == 0) {
      // Child: only async-signal-safe calls until execv.
      ::dup2(out[1], STDOUT_FILENO);
      // dup2 clears FD_CLOEXEC on the copy; when the fd already is 3, clear it by hand.
      if (opts.confirm_fd == 3) ::fcntl(3, F_SETFD, 0);
      else if (opts.confirm_fd >= 0) ::dup2(opts.confirm_fd, 3);
      const int devnull = ::open("/dev/null", O_WRONLY);
      if (devnull >= 0) ::dup2(devnull, STDERR_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    m_out = out[0];
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (line.find('\n') == std::string::npos) {
      pollfd p{m_out, POLLIN, 0};
      if (std::chrono::steady_clock::now() > deadline || ::poll(&p, 1, 100) < 0) break;
      char buf[256];
      if (p.revents == 0) continue;
      const ssize_t n = ::read(m_out, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    if (line.rfind("mpotr-padd ready", 0) != 0) {
      kill_now();
      throw std::runtime_error("mpotr-padd did not start: '" + line + "'");
    }
    const auto tp = line.find("tcp_port=");
    if (tp != std::string::npos) m_tcp_port = static_cast<std::uint16_t>(std::stoi(line.substr(tp + 9)));
  }
  ~Daemon() { kill_now(); }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  pid_t pid() const { return m_pid; }
  std::uint16_t tcp_port() const { return m_tcp_port; }

  // SIGKILL and reap; no-op when already gone.
  void kill_now() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      int st = 0;
      while (::waitpid(m_pid, &st, 0) < 0 && errno == EINTR) {
      }
      m_pid = -1;
    }
    if (m_out >= 0) {
      ::close(m_out);
      m_out = -1;
    }
  }
  // SIGTERM and wait (up to 5 s); returns the exit status, or -1 if it had to be killed.
  int terminate() {
    if (m_pid <= 0) return -1;
    ::kill(m_pid, SIGTERM);
    for (int i = 0; i < 500; ++i) {
      int st = 0;
      if (::waitpid(m_pid, &st, WNOHANG) == m_pid) {
        m_pid = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill_now();
    return -1;
  }

 private:
  pid_t m_pid = -1;
  int m_out = -1;
  std::uint16_t m_tcp_port = 0;
};

struct RunResult {
  int status = -1;  // exit status, or 128 + signal
  std::string output;  // stdout and stderr, interleaved
};
// Runs a program to completion (killed after 60 s), collecting its output.
inline RunResult run(std::vector<std::string> args) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  RunResult r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    pollfd p{out[0], POLLIN, 0};
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    r.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

inline Client connect(const std::string& socket_path) {
  auto c = Client::connect_unix(socket_path);
  if (!c) throw std::runtime_error(c.error().detail);
  return std::move(c).value();
}

inline json call(Client& c, const json& req) {
  auto r = c.call(req);
  if (!r) throw std::runtime_error("call failed: " + r.error().detail);
  return std::move(r).value();
}

inline std::string b64(const std::string& s) { return mpotr::to_base64(mpotr::as_bytes(s)); }
inline std::string unb64(const std::string& s) {
  mpotr::Bytes out;
  if (!mpotr::from_base64(s, out)) throw std::runtime_error("bad base64 from the daemon");
  return std::string(out.begin(), out.end());
}

inline json package_req(int id, const std::string& contact, const std::string& msg) {
  return {{"id", id}, {"op", "package"}, {"contact", contact}, {"message_b64", b64(msg)}};
}
inline json package_group_req(int id, const std::vector<std::string>& to, const std::string& msg) {
  return {{"id", id}, {"op", "package_group"}, {"to", to}, {"message_b64", b64(msg)}};
}
inline json unpackage_req(int id, const std::string& contact, const std::string& packet_b64) {
  return {{"id", id}, {"op", "unpackage"}, {"contact", contact}, {"packet_b64", packet_b64}};
}

inline std::uint64_t send_remaining(Client& c, const std::string& contact) {
  auto r = call(c, {{"id", 0}, {"op", "status"}, {"contact", contact}});
  if (!r.value("ok", false)) throw std::runtime_error("status failed: " + r.dump());
  return r["contacts"][0]["send_remaining"].get<std::uint64_t>();
}

inline std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace padd_test
