// SPDX-License-Identifier: MIT
// An in-process mpOTR conversation, printed: three members set up a session and chat, a
// fourth joins (re-key), one leaves (shutdown, transcript check, key publication). The "server"
// is a FIFO that relays every payload to every member, as a MUC does; it sees only what is
// printed under "server relayed". Until the XMPP transport exists this is the README demo.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mpotr/codec/messages.h"
#include "mpotr/engine.h"

namespace {

using namespace mpotr;

struct Person {
  std::string nick;
  std::unique_ptr<Engine> engine;
  bool present = false;
  std::vector<std::string> view;  // what this member's screen shows
};

struct Relay {
  std::string from;
  Bytes payload;
};

class Demo {
 public:
  explicit Demo(Rng& rng) : m_rng(rng) {}

  void add(const std::string& nick) {
    auto id = IdentityKey::generate(m_rng);
    if (!id.ok()) {
      throw std::runtime_error("identity: " + id.error().detail);
    }
    m_people.push_back(Person{nick, std::make_unique<Engine>(EngineConfig{kRoom, nick, {}}, std::move(id).value()), false, {}});
  }

  Person& get(std::string_view nick) {
    return *std::find_if(m_people.begin(), m_people.end(), [&](const Person& p) { return p.nick == nick; });
  }

  void presence(std::initializer_list<std::string_view> nicks, bool present) {
    for (auto nick : nicks) {
      get(nick).present = present;
    }
    std::vector<Member> roster;
    for (const auto& p : m_people) {
      if (p.present) {
        roster.push_back(Member{p.nick, p.nick + "@localhost"});
      }
    }
    for (auto& p : m_people) {
      if (p.present) {
        apply(p, p.engine->set_roster(roster, m_now, m_rng));
      }
    }
    run();
  }

  void say(std::string_view nick, std::string_view text) {
    Person& p = get(nick);
    p.view.push_back("  me: " + std::string(text));
    apply(p, p.engine->send_text(text, m_now, m_rng));
    run();
  }

  void leave(std::string_view nick) {
    Person& p = get(nick);
    apply(p, p.engine->leave(m_now, m_rng));
    run();
    presence({nick}, false);
  }

  void idle(TimeMs ms) {
    m_now += ms;
    for (auto& p : m_people) {
      if (p.present) {
        apply(p, p.engine->tick(m_now, m_rng));
      }
    }
    run();
  }

  const std::vector<Person>& people() const { return m_people; }
  const std::vector<Relay>& relayed() const { return m_log; }
  static constexpr const char* kRoom = "demo@conference.localhost";

 private:
  void apply(Person& p, Result<Output> r) {
    if (!r.ok()) {
      if (r.error().code == ErrorCode::UnknownSession) {
        return;  // traffic of a session we are not in (e.g. the one before we joined): normal
      }
      p.view.push_back("  !! " + std::string(to_string(r.error().code)) + ": " + r.error().detail);
      return;
    }
    for (auto& b : r->broadcasts) {
      m_queue.push_back(Relay{p.nick, b});
      m_log.push_back(Relay{p.nick, std::move(b)});
    }
    for (const auto& e : r->events) {
      describe(p, e);
    }
  }

  void describe(Person& p, const Event& e) {
    switch (e.kind) {
      case EventKind::SessionEstablished: {
        std::string members;
        for (const auto& n : e.nicks) {
          members += (members.empty() ? "" : ", ") + n;
        }
        p.view.push_back("-- secure session " + to_hex(ByteView(e.session_id.data(), 4)) + "… with " + members);
        break;
      }
      case EventKind::MessageReceived:
        p.view.push_back("  " + e.nick + ": " + e.text);
        break;
      case EventKind::TranscriptConsistent:
        p.view.push_back("-- transcript checked: everyone saw the same conversation");
        break;
      case EventKind::PeerKeyPublished:
        p.view.push_back("-- " + e.nick + " published their signing key (their messages are now deniable)");
        break;
      case EventKind::SessionClosing:
      case EventKind::Gap:
      case EventKind::MessageLost:
      case EventKind::SplitView:
      case EventKind::TranscriptMismatch:
      case EventKind::SetupFailed:
      case EventKind::SetupTimeout:
      case EventKind::Rejected:
        p.view.push_back("-- " + std::string(to_string(e.kind)) + (e.nick.empty() ? "" : " " + e.nick) +
                         (e.detail.empty() ? "" : ": " + e.detail));
        break;
      default:
        break;
    }
  }

  void run() {
    while (!m_queue.empty()) {
      Relay r = std::move(m_queue.front());
      m_queue.pop_front();
      for (auto& p : m_people) {
        if (p.present) {
          apply(p, p.engine->receive(r.from, view(r.payload), m_now, m_rng));
        }
      }
    }
  }

  Rng& m_rng;
  TimeMs m_now = 1000;
  std::vector<Person> m_people;
  std::deque<Relay> m_queue;
  std::vector<Relay> m_log;
};

int run_demo(int argc, char** argv) {
  std::string relay_log;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--relay-log") == 0 && i + 1 < argc) {
      relay_log = argv[++i];
    } else {
      std::cerr << "usage: mpotr-demo [--relay-log FILE]\n";
      return 2;
    }
  }
  SystemRng rng;
  Demo demo(rng);
  for (const char* nick : {"alice", "bob", "carol", "dave"}) {
    demo.add(nick);
  }
  demo.presence({"alice", "bob", "carol"}, true);
  demo.say("alice", "Hi both - is this room really off the record?");
  demo.say("bob", "Yes: only the three of us can read it, and nobody can prove who said what.");
  demo.say("carol", "And if the server drops or replays anything, we will all see a warning.");
  demo.idle(kDefaultHeartbeatMs + 1);
  demo.presence({"dave"}, true);  // a join: everyone re-keys
  demo.say("dave", "Hello! I can read from now on, not before.");
  demo.say("alice", "Welcome, dave.");
  demo.leave("bob");  // shutdown: transcript check, then bob's key is published
  demo.say("carol", "Bob left; the rest of us re-keyed without him.");
  demo.idle(kDefaultHeartbeatMs + 1);

  for (const auto& p : demo.people()) {
    std::cout << "\n=== " << p.nick << "'s screen ===\n";
    for (const auto& line : p.view) {
      std::cout << line << "\n";
    }
  }
  std::size_t bytes = 0;
  for (const auto& r : demo.relayed()) {
    bytes += r.payload.size();
  }
  std::cout << "\n=== server relayed " << demo.relayed().size() << " payloads, " << bytes << " bytes ===\n";
  for (const auto& r : demo.relayed()) {
    auto type = codec::peek_type(view(r.payload));
    if (type.ok() && *type == codec::MessageType::Data) {
      const std::string hex = to_hex(view(r.payload));
      std::cout << "  a chat line from " << r.from << " as the server saw it (" << r.payload.size()
                << " bytes): " << hex.substr(0, 96) << "…\n";
      break;
    }
  }
  if (!relay_log.empty()) {
    nlohmann::json log;
    log["room"] = Demo::kRoom;
    for (const auto& r : demo.relayed()) {
      log["relayed"].push_back({{"from", r.from}, {"payload", to_hex(view(r.payload))}});
    }
    std::ofstream(relay_log) << log.dump(1) << "\n";
    std::cout << "\nrelay log written to " << relay_log << " (try: mpotr-forge --relay-log " << relay_log
              << " --as bob)\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run_demo(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "mpotr-demo: " << e.what() << "\n";
    return 2;
  }
}
