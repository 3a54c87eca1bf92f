// SPDX-License-Identifier: MIT
// mpotr-chat: one XMPP account in one MUC room with mpOTR, interactive or scripted (--json).
//
// Single thread: poll() on stdin with a short timeout, then libstrophe's event loop, then
// MucClient::pump() for stanzas and protocol timers. Everything printed is built by render.h;
// everything typed is understood by commands.h. This file only wires them to the process:
// arguments, files, signals, stdin and stdout.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "mpotr/otp/room_mode.h"
#include "mpotr/store/keyfile.h"
#include "mpotr/store/trust_file.h"
#include "mpotr/transport/xmpp_client.h"
#include "options.h"
#include "otp/device/rpc_pad_device.h"
#include "render.h"

#ifndef MPOTR_VERSION
#define MPOTR_VERSION "unknown"
#endif

namespace mpotr::chat {
namespace {

using transport::ClientState;
using transport::MucClient;
using transport::Notice;
using transport::Severity;

constexpr TimeMs kMaxWaitMs = 50;         // longest sleep in one loop turn: bounds timer lateness
constexpr int kStdinPollMs = 10;          // stdin is checked at least this often while the network is idle
constexpr TimeMs kLeaveCapMs = 20'000;    // a graceful leave that takes longer becomes a quit
constexpr TimeMs kQuitCapMs = 5'000;      // after quit(), how long the disconnect may take
constexpr std::size_t kMaxPasswordFileLen = 4096;
constexpr std::size_t kReadChunk = 4096;

volatile std::sig_atomic_t g_signal_count = 0;
bool g_json_mode = false;  // for the last-resort error path in main()

void count_signal(int /*sig*/) { g_signal_count = g_signal_count + 1; }

TimeMs steady_now() {
  return static_cast<TimeMs>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

std::string wall_clock() {
  const std::time_t t = std::time(nullptr);
  std::tm local{};
  char buf[16] = "??:??:??";
  if (localtime_r(&t, &local) != nullptr) {
    std::strftime(buf, sizeof buf, "%H:%M:%S", &local);
  }
  return buf;
}

void diagnostic(const std::string& text) { std::fprintf(stderr, "mpotr-chat: %s\n", text.c_str()); }

// The first line of the file, without its newline. A file others can read is used but
// reported: the password is as exposed as the file.
Result<std::string> read_password_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return make_error(ErrorCode::Storage, "cannot open the password file " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
    diagnostic("warning: the password file " + path + " can be read by other users (chmod 600 it)");
  }
  std::string content;
  char buf[512];
  while (content.size() <= kMaxPasswordFileLen) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return make_error(ErrorCode::Storage, "cannot read the password file " + path + ": " + std::strerror(err));
    }
    if (n == 0) {
      break;
    }
    content.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (content.size() > kMaxPasswordFileLen) {
    return make_error(ErrorCode::Storage, "the password file " + path + " is larger than " +
                                              std::to_string(kMaxPasswordFileLen) + " bytes: is it the right file?");
  }
  std::string password = content.substr(0, content.find('\n'));
  if (!password.empty() && password.back() == '\r') {
    password.pop_back();
  }
  if (password.empty()) {
    return make_error(ErrorCode::Storage, "the password file " + path + " is empty");
  }
  return password;
}

// stdout: one JSON object per line (--json) or text lines, each flushed at once so that a
// script reading the pipe sees it immediately.
class Screen {
 public:
  explicit Screen(bool json) : m_json(json) {}

  bool json() const noexcept { return m_json; }
  // stdout was closed by the reader (EPIPE): nobody is listening any more.
  bool broken() const noexcept { return m_broken; }

  void event(const nlohmann::json& j) { write(json_line(j)); }
  void line(const std::string& text) { write(text); }

 private:
  void write(const std::string& text) {
    if (m_broken) {
      return;
    }
    const std::string out = text + "\n";
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
      m_broken = true;
    }
  }

  bool m_json;
  bool m_broken = false;
};

class Chat {
 public:
  Chat(const Options& options, MucClient& client, TrustStore& trust, Screen& screen)
      : m_options(options), m_client(client), m_trust(trust), m_screen(screen), m_self{options.nick, options.jid} {
    if (!options.pad_socket.empty()) {
      m_pad_device = std::make_unique<otp::device::RpcPadDevice>(options.pad_socket);
      m_otp.set_device(m_pad_device.get());
    }
  }

  // --otp: OTP mode from the start (the pads are checked again when the session is secure).
  void start_otp(TimeMs now) {
    if (m_options.otp) {
      run_otp(OtpCommand{OtpCommand::Action::On, {}, {}, {}}, nullptr, now);
    }
  }

  void announce_start(const Fingerprint& fp, TimeMs now) {
    if (m_screen.json()) {
      m_screen.event(started_event(m_options.nick, m_options.jid, m_options.room, fp, now));
      return;
    }
    m_screen.line(info_line(wall_clock(), "mpotr-chat " MPOTR_VERSION ": joining " + m_options.room + " as " +
                                              m_options.nick + " (" + m_options.jid + ")"));
    m_screen.line(info_line(wall_clock(), "Your fingerprint: " + fp.grouped() + ". Type /help for commands."));
  }

  // Everything the client produced since the last call: state changes, notices, trust.
  void drain(TimeMs now) {
    const ClientState state = m_client.state();
    if (!m_last_state || *m_last_state != state) {
      m_last_state = state;
      if (m_screen.json()) {
        m_screen.event(state_event(to_string(state), now));
      } else if (m_options.verbose) {
        m_screen.line(stamp_debug("connection: " + std::string(to_string(state))));
      }
    }
    std::vector<Notice> notices = m_client.take_notices();
    m_otp.rewrite(m_client.host(), notices);  // bundles become OTP lines, or say why not
    for (const Notice& n : notices) {
      show(n, now);
      if (n.kind == "secure" && m_otp.enabled()) {
        // A new session, maybe new members: say at once whose pad is missing or low.
        show_otp_check(now);
      }
    }
    if (m_client.take_trust_changed()) {
      auto saved = store::save_trust(m_options.trust_file, m_trust);
      if (!saved.ok()) {
        Notice n;
        n.kind = "trust_not_saved";
        n.severity = Severity::Warning;
        n.text = "Could not save the trust store to " + m_options.trust_file + ": " + saved.error().detail +
                 " (trust decisions of this run will be forgotten)";
        n.code = saved.error().code;
        show(n, now);
      }
    }
    if (m_screen.json() && m_screen.broken()) {
      begin_leave(now);  // the script reading us is gone
    }
  }

  void on_line(const Result<std::string>& line, TimeMs now) {
    if (!line.ok()) {
      report_error(line.error().detail, nullptr, now);
      return;
    }
    if (m_screen.json()) {
      JsonCommandLine parsed = parse_json_command(line.value());
      if (!parsed.command.ok()) {
        report_error(parsed.command.error().detail, parsed.id, now);
      } else if (parsed.command.value()) {
        execute(*parsed.command.value(), parsed.id, now);
      }
      return;
    }
    auto parsed = parse_interactive_line(line.value());
    if (!parsed.ok()) {
      report_error(parsed.error().detail, nullptr, now);
    } else if (parsed.value()) {
      execute(*parsed.value(), nullptr, now);
    }
  }

  // Graceful leave (shutdown protocol). Idempotent.
  void begin_leave(TimeMs now) {
    if (m_leave_started || m_quit_at) {
      return;
    }
    m_leave_started = now;
    m_client.leave(now);
  }

  void quit_now(TimeMs now) {
    if (m_quit_at) {
      return;
    }
    m_quit_at = now;
    m_client.quit();
  }

  void on_signal(int count, TimeMs now) {
    if (count >= 2) {
      quit_now(now);
      return;
    }
    if (!m_screen.json()) {
      m_screen.line(info_line(wall_clock(), "Leaving properly (press Ctrl-C again to quit at once)"));
    }
    begin_leave(now);
  }

  // Caps on leaving. Returns the exit code once the program should stop.
  std::optional<int> check_finished(TimeMs now) {
    const ClientState state = m_client.state();
    if (state == ClientState::Closed) {
      return 0;
    }
    if (state == ClientState::Failed) {
      return 1;
    }
    if (m_leave_started && !m_quit_at && now - *m_leave_started > kLeaveCapMs) {
      Notice n;
      n.kind = "leave_timeout";
      n.severity = Severity::Warning;
      n.text = "Leaving took more than " + std::to_string(kLeaveCapMs / 1000) + " s: quitting without finishing the shutdown";
      show(n, now);
      quit_now(now);
    }
    if (m_quit_at && now - *m_quit_at > kQuitCapMs) {
      diagnostic("the connection did not close in time after quitting; exiting anyway");
      return 1;
    }
    return std::nullopt;
  }

  void announce_exit(int code, TimeMs now) {
    if (m_screen.json()) {
      m_screen.event(exit_event(code, now));
    } else {
      m_screen.line(info_line(wall_clock(), code == 0 ? "Bye" : "Exiting after a failure"));
    }
  }

 private:
  std::string stamp_debug(const std::string& text) const { return "[" + wall_clock() + "] - " + text; }

  LineStyle style() const {
    return LineStyle{m_client.host().self_nick().empty() ? m_options.nick : m_client.host().self_nick(), m_options.verbose};
  }

  void show(const Notice& n, TimeMs now) {
    if (m_screen.json()) {
      m_screen.event(notice_to_json(n, now));
    } else if (auto line = notice_to_line(n, wall_clock(), style())) {
      m_screen.line(*line);
    }
  }

  void report_error(const std::string& error, const nlohmann::json& id, TimeMs now) {
    if (m_screen.json()) {
      m_screen.event(command_error_event(error, id, now));
    } else {
      m_screen.line(error_line(wall_clock(), error));
    }
  }

  void ok(const Command& c, const nlohmann::json& id, TimeMs now) {
    if (m_screen.json()) {
      m_screen.event(command_ok_event(command_name(c), id, now));
    }
  }

  void lines(const std::vector<std::string>& text) {
    for (const auto& l : text) {
      m_screen.line(l);
    }
  }

  void execute(const Command& command, const nlohmann::json& id, TimeMs now) {
    if (const auto* send = std::get_if<SendText>(&command)) {
      if (m_otp.enabled()) {
        // OTP mode never falls back: a line that cannot go out under the pads is not sent.
        send_sealed(command, send->text, {}, "Not sent (OTP mode): ", id, now);
        return;
      }
      ok(command, id, now);
      m_client.send_text(send->text, now);
    } else if (const auto* otp = std::get_if<OtpCommand>(&command)) {
      run_otp(*otp, id, now);
    } else if (std::holds_alternative<ShowWho>(command)) {
      const WhoView who = make_who_view(m_client.host(), m_self);
      if (m_screen.json()) {
        m_screen.event(who_to_json(who, id, now));
      } else {
        lines(who_to_lines(who));
      }
    } else if (std::holds_alternative<ShowStatus>(command)) {
      const StatusView status = make_status_view(m_client.host(), to_string(m_client.state()));
      if (m_screen.json()) {
        m_screen.event(status_to_json(status, id, now));
      } else {
        lines(status_to_lines(status));
      }
    } else if (const auto* fp = std::get_if<ShowFingerprint>(&command)) {
      auto found = find_fingerprint(m_client.host(), m_self, fp->nick);
      if (!found.ok()) {
        report_error(found.error().detail, id, now);
      } else if (m_screen.json()) {
        m_screen.event(fingerprint_to_json(found.value(), id, now));
      } else {
        m_screen.line(fingerprint_to_line(found.value()));
      }
    } else if (const auto* verify = std::get_if<VerifyKey>(&command)) {
      auto result = m_client.verify(verify->nick, verify->fingerprint, now);
      if (!result.ok()) {
        report_error("cannot verify " + verify->nick + ": " + result.error().detail, id, now);
      } else {
        ok(command, id, now);
      }
    } else if (const auto* block = std::get_if<BlockMember>(&command)) {
      auto result = m_client.block(block->nick, now);
      if (!result.ok()) {
        report_error("cannot block " + block->nick + ": " + result.error().detail, id, now);
      } else {
        ok(command, id, now);
      }
    } else if (const auto* policy = std::get_if<SetPolicy>(&command)) {
      ok(command, id, now);
      m_client.set_admission(policy->policy, now);
    } else if (const auto* accept = std::get_if<AcceptKey>(&command)) {
      auto result = m_client.accept_new_key(accept->nick, now);
      if (!result.ok()) {
        report_error("cannot accept the new key of " + accept->nick + ": " + result.error().detail, id, now);
      } else {
        ok(command, id, now);
      }
    } else if (std::holds_alternative<RestartSetup>(command)) {
      ok(command, id, now);
      m_client.restart(now);
    } else if (std::holds_alternative<Leave>(command)) {
      ok(command, id, now);
      begin_leave(now);
    } else if (std::holds_alternative<Quit>(command)) {
      ok(command, id, now);
      if (!m_screen.json()) {
        m_screen.line(error_line(wall_clock(),
                                 "Quitting without the shutdown protocol: the transcript is not checked and your "
                                 "session key stays withheld; the others are told you accept nothing more (use /leave "
                                 "for the full shutdown)"));
      }
      quit_now(now);
    } else if (std::holds_alternative<ShowHelp>(command)) {
      lines(interactive_help());
    }
  }

  void show_otp_check(TimeMs now) {
    auto report = m_otp.check(m_client.host());
    if (!report.ok()) {
      show(transport::make_notice("otp_pads", Severity::Warning, "Cannot check the pads: " + report.error().detail), now);
      return;
    }
    for (const Notice& n : report->notices) {
      show(n, now);
    }
  }

  // Seals `text` for everyone (or an alias) through the pad device and sends the bundle; a
  // refusal is reported with its reason and nothing is sent.
  void send_sealed(const Command& command, std::string_view text, std::string_view alias, std::string_view refusal,
                   const nlohmann::json& id, TimeMs now) {
    auto sealed = m_otp.seal(m_client.host(), text, alias);
    if (!sealed.ok()) {
      report_error(std::string(refusal) + sealed.error().detail, id, now);
      return;
    }
    ok(command, id, now);
    m_client.send_text(sealed.value(), now);
  }

  void run_otp(const OtpCommand& c, const nlohmann::json& id, TimeMs now) {
    using Action = OtpCommand::Action;
    const auto& host = m_client.host();
    if (!m_pad_device && c.action != Action::Off && c.action != Action::Aliases) {
      report_error("no pad device: start mpotr-chat with --pad-socket PATH (see mpotr-padd)", id, now);
      return;
    }
    const OtpCommand generic{c.action, {}, {}, {}};
    switch (c.action) {
      case Action::On: {
        auto report = m_otp.enable(host);
        if (!report.ok()) {
          report_error("OTP mode not turned on: " + report.error().detail, id, now);
          return;
        }
        ok(generic, id, now);
        for (const Notice& n : report->notices) show(n, now);
        return;
      }
      case Action::Off:
        m_otp.disable();
        ok(generic, id, now);
        show(transport::make_notice("otp_mode", Severity::Info, "OTP mode off: lines are protected by mpOTR only"), now);
        return;
      case Action::Status:
        ok(generic, id, now);
        show(transport::make_notice("otp_mode", Severity::Info,
                                    std::string("OTP mode is ") + (m_otp.enabled() ? "on" : "off") + "; pad device " +
                                        m_options.pad_socket),
             now);
        show_otp_check(now);
        return;
      case Action::Alias: {
        auto r = m_otp.define_alias(host, c.name, c.members);
        if (!r.ok()) {
          report_error("alias not defined: " + r.error().detail, id, now);
          return;
        }
        ok(generic, id, now);
        return;
      }
      case Action::Unalias: {
        auto r = m_otp.remove_alias(c.name);
        if (!r.ok()) {
          report_error(r.error().detail, id, now);
          return;
        }
        ok(generic, id, now);
        return;
      }
      case Action::Aliases: {
        ok(generic, id, now);
        if (m_otp.aliases().empty()) {
          show(transport::make_notice("otp_alias", Severity::Info, "No aliases (/otp alias NAME NICK... defines one)"), now);
        }
        for (const auto& a : m_otp.aliases()) {
          std::string members;
          for (const auto& j : a.jids) members += (members.empty() ? "" : ", ") + j;
          show(transport::make_notice("otp_alias", Severity::Info, a.name + ": " + members), now);
        }
        return;
      }
      case Action::To:
        send_sealed(generic, c.text, c.name, "Not sent (OTP): ", id, now);
        return;
    }
  }

  const Options& m_options;
  MucClient& m_client;
  TrustStore& m_trust;
  Screen& m_screen;
  SelfInfo m_self;
  std::optional<ClientState> m_last_state;
  std::optional<TimeMs> m_leave_started;
  std::optional<TimeMs> m_quit_at;
  std::unique_ptr<otp::device::RpcPadDevice> m_pad_device;  // with --pad-socket
  otp::OtpRoomMode m_otp;
};

// --password is visible in ps; overwriting our copy of argv shortens that window (the
// options were already copied).
void hide_password_argument(int argc, char** argv) {
  static constexpr std::string_view kInline = "--password=";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--password") == 0 && i + 1 < argc) {
      std::memset(argv[i + 1], 'x', std::strlen(argv[i + 1]));
      ++i;
    } else if (std::strncmp(argv[i], kInline.data(), kInline.size()) == 0) {
      std::memset(argv[i] + kInline.size(), 'x', std::strlen(argv[i] + kInline.size()));
    }
  }
}

Environment process_environment() {
  Environment env;
  if (const char* home = std::getenv("HOME")) {
    env.home = home;
  }
  if (const char* xdg = std::getenv("XDG_DATA_HOME")) {
    env.xdg_data_home = xdg;
  }
  if (const char* pw = std::getenv("MPOTR_PASSWORD")) {
    env.password = pw;
  }
  return env;
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = &count_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: poll() returns at once with EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, nullptr);  // a closed stdout is reported by write, not by death
}

int run(int argc, char** argv) {
  const std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  hide_password_argument(argc, argv);
  auto parsed = parse_options(args, process_environment());
  if (!parsed.ok()) {
    diagnostic(parsed.error().detail);
    std::fprintf(stderr, "Try 'mpotr-chat --help'.\n");
    return 2;
  }
  Options options = std::move(parsed).value();
  if (options.help) {
    std::fputs(usage_text().c_str(), stdout);
    return 0;
  }
  if (options.version) {
    std::printf("mpotr-chat %s\n", MPOTR_VERSION);
    return 0;
  }
  g_json_mode = options.json;

  if (!options.password_file.empty()) {
    auto password = read_password_file(options.password_file);
    if (!password.ok()) {
      diagnostic(password.error().detail);
      return 1;
    }
    options.password = std::move(password).value();
  }

  SystemRng rng;
  bool created = false;
  auto identity = store::load_or_create_identity(options.key_file, rng, &created);
  if (!identity.ok()) {
    struct stat st {};
    const bool exists = ::stat(options.key_file.c_str(), &st) == 0;
    diagnostic("cannot use the key file " + options.key_file + ": " + identity.error().detail +
               (exists ? " (an existing key file is never overwritten: fix or move it, or choose another with --key-file)"
                       : ""));
    return 1;
  }
  const Fingerprint fingerprint = identity->fingerprint();
  if (created) {
    diagnostic("created a new identity key in " + options.key_file + " (fingerprint " + fingerprint.grouped() + ")");
  }
  auto loaded_trust = store::load_trust(options.trust_file);
  if (!loaded_trust.ok()) {
    diagnostic("cannot use the trust file " + options.trust_file + ": " + loaded_trust.error().detail);
    return 1;
  }
  TrustStore trust = std::move(loaded_trust).value();  // outlives the client, which points at it

  transport::XmppAccount account;
  account.jid = options.jid;
  account.password = options.password;
  account.host = options.server_host;
  account.port = options.server_port;
  account.tls.mode = options.tls_disabled ? transport::TlsMode::Disabled : transport::TlsMode::Required;
  account.tls.ca_file = options.ca_file;
  account.tls.pin_sha256 = options.pin_sha256;
  account.tls.trust_any = options.trust_any_cert;

  transport::RoomHostConfig host_config;
  host_config.room = options.room;
  host_config.self_jid = options.jid;
  host_config.timeouts = options.timeouts;
  host_config.roster_settle_ms = options.roster_settle_ms;
  host_config.admission = options.admission;
  transport::RoomHost host(std::move(host_config), std::move(identity).value(), &trust);

  transport::ReconnectPolicy reconnect;
  reconnect.enabled = options.reconnect;

  transport::XmppLoop loop;
  MucClient client(loop, std::move(account), options.room, options.nick, std::move(host), rng, reconnect);
  Screen screen(options.json);
  Chat chat(options, client, trust, screen);
  install_signal_handlers();

  TimeMs now = steady_now();
  chat.announce_start(fingerprint, now);
  chat.start_otp(now);
  client.start(now);

  LineBuffer input;
  bool stdin_open = true;
  int signals_seen = 0;
  int exit_code = 0;
  while (true) {
    now = steady_now();
    if (const int count = g_signal_count; count != signals_seen) {
      signals_seen = count;
      chat.on_signal(count, now);
    }
    chat.drain(now);
    if (const auto finished = chat.check_finished(now)) {
      exit_code = *finished;
      chat.drain(now);
      break;
    }

    TimeMs wait = kMaxWaitMs;
    if (const auto wake = client.wake_at()) {
      wait = *wake <= now ? 0 : std::min(kMaxWaitMs, *wake - now);
    }
    pollfd pfd{stdin_open ? STDIN_FILENO : -1, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::min<TimeMs>(wait, kStdinPollMs)));
    if (ready > 0 && stdin_open) {
      char buf[kReadChunk];
      const ssize_t n = (pfd.revents & POLLNVAL) != 0 ? 0 : ::read(STDIN_FILENO, buf, sizeof buf);
      now = steady_now();
      if (n > 0) {
        for (const auto& line : input.feed(std::string_view(buf, static_cast<std::size_t>(n)))) {
          chat.on_line(line, now);
        }
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        // End of input: what a script or Ctrl-D means by "done". Leave properly.
        stdin_open = false;
        if (auto last = input.finish()) {
          chat.on_line(*last, now);
        }
        chat.begin_leave(now);
      }
    }
    loop.run_once(wait);
    client.pump(steady_now());
  }
  chat.announce_exit(exit_code, steady_now());
  return exit_code;
}

}  // namespace
}  // namespace mpotr::chat

int main(int argc, char** argv) {
  try {
    return mpotr::chat::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpotr-chat: fatal error: %s\n", e.what());
    if (mpotr::chat::g_json_mode) {
      std::printf("%s\n", mpotr::chat::json_line(mpotr::chat::exit_event(1, mpotr::chat::steady_now())).c_str());
    }
    return 1;
  }
}
