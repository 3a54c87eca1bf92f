// SPDX-License-Identifier: MIT
// mpotr-padd: the pad device daemon. Owns the pad files; clients get packets and messages,
// never pad bytes. See README.md here for the protocol.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "mpotr/store/atomic_file.h"
#include "otp/device/server.h"
#include "otp/device/store_service.h"

namespace {

using namespace mpotr;
using namespace mpotr::otp::device;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

constexpr const char* kUsage =
    "usage: mpotr-padd --dir PADDIR --socket PATH [--tcp HOST:PORT --token-file FILE]\n"
    "                  [--confirm auto|ask] [--confirm-fd N] [--anomaly-log FILE]\n"
    "                  [--reserve-block BYTES] [--idle-timeout S] [--request-timeout S] [--owner-pid PID]\n"
    "  --confirm ask   prompt on the terminal (/dev/tty, else stdin) before releasing pad\n"
    "  --confirm-fd N  read the answers from file descriptor N instead (scripts, tests)\n"
    "  --reserve-block pad bytes reserved per durable write (store default 64 KiB); a crash\n"
    "                  burns the unused rest of the current block, never reuses it\n"
    "  --idle-timeout  seconds a connection may stay silent (default 60)\n"
    "  --request-timeout seconds to finish a started request line (default 10)\n"
    "  --owner-pid PID exit when that process is gone (test watchdog)\n";

int fail(const std::string& msg) {
  std::cerr << "mpotr-padd: " << msg << "\n";
  return 2;
}

bool parse_u64(const std::string& s, std::uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

int run(int argc, char** argv) {
  std::string dir, socket_path, tcp, token_file, confirm = "auto", anomaly_log;
  std::uint64_t confirm_fd = 0, reserve_block = 0, owner_pid = 0;
  std::uint64_t idle_s = static_cast<std::uint64_t>(kIdleTimeout.count());
  std::uint64_t request_s = static_cast<std::uint64_t>(kPartialTimeout.count());
  bool have_confirm_fd = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (i + 1 >= argc) return fail("option " + a + " needs a value\n" + kUsage);
    const std::string v = argv[++i];
    if (a == "--dir") dir = v;
    else if (a == "--socket") socket_path = v;
    else if (a == "--tcp") tcp = v;
    else if (a == "--token-file") token_file = v;
    else if (a == "--confirm") confirm = v;
    else if (a == "--anomaly-log") anomaly_log = v;
    else if (a == "--confirm-fd") {
      if (!parse_u64(v, confirm_fd) || confirm_fd > 1024) return fail("--confirm-fd needs a file descriptor number");
      have_confirm_fd = true;
    } else if (a == "--reserve-block") {
      if (!parse_u64(v, reserve_block) || reserve_block == 0) return fail("--reserve-block needs a positive byte count");
    } else if (a == "--idle-timeout" || a == "--request-timeout") {
      std::uint64_t& t = a == "--idle-timeout" ? idle_s : request_s;
      if (!parse_u64(v, t) || t == 0 || t > 86400) return fail(a + " needs 1-86400 seconds");
    } else if (a == "--owner-pid") {
      if (!parse_u64(v, owner_pid) || owner_pid == 0 || owner_pid > 4194304) return fail("--owner-pid needs a process id");
    } else {
      return fail("unknown option " + a + "\n" + kUsage);
    }
  }
  if (dir.empty() || socket_path.empty()) return fail(std::string("--dir and --socket are required\n") + kUsage);
  if (confirm != "auto" && confirm != "ask") return fail("--confirm must be auto or ask");
  if (tcp.empty() != token_file.empty()) return fail("--tcp and --token-file go together (TCP always needs a token)");

  ServerConfig cfg;
  cfg.socket_path = socket_path;
  cfg.idle_timeout = std::chrono::seconds(idle_s);
  cfg.partial_timeout = std::chrono::seconds(request_s);
  SecretBytes token;
  if (!tcp.empty()) {
    const auto colon = tcp.rfind(':');
    std::uint64_t port = 0;
    if (colon == std::string::npos || !parse_u64(tcp.substr(colon + 1), port) || port > 65535) {
      return fail("--tcp must be HOST:PORT (PORT 0 picks a free one)");
    }
    cfg.tcp_host = tcp.substr(0, colon);
    if (cfg.tcp_host.size() > 2 && cfg.tcp_host.front() == '[' && cfg.tcp_host.back() == ']') {
      cfg.tcp_host = cfg.tcp_host.substr(1, cfg.tcp_host.size() - 2);
    }
    cfg.tcp_port = static_cast<std::uint16_t>(port);
    auto text = store::read_private_file(token_file, kMaxTokenLength + 2, "token file");
    if (!text) return fail(text.error().detail);
    std::string t = std::move(text).value();
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
    token = SecretBytes(as_bytes(t));
    secure_zero(t.data(), t.size());
    if (token.size() < kMinTokenLength) {
      return fail("the token must be at least " + std::to_string(kMinTokenLength) + " bytes");
    }
  }

  AnomalyLog log;
  if (auto r = log.open(anomaly_log); !r) return fail(r.error().detail);

  int confirm_in = STDIN_FILENO;
  int confirm_out = STDERR_FILENO;
  int tty = -1;
  if (have_confirm_fd) {
    confirm_in = static_cast<int>(confirm_fd);
  } else if (confirm == "ask") {
    tty = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (tty >= 0) confirm_in = confirm_out = tty;
  }
  Confirmer confirmer(confirm == "ask" ? ConfirmMode::Ask : ConfirmMode::Auto, confirm_in, confirm_out,
                      [] { return g_stop != 0; });

  auto pads = StoreService::open(dir, reserve_block);
  if (!pads) return fail("cannot open the pads in " + dir + ": " + pads.error().detail);

  Dispatcher dispatcher(*pads.value(), confirmer, log, std::move(token));
  Server server(cfg, dispatcher, log);
  if (auto r = server.open(); !r) return fail(r.error().detail);

  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: poll() returns EINTR and the loop sees the flag
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  // The ready line: tests and scripts wait for it (and learn a TCP port picked by the system).
  std::cout << "mpotr-padd ready socket=" << socket_path;
  if (!cfg.tcp_host.empty()) std::cout << " tcp_port=" << server.tcp_port();
  std::cout << std::endl;

  const pid_t owner = static_cast<pid_t>(owner_pid);
  auto r = server.run([&] { return g_stop != 0 || (owner != 0 && ::kill(owner, 0) != 0 && errno == ESRCH); });
  if (tty >= 0) ::close(tty);
  if (!r) return fail(r.error().detail);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "mpotr-padd: internal error: " << e.what() << "\n";
    return 70;
  }
}
