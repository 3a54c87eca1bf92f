// SPDX-License-Identifier: MIT
#include "support/profanity_driver.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "support/testserver.h"

namespace mpotr::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr Millis kPollInterval{50};
// How long scrollback() waits for a page key to change the screen before it presses the key
// once more and waits twice as long; no change then means the window is at its top.
constexpr Millis kPageSettle{300};
constexpr int kMaxPages = 200;

// Lines of Profanity's screen outside the current window: titlebar, status bar, input line.
constexpr int kTitlebarRows = 1;
constexpr int kBottomRows = 2;

// Server options every tmux server of this harness runs with. The status line is off so the
// pane is exactly width x height; dead panes stay so a crash message can still be captured.
constexpr const char* kTmuxConf =
    "set -s escape-time 0\n"
    "set -g remain-on-exit on\n"
    "set -g status off\n"
    "set -g history-limit 10000\n";

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::string temp_root() {
  const char* tmp = std::getenv("TMPDIR");
  return (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
}

std::string make_temp_dir(const std::string& prefix, const std::string& parent = {}) {
  std::string templ = (parent.empty() ? temp_root() : parent) + "/" + prefix + "XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw_errno("mkdtemp " + templ);
  return templ;
}

void write_file(const std::string& path, const std::string& text, mode_t mode = 0600) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + path);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path);
  }
  ::chmod(path.c_str(), mode);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string rtrim(std::string s) {
  const auto end = s.find_last_not_of(" \t\r\n");
  s.erase(end == std::string::npos ? 0 : end + 1);
  return s;
}

std::string trim(std::string s) {
  s = rtrim(std::move(s));
  const auto begin = s.find_first_not_of(" \t\r\n");
  s.erase(0, begin == std::string::npos ? s.size() : begin);
  return s;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) lines.push_back(rtrim(line));
  return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += l;
    out += '\n';
  }
  return out;
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::string(v) == "1";
}

// Resolved in the parent: the child only calls async-signal-safe functions before execv.
std::string find_in_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::istringstream in(dirs);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// A process identified by PID and start time, so a recycled PID is never signalled.
struct ProcInfo {
  char state = 0;  // 0: no such process
  unsigned long long start_time = 0;
  pid_t pgid = -1;
};

ProcInfo proc_info(pid_t pid) {
  ProcInfo info;
  if (pid <= 0) return info;
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  // "pid (comm) S ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
  //  cutime cstime priority nice num_threads itrealvalue starttime ..."; comm may hold spaces.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return info;
  std::istringstream in(stat.substr(close + 2));
  std::vector<std::string> fields;
  std::string f;
  while (in >> f) fields.push_back(f);
  if (fields.size() < 20) return info;
  info.state = fields[0].empty() ? '?' : fields[0][0];
  info.pgid = static_cast<pid_t>(std::stol(fields[2]));
  info.start_time = std::stoull(fields[19]);
  return info;
}

// Exists, is the same process (start time) and is not a zombie.
bool proc_running(pid_t pid, unsigned long long start_time) {
  const ProcInfo info = proc_info(pid);
  if (info.state == 0 || info.state == 'Z' || info.state == 'X') return false;
  return start_time == 0 || info.start_time == start_time;
}

void proc_signal(pid_t pid, unsigned long long start_time, int sig) {
  const ProcInfo info = proc_info(pid);
  if (info.state == 0 || (start_time != 0 && info.start_time != start_time)) return;
  // tmux starts every pane in its own session, so the group is Profanity and anything it forked.
  if (info.pgid == pid) {
    ::kill(-pid, sig);
  } else {
    ::kill(pid, sig);
  }
}

bool wait_until(const std::function<bool()>& pred, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Millis(20));
  }
}

// GKeyFile string escaping: backslash, newline, tab, CR, and a leading space.
std::string keyfile_escape(const std::string& value) {
  std::string out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case ' ': out += i == 0 ? "\\s" : " "; break;
      default: out += c;
    }
  }
  return out;
}

// An ordered key file: groups and keys keep their first position, later sets replace values.
class KeyFile {
 public:
  void set(const std::string& group, const std::string& key, const std::string& value) {
    auto& g = find_group(group);
    for (auto& kv : g.second) {
      if (kv.first == key) {
        kv.second = value;
        return;
      }
    }
    g.second.emplace_back(key, value);
  }
  // "[group]" switches group; "key=value" sets (value taken verbatim); other lines ignored.
  void merge_lines(const std::vector<std::string>& lines, std::string group) {
    for (const auto& raw : lines) {
      const std::string line = trim(raw);
      if (line.empty() || line[0] == '#') continue;
      if (line.front() == '[' && line.back() == ']') {
        group = line.substr(1, line.size() - 2);
        continue;
      }
      const auto eq = line.find('=');
      if (eq == std::string::npos) throw std::invalid_argument("not a key file line: " + raw);
      set(group, trim(line.substr(0, eq)), trim(line.substr(eq + 1)));
    }
  }
  std::string text() const {
    std::string out;
    for (const auto& g : m_groups) {
      out += "[" + g.first + "]\n";
      for (const auto& kv : g.second) out += kv.first + "=" + kv.second + "\n";
      out += "\n";
    }
    return out;
  }

 private:
  using Group = std::pair<std::string, std::vector<std::pair<std::string, std::string>>>;
  Group& find_group(const std::string& name) {
    for (auto& g : m_groups) {
      if (g.first == name) return g;
    }
    m_groups.emplace_back(name, std::vector<std::pair<std::string, std::string>>{});
    return m_groups.back();
  }
  std::vector<Group> m_groups;
};

std::string regex_escape(const std::string& s) {
  static const std::string special = R"(\^$.|?*+()[]{}/-)";
  std::string out;
  for (const char c : s) {
    if (special.find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string jid_to_dir(const std::string& jid) {
  std::string out;
  for (const char c : jid) {
    if (c == '@') {
      out += "_at_";
    } else {
      out += c;
    }
  }
  return out;
}

std::string tail_lines(const std::string& text, std::size_t n) {
  std::size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (std::size_t count = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++count == n) break;
  }
  return text.substr(pos);
}

// Longest k with a[end-k, end) == b[0, k).
std::size_t overlap(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (std::size_t k = std::min(a.size(), b.size()); k > 0; --k) {
    if (std::equal(a.end() - static_cast<std::ptrdiff_t>(k), a.end(), b.begin())) return k;
  }
  return 0;
}

// In a forked child (async-signal-safe calls only): default SIGPIPE (libstrophe users ignore
// it, and an ignored signal would stay ignored in tmux and Profanity) and an empty signal mask.
void reset_child_signals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, nullptr);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

std::atomic<unsigned> g_counter{0};

}  // namespace

// ------------------------------------------------------------------------------------------
// run_command

CommandResult run_command(const std::vector<std::string>& argv, Millis timeout) {
  if (argv.empty()) throw std::invalid_argument("run_command: empty argv");
  CommandResult result;
  const std::string exe = find_in_path(argv[0]);
  if (exe.empty()) {
    result.err = argv[0] + ": not found in PATH";
    return result;
  }
  std::vector<std::string> words = argv;
  std::vector<char*> args;
  args.reserve(words.size() + 1);
  for (auto& w : words) args.push_back(w.data());
  args.push_back(nullptr);

  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw_errno("pipe2");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw_errno("pipe2");
  }
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int saved = errno;
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], devnull}) {
      if (fd >= 0) ::close(fd);
    }
    errno = saved;
    throw_errno("fork");
  }
  if (pid == 0) {
    reset_child_signals();
    if (::dup2(devnull, STDIN_FILENO) < 0 || ::dup2(out_pipe[1], STDOUT_FILENO) < 0 ||
        ::dup2(err_pipe[1], STDERR_FILENO) < 0) {
      ::_exit(126);
    }
    // No descriptor of the test (server sockets, libstrophe connections) may live on in the
    // tmux server: a leaked XMPP socket would keep that session open after its owner closed it.
    if (::close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 4096; ++fd) ::close(fd);
    }
    ::execv(exe.c_str(), args.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (devnull >= 0) ::close(devnull);

  const auto deadline = Clock::now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  bool timed_out = false;
  char buf[8192];
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    const int n = ::poll(fds, 2, static_cast<int>(left));
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  int status = 0;
  if (timed_out) {
    // Still running, or it left the pipe to a descendant: either way we stop waiting.
    if (::waitpid(pid, &status, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      result.status = -1;
      result.err += "\n(" + argv[0] + " timed out after " + std::to_string(timeout.count()) + " ms)";
      return result;
    }
  } else {
    while (::waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) {
        result.status = -1;
        return result;
      }
    }
  }
  if (WIFEXITED(status)) {
    result.status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.status = 128 + WTERMSIG(status);
  }
  return result;
}

// ------------------------------------------------------------------------------------------
// TmuxServer

std::string TmuxServer::unique_name() {
  return "mpotr-e2e-" + std::to_string(::getpid()) + "-" + std::to_string(g_counter++);
}

bool TmuxServer::running(const std::string& name) {
  // -f /dev/null: never read a config when asking; list-sessions succeeds on an empty server.
  const CommandResult r = run_command({"tmux", "-L", name, "-f", "/dev/null", "list-sessions"});
  if (r.status == 0) return true;
  return r.err.find("no server running") == std::string::npos &&
         r.err.find("error connecting") == std::string::npos && r.status != -1;
}

TmuxServer::TmuxServer(std::string name) : m_name(name.empty() ? unique_name() : std::move(name)) {
  if (running(m_name)) throw std::runtime_error("tmux server '" + m_name + "' already exists");
  m_dir = make_temp_dir("mpotr-tmux-");
  try {
    // exit-empty off: the server lives until kill(), even between two users' sessions.
    write_file(m_dir + "/tmux.conf", std::string("set -s exit-empty off\n") + kTmuxConf);
    const CommandResult start = tmux({"start-server"});
    if (start.status != 0) {
      throw std::runtime_error("tmux start-server failed (" + std::to_string(start.status) + "): " + start.err);
    }
    const CommandResult info = tmux({"display-message", "-p", "#{pid} #{socket_path}"});
    if (info.status != 0) throw std::runtime_error("tmux display-message failed: " + info.err);
    std::istringstream in(info.out);
    in >> m_pid;
    std::getline(in >> std::ws, m_socket_path);
    m_socket_path = trim(m_socket_path);
    start_watchdog();
  } catch (...) {
    kill();
    throw;
  }
}

TmuxServer::~TmuxServer() { kill(); }

void TmuxServer::start_watchdog() {
  // Everything the child needs is prepared before fork: it only makes async-signal-safe calls.
  const std::string sh = "/bin/sh";
  std::vector<std::string> words{
      sh, "-c",
      "tmux -L \"$1\" -f /dev/null kill-server >/dev/null 2>&1; [ -z \"$4\" ] || rm -f -- \"$4\"; "
      "[ \"$3\" = 1 ] || rm -rf -- \"$2\"",
      "mpotr-tmux-watchdog", m_name, m_dir, env_flag("MPOTR_KEEP_E2E") ? "1" : "0", m_socket_path};
  std::vector<char*> args;
  for (auto& w : words) args.push_back(w.data());
  args.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int saved = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    errno = saved;
    throw_errno("fork");
  }
  if (pid == 0) {
    // Own session: a Ctrl-C or a kill of the test's process group leaves the watchdog alive.
    ::setsid();
    reset_child_signals();
    const int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, STDIN_FILENO);
      ::dup2(devnull, STDOUT_FILENO);
      ::dup2(devnull, STDERR_FILENO);
    }
    // Keep only the read end (as fd 3): the write end, in the parent alone, must be the last.
    if (fds[0] != 3) ::dup2(fds[0], 3);
    if (::close_range(4, ~0U, 0) != 0) {
      for (int fd = 4; fd < 4096; ++fd) ::close(fd);
    }
    char c;
    for (;;) {
      const ssize_t n = ::read(3, &c, 1);
      if (n == 0 || (n < 0 && errno != EINTR)) break;
    }
    ::close(3);
    ::execv(sh.c_str(), args.data());
    ::_exit(127);
  }
  ::close(fds[0]);
  m_watchdog_pid = pid;
  m_watchdog_fd = fds[1];
}

void TmuxServer::stop_watchdog() {
  if (m_watchdog_fd >= 0) {
    ::close(m_watchdog_fd);  // the watchdog wakes up, finds no server and an empty dir, exits
    m_watchdog_fd = -1;
  }
  if (m_watchdog_pid > 0) {
    int status = 0;
    const bool done = wait_until([&] { return ::waitpid(m_watchdog_pid, &status, WNOHANG) != 0; }, Millis(3000));
    if (!done) {
      ::kill(m_watchdog_pid, SIGKILL);
      while (::waitpid(m_watchdog_pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    m_watchdog_pid = -1;
  }
}

CommandResult TmuxServer::tmux(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"tmux", "-L", m_name, "-f", m_dir + "/tmux.conf"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

void TmuxServer::kill() {
  if (m_dir.empty()) return;
  const ProcInfo server = proc_info(m_pid);
  std::vector<std::pair<pid_t, unsigned long long>> panes;
  const CommandResult list = tmux({"list-panes", "-a", "-F", "#{pane_pid}"});
  if (list.status == 0) {
    for (const auto& line : split_lines(list.out)) {
      if (line.empty()) continue;
      const pid_t p = static_cast<pid_t>(std::stol(line));
      panes.emplace_back(p, proc_info(p).start_time);
    }
  }
  tmux({"kill-server"});  // SIGHUP to every pane
  for (const auto& [p, start] : panes) {
    if (!wait_until([&] { return !proc_running(p, start); }, Millis(1000))) {
      proc_signal(p, start, SIGKILL);
      wait_until([&] { return !proc_running(p, start); }, Millis(1000));
    }
  }
  if (server.state != 0) {
    if (!wait_until([&] { return !proc_running(m_pid, server.start_time); }, Millis(2000))) {
      proc_signal(m_pid, server.start_time, SIGKILL);
      wait_until([&] { return !proc_running(m_pid, server.start_time); }, Millis(1000));
    }
  }
  if (!m_socket_path.empty()) ::unlink(m_socket_path.c_str());
  std::error_code ec;
  if (env_flag("MPOTR_KEEP_E2E")) {
    fs::remove(m_dir + "/tmux.conf", ec);
    fs::remove(m_dir, ec);  // only if empty: kept homes stay
  } else {
    fs::remove_all(m_dir, ec);
  }
  stop_watchdog();
  m_dir.clear();
  m_pid = -1;
}

// ------------------------------------------------------------------------------------------
// ProfanityUser

ProfanityOptions profanity_options(const TestServer& server, const TmuxServer& tmux, std::string user,
                                   std::string password) {
  ProfanityOptions o;
  o.user = std::move(user);
  o.password = std::move(password);
  o.domain = TestServer::domain();
  o.host = server.host();
  o.port = server.c2s_port();
  o.tls = !server.cert_fingerprint().empty();
  o.muc_service = TestServer::muc_service();
  o.tmux_socket = tmux.name();
  o.home_parent = tmux.dir();
  return o;
}

std::ostream& operator<<(std::ostream& os, const WaitResult& r) {
  os << (r.found ? "found " : "did not find ") << '"' << r.what << '"';
  if (r.died) os << " (Profanity exited)";
  os << "; screen:\n" << r.screen;
  return os;
}

ProfanityUser::ProfanityUser(ProfanityOptions opts) : m_opts(std::move(opts)) {
  if (m_opts.user.empty()) throw std::invalid_argument("ProfanityUser: empty user");
  if (m_opts.tmux_socket.empty()) throw std::invalid_argument("ProfanityUser: no tmux_socket");
  if (m_opts.width < 80 || m_opts.height < 10) throw std::invalid_argument("ProfanityUser: screen too small");
  if (m_opts.nick.empty()) m_opts.nick = m_opts.user;
  try {
    setup_home();
    launch();
    if (m_opts.wait_for_login) {
      const WaitResult r = wait_logged_in(m_opts.login_timeout);
      if (!r) throw std::runtime_error("Profanity did not log in as " + full_jid() + ":\n" + dump_string());
    }
  } catch (...) {
    cleanup();
    throw;
  }
}

ProfanityUser::~ProfanityUser() { cleanup(); }

void ProfanityUser::setup_home() {
  m_home = make_temp_dir("mpotr-prof-" + m_opts.user + "-", m_opts.home_parent);
  for (const char* d : {"/config/profanity", "/data/profanity/plugins", "/cache", "/state"}) {
    fs::create_directories(m_home + d);
  }
  write_file(m_home + "/tmux.conf", kTmuxConf);

  KeyFile accounts;
  const std::string& a = m_opts.user;
  accounts.set(a, "enabled", "true");
  accounts.set(a, "jid", keyfile_escape(jid()));
  accounts.set(a, "server", keyfile_escape(m_opts.host));
  accounts.set(a, "port", std::to_string(m_opts.port));
  accounts.set(a, "tls.policy", m_opts.tls ? "trust" : "disable");
  accounts.set(a, "password", keyfile_escape(m_opts.password));
  accounts.set(a, "resource", keyfile_escape(m_opts.resource));
  accounts.set(a, "muc.service", keyfile_escape(m_opts.muc_service));
  accounts.set(a, "muc.nick", keyfile_escape(m_opts.nick));
  accounts.merge_lines(m_opts.extra_account, a);
  write_file(m_home + "/data/profanity/accounts", accounts.text());

  KeyFile profrc;
  // A quiet, stable screen: no splash, no roster or occupants panels (the window gets the full
  // width), the room JID in the titlebar, no cosmetic [TLS], joins and leaves shown in rooms.
  profrc.set("ui", "splash", "false");
  profrc.set("ui", "vercheck", "false");
  profrc.set("ui", "roster", "false");
  profrc.set("ui", "occupants", "false");
  profrc.set("ui", "titlebar.muc.title.jid", "true");
  profrc.set("ui", "titlebar.muc.title.name", "false");
  profrc.set("ui", "tls.show", "false");
  profrc.set("ui", "statuses.muc", "all");
  profrc.set("ui", "intype", "false");
  profrc.set("ui", "intype.console", "false");
  profrc.set("notifications", "message", "false");
  profrc.set("notifications", "room", "false");
  profrc.set("notifications", "invite", "false");
  profrc.set("notifications", "sub", "false");
  profrc.set("notifications", "typing", "false");
  profrc.set("chatstates", "enabled", "false");
  profrc.set("chatstates", "outtype", "false");
  profrc.set("presence", "autoaway.mode", "off");
  profrc.set("presence", "autoaway.check", "false");
  // mod_carboncopy is not loaded: carbons would print "Server error enabling message carbons".
  profrc.set("connection", "carbons", "false");
  profrc.set("omemo", "policy", "manual");
  // Groupchat logs under data/profanity/chatlogs: room_log() reads them.
  profrc.set("logging", "chlog", "true");
  profrc.set("logging", "grlog", "true");

  std::string load;
  for (const auto& plugin : m_opts.plugins_to_install) {
    const fs::path src(plugin);
    if (!fs::is_regular_file(src)) throw std::runtime_error("plugin not found: " + plugin);
    const fs::path dst = fs::path(m_home) / "data/profanity/plugins" / src.filename();
    fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
    fs::permissions(dst, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec,
                    fs::perm_options::replace);
    load += src.filename().string() + ";";
  }
  if (!load.empty()) profrc.set("plugins", "load", load);
  profrc.merge_lines(m_opts.extra_profrc, "ui");
  write_file(m_home + "/config/profanity/profrc", profrc.text());
}

CommandResult ProfanityUser::tmux(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"tmux", "-L", m_opts.tmux_socket, "-f", m_home + "/tmux.conf"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

void ProfanityUser::launch() {
  const std::string profanity = find_in_path("profanity");
  if (profanity.empty()) throw std::runtime_error("profanity is not installed (not in PATH)");
  const std::string env = find_in_path("env");
  if (env.empty()) throw std::runtime_error("env not found in PATH");
  m_session = "prof-" + m_opts.user + "-" + std::to_string(::getpid()) + "-" + std::to_string(g_counter++);
  // The pane runs env, which execs Profanity: the pane's PID is Profanity's. Only the home
  // dirs of this user are visible to it; nothing of the real user's ~/.local or ~/.config.
  std::vector<std::string> args{"new-session", "-d", "-P", "-F", "#{pane_id} #{pane_pid}", "-s", m_session,
                                "-x", std::to_string(m_opts.width), "-y", std::to_string(m_opts.height), "--",
                                env, "-u", "TMUX", "-u", "TMUX_PANE", "-u", "GNUPGHOME", "-u", "DISPLAY", "-u",
                                "WAYLAND_DISPLAY", "-u", "DBUS_SESSION_BUS_ADDRESS", "-u", "XDG_RUNTIME_DIR",
                                "HOME=" + m_home, "XDG_CONFIG_HOME=" + m_home + "/config",
                                "XDG_DATA_HOME=" + m_home + "/data", "XDG_CACHE_HOME=" + m_home + "/cache",
                                "XDG_STATE_HOME=" + m_home + "/state", "TERM=xterm-256color", "LANG=C.UTF-8",
                                "LC_ALL=C.UTF-8", profanity, "-a", m_opts.user, "-l", m_opts.log_level,
                                // Same command queue, so before any exit of the pane is handled:
                                // keep the pane if Profanity dies (server not started by us).
                                ";", "set-option", "-w", "-t", m_session, "remain-on-exit", "on", ";",
                                "set-option", "-t", m_session, "status", "off"};
  const CommandResult r = tmux(args);
  if (r.status != 0) {
    throw std::runtime_error("tmux new-session failed (" + std::to_string(r.status) + "): " + r.err);
  }
  std::istringstream in(r.out);
  in >> m_pane >> m_pid;
  if (m_pane.empty() || m_pid <= 0) throw std::runtime_error("tmux new-session: unexpected output: " + r.out);
  m_start_time = proc_info(m_pid).start_time;
}

void ProfanityUser::send_line(const std::string& text) {
  if (text.find_first_of("\r\n") != std::string::npos) {
    throw std::invalid_argument("send_line: text holds a line break");
  }
  if (!text.empty()) {
    // tmux ends a command at an argument that ends in ';' (unless "\;"), so a trailing ';' is
    // sent on its own as a hex key. "--" keeps a leading '-' from being read as an option.
    std::string body = text;
    bool trailing_semicolon = false;
    if (body.back() == ';') {
      body.pop_back();
      trailing_semicolon = true;
    }
    if (!body.empty()) {
      const CommandResult r = tmux({"send-keys", "-t", m_pane, "-l", "--", body});
      if (r.status != 0) throw std::runtime_error("tmux send-keys failed: " + r.err);
    }
    if (trailing_semicolon) tmux({"send-keys", "-t", m_pane, "-H", "3b"});
  }
  const CommandResult r = tmux({"send-keys", "-t", m_pane, "Enter"});
  if (r.status != 0) throw std::runtime_error("tmux send-keys failed: " + r.err);
}

void ProfanityUser::send_keys(const std::vector<std::string>& keys) {
  std::vector<std::string> args{"send-keys", "-t", m_pane};
  args.insert(args.end(), keys.begin(), keys.end());
  const CommandResult r = tmux(args);
  if (r.status != 0) throw std::runtime_error("tmux send-keys failed: " + r.err);
}

std::string ProfanityUser::capture(bool with_history) {
  std::vector<std::string> args{"capture-pane", "-p", "-t", m_pane};
  if (with_history) {
    args.emplace_back("-S");
    args.emplace_back("-");
  }
  const CommandResult r = tmux(args);
  if (r.status != 0) return {};
  const auto lines = split_lines(r.out);
  remember(main_lines(lines));
  return join_lines(lines);
}

std::vector<std::string> ProfanityUser::screen_lines() {
  auto lines = split_lines(capture());
  lines.resize(static_cast<std::size_t>(m_opts.height));
  return lines;
}

std::string ProfanityUser::titlebar() { return trim(screen_lines().front()); }

std::string ProfanityUser::statusbar() {
  return trim(screen_lines()[static_cast<std::size_t>(m_opts.height - kBottomRows)]);
}

std::vector<std::string> ProfanityUser::main_lines(const std::vector<std::string>& screen) const {
  const auto first = static_cast<std::size_t>(kTitlebarRows);
  const auto last = static_cast<std::size_t>(std::max(0, m_opts.height - kBottomRows));  // exclusive
  std::vector<std::string> out;
  for (std::size_t i = first; i < last && i < screen.size(); ++i) out.push_back(screen[i]);
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

void ProfanityUser::remember(const std::vector<std::string>& lines) {
  for (const auto& l : lines) {
    if (l.empty()) continue;
    if (m_transcript_set.insert(l).second) m_transcript.push_back(l);
  }
}

bool ProfanityUser::seen(const std::string& substring) const {
  return std::any_of(m_transcript.begin(), m_transcript.end(),
                     [&](const std::string& l) { return l.find(substring) != std::string::npos; });
}

bool ProfanityUser::pane_dead() {
  const CommandResult r = tmux({"display-message", "-p", "-t", m_pane, "#{pane_dead}"});
  return r.status != 0 || trim(r.out) == "1";
}

std::string ProfanityUser::pane_status() {
  const std::vector<std::string> query{
      "display-message", "-p", "-t", m_pane,
      "pane #{pane_id} pid #{pane_pid} dead=#{pane_dead} exit status=#{pane_dead_status} signal=#{pane_dead_signal}"};
  CommandResult r = tmux(query);
  if (r.status == 0 && r.out.find("dead=1 exit status= signal=") != std::string::npos) {
    // Dead but not reaped yet (tmux 3.3a sometimes misses a SIGCHLD): any new child of the
    // server makes it reap, which fills in the status and prints "Pane is dead (...)".
    tmux({"run-shell", "true"});
    std::this_thread::sleep_for(Millis(50));
    r = tmux(query);
  }
  return r.status == 0 ? trim(r.out) : "pane gone (" + trim(r.err) + ")";
}

template <typename Match>
WaitResult ProfanityUser::poll(const std::string& what, Millis timeout, bool over_transcript, Match match) {
  WaitResult result;
  result.what = what;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    result.screen = capture();
    result.found = over_transcript ? match(join_lines(m_transcript)) : match(result.screen);
    if (result.found) return result;
    if (!alive()) {
      result.died = true;
      return result;
    }
    if (Clock::now() >= deadline) return result;
    std::this_thread::sleep_for(kPollInterval);
  }
}

WaitResult ProfanityUser::wait_for(const std::string& substring, Millis timeout) {
  return poll(substring, timeout, false,
              [&](const std::string& text) { return text.find(substring) != std::string::npos; });
}

WaitResult ProfanityUser::wait_for(const std::regex& pattern, Millis timeout, std::string what) {
  return poll(what, timeout, false, [&](const std::string& text) { return std::regex_search(text, pattern); });
}

WaitResult ProfanityUser::wait_seen(const std::string& substring, Millis timeout) {
  return poll(substring, timeout, true,
              [&](const std::string& text) { return text.find(substring) != std::string::npos; });
}

WaitResult ProfanityUser::wait_logged_in(Millis timeout) {
  // 0.13.1: "alice@localhost/prof logged in successfully, online (priority 0)."
  return wait_for(full_jid() + " logged in successfully", timeout);
}

WaitResult ProfanityUser::join_room(const std::string& room_jid, const std::string& nick, Millis timeout) {
  const std::string n = nick.empty() ? m_opts.nick : nick;
  send_line("/join " + room_jid + " nick " + n);
  // 0.13.1, in the new room window (which becomes the current one):
  // "HH:MM:SS ! -> You have joined the room as alice, role: participant, affiliation: none"
  return wait_for(std::regex("-> You have joined the room as " + regex_escape(n) + ", role: "), timeout,
                  "joined " + room_jid + " as " + n);
}

std::string ProfanityUser::scrollback() {
  auto page = [this] { return main_lines(split_lines(capture())); };
  // A page counts once two captures 30 ms apart agree (tmux may be between two writes of a
  // redraw), or after a second of constant change.
  auto stable_page = [&] {
    std::vector<std::string> a = page();
    const auto deadline = Clock::now() + Millis(1000);
    for (;;) {
      std::this_thread::sleep_for(Millis(30));
      std::vector<std::string> b = page();
      if (a == b || Clock::now() >= deadline) return b;
      a = std::move(b);
    }
  };
  // Sends `key` until the window differs from `before`: a first wait of kPageSettle, then the
  // key once more and a longer wait, so a slow redraw on a loaded machine is not taken for
  // "nothing left to scroll". Returns the new page, or `before` if it never changed.
  auto page_with = [&](const char* key, const std::vector<std::string>& before) {
    for (const Millis wait : {kPageSettle, kPageSettle * 2}) {
      send_keys({key});
      const auto deadline = Clock::now() + wait;
      while (Clock::now() < deadline) {
        if (page() != before) return stable_page();
        std::this_thread::sleep_for(Millis(20));
      }
    }
    return before;
  };
  std::vector<std::vector<std::string>> pages;  // bottom first
  std::vector<std::string> current = stable_page();
  pages.push_back(current);
  for (int i = 0; i < kMaxPages && alive(); ++i) {
    std::vector<std::string> next = page_with("PPage", current);
    if (next == current) break;  // at the top
    pages.push_back(next);
    current = std::move(next);
  }
  std::vector<std::string> merged = pages.back();
  for (auto it = pages.rbegin() + 1; it != pages.rend(); ++it) {
    const std::size_t k = overlap(merged, *it);
    merged.insert(merged.end(), it->begin() + static_cast<std::ptrdiff_t>(k), it->end());
  }
  // Back to the bottom, where new messages show.
  for (int i = 0; i < kMaxPages && alive(); ++i) {
    if (titlebar().find("[SCROLLED]") == std::string::npos) break;
    page_with("NPage", page());
  }
  return join_lines(merged);
}

std::string ProfanityUser::profanity_log() const {
  return read_file(m_home + "/data/profanity/logs/profanity.log");
}

std::string ProfanityUser::room_log(const std::string& room_jid) const {
  const fs::path dir = fs::path(m_home) / "data/profanity/chatlogs" / jid_to_dir(jid()) / "rooms" / jid_to_dir(room_jid);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::string out;
  for (const auto& f : files) out += read_file(f.string());
  return out;
}

bool ProfanityUser::alive() const { return m_pid > 0 && proc_running(m_pid, m_start_time); }

bool ProfanityUser::quit(Millis timeout) {
  if (!alive()) return false;
  try {
    send_line("/quit");
  } catch (const std::exception&) {
    // the pane may be gone already; the signals below still apply
  }
  const bool clean = wait_until([this] { return !alive(); }, timeout);
  if (!clean) {
    proc_signal(m_pid, m_start_time, SIGTERM);
    if (!wait_until([this] { return !alive(); }, Millis(1000))) kill();
  }
  // tmux occasionally misses the SIGCHLD of a pane (seen with tmux 3.3a): any new child of the
  // server makes it reap again, so a zombie does not linger until the server exits.
  if (proc_info(m_pid).state == 'Z' && proc_info(m_pid).start_time == m_start_time) {
    if (!wait_until([this] { return proc_info(m_pid).state != 'Z'; }, Millis(200))) {
      tmux({"run-shell", "true"});
    }
  }
  return clean;
}

void ProfanityUser::kill() {
  if (m_pid <= 0) return;
  proc_signal(m_pid, m_start_time, SIGKILL);
  wait_until([this] { return !alive(); }, Millis(2000));
}

void ProfanityUser::dump(std::ostream& os, std::size_t log_lines) {
  os << "===== Profanity " << full_jid() << ": pid " << m_pid << (alive() ? " running" : " not running") << ", "
     << (m_pane.empty() ? std::string("no pane") : pane_status()) << ", home " << m_home << "\n";
  os << capture();
  os << "===== last " << log_lines << " lines of " << m_home << "/data/profanity/logs/profanity.log\n";
  os << tail_lines(profanity_log(), log_lines);
  os << "===== end of " << full_jid() << "\n";
}

std::string ProfanityUser::dump_string(std::size_t log_lines) {
  std::ostringstream os;
  dump(os, log_lines);
  return os.str();
}

void ProfanityUser::cleanup() noexcept {
  try {
    if (m_pid > 0) {
      if (alive()) quit(Millis(3000));
      if (alive()) kill();
    }
    if (!m_session.empty()) {
      tmux({"kill-session", "-t", "=" + m_session});
      m_session.clear();
    }
  } catch (const std::exception& e) {
    std::cerr << "ProfanityUser " << m_opts.user << ": cleanup: " << e.what() << '\n';
  }
  if (!m_home.empty()) {
    if (env_flag("MPOTR_KEEP_E2E")) {
      std::cerr << "ProfanityUser " << m_opts.user << ": keeping " << m_home << " (MPOTR_KEEP_E2E=1)\n";
    } else {
      std::error_code ec;
      fs::remove_all(m_home, ec);
    }
    m_home.clear();
  }
}

}  // namespace mpotr::test
