// SPDX-License-Identifier: MIT
#include "support/room.h"

#include <algorithm>
#include <stdexcept>

namespace mpotr::test {

namespace {
std::string nick_for(std::size_t i) {
  static const char* names[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"};
  if (i < std::size(names)) {
    return names[i];
  }
  return "member" + std::to_string(i);
}
}  // namespace

Room::Room(std::size_t n, std::uint64_t seed, Timeouts timeouts) : m_seed(seed), m_timeouts(timeouts) {
  for (std::size_t i = 0; i < n; ++i) {
    add_member(nick_for(i));
  }
  set_rosters();
}

SimMember& Room::add_member(std::string nick) {
  SimMember m;
  m.nick = nick;
  m.rng = std::make_unique<DeterministicRng>(m_seed * 1000003 + m_members.size());
  auto identity = IdentityKey::generate(*m.rng);
  if (!identity.ok()) {
    throw std::runtime_error("identity generation failed");
  }
  EngineConfig cfg{kRoomName, nick, m_timeouts};
  m.engine = std::make_unique<Engine>(cfg, std::move(identity).value());
  m_members.push_back(std::move(m));
  return m_members.back();
}

SimMember& Room::by_nick(std::string_view nick) {
  for (auto& m : m_members) {
    if (m.nick == nick) {
      return m;
    }
  }
  throw std::out_of_range("no member " + std::string(nick));
}

std::vector<Member> Room::roster() const {
  std::vector<Member> r;
  for (const auto& m : m_members) {
    if (m.present) {
      r.push_back(Member{m.nick, m.nick + "@localhost"});
    }
  }
  return r;
}

void Room::set_rosters() {
  const auto r = roster();
  for (auto& m : m_members) {
    if (m.present) {
      absorb(m, m.engine->set_roster(r, m_now, *m.rng));
    }
  }
}

void Room::join(std::string_view nick) {
  by_nick(nick).present = true;
  set_rosters();
}

void Room::part(std::string_view nick) {
  by_nick(nick).present = false;
  set_rosters();
}

void Room::absorb(SimMember& who, Result<Output> r) {
  if (!r.ok()) {
    who.errors.push_back(r.error());
    return;
  }
  for (auto& b : r->broadcasts) {
    Wire w{who.nick, std::move(b)};
    m_log.push_back(w);
    m_queue.push_back(std::move(w));
  }
  for (auto& e : r->events) {
    who.events.push_back(std::move(e));
  }
  who.wake_at = r->wake_at;
}

void Room::send_text(std::string_view nick, std::string_view text) {
  SimMember& m = by_nick(nick);
  absorb(m, m.engine->send_text(text, m_now, *m.rng));
}

void Room::deliver_to(SimMember& m, const Wire& w) { absorb(m, m.engine->receive(w.from, view(w.payload), m_now, *m.rng)); }

bool Room::deliver_next() {
  if (m_queue.empty()) {
    return false;
  }
  Wire w = std::move(m_queue.front());
  m_queue.pop_front();
  for (auto& m : m_members) {
    if (m.present) {
      deliver_to(m, w);
    }
  }
  return true;
}

void Room::run(std::size_t max_steps) {
  for (std::size_t i = 0; i < max_steps && deliver_next(); ++i) {
  }
}

void Room::advance(TimeMs ms) {
  m_now += ms;
  for (auto& m : m_members) {
    if (m.present) {
      absorb(m, m.engine->tick(m_now, *m.rng));
    }
  }
  run();
}

void Room::advance_clock(TimeMs ms) {
  m_now += ms;
  for (auto& m : m_members) {
    if (m.present) {
      absorb(m, m.engine->tick(m_now, *m.rng));
    }
  }
}

std::vector<Event> Room::events_of(const SimMember& m, EventKind kind) const {
  std::vector<Event> out;
  std::copy_if(m.events.begin(), m.events.end(), std::back_inserter(out), [kind](const Event& e) { return e.kind == kind; });
  return out;
}

bool Room::all_established() const {
  return std::all_of(m_members.begin(), m_members.end(),
                     [](const SimMember& m) { return !m.present || m.engine->phase() == Phase::Established; });
}

}  // namespace mpotr::test
