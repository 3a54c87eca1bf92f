// SPDX-License-Identifier: MIT
// mpotr-xmpp-demo: the README's first command, after scripts/demo.sh has started the loopback
// ejabberd (testserver/) and registered the users. It runs real mpotr-chat processes in their
// scriptable mode (--json) in one room:
//   alice, bob and carol set up a session and chat; they turn on OTP mode (their pad devices
//   were started by scripts/xmpp-demo.sh) and chat under the one-time pads, once to an alias;
//   dave, who has no pads, joins (re-key): OTP lines are refused until OTP mode is off; carol
//   leaves (transcript check, her signing key published); everyone's decrypted view is printed,
//   and a line of what the server relayed to alice, which went through a recording TCP relay.
//
//   mpotr-xmpp-demo --chat PATH --port N --room JID --workdir DIR
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

[[noreturn]] void fail(const std::string& why) { throw std::runtime_error(why); }

// --- a recording TCP relay between one client and the server ------------------------------------

class Relay {
 public:
  explicit Relay(std::uint16_t server_port) : m_server_port(server_port) {
    m_listen = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (m_listen < 0 || ::bind(m_listen, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(m_listen, 4) != 0 || ::getsockname(m_listen, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      fail("relay: cannot listen on loopback");
    }
    m_port = ntohs(a.sin_port);
  }
  ~Relay() {
    for (int fd : {m_listen, m_client, m_server}) {
      if (fd >= 0) ::close(fd);
    }
  }
  std::uint16_t port() const { return m_port; }
  const std::string& to_client() const { return m_to_client; }
  const std::string& to_server() const { return m_to_server; }

  void add_fds(std::vector<pollfd>& fds) const {
    for (int fd : {m_listen, m_client, m_server}) {
      if (fd >= 0) fds.push_back({fd, POLLIN, 0});
    }
  }
  void service() {
    if (m_client < 0) {
      const int c = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        m_client = c;
        m_server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(m_server_port);
        if (::connect(m_server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fail("relay: cannot reach the server");
        ::fcntl(m_client, F_SETFL, O_NONBLOCK);
        ::fcntl(m_server, F_SETFL, O_NONBLOCK);
      }
    }
    pump(m_client, m_server, m_to_server);
    pump(m_server, m_client, m_to_client);
  }

 private:
  void pump(int from, int to, std::string& record) {
    if (from < 0 || to < 0) return;
    char buf[16384];
    for (;;) {
      const ssize_t n = ::read(from, buf, sizeof buf);
      if (n <= 0) return;
      record.append(buf, static_cast<std::size_t>(n));
      for (ssize_t off = 0; off < n;) {
        const ssize_t w = ::write(to, buf + off, static_cast<std::size_t>(n - off));
        if (w < 0) {
          if (errno == EAGAIN) {
            pollfd p{to, POLLOUT, 0};
            ::poll(&p, 1, 100);
            continue;
          }
          return;
        }
        off += w;
      }
    }
  }
  std::uint16_t m_server_port;
  std::uint16_t m_port = 0;
  int m_listen = -1, m_client = -1, m_server = -1;
  std::string m_to_client, m_to_server;
};

// --- one mpotr-chat --json process ----------------------------------------------------------------

struct Chat {
  std::string nick;
  pid_t pid = -1;
  int in = -1;   // its stdin
  int out = -1;  // its stdout
  std::string buffer;
  std::vector<json> events;
  bool exited = false;

  void send(const json& cmd) {
    const std::string line = cmd.dump() + "\n";
    if (::write(in, line.data(), line.size()) != static_cast<ssize_t>(line.size())) fail(nick + ": cannot write");
  }
  void read_available() {
    char buf[8192];
    for (;;) {
      const ssize_t n = ::read(out, buf, sizeof buf);
      if (n == 0) {
        exited = true;
        return;
      }
      if (n < 0) return;
      buffer.append(buf, static_cast<std::size_t>(n));
    }
  }
  void parse_lines() {
    for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n')) {
      const std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded()) fail(nick + " printed a line that is not JSON: " + line);
      events.push_back(std::move(j));
    }
  }
};

class Demo {
 public:
  Demo(std::string chat, std::uint16_t port, std::string room, std::string workdir)
      : m_chat(std::move(chat)), m_port(port), m_room(std::move(room)), m_workdir(std::move(workdir)), m_relay(port) {}
  ~Demo() {
    for (auto& [nick, c] : m_chats) {
      if (c->pid > 0 && !c->exited) ::kill(c->pid, SIGKILL);
      if (c->pid > 0) ::waitpid(c->pid, nullptr, 0);
    }
  }

  Chat& start(const std::string& nick, bool through_relay) {
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) fail("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&fa, from_child[1], 1);
    const std::string dir = m_workdir + "/" + nick;
    const std::string server = "127.0.0.1:" + std::to_string(through_relay ? m_relay.port() : m_port);
    std::vector<std::string> args = {m_chat, "--json", "--jid", nick + "@localhost", "--password-file",
                                     dir + "/password", "--room", m_room, "--server", server, "--tls", "disabled",
                                     "--key-file", dir + "/identity.json", "--trust-file", dir + "/trust.json"};
    struct stat st {};
    if (const std::string sock = dir + "/run/padd.sock"; ::stat(sock.c_str(), &st) == 0) {
      args.insert(args.end(), {"--pad-socket", sock});  // this member has a pad device
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    auto c = std::make_unique<Chat>();
    c->nick = nick;
    if (posix_spawn(&c->pid, m_chat.c_str(), &fa, nullptr, argv.data(), environ) != 0) fail("cannot start " + m_chat);
    posix_spawn_file_actions_destroy(&fa);
    ::close(to_child[0]);
    ::close(from_child[1]);
    c->in = to_child[1];
    c->out = from_child[0];
    ::fcntl(c->out, F_SETFL, O_NONBLOCK);
    Chat& ref = *c;
    m_chats[nick] = std::move(c);
    return ref;
  }

  Chat& chat(const std::string& nick) { return *m_chats.at(nick); }

  // Runs the relay and reads every chat's output until pred() holds.
  void wait(const std::string& what, const std::function<bool()>& pred, int timeout_s = 30) {
    const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
    while (!pred()) {
      if (Clock::now() > deadline) fail("timed out waiting for: " + what);
      std::vector<pollfd> fds;
      m_relay.add_fds(fds);
      for (auto& [nick, c] : m_chats) {
        if (!c->exited) fds.push_back({c->out, POLLIN, 0});
      }
      ::poll(fds.data(), fds.size(), 50);
      m_relay.service();
      for (auto& [nick, c] : m_chats) {
        if (!c->exited) {
          c->read_available();
          c->parse_lines();
        }
      }
    }
  }

  static bool has(const Chat& c, const std::string& event, const std::function<bool(const json&)>& match = {}) {
    for (const auto& e : c.events) {
      if (e.value("event", "") == event && (!match || match(e))) return true;
    }
    return false;
  }
  static std::size_t count(const Chat& c, const std::string& event) {
    std::size_t n = 0;
    for (const auto& e : c.events) n += e.value("event", "") == event ? 1 : 0;
    return n;
  }

  void wait_secure(const std::vector<std::string>& nicks) {
    for (const auto& nick : nicks) {
      const std::size_t before = m_secure_seen[nick];
      wait(nick + " secure with " + std::to_string(nicks.size()) + " members", [&] {
        std::size_t seen = 0;
        for (const auto& e : chat(nick).events) {
          if (e.value("event", "") == "secure") {
            ++seen;
            if (seen > before && e.contains("nicks") && e["nicks"].size() == nicks.size()) {
              m_secure_seen[nick] = seen;
              return true;
            }
          }
        }
        return false;
      });
    }
  }

  void say(const std::string& nick, const std::string& text, const std::vector<std::string>& readers) {
    chat(nick).send({{"cmd", "send"}, {"text", text}});
    m_plaintexts.push_back(text);
    for (const auto& r : readers) {
      wait(r + " reads \"" + text + "\"", [&] {
        return has(chat(r), "message", [&](const json& e) { return e.value("nick", "") == nick && e.value("message", "") == text; });
      });
    }
  }

  // An OTP line: readers show it decrypted by their pad device; others are told it was not for them.
  void say_otp(const std::string& nick, const std::string& text, const std::vector<std::string>& readers,
               const std::vector<std::string>& outsiders = {}, const std::string& alias = {}) {
    if (alias.empty()) {
      chat(nick).send({{"cmd", "send"}, {"text", text}});
    } else {
      chat(nick).send({{"cmd", "otp"}, {"action", "to"}, {"name", alias}, {"text", text}});
    }
    m_plaintexts.push_back(text);
    wait(nick + " sends \"" + text + "\" under the pads",
         [&] { return has(chat(nick), "otp_sent", [&](const json& e) { return e.value("message", "") == text; }); });
    for (const auto& r : readers) {
      wait(r + " reads \"" + text + "\" with its pad", [&] {
        return has(chat(r), "otp_message",
                   [&](const json& e) { return e.value("nick", "") == nick && e.value("message", "") == text; });
      });
    }
    for (const auto& o : outsiders) {
      wait(o + " is told it was not for them", [&] {
        return has(chat(o), "otp_not_for_you", [&](const json& e) { return e.value("nick", "") == nick; });
      });
    }
  }

  // Waits for the reply to a command: command_ok, or fails with the command_error's text.
  void command(const std::string& nick, json cmd) {
    const std::size_t before = count(chat(nick), "command_ok") + count(chat(nick), "command_error");
    chat(nick).send(cmd);
    wait(nick + " runs " + cmd.dump(), [&] { return count(chat(nick), "command_ok") + count(chat(nick), "command_error") > before; });
    for (auto it = chat(nick).events.rbegin(); it != chat(nick).events.rend(); ++it) {
      if (it->value("event", "") == "command_error") fail(nick + ": " + cmd.dump() + " failed: " + it->value("error", ""));
      if (it->value("event", "") == "command_ok") return;
    }
  }

  void print_views() const {
    for (const auto& [nick, c] : m_chats) {
      std::printf("\n  %s's screen:\n", nick.c_str());
      for (const auto& e : c->events) {
        const std::string ev = e.value("event", "");
        if (ev == "message") {
          std::printf("    <%s> %s\n", e.value("nick", "").c_str(), e.value("message", "").c_str());
        } else if (ev == "otp_message") {
          std::string to;
          for (const auto& r : e.value("recipients", json::array())) to += (to.empty() ? " to " : ", ") + r.get<std::string>();
          std::printf("    <%s> [OTP%s] %s\n", e.value("nick", "").c_str(), to.c_str(), e.value("message", "").c_str());
        } else if (ev == "otp_sent") {
          std::printf("    <%s> [OTP] %s\n", nick.c_str(), e.value("message", "").c_str());
        } else if (ev == "otp_not_for_you" || ev == "otp_mode") {
          std::printf("    * %s\n", e.value("text", "").c_str());
        } else if (ev == "sent") {
          std::printf("    <%s> %s\n", nick.c_str(), e.value("message", e.value("text", "")).c_str());
        } else if (ev == "secure" || ev == "key_published" || ev == "transcript_consistent" || ev == "fully_confirmed" ||
                   e.value("severity", "") == "warning" || e.value("severity", "") == "alert") {
          std::printf("    * %s\n", e.value("text", "").c_str());
        }
      }
    }
  }

  void print_relay() const {
    const std::string& seen = m_relay.to_client();
    // A payload (presence carries an empty <mpotr/> marker, payloads have content).
    const auto at = seen.find("</mpotr>");
    std::printf("\nWhat the server relayed to alice (%zu bytes in all); one message stanza:\n", seen.size());
    const auto start = at == std::string::npos ? std::string::npos : seen.rfind("<message", at);
    if (start != std::string::npos) {
      const auto end = seen.find("</message>", at);
      std::string line = seen.substr(start, end == std::string::npos ? 400 : end + 10 - start);
      if (line.size() > 600) line = line.substr(0, 600) + " …";
      std::printf("  %s\n", line.c_str());
    }
    for (const auto& p : m_plaintexts) {
      if (seen.find(p) != std::string::npos || m_relay.to_server().find(p) != std::string::npos) {
        fail("PLAINTEXT ON THE WIRE: \"" + p + "\"");
      }
    }
    std::printf("  none of the %zu chat lines appears in the relayed bytes (either direction): ciphertext only.\n",
                m_plaintexts.size());
  }

 private:
  std::string m_chat;
  std::uint16_t m_port;
  std::string m_room;
  std::string m_workdir;
  Relay m_relay;
  std::map<std::string, std::unique_ptr<Chat>> m_chats;
  std::map<std::string, std::size_t> m_secure_seen;
  std::vector<std::string> m_plaintexts;
};

}  // namespace

int main(int argc, char** argv) {
  std::string chat, room, workdir;
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--chat") chat = argv[i + 1];
    else if (k == "--port") port = std::atoi(argv[i + 1]);
    else if (k == "--room") room = argv[i + 1];
    else if (k == "--workdir") workdir = argv[i + 1];
  }
  if (chat.empty() || room.empty() || workdir.empty() || port <= 0 || port > 65535) {
    std::cerr << "usage: mpotr-xmpp-demo --chat PATH --port N --room JID --workdir DIR\n";
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  try {
    const auto t0 = Clock::now();
    Demo demo(chat, static_cast<std::uint16_t>(port), room, workdir);
    std::printf("1. alice, bob and carol join %s and set up a session\n", room.c_str());
    demo.start("alice", /*through_relay=*/true);
    demo.start("bob", false);
    demo.start("carol", false);
    demo.wait_secure({"alice", "bob", "carol"});
    std::printf("2. they chat\n");
    demo.say("alice", "Hi both, this room is off the record.", {"bob", "carol"});
    demo.say("bob", "Hello! Nothing here can be proven later.", {"alice", "carol"});
    demo.say("carol", "Good. Let's plan the launch.", {"alice", "bob"});
    std::printf("3. OTP mode: each line encrypted with the one-time pad each pair shares, inside the session\n");
    for (const char* nick : {"alice", "bob", "carol"}) demo.command(nick, {{"cmd", "otp"}, {"action", "on"}});
    demo.say_otp("alice", "Now under one-time pads: unbreakable even by a quantum computer.", {"bob", "carol"});
    demo.say_otp("carol", "And the pad bytes are destroyed as we go.", {"alice", "bob"});
    demo.command("alice", {{"cmd", "otp"}, {"action", "alias"}, {"name", "b"}, {"members", {"bob"}}});
    demo.say_otp("alice", "Only bob can read this one.", {"bob"}, {"carol"}, "b");
    std::printf("4. dave (no pads) joins: everyone re-keys; OTP lines are refused until OTP mode is off\n");
    demo.start("dave", false);
    demo.wait_secure({"alice", "bob", "carol", "dave"});
    demo.wait("alice is told dave has no pad", [&] {
      return Demo::has(demo.chat("alice"), "otp_pads", [](const json& e) {
        return e.value("text", "").find("No pad shared with dave") != std::string::npos;
      });
    });
    const std::size_t errors = Demo::count(demo.chat("alice"), "command_error");
    demo.chat("alice").send({{"cmd", "send"}, {"text", "This must not be sent."}});
    demo.wait("alice's OTP line is refused", [&] { return Demo::count(demo.chat("alice"), "command_error") > errors; });
    for (const auto& e : demo.chat("alice").events) {
      if (e.value("event", "") == "command_error" &&
          e.value("error", "").find("no pad shared with dave") == std::string::npos) {
        fail("unexpected refusal: " + e.value("error", ""));
      }
    }
    for (const char* nick : {"alice", "bob", "carol"}) demo.command(nick, {{"cmd", "otp"}, {"action", "off"}});
    demo.say("dave", "Dave here, I can read only what is said from now on.", {"alice", "bob", "carol"});
    demo.say("alice", "Welcome, dave.", {"bob", "carol", "dave"});
    std::printf("5. carol leaves: transcripts are compared, her signing key is published, the rest re-key\n");
    demo.chat("carol").send({{"cmd", "leave"}});
    demo.wait("carol publishes her key and exits", [&] {
      return Demo::has(demo.chat("carol"), "key_published") && Demo::has(demo.chat("carol"), "exit");
    });
    demo.wait_secure({"alice", "bob", "dave"});
    demo.say("bob", "Carol has left; new keys for the three of us.", {"alice", "dave"});
    for (const char* nick : {"alice", "bob", "dave"}) {
      demo.chat(nick).send({{"cmd", "leave"}});
    }
    demo.wait("everyone leaves", [&] {
      for (const char* nick : {"alice", "bob", "dave"}) {
        if (!Demo::has(demo.chat(nick), "exit")) return false;
      }
      return true;
    });
    std::printf("\nEach member's decrypted view:");
    demo.print_views();
    demo.print_relay();
    std::printf("\ndemo finished in %.1f s\n",
                std::chrono::duration<double>(Clock::now() - t0).count());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpotr-xmpp-demo: %s\n", e.what());
    return 1;
  }
  return 0;
}
