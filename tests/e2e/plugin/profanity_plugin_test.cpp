// SPDX-License-Identifier: MIT
// The Profanity plugin in real Profanity 0.13.1 clients (tmux, isolated homes) against the
// private ejabberd, watched by a plain libstrophe occupant of the same room that has no mpOTR:
// everything it receives is what crossed the wire, so no typed line may ever appear in it.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <regex>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mpotr/transport/stanza.h"
#include "support/profanity_driver.h"
#include "support/raw_observer.h"
#include "support/testserver.h"
#include "support/xmpp_room.h"

using namespace mpotr::test;
using namespace std::chrono_literals;

namespace {

const std::string kRoom = "room@" + TestServer::muc_service();

std::string token(const std::string& prefix) {
  static unsigned counter = 0;
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// One test's world: a server with users and a room, a tmux server, an observer in the room.
struct World {
  explicit World(const std::vector<std::string>& names) {
    std::vector<std::pair<std::string, std::string>> accounts;
    for (const auto& u : names) accounts.emplace_back(u, "pw-" + u);
    accounts.emplace_back("observer", "pw-observer");
    server.register_users(accounts);
    server.create_rooms({"room"});
    observer = std::make_unique<RawObserver>(raw_observer_options(server, "observer", "pw-observer", kRoom, "observer"));
    REQUIRE(observer->wait_joined());
  }

  ProfanityUser& add(const std::string& user, bool with_plugin = true) {
    auto opts = profanity_options(server, tmux, user, "pw-" + user);
    if (with_plugin) opts.plugins_to_install.push_back(MPOTR_PLUGIN_PATH);
    users.push_back(std::make_unique<ProfanityUser>(opts));
    ProfanityUser& u = *users.back();
    if (with_plugin) REQUIRE(u.wait_seen("mpOTR: created the identity key of " + user + "@localhost"));
    REQUIRE(u.join_room(kRoom));
    return u;
  }

  std::string dump() {
    std::string out;
    for (auto& u : users) out += u->dump_string(40);
    return out;
  }

  // Nothing any user typed crossed the wire in a readable form.
  void require_no_plaintext(const std::vector<std::string>& lines) {
    for (const auto& line : lines) {
      INFO("line: " << line);
      CHECK_FALSE(observer->contains_text(line));
    }
  }

  TestServer server;
  TmuxServer tmux;
  std::unique_ptr<RawObserver> observer;
  std::vector<std::unique_ptr<ProfanityUser>> users;
};

// Waits until `n` distinct lines containing `text` have been seen (e.g. the second session).
bool seen_times(ProfanityUser& u, const std::string& text, std::size_t n, std::chrono::milliseconds timeout = 15000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    (void)u.wait_for(text, 1ms);  // refreshes the transcript
    const auto t = u.transcript();
    if (static_cast<std::size_t>(std::count_if(t.begin(), t.end(), [&](const std::string& l) {
          return l.find(text) != std::string::npos;
        })) >= n) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
}

#define REQUIRE_SEEN(user, text, world)                                    \
  do {                                                                     \
    auto r_ = (user).wait_seen((text), 15000ms);                           \
    if (!r_) FAIL("waiting for: " << (text) << "\n" << (world).dump());     \
  } while (false)

}  // namespace

TEST_CASE("Profanity: three users secure a room, chat, one ends, the wire shows no plaintext", "[e2e][plugin]") {
  World w({"alice", "bob", "carol", "dave"});
  ProfanityUser& alice = w.add("alice");
  ProfanityUser& bob = w.add("bob");
  ProfanityUser& carol = w.add("carol");
  ProfanityUser& dave = w.add("dave", false);  // no plugin: must see the fallback text, nothing else

  for (auto* u : {&alice, &bob, &carol}) u->send_line("/mpotr start");
  for (auto* u : {&alice, &bob, &carol}) REQUIRE_SEEN(*u, "mpOTR: Session secure with alice, bob, carol", w);
  for (auto* u : {&alice, &bob, &carol}) CHECK(u->titlebar().find("[mpOTR]") != std::string::npos);
  // The observer and dave are outsiders: listed as such, and they did not keep the session
  // from forming.
  alice.send_line("/mpotr status");
  REQUIRE_SEEN(alice, "observer (observer@localhost) WITHOUT mpOTR: cannot read this room", w);
  REQUIRE_SEEN(alice, "dave (dave@localhost) WITHOUT mpOTR: cannot read this room", w);

  std::vector<std::string> typed;
  const std::string a1 = token("alpha from alice");
  alice.send_line(a1);
  typed.push_back(a1);
  REQUIRE_SEEN(bob, "alice: " + a1, w);
  REQUIRE_SEEN(carol, "alice: " + a1, w);
  REQUIRE_SEEN(alice, "delivered to everyone: \"" + a1.substr(0, 20), w);
  const std::string b1 = token("bravo from bob");
  bob.send_line(b1);
  typed.push_back(b1);
  REQUIRE_SEEN(alice, "bob: " + b1, w);
  REQUIRE_SEEN(carol, "bob: " + b1, w);
  const std::string c1 = token("charlie from carol");
  carol.send_line(c1);
  typed.push_back(c1);
  REQUIRE_SEEN(alice, "carol: " + c1, w);
  REQUIRE_SEEN(bob, "carol: " + c1, w);
  // A member without mpOTR sees the fallback, never ciphertext or the text.
  REQUIRE_SEEN(dave, "This message is encrypted with mpOTR", w);
  CHECK_FALSE(dave.seen(a1));

  // carol ends: transcripts are compared, her key is published, the others re-key.
  carol.send_line("/mpotr end");
  REQUIRE_SEEN(carol, "mpOTR ended (transcripts compared, keys published)", w);
  for (auto* u : {&alice, &bob}) REQUIRE_SEEN(*u, "mpOTR: Session secure with alice, bob (", w);
  CHECK(carol.titlebar().find("[mpOTR") == std::string::npos);
  const std::string a2 = token("delta from alice after carol left");
  alice.send_line(a2);
  typed.push_back(a2);
  REQUIRE_SEEN(bob, "alice: " + a2, w);
  std::this_thread::sleep_for(500ms);
  CHECK_FALSE(carol.seen("alice: " + a2));  // she left the session: she cannot read it

  // The observer was in the room all along (it received payloads and fallback bodies)...
  REQUIRE(w.observer->contains_text(mpotr::transport::kPayloadNs));
  REQUIRE(w.observer->contains_text("This message is encrypted with mpOTR"));
  // ...and never saw a typed line.
  w.require_no_plaintext(typed);
  // Profanity's own room log holds the fallback text for received lines, never ciphertext.
  CHECK(bob.room_log(kRoom).find(std::string(mpotr::transport::kPayloadNs)) == std::string::npos);
}

TEST_CASE("Profanity: a line typed before the session is secure is refused, not sent", "[e2e][plugin]") {
  World w({"alice", "bob"});
  ProfanityUser& alice = w.add("alice");
  w.add("bob", false);
  alice.send_line("/mpotr start");
  REQUIRE_SEEN(alice, "Nobody else in the room uses mpOTR", w);
  CHECK(alice.titlebar().find("[mpOTR setup]") != std::string::npos);
  const std::string early = token("too early");
  alice.send_line(early);
  REQUIRE_SEEN(alice, "Not sent: the session is not secure yet", w);
  std::this_thread::sleep_for(500ms);
  w.require_no_plaintext({early});
}

TEST_CASE("Profanity and mpotr-chat's client understand each other in one secured room", "[e2e][plugin]") {
  World w({"alice", "bob"});
  ProfanityUser& alice = w.add("alice");
  XmppRoomOptions ro;
  ro.port = w.server.c2s_port();
  XmppRooms rooms(ro);
  XmppMember& bob = rooms.add("bob", kRoom);
  rooms.start(bob);
  alice.send_line("/mpotr start");
  // Keep bob's event loop running while Profanity's screen is polled (at most every 100 ms).
  auto until = [&](const std::function<bool()>& pred, mpotr::TimeMs ms) {
    auto next = std::chrono::steady_clock::now();
    return rooms.run_until(
        [&] {
          if (std::chrono::steady_clock::now() < next) return false;
          next = std::chrono::steady_clock::now() + 100ms;
          return pred();
        },
        ms);
  };
  REQUIRE(until([&] { return alice.wait_seen("mpOTR: Session secure with alice, bob", 1ms).found && rooms.session_of(bob); },
                20000));
  const std::string a1 = token("from profanity");
  alice.send_line(a1);
  REQUIRE(until([&] { return !rooms.messages_from(bob, "alice").empty(); }, 15000));
  CHECK(rooms.messages_from(bob, "alice").front() == a1);
  const std::string b1 = token("from mpotr-chat");
  bob.client->send_text(b1, XmppRooms::now_ms());
  REQUIRE(until([&] { return alice.wait_seen("bob: " + b1, 1ms).found; }, 15000));
  w.require_no_plaintext({a1, b1});
}

TEST_CASE("Profanity: SMP verification succeeds with the same secret and fails with another", "[e2e][plugin][smp]") {
  World w({"alice", "bob"});
  ProfanityUser& alice = w.add("alice");
  ProfanityUser& bob = w.add("bob");
  for (auto* u : {&alice, &bob}) u->send_line("/mpotr start");
  for (auto* u : {&alice, &bob}) REQUIRE_SEEN(*u, "mpOTR: Session secure with alice, bob", w);

  alice.send_line("/mpotr verify bob Where did we first meet?");
  REQUIRE_SEEN(alice, "/mpotr secret bob <secret>", w);
  alice.send_line("/mpotr secret bob the blue cafe");
  REQUIRE_SEEN(bob, "alice wants to verify your keys and asks: \"Where did we first meet?\"", w);
  bob.send_line("/mpotr secret alice the blue cafe");
  REQUIRE_SEEN(alice, "mpOTR: verified bob (bob@localhost)", w);
  REQUIRE_SEEN(bob, "mpOTR: verified alice (alice@localhost)", w);
  for (auto* u : {&alice, &bob}) {
    auto r = u->wait_for(std::regex("\\[mpOTR verified\\]"), 5000ms);
    CHECK(r.found);
  }
  alice.send_line("/mpotr status");
  REQUIRE_SEEN(alice, "[verified]", w);

  // A different secret: both are told, nobody is marked verified by it.
  bob.send_line("/mpotr verify alice");
  bob.send_line("/mpotr secret alice green door");
  REQUIRE_SEEN(alice, "bob wants to verify your keys.", w);
  alice.send_line("/mpotr secret bob red door");
  REQUIRE_SEEN(alice, "verification of bob FAILED", w);
  REQUIRE_SEEN(bob, "verification of alice FAILED", w);
  w.require_no_plaintext({"the blue cafe", "green door", "red door", "Where did we first meet?"});
}

TEST_CASE("Profanity: unloading, reloading and quitting leave no crash and no plaintext", "[e2e][plugin]") {
  World w({"alice", "bob"});
  ProfanityUser& alice = w.add("alice");
  ProfanityUser& bob = w.add("bob");
  for (auto* u : {&alice, &bob}) u->send_line("/mpotr start");
  for (auto* u : {&alice, &bob}) REQUIRE_SEEN(*u, "mpOTR: Session secure with alice, bob", w);

  bob.send_line("/plugins unload mpotr.so");
  REQUIRE_SEEN(bob, "mpOTR: the plugin was unloaded; this room is no longer encrypted.", w);
  REQUIRE_SEEN(alice, "bob turned mpOTR off and left the session", w);
  // alice's room is still secured: with nobody else in the session her line is refused.
  const std::string a0 = token("alice alone");
  alice.send_line(a0);
  REQUIRE_SEEN(alice, "Not sent: the session is not secure yet", w);

  bob.send_line("/plugins load mpotr.so");
  bob.send_line("/mpotr start");
  // Loaded after joining, the plugin re-joins to learn the members, then the room re-keys.
  REQUIRE_SEEN(bob, "mpOTR: fetching the member list of this room", w);
  for (auto* u : {&alice, &bob}) {
    if (!seen_times(*u, "mpOTR: Session secure with alice, bob (", 2)) FAIL("no second session\n" << w.dump());
  }
  const std::string a1 = token("after reload");
  alice.send_line(a1);
  REQUIRE_SEEN(bob, "alice: " + a1, w);

  const pid_t bob_pid = bob.pid();
  CHECK(bob.quit());
  CHECK(alice.quit());
  CHECK_FALSE(bob.seen("Segmentation fault"));
  CHECK_FALSE(alice.seen("Segmentation fault"));
  CHECK(::kill(bob_pid, 0) != 0);
  w.require_no_plaintext({a0, a1});
}
