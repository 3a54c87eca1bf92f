// SPDX-License-Identifier: MIT
// What mpotr-chat prints: notices as terminal lines and as JSON objects, and the /who,
// /status and /fingerprint replies, built from real RoomHosts talking in memory.
#include <catch2/catch.hpp>

#include <deque>
#include <memory>
#include <string>

#include "mpotr/transport/stanza.h"
#include "render.h"

using namespace mpotr;
using namespace mpotr::chat;
using mpotr::transport::Notice;
using mpotr::transport::Severity;

namespace {

constexpr const char* kClock = "12:34:56";
constexpr const char* kRoom = "room@conference.localhost";

Notice make(std::string kind, Severity severity, std::string text, std::string nick = {}) {
  return transport::make_notice(std::move(kind), severity, std::move(text), std::move(nick));
}

Notice with_event(Notice n, Event ev) {
  n.event = std::move(ev);
  return n;
}

Event event(EventKind kind, std::string nick = {}) {
  Event ev;
  ev.kind = kind;
  ev.nick = std::move(nick);
  return ev;
}

std::string line(const Notice& n, bool verbose = false) {
  auto l = notice_to_line(n, kClock, LineStyle{"alice", verbose});
  REQUIRE(l.has_value());
  return *l;
}

bool no_control_bytes(const std::string& s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

Hash32 session_id(std::uint8_t first) {
  Hash32 id{};
  id[0] = first;
  id[1] = 0xab;
  id[31] = 0x01;
  return id;
}

// Two or three RoomHosts in one in-memory room: every payload goes to every present member,
// the sender included, as a MUC does.
struct Peer {
  std::string nick;
  std::unique_ptr<DeterministicRng> rng;
  std::unique_ptr<TrustStore> trust;
  std::unique_ptr<transport::RoomHost> host;
  std::vector<Notice> notices;
};

class MiniRoom {
 public:
  Peer& add(const std::string& nick, std::uint64_t seed) {
    auto p = std::make_unique<Peer>();
    p->nick = nick;
    p->rng = std::make_unique<DeterministicRng>(seed);
    p->trust = std::make_unique<TrustStore>();
    auto id = IdentityKey::generate(*p->rng);
    REQUIRE(id.ok());
    Timeouts fast;
    fast.heartbeat = 200;
    fast.confirm = 1000;
    p->host = std::make_unique<transport::RoomHost>(transport::RoomHostConfig{kRoom, nick + "@localhost", fast, 0},
                                                    std::move(id).value(), p->trust.get());
    m_peers.push_back(std::move(p));
    return *m_peers.back();
  }
  Peer& get(const std::string& nick) {
    for (auto& p : m_peers) {
      if (p->nick == nick) return *p;
    }
    FAIL("no peer " << nick);
    throw std::logic_error("unreachable");
  }
  // Everyone joins at once: each sees the others, then its own presence.
  void join_all() {
    for (auto& p : m_peers) {
      for (auto& o : m_peers) {
        if (o != p) absorb(*p, p->host->on_occupant_present(transport::Occupant{o->nick, o->nick + "@localhost"}, now, *p->rng));
      }
      absorb(*p, p->host->on_self_present(p->nick, true, now, *p->rng));
    }
    run();
  }
  void absorb(Peer& p, transport::HostOutput out) {
    for (auto& payload : out.payloads) m_queue.emplace_back(p.nick, transport::encode_payload_text(view(payload)));
    for (auto& n : out.notices) p.notices.push_back(std::move(n));
  }
  void run() {
    for (int steps = 0; !m_queue.empty() && steps < 100000; ++steps) {
      auto [from, text] = m_queue.front();
      m_queue.pop_front();
      for (auto& p : m_peers) absorb(*p, p->host->on_payload(from, text, now, *p->rng));
    }
  }
  void advance(TimeMs ms) {
    for (TimeMs step = 0; step < ms; step += 50) {
      now += 50;
      for (auto& p : m_peers) {
        const auto w = p->host->wake_at();
        if (w && *w <= now) absorb(*p, p->host->tick(now, *p->rng));
      }
      run();
    }
  }

  TimeMs now = 1000;

 private:
  std::vector<std::unique_ptr<Peer>> m_peers;
  std::deque<std::pair<std::string, std::string>> m_queue;
};

}  // namespace

// --- terminal lines ------------------------------------------------------------------------------

TEST_CASE("chat render: each severity has its own prefix", "[chat][render]") {
  CHECK(line(make("secure", Severity::Info, "Session secure with alice, bob")) ==
        "[12:34:56] * Session secure with alice, bob");
  CHECK(line(make("gap", Severity::Warning, "Messages #2 from bob are missing")) ==
        "[12:34:56] ! WARNING: Messages #2 from bob are missing");
  CHECK(line(make("tampered", Severity::Alert, "A message failed authentication")) ==
        "[12:34:56] !! ALERT: A message failed authentication");
  // Debug only with --verbose.
  const Notice debug = make("heartbeat", Severity::Debug, "bob acknowledged the conversation", "bob");
  CHECK_FALSE(notice_to_line(debug, kClock, LineStyle{"alice", false}).has_value());
  CHECK(line(debug, true) == "[12:34:56] - bob acknowledged the conversation");
}

TEST_CASE("chat render: every warning the host raises keeps its words", "[chat][render]") {
  // The kinds RoomHost produces for tampering, replay, gaps, split views and unknown keys.
  const std::vector<std::pair<std::string, Severity>> kinds = {
      {"tampered", Severity::Alert},         {"replay", Severity::Alert},        {"malformed", Severity::Alert},
      {"spoofed", Severity::Alert},          {"equivocation", Severity::Alert},  {"identity_changed", Severity::Alert},
      {"split_view", Severity::Alert},       {"lost", Severity::Alert},          {"transcript_mismatch", Severity::Alert},
      {"setup_failed", Severity::Alert},     {"anonymous_room", Severity::Alert}, {"verify_mismatch", Severity::Alert},
      {"gap", Severity::Warning},            {"setup_timeout", Severity::Warning}, {"plaintext", Severity::Warning},
      {"revoked_key", Severity::Warning},    {"blocked", Severity::Warning},     {"not_sent", Severity::Warning},
      {"disconnected", Severity::Warning},   {"shutdown_incomplete", Severity::Warning},
      {"new_identity", Severity::Info},      {"secure", Severity::Info},         {"joined", Severity::Info},
      {"key_published", Severity::Info},     {"transcript_consistent", Severity::Info},
  };
  for (const auto& [kind, severity] : kinds) {
    INFO(kind);
    const std::string text = "Something about " + kind + " happened";
    const std::string l = line(make(kind, severity, text, "bob"));
    const std::string prefix = severity == Severity::Alert     ? "[12:34:56] !! ALERT: "
                               : severity == Severity::Warning ? "[12:34:56] ! WARNING: "
                                                               : "[12:34:56] * ";
    CHECK(l == prefix + text);
  }
}

TEST_CASE("chat render: chat messages, ours and theirs, and their confirmation", "[chat][render]") {
  Event msg = event(EventKind::MessageReceived, "bob");
  msg.seq = 4;
  msg.text = "hello";
  CHECK(line(with_event(make("message", Severity::Info, "hello", "bob"), msg)) == "[12:34:56] <bob> hello");
  msg.late = true;
  CHECK(line(with_event(make("message", Severity::Info, "hello [arrived late, after later messages]", "bob"), msg)) ==
        "[12:34:56] <bob> hello [arrived late, after later messages]");

  // Our own message: shown with its number although the notice is Debug.
  Event sent = event(EventKind::MessageReceived, "alice");
  sent.seq = 3;
  sent.text = "hi all";
  CHECK(line(with_event(make("sent", Severity::Debug, "Sent #3", "alice"), sent)) == "[12:34:56] <alice> hi all  (#3)");

  Event full = event(EventKind::FullyConfirmed, "alice");
  full.seq = 3;
  CHECK(line(with_event(make("fully_confirmed", Severity::Info, "Your message #3 reached every member", "alice"), full)) ==
        "[12:34:56] \xE2\x9C\x93 #3 confirmed by everyone");
  // Someone else's message fully confirmed is protocol detail.
  Event theirs = event(EventKind::FullyConfirmed, "bob");
  theirs.seq = 2;
  const Notice other = with_event(make("fully_confirmed", Severity::Debug, "bob's message #2 reached every member", "bob"), theirs);
  CHECK_FALSE(notice_to_line(other, kClock, LineStyle{"alice", false}).has_value());
  CHECK(line(other, true) == "[12:34:56] - bob's message #2 reached every member");

  Event overdue = event(EventKind::ConfirmationOverdue, "alice");
  overdue.seq = 5;
  overdue.nicks = {"bob", "carol"};
  CHECK(line(with_event(make("unconfirmed", Severity::Warning, "Your message #5 has not been confirmed", "alice"), overdue)) ==
        "[12:34:56] ! WARNING: #5 overdue: not confirmed by bob, carol; it may not have reached them");
}

TEST_CASE("chat render: untrusted text cannot drive the terminal", "[chat][render]") {
  CHECK(sanitize_for_terminal("plain text, ünïcödé ✓") == "plain text, ünïcödé ✓");
  CHECK(sanitize_for_terminal("a\x1b[2Jb") == "a?[2Jb");
  CHECK(sanitize_for_terminal("tab\there\r\nnl") == "tab?here??nl");
  CHECK(sanitize_for_terminal(std::string("nul\0byte", 8)) == "nul?byte");
  CHECK(sanitize_for_terminal("del\x7f") == "del?");
  CHECK(sanitize_for_terminal("bell\x07") == "bell?");
  CHECK(sanitize_for_terminal("c1 \xC2\x9B" "31m") == "c1 ?31m");  // U+009B, a one-character CSI
  CHECK(sanitize_for_terminal("nbsp \xC2\xA0ok") == "nbsp \xC2\xA0ok");
  std::string all;
  for (int c = 0; c < 0x20; ++c) all.push_back(static_cast<char>(c));
  all.push_back('\x7f');
  CHECK(sanitize_for_terminal(all) == std::string(0x21, '?'));

  // In a rendered message both the nick and the text are cleaned; the line stays one line.
  Event msg = event(EventKind::MessageReceived, "bo\x1b]0;pwned\x07" "b");
  msg.text = "line1\nline2\x1b[31m red";
  const std::string l =
      line(with_event(make("message", Severity::Info, msg.text, msg.nick), msg));
  CHECK(l == "[12:34:56] <bo?]0;pwned?b> line1?line2?[31m red");
  CHECK(no_control_bytes(l));
  // Ours too, and warnings that quote a peer's plaintext.
  Event sent = event(EventKind::MessageReceived, "alice");
  sent.seq = 1;
  sent.text = "\x1b[H";
  CHECK(no_control_bytes(line(with_event(make("sent", Severity::Debug, "Sent #1", "alice"), sent))));
  CHECK(line(make("plaintext", Severity::Warning, "bob sent an UNENCRYPTED message: \x1b[2J", "bob")) ==
        "[12:34:56] ! WARNING: bob sent an UNENCRYPTED message: ?[2J");
  Event overdue = event(EventKind::ConfirmationOverdue, "alice");
  overdue.nicks = {"e\x1bvil"};
  CHECK(no_control_bytes(line(with_event(make("unconfirmed", Severity::Warning, "x", "alice"), overdue))));
  CHECK(error_line(kClock, "bad\ncommand") == "[12:34:56] ! bad?command");
  CHECK(info_line(kClock, "x\x1b") == "[12:34:56] * x?");
}

// --- JSON ------------------------------------------------------------------------------------

TEST_CASE("chat render: a notice as JSON has the common fields, correctly typed", "[chat][render]") {
  const nlohmann::json j = notice_to_json(make("joined", Severity::Info, "bob joined the room", "bob"), 12345);
  CHECK(j["event"] == "joined");
  CHECK(j["severity"] == "info");
  CHECK(j["text"] == "bob joined the room");
  CHECK(j["time_ms"].is_number_unsigned());
  CHECK(j["time_ms"] == 12345);
  CHECK(j["nick"] == "bob");
  CHECK_FALSE(j.contains("code"));
  CHECK_FALSE(j.contains("seq"));

  const nlohmann::json anon = notice_to_json(make("connected", Severity::Info, "Connected"), 1);
  CHECK(anon["nick"].is_null());

  Notice coded = make("not_sent", Severity::Warning, "Not sent: not secure");
  coded.code = ErrorCode::NotReady;
  CHECK(notice_to_json(coded, 1)["code"] == std::string(to_string(ErrorCode::NotReady)));

  CHECK(notice_to_json(make("x", Severity::Debug, "t"), 1)["severity"] == "debug");
  CHECK(notice_to_json(make("x", Severity::Warning, "t"), 1)["severity"] == "warning");
  CHECK(notice_to_json(make("x", Severity::Alert, "t"), 1)["severity"] == "alert");
}

TEST_CASE("chat render: event fields in JSON", "[chat][render]") {
  SECTION("message") {
    Event ev = event(EventKind::MessageReceived, "bob");
    ev.seq = 7;
    ev.text = "hi\nthere";
    ev.late = true;
    ev.session_id = session_id(0x5a);
    const nlohmann::json j = notice_to_json(with_event(make("message", Severity::Info, "hi\nthere [late]", "bob"), ev), 9);
    CHECK(j["engine_event"] == "message_received");
    CHECK(j["seq"].is_number_unsigned());
    CHECK(j["seq"] == 7);
    CHECK(j["message"] == "hi\nthere");
    CHECK(j["late"].is_boolean());
    CHECK(j["late"] == true);
    CHECK(j["session"].is_string());
    CHECK(j["session"].get<std::string>().size() == 64);
    CHECK(j["session"].get<std::string>().substr(0, 4) == "5aab");
    CHECK_FALSE(j.contains("detail"));
  }
  SECTION("confirmations") {
    Event c = event(EventKind::Confirmed, "alice");
    c.seq = 3;
    c.by = "bob";
    nlohmann::json j = notice_to_json(with_event(make("confirmed", Severity::Debug, "t", "alice"), c), 1);
    CHECK(j["seq"] == 3);
    CHECK(j["by"] == "bob");
    Event o = event(EventKind::ConfirmationOverdue, "alice");
    o.seq = 4;
    o.nicks = {"bob", "carol"};
    j = notice_to_json(with_event(make("unconfirmed", Severity::Warning, "t", "alice"), o), 1);
    CHECK(j["seq"] == 4);
    CHECK(j["nicks"] == nlohmann::json::array({"bob", "carol"}));
    Event f = event(EventKind::FullyConfirmed, "alice");
    f.seq = 2;
    CHECK(notice_to_json(with_event(make("fully_confirmed", Severity::Info, "t", "alice"), f), 1)["seq"] == 2);
  }
  SECTION("gaps and losses") {
    Event g = event(EventKind::Gap, "bob");
    g.seq = 2;
    g.seq_end = 5;
    nlohmann::json j = notice_to_json(with_event(make("gap", Severity::Warning, "t", "bob"), g), 1);
    CHECK(j["seq"] == 2);
    CHECK(j["seq_end"] == 5);
    g.kind = EventKind::MessageLost;
    j = notice_to_json(with_event(make("lost", Severity::Alert, "t", "bob"), g), 1);
    CHECK(j["engine_event"] == "message_lost");
    CHECK(j["seq_end"] == 5);
  }
  SECTION("setup") {
    Event s = event(EventKind::SessionEstablished);
    s.nicks = {"alice", "bob"};
    s.session_id = session_id(1);
    nlohmann::json j = notice_to_json(with_event(make("secure", Severity::Info, "t"), s), 1);
    CHECK(j["nicks"] == nlohmann::json::array({"alice", "bob"}));
    CHECK(j["session"].is_string());
    CHECK_FALSE(j.contains("code"));  // the default code means nothing here

    Event f = event(EventKind::SetupFailed, "carol");
    f.code = ErrorCode::GroupKeyMismatch;
    f.detail = "key confirmation differs";
    j = notice_to_json(with_event(make("setup_failed", Severity::Alert, "t", "carol"), f), 1);
    CHECK(j["code"] == std::string(to_string(ErrorCode::GroupKeyMismatch)));
    CHECK(j["detail"] == "key confirmation differs");
    CHECK_FALSE(j.contains("session"));  // zero session id: absent

    Event t = event(EventKind::SetupTimeout);
    t.nicks = {"dave"};
    t.code = ErrorCode::NotReady;
    j = notice_to_json(with_event(make("setup_timeout", Severity::Warning, "t"), t), 1);
    CHECK(j["nicks"] == nlohmann::json::array({"dave"}));
    CHECK(j["code"].is_string());

    Event empty_setup = event(EventKind::SetupStarted);
    CHECK(notice_to_json(with_event(make("setup", Severity::Info, "t"), empty_setup), 1)["nicks"].is_array());
  }
  SECTION("rejections keep the host's code") {
    Event r = event(EventKind::Rejected, "bob");
    r.code = ErrorCode::BadSignature;
    r.detail = "signature check failed";
    Notice n = with_event(make("tampered", Severity::Alert, "forged", "bob"), r);
    n.code = ErrorCode::BadSignature;
    const nlohmann::json j = notice_to_json(n, 1);
    CHECK(j["code"] == std::string(to_string(ErrorCode::BadSignature)));
    CHECK(j["detail"] == "signature check failed");
  }
  SECTION("new identity carries the fingerprint") {
    Event id = event(EventKind::NewIdentity, "bob");
    id.data.assign(32, 0xAB);
    const nlohmann::json j = notice_to_json(with_event(make("new_identity", Severity::Info, "t", "bob"), id), 1);
    CHECK(j["fingerprint"] == "ABABABAB ABABABAB ABABABAB ABABABAB ABABABAB ABABABAB ABABABAB ABABABAB");
  }
  SECTION("a revealed key is never copied out") {
    Event k = event(EventKind::PeerKeyPublished, "bob");
    k.data.assign(32, 0x11);
    const nlohmann::json j = notice_to_json(with_event(make("peer_key_published", Severity::Debug, "t", "bob"), k), 1);
    CHECK(json_line(j).find("1111111111") == std::string::npos);
  }
  SECTION("every event kind converts") {
    for (int k = 0; k <= static_cast<int>(EventKind::Rejected); ++k) {
      Event ev = event(static_cast<EventKind>(k), "bob");
      const nlohmann::json j = notice_to_json(with_event(make("k", Severity::Info, "t", "bob"), ev), 1);
      CHECK(j["engine_event"] == std::string(to_string(ev.kind)));
      if (j.contains("seq")) CHECK(j["seq"].is_number_unsigned());
      if (j.contains("nicks")) CHECK(j["nicks"].is_array());
      if (j.contains("late")) CHECK(j["late"].is_boolean());
    }
  }
}

TEST_CASE("chat render: JSON output is one line and survives any bytes", "[chat][render]") {
  Event ev = event(EventKind::MessageReceived, "bob");
  ev.text = "one\ntwo\r\nthree\x1b[2J\u2028";
  const std::string out = json_line(notice_to_json(with_event(make("message", Severity::Info, ev.text, "bob"), ev), 1));
  CHECK(out.find('\n') == std::string::npos);
  CHECK(out.find('\r') == std::string::npos);
  CHECK(no_control_bytes(out));
  CHECK(nlohmann::json::parse(out)["message"] == ev.text);

  // A peer's invalid UTF-8 must not abort the program: it is replaced.
  Event bad = event(EventKind::MessageReceived, "bo\xff");
  bad.text = "caf\xe9";
  std::string replaced;
  REQUIRE_NOTHROW(replaced = json_line(notice_to_json(with_event(make("message", Severity::Info, bad.text, bad.nick), bad), 1)));
  const nlohmann::json back = nlohmann::json::parse(replaced);
  CHECK(back["message"] == "caf\xEF\xBF\xBD");
  CHECK(back["nick"] == "bo\xEF\xBF\xBD");
}

TEST_CASE("chat render: lifecycle events and command replies", "[chat][render]") {
  Fingerprint fp;
  fp.bytes.fill(0x01);
  const nlohmann::json started = started_event("alice", "alice@localhost", kRoom, fp, 5);
  CHECK(started["event"] == "started");
  CHECK(started["nick"] == "alice");
  CHECK(started["jid"] == "alice@localhost");
  CHECK(started["room"] == kRoom);
  CHECK(started["fingerprint"] == fp.grouped());
  CHECK(state_event("in_room", 6) == nlohmann::json{{"event", "state"}, {"state", "in_room"}, {"time_ms", 6}});
  CHECK(exit_event(1, 7) == nlohmann::json{{"event", "exit"}, {"code", 1}, {"time_ms", 7}});
  const nlohmann::json err = command_error_event("unknown cmd", "abc", 8);
  CHECK(err["event"] == "command_error");
  CHECK(err["error"] == "unknown cmd");
  CHECK(err["id"] == "abc");
  CHECK(command_error_event("x", nullptr, 8)["id"].is_null());
  const nlohmann::json ok = command_ok_event("send", 3, 9);
  CHECK(ok["event"] == "command_ok");
  CHECK(ok["cmd"] == "send");
  CHECK(ok["id"] == 3);
}

// --- /who, /status, /fingerprint from hand-made views -------------------------------------------

TEST_CASE("chat render: who view both ways", "[chat][render]") {
  WhoView who;
  who.self_nick = "alice";
  who.self_jid = "alice@localhost";
  who.self_fingerprint.bytes.fill(0x0A);
  who.session = session_id(0xC3);
  who.phase = Phase::Established;
  WhoEntry bob;
  bob.nick = "bob";
  bob.jid = "bob@localhost";
  bob.in_session = true;
  bob.fingerprint = Fingerprint{};
  bob.fingerprint->bytes.fill(0x0B);
  bob.fingerprint_source = "session";
  bob.trust = TrustLevel::Verified;
  WhoEntry eve;
  eve.nick = "e\x1bve";
  eve.trust = TrustLevel::Unknown;
  who.others = {bob, eve};

  const nlohmann::json j = who_to_json(who, "q1", 10);
  CHECK(j["event"] == "who");
  CHECK(j["id"] == "q1");
  CHECK(j["phase"] == "established");
  CHECK(j["session"].get<std::string>().substr(0, 4) == "c3ab");
  CHECK(j["self"]["nick"] == "alice");
  CHECK(j["self"]["fingerprint"] == who.self_fingerprint.grouped());
  REQUIRE(j["occupants"].size() == 2);
  const auto& b = j["occupants"][0];
  CHECK(b["nick"] == "bob");
  CHECK(b["jid"] == "bob@localhost");
  CHECK(b["in_session"] == true);
  CHECK(b["in_room"] == true);
  CHECK(b["fingerprint"] == bob.fingerprint->grouped());
  CHECK(b["fingerprint_source"] == "session");
  CHECK(b["trust"] == "verified");
  const auto& e = j["occupants"][1];
  CHECK(e["jid"].is_null());
  CHECK(e["in_session"] == false);
  CHECK(e["fingerprint"].is_null());
  CHECK(e["trust"] == "unknown");

  const auto lines = who_to_lines(who);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "Room: you and 2 other occupant(s); secured session c3ab0000 (established)");
  CHECK(lines[1].find("alice (you) <alice@localhost>  fingerprint 0A0A0A0A") != std::string::npos);
  CHECK(lines[2] == "  bob <bob@localhost>  trust: verified, in the session, fingerprint " + bob.fingerprint->grouped());
  CHECK(lines[3] == "  e?ve <JID hidden>  trust: unknown, NOT in the session, fingerprint unknown");

  WhoView none;
  none.self_nick = "alice";
  CHECK(who_to_json(none, nullptr, 1)["session"].is_null());
  CHECK(who_to_json(none, nullptr, 1)["occupants"].is_array());
  CHECK(who_to_lines(none)[0] == "Room: you and 0 other occupant(s); no secured session (idle)");
}

TEST_CASE("chat render: status view both ways", "[chat][render]") {
  StatusView s;
  s.state = "in_room";
  s.phase = Phase::Established;
  s.session = session_id(0x42);
  s.members = {"alice", "bob", "carol"};
  s.confirmations_needed = 2;
  transport::SentStatus one;
  one.seq = 1;
  one.confirmed_by = {"bob", "carol"};
  one.fully_confirmed = true;
  transport::SentStatus two;
  two.seq = 2;
  two.confirmed_by = {"bob"};
  two.overdue = true;
  transport::SentStatus three;
  three.seq = 3;
  s.sent = {one, two, three};

  const nlohmann::json j = status_to_json(s, 5, 11);
  CHECK(j["event"] == "status");
  CHECK(j["id"] == 5);
  CHECK(j["state"] == "in_room");
  CHECK(j["phase"] == "established");
  CHECK(j["session"].is_string());
  CHECK(j["members"] == nlohmann::json::array({"alice", "bob", "carol"}));
  CHECK(j["confirmations_needed"] == 2);
  REQUIRE(j["sent"].size() == 3);
  CHECK(j["sent"][0]["seq"] == 1);
  CHECK(j["sent"][0]["confirmed_by"] == nlohmann::json::array({"bob", "carol"}));
  CHECK(j["sent"][0]["fully_confirmed"] == true);
  CHECK(j["sent"][0]["overdue"] == false);
  CHECK(j["sent"][1]["overdue"] == true);
  CHECK(j["sent"][2]["confirmed_by"] == nlohmann::json::array());

  const auto lines = status_to_lines(s);
  REQUIRE(lines.size() == 6);
  CHECK(lines[0] == "Connection: in_room; session: established 42ab0000");
  CHECK(lines[1] == "Members: alice, bob, carol");
  CHECK(lines[2] == "Your recent messages:");
  CHECK(lines[3] == "  #1: confirmed by everyone");
  CHECK(lines[4] == "  #2: confirmed by 1/2 (bob), OVERDUE");
  CHECK(lines[5] == "  #3: confirmed by 0/2");

  // Only the last few in a terminal; all of them in JSON.
  for (std::uint32_t seq = 4; seq <= 30; ++seq) {
    transport::SentStatus m;
    m.seq = seq;
    s.sent.push_back(m);
  }
  CHECK(status_to_lines(s).size() == 3 + kStatusRecentMessages);
  CHECK(status_to_lines(s).back() == "  #30: confirmed by 0/2");
  CHECK(status_to_json(s, nullptr, 1)["sent"].size() == 30);

  StatusView idle;
  idle.state = "connecting";
  CHECK(status_to_lines(idle) ==
        std::vector<std::string>{"Connection: connecting; session: idle", "Members: none", "Your messages in this session: none"});
  CHECK(status_to_json(idle, nullptr, 1)["session"].is_null());
}

// --- views built from real hosts -----------------------------------------------------------------

TEST_CASE("chat render: who, status, fingerprint and unverified alerts from a live session", "[chat][render]") {
  MiniRoom room;
  Peer& alice = room.add("alice", 11);
  Peer& bob = room.add("bob", 12);
  room.join_all();
  room.advance(500);
  REQUIRE(alice.host->phase() == Phase::Established);
  REQUIRE(bob.host->phase() == Phase::Established);
  const SelfInfo self{"alice", "alice@localhost"};

  // /who: bob is in the session with the key he really uses, trusted on first use.
  const WhoView who = make_who_view(*alice.host, self);
  CHECK(who.self_nick == "alice");
  CHECK(who.self_fingerprint == alice.host->fingerprint());
  REQUIRE(who.session.has_value());
  REQUIRE(who.others.size() == 1);
  CHECK(who.others[0].nick == "bob");
  CHECK(who.others[0].jid == "bob@localhost");
  CHECK(who.others[0].in_session);
  REQUIRE(who.others[0].fingerprint.has_value());
  CHECK(*who.others[0].fingerprint == bob.host->fingerprint());
  CHECK(who.others[0].fingerprint_source == "session");
  CHECK(who.others[0].trust == TrustLevel::Tofu);
  const nlohmann::json wj = who_to_json(who, nullptr, room.now);
  CHECK(wj["occupants"][0]["trust"] == "tofu");
  CHECK(wj["session"] == to_hex(view(*who.session)));

  // /fingerprint
  auto mine = find_fingerprint(*alice.host, self, "");
  REQUIRE(mine.ok());
  CHECK(mine->self);
  CHECK(mine->fingerprint == alice.host->fingerprint());
  CHECK(fingerprint_to_line(*mine) == "Your fingerprint (alice@localhost): " + alice.host->fingerprint().grouped());
  CHECK(find_fingerprint(*alice.host, self, "alice")->self);
  auto bobs = find_fingerprint(*alice.host, self, "bob");
  REQUIRE(bobs.ok());
  CHECK(bobs->fingerprint == bob.host->fingerprint());
  CHECK(fingerprint_to_line(*bobs) == "Fingerprint of bob <bob@localhost>: " + bob.host->fingerprint().grouped() +
                                          " (key in use in this session, trust: tofu)");
  const nlohmann::json fj = fingerprint_to_json(*bobs, "f", 1);
  CHECK(fj["event"] == "fingerprint");
  CHECK(fj["nick"] == "bob");
  CHECK(fj["fingerprint"] == bob.host->fingerprint().grouped());
  CHECK(fj["self"] == false);
  CHECK(fj["trust"] == "tofu");
  CHECK(fj["id"] == "f");
  CHECK(fingerprint_to_json(*mine, nullptr, 1)["trust"] == "self");
  auto nobody = find_fingerprint(*alice.host, self, "mallory");
  REQUIRE_FALSE(nobody.ok());
  CHECK(nobody.error().detail == "no occupant called 'mallory' (see /who)");

  REQUIRE(alice.trust->verify("bob@localhost", bob.host->fingerprint()).ok());
  CHECK(make_who_view(*alice.host, self).others[0].trust == TrustLevel::Verified);

  // /status: a message of ours, then bob's acknowledgement confirms it.
  room.absorb(alice, alice.host->send_text("hello bob", room.now, *alice.rng));
  room.run();
  StatusView status = make_status_view(*alice.host, "in_room");
  CHECK(status.state == "in_room");
  CHECK(status.phase == Phase::Established);
  CHECK(status.members == std::vector<std::string>{"alice", "bob"});
  CHECK(status.confirmations_needed == 1);
  REQUIRE(status.sent.size() == 1);
  CHECK(status.sent[0].seq == 1);
  room.advance(2000);  // bob's heartbeat acknowledges it
  status = make_status_view(*alice.host, "in_room");
  REQUIRE(status.sent.size() == 1);
  CHECK(status.sent[0].fully_confirmed);
  CHECK(status.sent[0].confirmed_by == std::set<std::string>{"bob"});
  CHECK(status_to_lines(status)[3] == "  #1: confirmed by everyone");

  // The notices alice saw render without surprises: her message, its confirmation.
  bool saw_sent = false;
  bool saw_confirmed = false;
  for (const Notice& n : alice.notices) {
    const auto l = notice_to_line(n, kClock, LineStyle{"alice", false});
    if (n.kind == "sent") {
      REQUIRE(l.has_value());
      CHECK(*l == "[12:34:56] <alice> hello bob  (#1)");
      saw_sent = true;
    }
    if (n.kind == "fully_confirmed" && n.nick == "alice") {
      REQUIRE(l.has_value());
      CHECK(*l == "[12:34:56] \xE2\x9C\x93 #1 confirmed by everyone");
      saw_confirmed = true;
    }
    CHECK(json_line(notice_to_json(n, room.now)).find('\n') == std::string::npos);
  }
  CHECK(saw_sent);
  CHECK(saw_confirmed);
  // And bob sees her message as a chat line.
  bool bob_saw = false;
  for (const Notice& n : bob.notices) {
    if (n.kind == "message") {
      CHECK(*notice_to_line(n, kClock, LineStyle{"bob", false}) == "[12:34:56] <alice> hello bob");
      CHECK(notice_to_json(n, 1)["message"] == "hello bob");
      bob_saw = true;
    }
  }
  CHECK(bob_saw);
}

TEST_CASE("chat render: who outside a session shows recorded keys", "[chat][render]") {
  DeterministicRng rng(21);
  TrustStore trust;
  Fingerprint carol_fp;
  carol_fp.bytes.fill(0xCC);
  REQUIRE(trust.record_first_use("carol@localhost", carol_fp).ok());
  auto id = IdentityKey::generate(rng);
  REQUIRE(id.ok());
  transport::RoomHost host(transport::RoomHostConfig{kRoom, "dave@localhost", {}, 0}, std::move(id).value(), &trust);
  // Still in the join burst: carol and erin are known, no session exists.
  (void)host.on_occupant_present(transport::Occupant{"carol", "carol@localhost"}, 1, rng);
  (void)host.on_occupant_present(transport::Occupant{"erin", "erin@localhost"}, 1, rng);
  const SelfInfo self{"dave", "dave@localhost"};
  const WhoView who = make_who_view(host, self);
  CHECK(who.self_nick == "dave");  // the nick we asked for, until the room confirms one
  CHECK_FALSE(who.session.has_value());
  REQUIRE(who.others.size() == 2);
  CHECK(who.others[0].nick == "carol");
  CHECK_FALSE(who.others[0].in_session);
  CHECK(who.others[0].fingerprint == carol_fp);
  CHECK(who.others[0].fingerprint_source == "recorded");
  CHECK(who.others[0].trust == TrustLevel::Tofu);
  CHECK_FALSE(who.others[1].fingerprint.has_value());
  CHECK(who.others[1].trust == TrustLevel::Unknown);
  CHECK(who_to_lines(who)[2].find("(recorded)") != std::string::npos);

  auto carol = find_fingerprint(host, self, "carol");
  REQUIRE(carol.ok());
  CHECK(carol->source == "recorded");
  CHECK(fingerprint_to_line(*carol).find("(recorded key, trust: tofu)") != std::string::npos);
  auto erin = find_fingerprint(host, self, "erin");
  REQUIRE_FALSE(erin.ok());
  CHECK(erin.error().detail.find("no key known for erin") != std::string::npos);

  const StatusView status = make_status_view(host, "joining");
  CHECK(status.members.empty());
  CHECK(status.confirmations_needed == 0);
  CHECK_FALSE(status.session.has_value());
}

TEST_CASE("render: one-time-pad lines are marked, with the recipients of a partial send", "[chat][render][otp]") {
  Notice n = make_notice("otp_message", Severity::Info, "pads only", "bob");
  n.event = event(EventKind::MessageReceived, "bob");
  n.event->text = "pads only";
  CHECK(line(n) == "[12:34:56] <bob> [OTP] pads only");
  n.event->nicks = {"carol", "you"};
  CHECK(line(n) == "[12:34:56] <bob> [OTP to carol, you] pads only");
  Notice sent = make_notice("otp_sent", Severity::Debug, "Sent #3", "alice");
  sent.event = event(EventKind::MessageReceived, "alice");
  sent.event->text = "mine\x1b[2J";
  sent.event->seq = 3;
  CHECK(line(sent) == "[12:34:56] <alice> [OTP] mine?[2J  (#3)");
}
