// SPDX-License-Identifier: MIT
#include "support/testserver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace mpotr::test {
namespace {

// ejabberd-test start exits with this when a port is taken; then we retry with new ports.
constexpr int kExitPortInUse = 3;
constexpr int kStartAttempts = 3;
// Users per `register` call: keeps the command line far below ARG_MAX.
constexpr std::size_t kUsersPerCall = 500;

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

class Fd {
 public:
  explicit Fd(int fd = -1) : m_fd(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return m_fd; }
  void reset(int fd = -1) {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = fd;
  }

 private:
  int m_fd;
};

// Binds a socket to 127.0.0.1:0 and returns it with the port the kernel chose.
std::uint16_t bind_ephemeral(Fd& sock) {
  sock.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) throw_errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    throw_errno("bind 127.0.0.1:0");
  }
  socklen_t len = sizeof addr;
  if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw_errno("getsockname");
  }
  return ntohs(addr.sin_port);
}

// Two distinct free ports: both sockets are held open together, then closed for ejabberd.
// Another process may take a port before ejabberd binds it; the caller retries then.
std::pair<std::uint16_t, std::uint16_t> pick_ports() {
  Fd a;
  Fd b;
  const std::uint16_t first = bind_ephemeral(a);
  const std::uint16_t second = bind_ephemeral(b);
  return {first, second};
}

std::string make_temp_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  templ += "/mpotr-ejabberd-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw_errno("mkdtemp " + templ);
  return templ;
}

bool keep_dir() {
  const char* keep = std::getenv("MPOTR_KEEP_TESTSERVER");
  return keep != nullptr && std::string(keep) == "1";
}

std::string trim(std::string s) {
  const auto end = s.find_last_not_of(" \t\r\n");
  s.erase(end == std::string::npos ? 0 : end + 1);
  const auto begin = s.find_first_not_of(" \t\r\n");
  s.erase(0, begin == std::string::npos ? s.size() : begin);
  return s;
}

}  // namespace

std::string TestServer::script_path() { return MPOTR_SOURCE_DIR "/testserver/ejabberd-test"; }

TestServer::ScriptResult TestServer::run_script(const std::vector<std::string>& args) {
  std::string script = script_path();
  // Run the script itself when it is executable, otherwise through bash (a checkout that lost
  // the executable bit still works).
  const bool direct = ::access(script.c_str(), X_OK) == 0;
  std::string bash = "/bin/bash";
  std::vector<std::string> words;
  if (!direct) words.push_back("bash");
  words.push_back(script);
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(words.size() + 1);
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  char* exe = direct ? script.data() : bash.data();

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  Fd read_end(pipe_fds[0]);
  Fd write_end(pipe_fds[1]);
  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (devnull.get() < 0) throw_errno("open /dev/null");

  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    // Child: only async-signal-safe calls until execv. dup2 clears FD_CLOEXEC on the copies.
    if (::dup2(devnull.get(), STDIN_FILENO) < 0 || ::dup2(write_end.get(), STDOUT_FILENO) < 0 ||
        ::dup2(write_end.get(), STDERR_FILENO) < 0) {
      ::_exit(126);
    }
    ::execv(exe, argv.data());
    ::_exit(127);
  }
  write_end.reset();
  devnull.reset();

  ScriptResult result;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n > 0) {
      result.output.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      break;
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid");
  }
  if (WIFEXITED(status)) {
    result.status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.status = 128 + WTERMSIG(status);
  }
  if (result.status == 127 && result.output.empty()) {
    result.output = "cannot execute " + script;
  }
  return result;
}

TestServer::TestServer(TestServerOptions opts) : m_opts(opts) {
  if (m_opts.tls_required) m_opts.tls = true;
  m_dir = make_temp_dir();
  std::string failure;
  try {
    for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
      const auto [c2s, http] = pick_ports();
      std::vector<std::string> args{"start",
                                    "--dir",
                                    m_dir,
                                    "--c2s-port",
                                    std::to_string(c2s),
                                    "--http-port",
                                    std::to_string(http),
                                    // If this process dies without running our destructor
                                    // (a crash, a signal), the server is stopped anyway.
                                    "--owner-pid",
                                    std::to_string(::getpid())};
      if (m_opts.tls_required) {
        args.emplace_back("--tls-required");
      } else if (m_opts.tls) {
        args.emplace_back("--tls");
      }
      const ScriptResult result = run_script(args);
      if (result.status == 0) {
        m_c2s_port = c2s;
        m_http_port = http;
        m_running = true;
        return;
      }
      failure = "ejabberd-test start failed (exit " + std::to_string(result.status) + "):\n" +
                result.output;
      if (result.status != kExitPortInUse) break;
    }
  } catch (...) {
    remove_dir();
    throw;
  }
  remove_dir();
  throw std::runtime_error(failure);
}

TestServer::~TestServer() {
  try {
    stop();
  } catch (const std::exception& e) {
    std::cerr << "TestServer: " << e.what() << '\n';
  }
  remove_dir();
}

void TestServer::stop() {
  if (!m_running) return;
  m_running = false;
  check(run_script({"stop", "--dir", m_dir}), "stop");
}

void TestServer::register_users(const std::vector<std::pair<std::string, std::string>>& users) {
  for (std::size_t i = 0; i < users.size(); i += kUsersPerCall) {
    std::vector<std::string> args{"register", "--dir", m_dir, "--"};
    for (std::size_t j = i; j < users.size() && j < i + kUsersPerCall; ++j) {
      args.push_back(users[j].first);
      args.push_back(users[j].second);
    }
    check(run_script(args), "register");
  }
}

void TestServer::create_rooms(const std::vector<std::string>& rooms) {
  if (rooms.empty()) return;
  std::vector<std::string> args{"create-room", "--dir", m_dir, "--"};
  args.insert(args.end(), rooms.begin(), rooms.end());
  check(run_script(args), "create-room");
}

std::string TestServer::api(const std::string& command, const std::string& json_body) const {
  const ScriptResult result = run_script({"api", "--dir", m_dir, "--", command, json_body});
  check(result, "api");
  return trim(result.output);
}

std::string TestServer::cert_fingerprint() const {
  if (!m_opts.tls) return "";
  std::ifstream in(m_dir + "/cert.sha256");
  std::stringstream ss;
  ss << in.rdbuf();
  return trim(ss.str());
}

void TestServer::check(const ScriptResult& result, const char* what) const {
  if (result.status != 0) {
    throw std::runtime_error(std::string("ejabberd-test ") + what + " failed (exit " +
                             std::to_string(result.status) + ") for " + m_dir + ":\n" +
                             result.output);
  }
}

void TestServer::remove_dir() noexcept {
  if (m_dir.empty()) return;
  if (keep_dir()) {
    std::cerr << "TestServer: keeping " << m_dir << " (MPOTR_KEEP_TESTSERVER=1)\n";
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(m_dir, ec);
}

}  // namespace mpotr::test
