// SPDX-License-Identifier: MIT
// PluginCore without Profanity: a fake MUC routes what each core sends, and a fake client
// calls the hooks the way Profanity 0.13 does (send hook, then its own stanza through the
// message-stanza hook; receive hook, then the display hook for stanzas it keeps).
// OTP mode: each member's pads in a real pad store behind an in-process pad device.
#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mpotr/otp/pad_store.h"
#include "mpotr/transport/stanza.h"
#include "support/local_pad_device.h"
#include "plugin/core/plugin_core.h"

using namespace mpotr;
using namespace mpotr::plugin;

namespace {

constexpr const char* kRoom = "room@conference.localhost";

struct Line {
  std::string room;
  Tone tone;
  std::string text;
  bool chat = false;  // a chat line the client displayed from a stanza (after the display hook)
};

class FakeMuc;

class FakeUi final : public Ui {
 public:
  FakeUi(FakeMuc& muc, std::string nick) : m_muc(muc), m_nick(std::move(nick)) {}
  bool send_stanza(const std::string& xml) override;
  bool room_line(const std::string& room, Tone tone, const std::string& text) override {
    lines.push_back({room, tone, text});
    return true;
  }
  void console_line(Tone tone, const std::string& text) override { lines.push_back({"", tone, text}); }
  void room_title(const std::string& room, const std::string& text) override { titles[room] = text; }
  void room_encrypted_char(const std::string& room, bool encrypted) override { chars[room] = encrypted; }
  void completions(const std::string& key, const std::vector<std::string>& items) override { completion[key] = items; }
  void log(Tone, const std::string&) override {}

  bool shows(const std::string& needle) const {
    return std::any_of(lines.begin(), lines.end(), [&](const Line& l) { return l.text.find(needle) != std::string::npos; });
  }
  // Exactly this line, with this tone, shown by the plugin (not a chat line).
  bool shows_line(Tone tone, const std::string& text) const {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const Line& l) { return !l.chat && l.tone == tone && l.text == text; });
  }
  // Exactly this chat line, as the client displays a message stanza.
  bool shows_chat(const std::string& text) const {
    return std::any_of(lines.begin(), lines.end(), [&](const Line& l) { return l.chat && l.text == text; });
  }
  std::size_t chat_lines() const {
    return static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), [](const Line& l) { return l.chat; }));
  }

  std::vector<Line> lines;  // themed lines and chat lines ("nick: text", tone Info)
  std::map<std::string, std::string> titles;
  std::map<std::string, bool> chars;
  std::map<std::string, std::vector<std::string>> completion;

 private:
  FakeMuc& m_muc;
  std::string m_nick;
};

struct Client {
  std::string nick;
  std::string full_jid;
  std::unique_ptr<FakeUi> ui;
  std::unique_ptr<PluginCore> core;
  bool in_room = false;
  bool marker = false;
  bool marker_out = false;  // the marker says status='out' (spec X-13)
};

// One room on one server; every stanza that crosses it is kept in `wire`.
class FakeMuc {
 public:
  explicit FakeMuc(std::filesystem::path dir) : m_dir(std::move(dir)) {}

  Client& add(const std::string& nick, std::uint64_t seed) {
    auto c = std::make_unique<Client>();
    c->nick = nick;
    c->full_jid = nick + "@localhost/prof";
    c->ui = std::make_unique<FakeUi>(*this, nick);
    c->core = std::make_unique<PluginCore>(*c->ui, PluginPaths{(m_dir / nick).string()},
                                           std::make_unique<DeterministicRng>(seed));
    // Whatever the environment says, no pad device listens unless a test provides one.
    c->core->on_command({"otp", "device", no_pad_socket()}, std::nullopt, now);
    c->core->on_connect(c->full_jid, now);
    m_clients.push_back(std::move(c));
    return *m_clients.back();
  }
  Client& get(const std::string& nick) {
    for (auto& c : m_clients) {
      if (c->nick == nick) return *c;
    }
    throw std::logic_error("no client " + nick);
  }

  // What Profanity does for /join: its join presence passes the presence-send hook.
  void join(Client& c) {
    const std::string xml = "<presence to=\"" + std::string(kRoom) + "/" + c.nick +
                            "\"><x xmlns=\"http://jabber.org/protocol/muc\"/></presence>";
    auto repl = c.core->on_presence_stanza_send(xml);
    submit(c.nick, repl ? *repl : xml);
    run();
  }
  void command(Client& c, std::vector<std::string> args) {
    c.core->on_command(args, std::string(kRoom), now, c.nick);
    run();
  }
  // What Profanity does when the user types a line in the room window. Returns whether the
  // send hook let it through; `cancel_sends_original` mimics Profanity ≥ 0.15.
  bool say(Client& c, const std::string& text, bool cancel_sends_original = false) {
    const bool ok = c.core->on_room_message_send(kRoom, text, now) == SendVerdict::Unchanged;
    if (ok || cancel_sends_original) {
      const std::string xml = "<message id=\"prof-" + std::to_string(++m_ids) + "\" to=\"" + kRoom +
                              "\" type=\"groupchat\"><body>" + text + "</body></message>";
      auto repl = c.core->on_message_stanza_send(xml);
      const std::string out = repl ? *repl : xml;
      if (out.find_first_not_of(" \t\r\n") != std::string::npos) submit(c.nick, out);
    }
    run();
    return ok;
  }
  void submit(const std::string& from_nick, const std::string& xml) { m_queue.push_back({from_nick, xml}); }
  void run() {
    for (int steps = 0; !m_queue.empty() && steps < 100000; ++steps) {
      auto [from, xml] = m_queue.front();
      m_queue.pop_front();
      route(get(from), xml);
    }
  }
  void advance(TimeMs ms) {
    for (TimeMs t = 0; t < ms; t += 1000) {
      now += 1000;
      for (auto& c : m_clients) c->core->on_timer(now);
      run();
    }
  }
  std::string no_pad_socket() const { return (m_dir / "no-padd.sock").string(); }
  bool wire_contains(const std::string& needle) const {
    return std::any_of(wire.begin(), wire.end(), [&](const std::string& s) { return s.find(needle) != std::string::npos; });
  }

  TimeMs now = 10'000;
  std::vector<std::string> wire;

 private:
  std::string presence_of(const Client& c, bool self, bool available) const {
    std::string x = "<presence from=\"" + std::string(kRoom) + "/" + c.nick + "\"" +
                    (available ? "" : " type=\"unavailable\"") +
                    "><x xmlns=\"http://jabber.org/protocol/muc#user\"><item role=\"participant\" jid=\"" + c.full_jid + "\"/>";
    if (self) x += "<status code=\"100\"/><status code=\"110\"/>";
    x += "</x>";
    if (available && c.marker) x += c.marker_out ? "<mpotr xmlns=\"urn:mpotr:2\" status=\"out\"/>" : "<mpotr xmlns=\"urn:mpotr:2\"/>";
    return x + "</presence>";
  }
  void deliver_presence(Client& to, const std::string& xml) { to.core->on_presence_stanza_receive(xml, now); }
  void deliver_message(Client& to, const std::string& xml, const std::string& sender_nick, bool groupchat) {
    const bool keep = to.core->on_message_stanza_receive(xml, now);
    if (!keep || !groupchat || sender_nick == to.nick) return;  // Profanity hides its own echo
    const auto b = xml.find("<body>");
    if (b == std::string::npos) return;
    const std::string body = xml.substr(b + 6, xml.find("</body>") - b - 6);
    auto shown = to.core->on_room_message_display(kRoom, sender_nick, body);
    to.ui->lines.push_back({kRoom, Tone::Info, sender_nick + ": " + (shown ? *shown : body), true});
  }
  void route(Client& from, const std::string& xml) {
    wire.push_back(xml);
    XmlContext ctx;
    auto s = ctx.parse(xml);
    REQUIRE(s);
    const std::string name = xmpp_stanza_get_name(s.get());
    const std::string to = transport::stanza_attribute(s.get(), "to");
    const std::string type = transport::stanza_attribute(s.get(), "type");
    if (name == "presence") {
      const bool available = type != "unavailable";
      const bool joining = !from.in_room && available;
      const xmpp_stanza_t* marker = transport::stanza_child(s.get(), "mpotr", "urn:mpotr:2");
      from.marker = marker != nullptr;
      from.marker_out = marker != nullptr && transport::stanza_attribute(marker, "status") == "out";
      if (joining) {
        for (auto& c : m_clients) {
          if (c->in_room) deliver_presence(from, presence_of(*c, false, true));
        }
      }
      from.in_room = available;
      for (auto& c : m_clients) {
        if (c->in_room || c.get() == &from) deliver_presence(*c, presence_of(from, c.get() == &from, available));
      }
      return;
    }
    if (type == "groupchat") {
      std::string out = xml;
      out.insert(out.find("<message") + 8, " from=\"" + std::string(kRoom) + "/" + from.nick + "\"");
      for (auto& c : m_clients) {
        if (c->in_room) deliver_message(*c, out, from.nick, true);
      }
      return;
    }
    if (type == "chat") {
      std::string out = xml;
      out.insert(out.find("<message") + 8, " from=\"" + from.full_jid + "\"");
      for (auto& c : m_clients) {
        if (c->full_jid == to) deliver_message(*c, out, from.nick, false);
      }
    }
  }

  std::filesystem::path m_dir;
  std::vector<std::unique_ptr<Client>> m_clients;
  std::deque<std::pair<std::string, std::string>> m_queue;
  int m_ids = 0;
};

bool FakeUi::send_stanza(const std::string& xml) {
  m_muc.submit(m_nick, xml);
  return true;
}

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/mpotr-plugin-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path path;
};

void secure(FakeMuc& muc, const std::vector<std::string>& nicks, const std::function<void(Client&)>& setup = {}) {
  std::uint64_t seed = 1;
  for (const auto& n : nicks) {
    Client& c = muc.add(n, seed++);
    if (setup) setup(c);
    muc.join(c);
  }
  for (const auto& n : nicks) muc.command(muc.get(n), {"start"});
  muc.advance(2000);
  for (const auto& n : nicks) REQUIRE(muc.get(n).core->host(kRoom)->phase() == Phase::Established);
}

using mpotr::test::LocalPadDevice;

std::string jid_of(const std::string& nick) { return nick + "@localhost"; }

// A 1 MiB pad (512 KiB each way) between each pair, ids the bare JIDs, and each member's
// device over its own pad directory.
class Pads {
 public:
  Pads(std::filesystem::path root, const std::vector<std::pair<std::string, std::string>>& pairs) : m_root(std::move(root)) {
    SystemRng rng;
    otp::RngByteSource src(rng);
    for (const auto& [a, b] : pairs) {
      REQUIRE(otp::generate_pad(dir(a), jid_of(a), dir(b), jid_of(b), 1 << 20, src).ok());
    }
    for (const auto& [a, b] : pairs) {
      for (const auto& n : {a, b}) {
        if (!m_devices.contains(n)) m_devices[n] = std::make_unique<LocalPadDevice>(dir(n));
      }
    }
  }
  LocalPadDevice& device(const std::string& nick) { return *m_devices.at(nick); }
  // For secure(): the member uses its pads (if it has any).
  std::function<void(Client&)> attach() {
    return [this](Client& c) {
      auto it = m_devices.find(c.nick);
      if (it != m_devices.end()) c.core->use_pad_device_for_tests(it->second.get());
    };
  }

 private:
  std::string dir(const std::string& nick) const {
    const auto p = m_root / nick;
    std::filesystem::create_directories(p);
    std::filesystem::permissions(p, std::filesystem::perms::owner_all);
    return p.string();
  }
  std::filesystem::path m_root;
  std::map<std::string, std::unique_ptr<LocalPadDevice>> m_devices;
};

}  // namespace

TEST_CASE("plugin: secured members read each other and the wire carries no text", "[plugin]") {
  TempDir dir;
  FakeMuc muc(dir.path);
  secure(muc, {"alice", "bob", "carol"});
  Client& alice = muc.get("alice");
  CHECK(alice.ui->titles[kRoom] == "mpOTR");
  CHECK(alice.ui->chars[kRoom]);
  CHECK(muc.say(alice, "meet at noon"));
  for (const char* n : {"bob", "carol"}) CHECK(muc.get(n).ui->shows("alice: meet at noon"));
  CHECK_FALSE(alice.ui->shows("alice: meet at noon"));  // Profanity shows our own line itself
  CHECK_FALSE(muc.wire_contains("meet at noon"));
  CHECK(muc.wire_contains(transport::kFallbackBody));
  muc.advance(2 * kDefaultHeartbeatMs);
  CHECK(alice.ui->shows("delivered to everyone: \"meet at noon\""));
}

TEST_CASE("plugin: a refused line never reaches the wire, whatever a cancelled send does", "[plugin]") {
  TempDir dir;
  FakeMuc muc(dir.path);
  Client& alice = muc.add("alice", 1);
  Client& bob = muc.add("bob", 2);
  muc.join(alice);
  muc.join(bob);
  muc.command(alice, {"start"});  // bob never starts: no session
  CHECK(alice.ui->titles[kRoom] == "mpOTR setup");
  CHECK_FALSE(muc.say(alice, "too early"));
  CHECK(alice.ui->shows("Not sent: the session is not secure yet"));
  CHECK_FALSE(muc.say(alice, "too early again", /*cancel_sends_original=*/true));
  CHECK_FALSE(muc.wire_contains("too early"));
  CHECK_FALSE(bob.ui->shows("too early"));

  // Private messages through a secured room are not sent either.
  auto pm = alice.core->on_message_stanza_send(
      "<message to=\"room@conference.localhost/bob\" type=\"chat\"><body>psst</body></message>");
  REQUIRE(pm);
  CHECK(pm->find_first_not_of(' ') == std::string::npos);
  CHECK(alice.ui->shows("private messages inside a secured room are not encrypted"));
  // A stanza the core cannot parse is not sent while a room is secured (fail closed)...
  auto broken = alice.core->on_message_stanza_send("<message to=");
  REQUIRE(broken);
  CHECK(*broken == " ");
  // ...while chat states (no body) and other destinations pass unchanged.
  CHECK_FALSE(alice.core->on_message_stanza_send(
      "<message to=\"room@conference.localhost\" type=\"groupchat\"><active xmlns=\"http://jabber.org/protocol/chatstates\"/></message>"));
  CHECK_FALSE(alice.core->on_message_stanza_send("<message to=\"dave@localhost\" type=\"chat\"><body>hi</body></message>"));
  // Unsecured rooms are untouched.
  CHECK_FALSE(bob.core->on_message_stanza_send("<message to=\"room@conference.localhost\" type=\"groupchat\"><body>x</body></message>"));
  CHECK(bob.core->on_room_message_send(kRoom, "x", muc.now) == SendVerdict::Unchanged);
}

TEST_CASE("plugin: presence carries the marker only in secured rooms, history payloads are dropped", "[plugin]") {
  TempDir dir;
  FakeMuc muc(dir.path);
  secure(muc, {"alice", "bob"});
  Client& alice = muc.get("alice");
  auto away = alice.core->on_presence_stanza_send("<presence to=\"room@conference.localhost/alice\"><show>away</show></presence>");
  REQUIRE(away);
  CHECK(away->find("<mpotr xmlns=\"urn:mpotr:2\"/>") != std::string::npos);
  CHECK_FALSE(alice.core->on_presence_stanza_send("<presence to=\"other@conference.localhost/alice\"><show>away</show></presence>"));
  const std::string delayed = "<message from=\"room@conference.localhost/bob\" type=\"groupchat\"><mpotr xmlns=\"urn:mpotr:2\">AAAA</mpotr>"
                              "<delay xmlns=\"urn:xmpp:delay\" stamp=\"2026-01-01T00:00:00Z\"/><body>x</body></message>";
  CHECK_FALSE(alice.core->on_message_stanza_receive(delayed, muc.now));
  // Plaintext from a member of a secured room is shown, flagged.
  Client& bob = muc.get("bob");
  const std::string plain = "<message from=\"room@conference.localhost/bob\" type=\"groupchat\"><body>hello?</body></message>";
  CHECK(alice.core->on_message_stanza_receive(plain, muc.now));
  CHECK(*alice.core->on_room_message_display(kRoom, "bob", "hello?") == "[NOT ENCRYPTED] hello?");
  (void)bob;
}

TEST_CASE("plugin: /mpotr end compares transcripts, publishes keys and leaves the room in clear", "[plugin]") {
  TempDir dir;
  FakeMuc muc(dir.path);
  secure(muc, {"alice", "bob", "carol"});
  Client& carol = muc.get("carol");
  muc.command(carol, {"end"});
  muc.advance(5000);
  CHECK(carol.ui->shows("mpOTR ended (transcripts compared, keys published)"));
  CHECK_FALSE(carol.core->secured(kRoom));
  CHECK(carol.ui->titles[kRoom].empty());
  for (const char* n : {"alice", "bob"}) {
    const auto s = muc.get(n).core->host(kRoom)->session();
    REQUIRE(s);
    CHECK(s->members.size() == 2);
  }
  CHECK(muc.say(muc.get("alice"), "just us"));
  CHECK(muc.get("bob").ui->shows("alice: just us"));
  CHECK_FALSE(carol.ui->shows("alice: just us"));
}

TEST_CASE("plugin: commands are checked and trust decisions are saved", "[plugin]") {
  TempDir dir;
  FakeMuc muc(dir.path);
  secure(muc, {"alice", "bob"});
  Client& alice = muc.get("alice");
  muc.command(alice, {"frobnicate"});
  CHECK(alice.ui->shows("unknown subcommand 'frobnicate'"));
  muc.command(alice, {"trust"});
  CHECK(alice.ui->shows("wrong number of arguments for /mpotr trust"));
  muc.command(alice, {"trust", "nobody"});
  CHECK(alice.ui->shows("no member 'nobody' here"));
  muc.command(alice, {"trust", "bob"});
  CHECK(alice.ui->shows("marked bob@localhost's key"));
  CHECK(alice.ui->titles[kRoom] == "mpOTR verified");
  std::ifstream trust(dir.path / "alice" / "alice_at_localhost" / "trust.json");
  std::string json((std::istreambuf_iterator<char>(trust)), std::istreambuf_iterator<char>());
  CHECK(json.find("\"verified\"") != std::string::npos);
  muc.command(alice, {"status"});
  CHECK(alice.ui->shows("[verified]"));
  muc.command(alice, {"untrust", "bob@localhost"});
  CHECK(alice.ui->titles[kRoom] == "mpOTR");
  CHECK(alice.ui->completion["/mpotr verify"] == std::vector<std::string>{"bob"});
}

TEST_CASE("plugin: /mpotr block leaves the blocker out with the reason and the room goes on", "[plugin]") {
  TempDir dir;
  FakeMuc muc(dir.path);
  secure(muc, {"alice", "bob", "carol"});
  Client& alice = muc.get("alice");
  Client& bob = muc.get("bob");
  Client& carol = muc.get("carol");
  muc.command(alice, {"block", "carol"});
  muc.advance(3000);
  // alice stays out and is told why; bob and carol secure their room without her at once.
  CHECK(alice.core->host(kRoom)->phase() == Phase::Out);
  CHECK(alice.ui->shows("Blocked carol (carol@localhost) and key "));
  CHECK(alice.ui->shows("You blocked carol: you stay out of the session while carol is in it"));
  CHECK(alice.marker_out);
  for (Client* c : {&bob, &carol}) {
    REQUIRE(c->core->host(kRoom)->phase() == Phase::Established);
    CHECK(c->core->host(kRoom)->session()->members.size() == 2);
    CHECK(c->ui->shows("alice stays out of the session"));
  }
  CHECK(muc.say(bob, "without alice"));
  CHECK(carol.ui->shows("bob: without alice"));
  CHECK_FALSE(muc.say(alice, "from outside"));  // nothing alice types while out is sent
  CHECK_FALSE(muc.wire_contains("from outside"));
  // The key is blocked under any JID, and the choice is saved.
  std::ifstream trust(dir.path / "alice" / "alice_at_localhost" / "trust.json");
  std::string json((std::istreambuf_iterator<char>(trust)), std::istreambuf_iterator<char>());
  CHECK(json.find("\"blocked_fingerprints\"") != std::string::npos);
}

TEST_CASE("plugin: /mpotr policy verified admits verified members only, SMP while out re-forms the session",
          "[plugin][smp]") {
  TempDir dir;
  FakeMuc muc(dir.path);
  secure(muc, {"alice", "bob"});
  Client& alice = muc.get("alice");
  Client& bob = muc.get("bob");
  muc.command(alice, {"policy"});
  CHECK(alice.ui->shows("this room admits every member whose key is not blocked or changed"));
  muc.command(alice, {"policy", "sometimes"});
  CHECK(alice.ui->shows("/mpotr policy takes 'verified'"));
  muc.command(alice, {"policy", "verified"});
  muc.advance(3000);
  // bob is not verified: alice stays out and is told how to let him in.
  CHECK(alice.core->host(kRoom)->phase() == Phase::Out);
  CHECK(alice.ui->shows("bob is not verified and this room admits verified members only"));
  CHECK(bob.ui->shows("alice stays out of the session"));
  // The policy is kept across runs.
  std::ifstream kept(dir.path / "alice" / "alice_at_localhost" / "verified-only-rooms");
  std::string rooms((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>());
  CHECK(rooms == std::string(kRoom) + "\n");
  // SMP works while alice is out; once bob is verified the session re-forms with both.
  muc.command(alice, {"verify", "bob"});
  muc.command(alice, {"secret", "bob", "the blue cafe"});
  muc.command(bob, {"secret", "alice", "the blue cafe"});
  CHECK(alice.ui->shows("verified bob (bob@localhost)"));
  muc.advance(3000);
  CHECK(alice.core->host(kRoom)->phase() == Phase::Established);
  CHECK(bob.core->host(kRoom)->phase() == Phase::Established);
  CHECK_FALSE(alice.marker_out);
  CHECK(muc.say(alice, "verified now"));
  CHECK(bob.ui->shows("alice: verified now"));
  muc.command(alice, {"policy", "trusted"});
  CHECK(alice.ui->shows("This room now admits every member whose key is not blocked or changed"));
  std::ifstream cleared(dir.path / "alice" / "alice_at_localhost" / "verified-only-rooms");
  std::string none((std::istreambuf_iterator<char>(cleared)), std::istreambuf_iterator<char>());
  CHECK(none.empty());
}

TEST_CASE("plugin: an unreadable room policy file is reported and never widens silently", "[plugin]") {
  TempDir dir;
  const auto account = dir.path / "alice" / "alice_at_localhost";
  std::filesystem::create_directories(account);
  {
    std::ofstream bad(account / "verified-only-rooms");
    bad << "not a jid\n";
  }
  std::filesystem::permissions(account / "verified-only-rooms",
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  FakeMuc muc(dir.path);
  Client& alice = muc.add("alice", 1);
  CHECK(alice.ui->shows("cannot read the room policies"));
  CHECK(alice.ui->shows("line 1 is not a room's bare JID"));
  // The file is left for the user to fix.
  std::ifstream kept(account / "verified-only-rooms");
  std::string text((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>());
  CHECK(text == "not a jid\n");
}

TEST_CASE("plugin: SMP verifies with the same secret and fails with another", "[plugin][smp]") {
  TempDir dir;
  FakeMuc muc(dir.path);
  secure(muc, {"alice", "bob"});
  Client& alice = muc.get("alice");
  Client& bob = muc.get("bob");
  muc.command(alice, {"verify", "bob", "where did we meet?"});
  muc.command(alice, {"secret", "bob", "the blue cafe"});
  CHECK(bob.ui->shows("alice wants to verify your keys and asks: \"where did we meet?\""));
  muc.command(bob, {"secret", "alice", "the blue cafe"});
  CHECK(alice.ui->shows("verified bob (bob@localhost)"));
  CHECK(bob.ui->shows("verified alice (alice@localhost)"));
  CHECK(alice.ui->titles[kRoom] == "mpOTR verified");
  CHECK_FALSE(muc.wire_contains("the blue cafe"));

  muc.command(bob, {"verify", "alice"});
  muc.command(bob, {"secret", "alice", "green door"});
  muc.command(alice, {"secret", "bob", "red door"});
  CHECK(alice.ui->shows("verification of bob FAILED"));
  CHECK(bob.ui->shows("verification of alice FAILED"));
  muc.command(alice, {"secret", "bob", "anything"});
  CHECK(alice.ui->shows("no verification with bob is waiting"));
}

TEST_CASE("plugin: tampered and replayed payloads become alerts in the room, never chat lines", "[plugin]") {
  TempDir dir;
  FakeMuc muc(dir.path);
  secure(muc, {"alice", "bob"});
  Client& bob = muc.get("bob");
  REQUIRE(muc.say(muc.get("alice"), "original"));
  REQUIRE(bob.ui->shows("alice: original"));
  std::string sent;
  for (const auto& s : muc.wire) {
    if (s.find(transport::kFallbackBody) != std::string::npos) sent = s;
  }
  REQUIRE(!sent.empty());
  std::string delivered = sent;
  delivered.insert(delivered.find("<message") + 8, " from=\"room@conference.localhost/alice\"");
  const auto alerts = [&] {
    return std::count_if(bob.ui->lines.begin(), bob.ui->lines.end(), [](const Line& l) { return l.tone == Tone::Alert; });
  };
  const auto lines_before = bob.ui->lines.size();

  // Replayed as is: dropped, with an alert.
  CHECK_FALSE(bob.core->on_message_stanza_receive(delivered, muc.now));
  CHECK(alerts() == 1);
  CHECK(bob.ui->lines.back().text.find("replayed") != std::string::npos);

  // One base64 digit changed inside the payload: dropped, with an alert.
  std::string tampered = delivered;
  const auto at = tampered.find("urn:mpotr:2\">") + 40;
  tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
  CHECK_FALSE(bob.core->on_message_stanza_receive(tampered, muc.now));
  CHECK(alerts() == 2);
  for (auto i = lines_before; i < bob.ui->lines.size(); ++i) CHECK(bob.ui->lines[i].text.rfind("alice: ", 0) != 0);
  // The display hook has nothing to replace for them.
  CHECK_FALSE(bob.core->on_room_message_display(kRoom, "alice", transport::kFallbackBody));
}

// ---------------------------------------------------------------------------------------------
// One-time-pad mode (spec/otp.md §10)

TEST_CASE("plugin: /mpotr otp arguments split the way Profanity hands them over", "[plugin][otp]") {
  // Profanity passes at most three arguments, the last one holding the rest of the line.
  for (const auto& args : {std::vector<std::string>{"otp", "alias", "core bob  carol@localhost"},
                           std::vector<std::string>{"otp", "alias", "core", "bob", "carol@localhost"}}) {
    auto parsed = parse_command(args);
    REQUIRE(parsed.ok());
    const auto& c = std::get<cmd::Otp>(parsed.value());
    CHECK(c.action == cmd::Otp::Action::Alias);
    CHECK(c.name == "core");
    CHECK(c.members == std::vector<std::string>{"bob", "carol@localhost"});
  }
  auto to = parse_command({"otp", "to", "core  see  you at noon "});
  REQUIRE(to.ok());
  CHECK(std::get<cmd::Otp>(to.value()).action == cmd::Otp::Action::To);
  CHECK(std::get<cmd::Otp>(to.value()).name == "core");
  CHECK(std::get<cmd::Otp>(to.value()).text == "see  you at noon");
  auto device = parse_command({"otp", "device", "/run/user/1000/my pads/padd.sock"});
  REQUIRE(device.ok());
  CHECK(std::get<cmd::Otp>(device.value()).path == "/run/user/1000/my pads/padd.sock");
  CHECK(std::get<cmd::Otp>(parse_command({"otp", "on"}).value()).action == cmd::Otp::Action::On);
  CHECK(std::get<cmd::Otp>(parse_command({"otp", "unalias", " core "}).value()).name == "core");
  CHECK(parse_command({"otp", "device", "/" + std::string(200, 'x')}).error().detail.find("too long") != std::string::npos);
  CHECK(otp_actions() == std::vector<std::string>{"on", "off", "status", "to", "alias", "unalias", "aliases", "device"});
}

TEST_CASE("plugin: in OTP mode lines go out sealed with the pads and arrive marked [OTP]", "[plugin][otp]") {
  TempDir dir;
  Pads pads(dir.path / "pads", {{"alice", "bob"}, {"alice", "carol"}, {"bob", "carol"}});
  FakeMuc muc(dir.path);
  secure(muc, {"alice", "bob", "carol"}, pads.attach());
  Client& alice = muc.get("alice");
  Client& bob = muc.get("bob");
  Client& carol = muc.get("carol");

  muc.command(alice, {"otp", "on"});
  CHECK(alice.core->otp_enabled(kRoom));
  CHECK_FALSE(bob.core->otp_enabled(kRoom));
  CHECK(alice.ui->shows_line(Tone::Info, "mpOTR: OTP mode on: every line is now encrypted with the one-time pads shared with each member"));
  CHECK(alice.ui->shows("mpOTR: Pad with bob (bob@localhost): 512 KiB left, about "));
  CHECK(alice.ui->shows("mpOTR: Pad with carol (carol@localhost): 512 KiB left, about "));

  const auto to_bob = pads.device("alice").send_remaining(jid_of("bob"));
  CHECK(muc.say(alice, "pads only, please"));
  // Through the display hook, like any mpOTR line, marked.
  CHECK(bob.ui->shows_chat("alice: [OTP] pads only, please"));
  CHECK(carol.ui->shows_chat("alice: [OTP] pads only, please"));
  CHECK(pads.device("bob").unpackaged == 1);
  CHECK(pads.device("carol").unpackaged == 1);
  // Neither the text nor the bundle is on the wire: the bundle travels inside the mpOTR payload.
  CHECK_FALSE(muc.wire_contains("pads only"));
  CHECK_FALSE(muc.wire_contains("mpOTR-OTP1"));
  CHECK(pads.device("alice").packaged == 1);
  CHECK(pads.device("alice").send_remaining(jid_of("bob")) < to_bob);
  CHECK_FALSE(alice.ui->shows("pads only"));  // Profanity shows the typed line itself
  muc.advance(2 * kDefaultHeartbeatMs);
  CHECK(alice.ui->shows_line(Tone::Good, "✓ delivered to everyone: \"pads only, please\""));

  // Receiving does not need OTP mode on; bob's own lines stay plain mpOTR.
  CHECK(muc.say(bob, "plain reply"));
  CHECK(alice.ui->shows_chat("bob: plain reply"));
  CHECK(carol.ui->shows_chat("bob: plain reply"));
  CHECK(pads.device("bob").packaged == 0);

  muc.command(alice, {"otp", "status"});
  CHECK(alice.ui->shows_line(Tone::Info, "mpOTR: OTP mode is on in this room; pad device socket " + muc.no_pad_socket()));

  muc.command(alice, {"otp", "off"});
  CHECK_FALSE(alice.core->otp_enabled(kRoom));
  CHECK(alice.ui->shows_line(Tone::Info, "mpOTR: OTP mode off: lines are protected by mpOTR only."));
  CHECK(muc.say(alice, "back to mpOTR"));
  CHECK(bob.ui->shows_chat("alice: back to mpOTR"));
  CHECK(carol.ui->shows_chat("alice: back to mpOTR"));
  CHECK(pads.device("alice").packaged == 1);
  CHECK_FALSE(muc.wire_contains("back to mpOTR"));
}

TEST_CASE("plugin: an OTP line is refused when a member has no pad, an alias reaches its members only", "[plugin][otp]") {
  TempDir dir;
  Pads pads(dir.path / "pads", {{"alice", "bob"}, {"bob", "dave"}});
  FakeMuc muc(dir.path);
  secure(muc, {"alice", "bob", "dave"}, pads.attach());
  Client& alice = muc.get("alice");
  Client& bob = muc.get("bob");
  Client& dave = muc.get("dave");

  muc.command(alice, {"otp", "on"});
  CHECK(alice.core->otp_enabled(kRoom));
  CHECK(alice.ui->shows_line(Tone::Warning, "mpOTR: No pad shared with dave (dave@localhost): OTP messages cannot be sent while dave is in the session"));
  CHECK(alice.ui->shows_line(Tone::Warning, "mpOTR: OTP mode on: every line is now encrypted with the one-time pads shared with each member. Lines are refused until every member has a usable pad"));

  const auto wire_before = muc.wire.size();
  const auto to_bob = pads.device("alice").send_remaining(jid_of("bob"));
  CHECK_FALSE(muc.say(alice, "secret plan"));
  CHECK(alice.ui->shows_line(Tone::Warning, "mpOTR: OTP line not sent: no pad shared with dave (dave@localhost): nothing was sent (/mpotr otp off sends with mpOTR only)"));
  // A client where a cancelled send still sends the original (Profanity >= 0.15): suppressed.
  CHECK_FALSE(muc.say(alice, "secret plan", /*cancel_sends_original=*/true));
  CHECK(muc.wire.size() == wire_before);
  CHECK(pads.device("alice").packaged == 0);
  CHECK(pads.device("alice").send_remaining(jid_of("bob")) == to_bob);
  CHECK_FALSE(bob.ui->shows("secret plan"));
  CHECK_FALSE(dave.ui->shows("secret plan"));

  // An alias of those who have a pad works, OTP mode or not.
  muc.command(alice, {"otp", "alias", "b bob"});
  CHECK(alice.ui->shows_line(Tone::Info, "mpOTR: alias b: bob@localhost. /mpotr otp to b <text> sends an OTP line to them only."));
  CHECK(alice.ui->completion["/mpotr otp to"] == std::vector<std::string>{"b"});
  muc.command(alice, {"otp", "aliases"});
  CHECK(alice.ui->shows_line(Tone::Info, "mpOTR: alias b: bob@localhost"));
  muc.command(alice, {"otp", "off"});
  const auto dave_chat = dave.ui->chat_lines();
  muc.command(alice, {"otp", "to", "b only for  bob"});
  CHECK(bob.ui->shows_chat("alice: [OTP to you] only for  bob"));
  CHECK(alice.ui->shows_line(Tone::Info, "alice: [OTP to bob] only for  bob"));
  CHECK(dave.ui->shows_line(Tone::Info, "mpOTR: alice sent an OTP message to bob (not to you)"));
  CHECK_FALSE(dave.ui->shows("only for"));
  CHECK(dave.ui->chat_lines() == dave_chat);
  CHECK_FALSE(muc.wire_contains("only for"));
  CHECK(pads.device("alice").packaged == 1);
  CHECK(pads.device("dave").unpackaged == 0);

  muc.command(alice, {"otp", "unalias", "b"});
  CHECK(alice.ui->shows_line(Tone::Info, "mpOTR: alias b forgotten."));
  CHECK(alice.ui->completion["/mpotr otp to"].empty());
  muc.command(alice, {"otp", "to", "b again"});
  CHECK(alice.ui->shows_line(Tone::Warning, "mpOTR: OTP line not sent: no alias 'b': nothing was sent"));
  CHECK(pads.device("alice").packaged == 1);
}

TEST_CASE("plugin: bad /mpotr otp arguments are refused and change nothing", "[plugin][otp]") {
  TempDir dir;
  Pads pads(dir.path / "pads", {{"alice", "bob"}});
  FakeMuc muc(dir.path);
  secure(muc, {"alice", "bob"}, pads.attach());
  Client& alice = muc.get("alice");
  const std::string usage = std::string("usage: /mpotr otp on|off|status|aliases, /mpotr otp device <path>, ") +
                            "/mpotr otp alias <name> <nick|jid>..., /mpotr otp unalias <name>, /mpotr otp to <name> <text>";
  CHECK(kOtpUsage == usage);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"otp"}, "mpOTR: " + usage},
      {{"otp", "frob"}, "mpOTR: unknown /mpotr otp action 'frob'; " + usage},
      {{"otp", "on", "now"}, "mpOTR: /mpotr otp on takes no arguments; " + usage},
      {{"otp", "status", "x"}, "mpOTR: /mpotr otp status takes no arguments; " + usage},
      {{"otp", "alias", "x"}, "mpOTR: /mpotr otp alias needs a name and at least one nick or JID; " + usage},
      {{"otp", "unalias"}, "mpOTR: /mpotr otp unalias takes one alias name; " + usage},
      {{"otp", "unalias", "a b"}, "mpOTR: /mpotr otp unalias takes one alias name; " + usage},
      {{"otp", "to", "x"}, "mpOTR: /mpotr otp to needs an alias and a text; " + usage},
      {{"otp", "device"}, "mpOTR: /mpotr otp device needs the socket path of your pad device; " + usage},
      {{"otp", "device", "padd.sock"}, "mpOTR: the pad device socket must be an absolute path"},
      {{"otp", "alias", "a/b", "bob"}, "mpOTR: alias not defined: an alias name is 1-32 letters, digits, '-' or '_'"},
      {{"otp", "alias", "x", "nobody"}, "mpOTR: alias not defined: no member 'nobody' with a known JID"},
      {{"otp", "alias", "x", "alice"}, "mpOTR: alias not defined: an alias does not include yourself"},
  };
  for (const auto& [args, error] : cases) {
    const auto before = alice.ui->lines.size();
    muc.command(alice, args);
    REQUIRE(alice.ui->lines.size() == before + 1);
    CHECK(alice.ui->lines.back().text == error);
    CHECK(alice.ui->lines.back().tone == Tone::Warning);
  }
  CHECK_FALSE(alice.core->otp_enabled(kRoom));
  CHECK(alice.core->pad_socket() == muc.no_pad_socket());
  muc.command(alice, {"otp", "aliases"});
  CHECK(alice.ui->shows_line(Tone::Info, "mpOTR: no aliases here (/mpotr otp alias <name> <nick|jid>... defines one)."));
  CHECK(pads.device("alice").packaged == 0);

  // Outside a secured room there is no OTP mode.
  Client& carol = muc.add("carol", 9);
  muc.join(carol);
  muc.command(carol, {"otp", "on"});
  CHECK(carol.ui->shows_line(Tone::Warning, "mpOTR: this room is not secured; OTP mode works inside an mpOTR session (/mpotr start first)."));
  CHECK_FALSE(carol.core->otp_enabled(kRoom));
}

TEST_CASE("plugin: without a reachable pad device OTP mode stays off and OTP lines are not read", "[plugin][otp]") {
  TempDir dir;
  Pads pads(dir.path / "pads", {{"alice", "bob"}, {"alice", "carol"}});
  FakeMuc muc(dir.path);
  // Only alice's device is in process; bob and carol have none listening.
  secure(muc, {"alice", "bob", "carol"}, [&](Client& c) {
    if (c.nick == "alice") c.core->use_pad_device_for_tests(&pads.device("alice"));
  });
  Client& alice = muc.get("alice");
  Client& bob = muc.get("bob");
  Client& carol = muc.get("carol");
  const std::string socket = muc.no_pad_socket();

  muc.command(bob, {"otp", "on"});
  CHECK_FALSE(bob.core->otp_enabled(kRoom));
  CHECK(bob.ui->shows_line(Tone::Warning, "mpOTR: OTP mode not turned on: cannot reach the pad device at " + socket +
                                              ": cannot connect to " + socket + ": No such file or directory (pad device socket " +
                                              socket + "; /mpotr otp device <path> changes it)."));
  // OTP mode stayed off: bob's lines are plain mpOTR.
  CHECK(muc.say(bob, "still mpOTR"));
  CHECK(alice.ui->shows_chat("bob: still mpOTR"));

  muc.command(alice, {"otp", "on"});
  REQUIRE(alice.core->otp_enabled(kRoom));
  const auto bob_chat = bob.ui->chat_lines();
  const auto carol_chat = carol.ui->chat_lines();
  CHECK(muc.say(alice, "unreadable without pads"));
  // bob asked for the device (so it is configured, but not reachable); carol never did.
  CHECK(bob.ui->shows_line(Tone::Warning, "mpOTR: The OTP message from alice could not be opened: cannot reach the pad device at " +
                                              socket + ": cannot connect to " + socket + ": No such file or directory"));
  CHECK(carol.ui->shows_line(Tone::Warning, "mpOTR: alice sent you an OTP message, but no pad device is connected: it cannot be read "
                                                "(start mpotr-padd on " + socket + ", or give its socket with /mpotr otp device <path>)"));
  CHECK(bob.ui->chat_lines() == bob_chat);  // neither the text nor the fallback body is shown
  CHECK(carol.ui->chat_lines() == carol_chat);
  CHECK_FALSE(bob.ui->shows("unreadable"));
  CHECK_FALSE(carol.ui->shows("unreadable"));
}

TEST_CASE("plugin: OTP mode comes back on when the session restarts after a reconnect", "[plugin][otp]") {
  TempDir dir;
  Pads pads(dir.path / "pads", {{"alice", "bob"}});
  FakeMuc muc(dir.path);
  secure(muc, {"alice", "bob"}, pads.attach());
  Client& alice = muc.get("alice");
  Client& bob = muc.get("bob");
  muc.command(alice, {"otp", "on"});
  REQUIRE(alice.core->otp_enabled(kRoom));

  alice.core->on_disconnect(muc.now);
  CHECK_FALSE(alice.core->otp_enabled(kRoom));
  alice.in_room = false;
  alice.ui->lines.clear();
  alice.core->on_connect(alice.full_jid, muc.now);
  muc.join(alice);
  muc.advance(2000);
  REQUIRE(alice.core->host(kRoom)->phase() == Phase::Established);
  CHECK(alice.core->otp_enabled(kRoom));
  CHECK(alice.ui->shows_line(Tone::Info, "mpOTR: OTP mode is on again in this room (you turned it on before the session restarted)."));
  // Pads are checked once the new session is secure.
  CHECK(alice.ui->shows("mpOTR: Pad with bob (bob@localhost): 512 KiB left, about "));
  CHECK(muc.say(alice, "still on pads"));
  CHECK(bob.ui->shows_chat("alice: [OTP] still on pads"));
  CHECK(pads.device("alice").packaged == 1);
}
