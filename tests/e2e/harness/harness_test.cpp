// SPDX-License-Identifier: MIT
// The end-to-end harness itself, with no plugin: real Profanity 0.13.1 clients in a private
// tmux server against the private ejabberd, and a plain libstrophe observer in the same room.
// These tests prove that the harness sees what it must see (the observer detects plaintext, the
// screen shows messages, scrolled lines can be recovered) and that nothing outlives a test.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>

#include "support/profanity_driver.h"
#include "support/raw_observer.h"
#include "support/testserver.h"

using namespace mpotr::test;
using namespace std::chrono_literals;

namespace {

const std::string kRoom = "room@" + TestServer::muc_service();

// A token no earlier run or other test can have produced.
std::string unique_token(const std::string& prefix) {
  static unsigned counter = 0;
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(now % 1000000007) + "-" +
         std::to_string(counter++);
}

// No such process, or only a zombie waiting for its parent (init) to reap it.
bool process_gone(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return true;
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() &&
         (stat[close + 2] == 'Z' || stat[close + 2] == 'X');
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 3000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// REQUIREs that `user`'s screen shows `text` within `timeout`. On failure, Catch prints the
// screen and the tail of the Profanity log of every user in `all`.
void require_shown(ProfanityUser& user, const std::string& text, std::initializer_list<ProfanityUser*> all,
                   std::chrono::milliseconds timeout = 5s) {
  const WaitResult r = user.wait_for(text, timeout);
  if (!r) {
    for (ProfanityUser* u : all) UNSCOPED_INFO(u->dump_string());
  }
  REQUIRE(r);
}

}  // namespace

TEST_CASE("e2e harness: two Profanity users talk in a room and a raw observer sees the plaintext",
          "[e2e][harness]") {
  TestServer server;
  server.register_users({{"alice", "alicepw"}, {"bob", "bobpw"}, {"eve", "evepw"}});
  server.create_rooms({"room"});
  TmuxServer tmux;

  RawObserver eve(raw_observer_options(server, "eve", "evepw", kRoom, "eve"));
  REQUIRE(eve.wait_joined(10s));

  ProfanityUser alice(profanity_options(server, tmux, "alice", "alicepw"));
  ProfanityUser bob(profanity_options(server, tmux, "bob", "bobpw"));
  const auto both = {&alice, &bob};

  REQUIRE(alice.join_room(kRoom));
  REQUIRE(bob.join_room(kRoom));
  require_shown(alice, "-> bob has joined the room", both);
  // The room window is current and its titlebar (top line) names the room.
  CHECK(alice.titlebar().find(kRoom) != std::string::npos);
  CHECK(bob.titlebar().find(kRoom) != std::string::npos);

  // A unique plaintext line: bob's screen shows it, and the observer sees it in a stanza, so a
  // later "no plaintext on the wire" check with the plugin is meaningful.
  const std::string token = unique_token("plain");
  const std::string line = "hello bob, the token is " + token;
  alice.send_line(line);
  require_shown(bob, "alice: " + line, both);
  REQUIRE(eve.wait_for_text(token, 5s));
  const auto carriers = eve.received_containing(token);
  REQUIRE(carriers.size() == 1);
  CHECK(carriers[0].find("type=\"groupchat\"") != std::string::npos);
  CHECK(carriers[0].find(kRoom + "/alice") != std::string::npos);
  CHECK(carriers[0].find("<body>" + line + "</body>") != std::string::npos);

  // send_line types anything literally: a leading '-', quotes, shell and tmux metacharacters,
  // XML specials, UTF-8 and a trailing ';' (which tmux would take as a command separator).
  const std::string tricky = "-n 'single' \"double\" $HOME `id` \\ & <b>x</b> caf\xc3\xa9 " + token + " end;";
  alice.send_line(tricky);
  require_shown(bob, "alice: " + tricky, both);
  CHECK(eve.wait_for_text("caf\xc3\xa9 " + token + " end;", 5s));

  // scrollback() on a window that fits the screen returns it whole and leaves it unscrolled.
  const std::string whole = bob.scrollback();
  CHECK(whole.find("-> You have joined the room as bob") != std::string::npos);
  CHECK(whole.find("alice: " + line + "\n") != std::string::npos);
  CHECK(bob.titlebar().find("[SCROLLED]") == std::string::npos);

  // bob leaves: alice and the observer see it.
  bob.send_line("/close");
  require_shown(alice, "<- bob has left the room", both);
  REQUIRE(eventually([&] {
    for (const auto& xml : eve.received_containing(kRoom + "/bob")) {
      if (xml.find("type=\"unavailable\"") != std::string::npos) return true;
    }
    return false;
  }));
  // The observer's own records include what it sent (its join presence).
  const auto records = eve.records();
  CHECK(std::any_of(records.begin(), records.end(), [](const RecordedStanza& r) {
    return r.sent && r.xml.find("maxstanzas") != std::string::npos;
  }));
  // Profanity's debug log has the wire traffic too.
  CHECK(alice.profanity_log().find(token) != std::string::npos);
  CHECK(bob.room_log(kRoom).find("alice: " + line) != std::string::npos);
}

TEST_CASE("e2e harness: Profanity and the observer use STARTTLS with the self-signed test certificate",
          "[e2e][harness]") {
  TestServer server(TestServerOptions{true, true});  // plaintext refused
  server.register_users({{"alice", "alicepw"}, {"eve", "evepw"}});
  server.create_rooms({"room"});
  TmuxServer tmux;
  RawObserver eve(raw_observer_options(server, "eve", "evepw", kRoom, "eve"));
  REQUIRE(eve.options().tls);
  REQUIRE(eve.wait_joined(10s));
  const ProfanityOptions opts = profanity_options(server, tmux, "alice", "alicepw");
  REQUIRE(opts.tls);  // tls.policy=trust: no interactive certificate prompt
  ProfanityUser alice(opts);
  REQUIRE(alice.join_room(kRoom));
  CHECK_FALSE(alice.seen("TLS connection not established"));
  const std::string token = unique_token("tls");
  alice.send_line("over tls " + token);
  require_shown(alice, "alice: over tls " + token, {&alice});
  CHECK(eve.wait_for_text("over tls " + token, 5s));
}

TEST_CASE("e2e harness: /quit leaves no Profanity process and no tmux server", "[e2e][harness]") {
  TestServer server;
  server.register_users({{"alice", "alicepw"}, {"bob", "bobpw"}});
  std::string name;
  pid_t tmux_pid = -1;
  pid_t alice_pid = -1;
  pid_t bob_pid = -1;
  std::string alice_home;
  std::string bob_home;
  std::string socket;
  {
    TmuxServer tmux;
    name = tmux.name();
    tmux_pid = tmux.pid();
    socket = tmux.socket_path();
    REQUIRE(TmuxServer::running(name));
    ProfanityUser alice(profanity_options(server, tmux, "alice", "alicepw"));
    alice_pid = alice.pid();
    alice_home = alice.home();
    REQUIRE(alice.alive());
    REQUIRE(alice.quit(5s));  // exited by itself after /quit
    CHECK_FALSE(alice.alive());
    CHECK(eventually([&] { return process_gone(alice_pid); }));

    // A test that fails half-way: the destructors still clean up.
    try {
      ProfanityUser bob(profanity_options(server, tmux, "bob", "bobpw"));
      bob_pid = bob.pid();
      bob_home = bob.home();
      REQUIRE(bob.alive());
      throw std::runtime_error("simulated failure");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()) == "simulated failure");
    }
    CHECK(eventually([&] { return process_gone(bob_pid); }));
  }
  CHECK_FALSE(TmuxServer::running(name));
  CHECK(eventually([&] { return process_gone(tmux_pid); }));
  CHECK(eventually([&] { return process_gone(alice_pid) && process_gone(bob_pid); }));
  struct stat st {};
  CHECK(::stat(socket.c_str(), &st) != 0);
  if (std::getenv("MPOTR_KEEP_E2E") == nullptr) {
    CHECK(::stat(alice_home.c_str(), &st) != 0);
    CHECK(::stat(bob_home.c_str(), &st) != 0);
  }
}

TEST_CASE("e2e harness: a test process killed mid-test leaves no tmux or Profanity behind", "[e2e][harness]") {
  TestServer server;
  server.register_users({{"alice", "alicepw"}});
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  // The child plays a test that dies without running any destructor (SIGKILL).
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    try {
      TmuxServer tmux;
      ProfanityUser alice(profanity_options(server, tmux, "alice", "alicepw"));
      const std::string report = tmux.name() + " " + std::to_string(tmux.pid()) + " " +
                                 std::to_string(alice.pid()) + " " + tmux.dir() + " " + alice.home() + " " +
                                 tmux.socket_path() + "\n";
      if (::write(fds[1], report.data(), report.size()) < 0) ::_exit(2);
      ::raise(SIGKILL);
    } catch (...) {
    }
    ::_exit(1);
  }
  ::close(fds[1]);
  std::string report;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) report.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  std::istringstream in(report);
  std::string name, dir, home, socket;
  pid_t tmux_pid = -1, alice_pid = -1;
  REQUIRE(in >> name >> tmux_pid >> alice_pid >> dir >> home >> socket);
  CHECK(eventually([&] { return process_gone(alice_pid) && process_gone(tmux_pid); }, 5000ms));
  CHECK_FALSE(TmuxServer::running(name));
  struct stat st {};
  CHECK(eventually([&] { return ::stat(socket.c_str(), &st) != 0; }));
  if (std::getenv("MPOTR_KEEP_E2E") == nullptr) {
    CHECK(eventually([&] { return ::stat(home.c_str(), &st) != 0 && ::stat(dir.c_str(), &st) != 0; }));
  }
}

TEST_CASE("e2e harness: scrollback() recovers lines scrolled off the screen", "[e2e][harness]") {
  TestServer server;
  server.register_users({{"alice", "alicepw"}, {"bob", "bobpw"}});
  server.create_rooms({"room"});
  TmuxServer tmux;
  auto small = [&](const std::string& user, const std::string& pw) {
    ProfanityOptions o = profanity_options(server, tmux, user, pw);
    o.height = 20;  // 17 window lines
    return o;
  };
  ProfanityUser alice(small("alice", "alicepw"));
  ProfanityUser bob(small("bob", "bobpw"));
  REQUIRE(alice.join_room(kRoom));
  REQUIRE(bob.join_room(kRoom));
  REQUIRE(alice.wait_for("-> bob has joined the room"));

  const std::string token = unique_token("sb");
  constexpr int kLines = 45;
  for (int i = 1; i <= kLines; ++i) alice.send_line(token + " line " + std::to_string(i));
  const auto last = bob.wait_for("alice: " + token + " line " + std::to_string(kLines), 10s);
  if (!last) UNSCOPED_INFO(alice.dump_string());
  REQUIRE(last);
  // Line 1 scrolled away long ago: not on the screen, and tmux has no history of it.
  CHECK(last.screen.find(token + " line 1\n") == std::string::npos);
  CHECK(bob.capture(true).find(token + " line 1\n") == std::string::npos);

  const std::string all = bob.scrollback();
  INFO(all);
  std::size_t pos = all.find("-> You have joined the room as bob");
  CHECK(pos != std::string::npos);
  for (int i = 1; i <= kLines; ++i) {
    const std::string want = "alice: " + token + " line " + std::to_string(i) + "\n";
    const std::size_t at = all.find(want);
    REQUIRE(at != std::string::npos);
    CHECK(all.find(want, at + 1) == std::string::npos);  // pages merged without duplicates
    CHECK((pos == std::string::npos || at > pos));
    pos = at;
  }
  // Back at the bottom: new lines show on the screen again.
  CHECK(bob.titlebar().find("[SCROLLED]") == std::string::npos);
  alice.send_line(token + " after");
  CHECK(bob.wait_for("alice: " + token + " after", 5s));
  // The room log has everything as well.
  CHECK(bob.room_log(kRoom).find("alice: " + token + " line 1\n") != std::string::npos);
  CHECK(bob.seen("alice: " + token + " line " + std::to_string(kLines)));
}
