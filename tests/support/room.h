// SPDX-License-Identifier: MIT
// An in-memory MUC for tests: members are engines; the "server" keeps one FIFO of broadcasts
// and delivers each to every member, the sender included (rooms reflect messages). Everything
// is deterministic: seeded RNGs, a manual clock.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mpotr/engine.h"

namespace mpotr::test {

struct Wire {
  std::string from;
  Bytes payload;
};

struct SimMember {
  std::string nick;
  std::unique_ptr<DeterministicRng> rng;
  std::unique_ptr<Engine> engine;
  std::vector<Event> events;            // everything the engine reported
  std::vector<Error> errors;            // every receive() error
  std::optional<TimeMs> wake_at;
  bool present = true;                  // in the room (receives broadcasts)
};

class Room {
 public:
  static constexpr const char* kRoomName = "room@conference.localhost";

  explicit Room(std::size_t n, std::uint64_t seed = 1, Timeouts timeouts = {});

  std::vector<SimMember>& members() { return m_members; }
  SimMember& member(std::size_t i) { return m_members.at(i); }
  SimMember& by_nick(std::string_view nick);
  TimeMs now() const { return m_now; }
  std::deque<Wire>& queue() { return m_queue; }
  // Every payload ever broadcast, in order (what the server relayed).
  const std::vector<Wire>& log() const { return m_log; }

  // Adds a member with a fresh identity (not present until join()).
  SimMember& add_member(std::string nick);
  // Presence: the roster every present member sees.
  std::vector<Member> roster() const;
  void set_rosters();                       // all present members get the current roster
  void join(std::string_view nick);         // present = true, everyone gets the new roster
  void part(std::string_view nick);         // present = false, everyone else gets the new roster

  // Apply an engine call's result for member `who`: queue broadcasts, record events.
  void absorb(SimMember& who, Result<Output> r);
  void send_text(std::string_view nick, std::string_view text);

  // Deliver the front of the queue to every present member; returns false if empty.
  bool deliver_next();
  // Deliver one payload to a single member.
  void deliver_to(SimMember& m, const Wire& w);
  // Deliver until the queue is empty (bounded).
  void run(std::size_t max_steps = 100000);
  // Advance the clock by ms and tick every member, then run.
  void advance(TimeMs ms);
  // Advance the clock by ms and tick every present member, delivering nothing: for custom
  // servers (tests/sim) that decide delivery themselves.
  void advance_clock(TimeMs ms);

  // Events of a kind seen by a member.
  std::vector<Event> events_of(const SimMember& m, EventKind kind) const;
  bool all_established() const;

 private:
  std::uint64_t m_seed;
  Timeouts m_timeouts;
  TimeMs m_now = 1000;
  std::vector<SimMember> m_members;
  std::deque<Wire> m_queue;
  std::vector<Wire> m_log;
};

}  // namespace mpotr::test
