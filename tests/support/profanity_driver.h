// SPDX-License-Identifier: MIT
//
// Drives real Profanity 0.13.1 clients headlessly for end-to-end tests: each ProfanityUser is
// one `profanity -a <user> -l DEBUG` in its own session of a private tmux server (TmuxServer),
// with an isolated home (HOME and every XDG dir inside a temp dir) and a generated accounts
// file and profrc. Tests type with send_line() and read the screen with capture()/wait_for().
//
// Screen layout (height H): line 0 is the titlebar (for a room: its JID, and "[SCROLLED]" while
// paged up), lines 1..H-3 the current window, line H-2 the status bar, line H-1 the input line.
// Profanity redraws through ncurses with a scroll region, so tmux keeps NO history of lines that
// scroll out of the window: use scrollback() (pages through Profanity's own buffer), transcript()
// (every line any capture has seen), room_log() (Profanity's groupchat log) or a taller screen.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <regex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace mpotr::test {

class TestServer;

using Millis = std::chrono::milliseconds;

struct CommandResult {
  int status = -1;  // exit status, 128 + signal, or -1 when it could not run / timed out
  std::string out;
  std::string err;
};

// Runs argv[0] from PATH with stdin on /dev/null and every fd above 2 closed in the child (so no
// socket of the test leaks into tmux or Profanity). Kills it after `timeout`.
CommandResult run_command(const std::vector<std::string>& argv, Millis timeout = Millis(10000));

// A private tmux server (`tmux -L <name>`), started at construction with its own config (no
// ~/.tmux.conf; status line off; panes stay after their process exits so a crash stays
// readable). The destructor kills the server and everything still running in it.
// A watchdog process (blocked on a pipe from this process) does the same if the test process
// dies without running destructors (crash, SIGKILL, SIGPIPE): kill-server, then removes dir()
// (where profanity_options() puts the users' homes) unless MPOTR_KEEP_E2E=1.
class TmuxServer {
 public:
  // name: "" picks unique_name().
  explicit TmuxServer(std::string name = {});
  ~TmuxServer();
  TmuxServer(const TmuxServer&) = delete;
  TmuxServer& operator=(const TmuxServer&) = delete;

  const std::string& name() const { return m_name; }
  pid_t pid() const { return m_pid; }
  // Temp dir of this server: its tmux.conf, and the homes of users made by profanity_options().
  const std::string& dir() const { return m_dir; }
  const std::string& socket_path() const { return m_socket_path; }
  // Runs `tmux -L <name> -f <conf> args...`.
  CommandResult tmux(const std::vector<std::string>& args) const;
  // kill-server, SIGKILL to every pane process and the server if they survive, socket removed.
  // Idempotent; the destructor calls it.
  void kill();

  // "mpotr-e2e-<pid>-<n>": unique per process and per call.
  static std::string unique_name();
  // Whether a tmux server answers on that socket name.
  static bool running(const std::string& name);

 private:
  void start_watchdog();
  void stop_watchdog();

  std::string m_name;
  std::string m_dir;  // temp dir holding tmux.conf
  std::string m_socket_path;
  pid_t m_pid = -1;
  pid_t m_watchdog_pid = -1;
  int m_watchdog_fd = -1;  // write end; the watchdog acts when it reads EOF
};

struct ProfanityOptions {
  std::string user;      // account name and JID localpart
  std::string password;
  std::string domain = "localhost";
  std::string host = "127.0.0.1";  // accounts `server=`
  std::uint16_t port = 5222;
  // true: the server offers STARTTLS with a self-signed cert: tls.policy=trust (never a prompt).
  // false: tls.policy=disable.
  bool tls = false;
  std::string resource = "prof";
  std::string muc_service = "conference.localhost";
  std::string nick;  // muc.nick; empty: user
  // .so files copied into <home>/data/profanity/plugins/ and autoloaded ([plugins] load=).
  std::vector<std::string> plugins_to_install;
  std::string tmux_socket;  // TmuxServer::name(); required
  // Where the temp home dir is made; "" is $TMPDIR (or /tmp). profanity_options() uses
  // TmuxServer::dir(), so the watchdog also removes homes left by a killed test.
  std::string home_parent;
  int width = 200;
  int height = 50;
  // profrc lines merged over the defaults, e.g. {"[ui]", "occupants=true"}: a "[group]" line
  // selects the group, "key=value" sets a key in it (replacing a default). Lines before any
  // group go to [ui].
  std::vector<std::string> extra_profrc;
  // key=value lines added to (or replacing keys of) this account's group in the accounts file.
  std::vector<std::string> extra_account;
  std::string log_level = "DEBUG";
  // The constructor waits for "logged in successfully" and throws if it does not come.
  bool wait_for_login = true;
  Millis login_timeout = Millis(10000);
};

// Options for `user` on `server` (host, port, TLS when the server offers it) in `tmux`.
ProfanityOptions profanity_options(const TestServer& server, const TmuxServer& tmux, std::string user,
                                   std::string password);

struct WaitResult {
  bool found = false;
  bool died = false;       // Profanity exited while waiting
  std::string screen;      // the last capture
  std::string what;        // the pattern, for messages
  explicit operator bool() const { return found; }
};
// Catch2 prints this on a failed REQUIRE(user.wait_for(...)): pattern and screen.
std::ostream& operator<<(std::ostream& os, const WaitResult& r);

class ProfanityUser {
 public:
  explicit ProfanityUser(ProfanityOptions opts);
  // quit() if still running, kill by PID, kill the tmux session, remove the home dir unless
  // MPOTR_KEEP_E2E=1 (then its path is printed on stderr).
  ~ProfanityUser();
  ProfanityUser(const ProfanityUser&) = delete;
  ProfanityUser& operator=(const ProfanityUser&) = delete;

  // Types `text` literally (no tmux key names, no shell) and presses Enter. A leading '/' makes
  // it a Profanity command, as typed. Throws on '\n' or '\r' in text.
  void send_line(const std::string& text);
  // Sends tmux key names (e.g. "PPage", "NPage", "C-a", "Tab") without -l.
  void send_keys(const std::vector<std::string>& keys);

  // Polls the visible screen every 50 ms. Returns early (found=false, died=true) if Profanity
  // exits. Substring or ECMAScript regex (regex_search over the screen; lines joined by '\n').
  WaitResult wait_for(const std::string& substring, Millis timeout = Millis(10000));
  // `what` names the pattern in failure messages.
  WaitResult wait_for(const std::regex& pattern, Millis timeout = Millis(10000), std::string what = "<regex>");
  // Like wait_for, but over transcript() (lines seen by any capture so far, also scrolled away).
  WaitResult wait_seen(const std::string& substring, Millis timeout = Millis(10000));

  // Waits for "<user>@<domain>/<resource> logged in successfully".
  WaitResult wait_logged_in(Millis timeout = Millis(10000));
  // Sends "/join <room_jid> nick <nick>" and waits until the (now current) room window shows
  // "-> You have joined the room as <nick>". nick "" uses the account's muc.nick.
  WaitResult join_room(const std::string& room_jid, const std::string& nick = {},
                       Millis timeout = Millis(10000));

  // The visible screen: `height` lines, trailing blanks of each line removed. with_history
  // adds tmux's history above it (always empty for Profanity itself; see the file comment).
  std::string capture(bool with_history = false);
  std::vector<std::string> screen_lines();
  std::string titlebar();   // line 0, trimmed
  std::string statusbar();  // line H-2, trimmed
  // The whole buffer of the current Profanity window (as far back as Profanity keeps it):
  // pages up with PageUp to the top, then back down to the bottom, merging the pages. Sends
  // keys: do not type at the same time. Returns to the bottom (no "[SCROLLED]") at the end.
  std::string scrollback();
  // Every distinct main-window line seen by any capture of this user, in order of first sight.
  std::vector<std::string> transcript() const { return m_transcript; }
  bool seen(const std::string& substring) const;

  // <home>/data/profanity/logs/profanity.log (the -l DEBUG log: sent/received XML, plugin logs).
  std::string profanity_log() const;
  // Profanity's groupchat log for room_jid (all days, concatenated); "" if none.
  std::string room_log(const std::string& room_jid) const;

  pid_t pid() const { return m_pid; }
  // Profanity's process exists and is not a zombie.
  bool alive() const;
  // Sends /quit and waits up to `timeout` for the process to end; then SIGTERM, then SIGKILL.
  // Returns true if Profanity exited by itself within `timeout`.
  bool quit(Millis timeout = Millis(5000));
  void kill();  // SIGKILL to Profanity's process group

  // Screen, pane state and the last `log_lines` lines of profanity.log.
  void dump(std::ostream& os, std::size_t log_lines = 60);
  std::string dump_string(std::size_t log_lines = 60);

  const ProfanityOptions& options() const { return m_opts; }
  const std::string& home() const { return m_home; }
  std::string jid() const { return m_opts.user + "@" + m_opts.domain; }
  std::string full_jid() const { return jid() + "/" + m_opts.resource; }
  const std::string& nick() const { return m_opts.nick; }
  const std::string& pane() const { return m_pane; }  // tmux pane id, "%N"

 private:
  void setup_home();
  void launch();
  void cleanup() noexcept;
  CommandResult tmux(const std::vector<std::string>& args) const;
  bool pane_dead();
  std::string pane_status();
  void remember(const std::vector<std::string>& lines);
  std::vector<std::string> main_lines(const std::vector<std::string>& screen) const;
  template <typename Match>
  WaitResult poll(const std::string& what, Millis timeout, bool over_transcript, Match match);

  ProfanityOptions m_opts;
  std::string m_home;
  std::string m_session;
  std::string m_pane;
  pid_t m_pid = -1;
  unsigned long long m_start_time = 0;  // /proc/<pid>/stat starttime: guards against PID reuse
  std::vector<std::string> m_transcript;
  std::unordered_set<std::string> m_transcript_set;
};

}  // namespace mpotr::test
