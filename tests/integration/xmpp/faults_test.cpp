// SPDX-License-Identifier: MIT
// A fault-injecting proxy between bob and ejabberd drops, delays, duplicates and corrupts the
// chat stanzas the server relays to him. Every fault must be detected and reported by bob's
// engine, nothing may crash, and no plaintext may ever cross the wire: every client talks to
// the server through a recording proxy, and all recorded bytes are scanned for the chat lines.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>

#include "support/proxied_room.h"

using namespace mpotr;
using namespace mpotr::test;

namespace {

const std::string kRoom = "faults@conference.localhost";
// Only chat entries carry the fallback body (spec §13.3 X-4): this selects them, not setup,
// heartbeat or shutdown traffic.
const std::string kChatStanza = "<body>[This message is encrypted with mpOTR";

Timeouts fault_timeouts() {
  Timeouts t;
  t.gap = 2000;      // a missing message is declared lost after 2 s
  t.confirm = 4000;  // and an unconfirmed one overdue after 4 s
  return t;
}

struct Faulty : ProxiedRoom {
  Faulty() : ProxiedRoom("faults", fault_timeouts()) {}
  XmppMember& bob() { return get("bob"); }
  void fault(FaultAction action, std::uint32_t once_at, std::uint32_t delay_ms = 0) {
    FaultRule r{Direction::ToClient, kChatStanza, action, delay_ms, 0, 0, once_at};
    proxies["bob"]->add_rule(r);
  }
  bool carol_has_all(const std::string& author, std::size_t n) { return rooms->messages_from(get("carol"), author).size() == n; }
  std::size_t alerts(const XmppMember& m) const {
    std::size_t n = 0;
    for (const auto& x : m.notices) n += x.severity == transport::Severity::Alert ? 1 : 0;
    return n;
  }
};

}  // namespace

TEST_CASE("faults: a dropped chat stanza is reported as a gap, then as lost, and stays unconfirmed",
          "[integration][xmpp][faults]") {
  Faulty f;
  f.fault(FaultAction::Drop, 1);
  for (const char* t : {"drop-one alpha", "drop-one beta", "drop-one gamma"}) f.say("alice", t);
  f.require_until([&] { return f.rooms->count(f.bob(), "lost") >= 1; }, 15000);
  CHECK(f.rooms->count(f.bob(), "gap") >= 1);
  INFO(f.rooms->dump(f.bob()));
  // The later ones were held behind the gap and released when it was declared lost.
  CHECK(f.rooms->messages_from(f.bob(), "alice") == std::vector<std::string>{"drop-one beta", "drop-one gamma"});
  CHECK(f.carol_has_all("alice", 3));  // carol's copy was never touched
  XmppMember& alice = f.get("alice");
  f.require_until([&] { return f.rooms->count(alice, "unconfirmed") >= 1; }, 15000);
  CHECK(f.proxies["bob"]->stats().dropped[index(Direction::ToClient)] == 1);
}

TEST_CASE("faults: duplicated chat stanzas are reported as replays and shown once",
          "[integration][xmpp][faults]") {
  Faulty f;
  FaultRule r{Direction::ToClient, kChatStanza, FaultAction::Duplicate, 0, 1, 0, 0};  // every one
  f.proxies["bob"]->add_rule(r);
  for (const char* t : {"dup alpha", "dup beta", "dup gamma"}) f.say("alice", t);
  f.require_until([&] { return f.rooms->count(f.bob(), "replay") >= 3; }, 10000);
  INFO(f.rooms->dump(f.bob()));
  CHECK(f.rooms->messages_from(f.bob(), "alice") == std::vector<std::string>{"dup alpha", "dup beta", "dup gamma"});
  CHECK(f.rooms->count(f.bob(), "lost") == 0);
}

TEST_CASE("faults: a corrupted chat stanza is rejected with an alert and its loss reported",
          "[integration][xmpp][faults]") {
  Faulty f;
  f.fault(FaultAction::Corrupt, 1);
  // The proxy corrupts the longest text node: long lines make it the payload, not the fallback body.
  const std::string pad(120, '.');
  for (const char* t : {"corrupt alpha", "corrupt beta"}) f.say("alice", t + pad);
  f.require_until([&] { return f.rooms->count(f.bob(), "lost") >= 1; }, 15000);
  INFO(f.rooms->dump(f.bob()));
  CHECK(f.rooms->count(f.bob(), "tampered") + f.rooms->count(f.bob(), "malformed") == 1);
  CHECK(f.alerts(f.bob()) >= 2);  // the tampering and the loss
  CHECK(f.rooms->messages_from(f.bob(), "alice") == std::vector<std::string>{"corrupt beta" + pad});
  CHECK(f.proxies["bob"]->stats().corrupted[index(Direction::ToClient)] == 1);
}

TEST_CASE("faults: a delayed chat stanza opens a gap that closes when it arrives late",
          "[integration][xmpp][faults]") {
  Faulty f;
  f.fault(FaultAction::Delay, 1, 700);  // less than the 2 s gap timeout
  for (const char* t : {"late alpha", "late beta", "late gamma"}) f.say("alice", t);
  f.require_until([&] { return f.rooms->messages_from(f.bob(), "alice").size() == 3; }, 10000);
  f.rooms->run_for(2500);  // past the gap timeout: nothing may be declared lost
  INFO(f.rooms->dump(f.bob()));
  CHECK(f.rooms->count(f.bob(), "gap") >= 1);
  CHECK(f.rooms->count(f.bob(), "lost") == 0);
  CHECK(f.rooms->messages_from(f.bob(), "alice") == std::vector<std::string>{"late alpha", "late beta", "late gamma"});
  CHECK(f.alerts(f.bob()) == 0);
}

TEST_CASE("faults: a cut connection is detected and the member is re-keyed back in",
          "[integration][xmpp][faults]") {
  Faulty f;
  f.proxies["bob"]->cut();
  f.require_until([&] { return f.rooms->count(f.bob(), "connection_lost") >= 1; }, 10000);
  f.require_until([&] { return f.rooms->secure_together({"alice", "bob", "carol"}, kRoom); }, 30000);
  f.say("bob", "cut and back");
  f.require_until([&] { return f.carol_has_all("bob", 1); }, 10000);
}
