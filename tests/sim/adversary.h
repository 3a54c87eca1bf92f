// SPDX-License-Identifier: MIT
// An adversarial MUC server in front of test::Room. The room's members and FIFO queue stay
// as they are; instead of Room::run(), the adversary pops every broadcast and decides, per
// recipient, what that recipient gets: the genuine payload, nothing, a copy, a later delivery,
// a tampered or substituted payload, or the payload under another sender nick. It can also
// inject arbitrary payloads and replay anything it relayed before.
//
// Every receive() goes through deliver(), which records the outcome (error code or events)
// per member and checks the engine contract on the spot: a receive() that returns an error
// must leave Engine::summary() unchanged (violations are collected, tests assert none).
//
// Deterministic: the only randomness is a std::mt19937_64 seeded by the test; no clocks,
// threads or sleeps (time is the room's manual clock).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "mpotr/codec/messages.h"
#include "support/room.h"

namespace mpotr::sim {

using codec::MessageType;
using test::Room;
using test::SimMember;
using test::Wire;

// A broadcast popped from the room queue, as the adversary sees it.
struct Packet {
  Wire wire;
  std::size_t index = 0;                 // position in the adversary's pop order (0-based)
  std::optional<MessageType> type;       // from codec::peek_type; nullopt for garbage
  std::size_t nth = 0;                   // earlier packets of this (sender, type) popped before
};

// One payload handed to one member's engine.
struct Delivery {
  std::size_t step = 0;     // adversary step counter when delivered
  std::string to;
  std::string from;         // the sender nick the engine was told
  Bytes payload;
  std::optional<MessageType> type;
  std::string label;        // "genuine", "tampered", "dup", "spoof", "inject", "held", ...
  std::optional<Error> error;
  std::size_t events_begin = 0, events_end = 0;  // range in the member's SimMember::events
  bool changed = false;     // Engine::summary() differs after the call
  std::size_t broadcasts = 0;  // payloads the call queued
};

// What one recipient gets for one packet.
struct Action {
  enum class Kind { Deliver, Drop, Duplicate, HoldSteps, HoldUntil, HoldForever, Substitute };
  Kind kind = Kind::Deliver;
  std::size_t count = 1;          // Duplicate: extra copies; HoldSteps: packets to wait
  TimeMs until = 0;               // HoldUntil
  std::string from;               // Substitute: sender nick to claim (empty: the real one)
  std::optional<Bytes> payload;   // Substitute: payload to deliver instead (nullopt: genuine)
  bool then_genuine = false;      // Substitute: deliver the genuine packet right after
  std::string label = "substitute";

  static Action make(Kind k) {
    Action a;
    a.kind = k;
    return a;
  }
  static Action deliver() { return {}; }
  static Action drop() { return make(Kind::Drop); }
  static Action duplicate(std::size_t extra = 1) {
    Action a = make(Kind::Duplicate);
    a.count = extra;
    return a;
  }
  // Deliver after `packets` more packets have been processed (1 = swap with the next one).
  static Action hold_steps(std::size_t packets) {
    Action a = make(Kind::HoldSteps);
    a.count = packets;
    return a;
  }
  static Action hold_until(TimeMs t) {
    Action a = make(Kind::HoldUntil);
    a.until = t;
    return a;
  }
  // Until Adversary::release() names it.
  static Action hold() { return make(Kind::HoldForever); }
  static Action tamper(const Bytes& genuine, std::size_t offset, std::uint8_t mask, bool then_genuine);
  static Action replace(Bytes payload, bool then_genuine, std::string label = "replace");
  static Action spoof(std::string from, bool then_genuine);
};

class Adversary {
 public:
  using Match = std::function<bool(const Packet&, const SimMember& to)>;
  using Decide = std::function<Action(const Packet&, const SimMember& to)>;

  Adversary(Room& room, std::uint64_t seed);

  Room& room() { return m_room; }
  std::mt19937_64& rng() { return m_rng; }
  TimeMs now() const { return m_room.now(); }

  // Rules: the first matching rule with uses left decides; otherwise the packet is delivered.
  // uses < 0: unlimited. Returns the rule id (for remove()).
  std::size_t on(Match match, Decide decide, int uses = -1);
  std::size_t on(Match match, Action action, int uses = -1);
  void remove(std::size_t rule_id);
  void clear_rules();

  // Pops one packet (if any) and handles it for every present member; then releases holds
  // that became due. Returns false when the queue was empty.
  bool step();
  // Steps until the queue is empty; packets held for N steps are then released in order.
  void run(std::size_t max_steps = 200000);
  // Advances the clock (ticking every present member), releases time holds, then run().
  void advance(TimeMs ms);
  // Runs, then repeatedly jumps the clock to the earliest wake_at of the present members
  // (at most `horizon` ms past the start) until nothing is due: the room goes idle.
  void settle(TimeMs horizon);

  // Held packets for `to` (all recipients if empty) are delivered now, in hold order.
  void release(std::string_view to = {});
  std::size_t held_count() const { return m_held.size(); }
  // Member `nick` stops getting packets for `packets` packets: they queue for it (in order)
  // and arrive together afterwards. Keeps the room's FIFO order for that member.
  void stall(std::string_view nick, std::size_t packets);

  // Hands one payload to one member now, recording the outcome and checking the contract.
  const Delivery& deliver(std::string_view to, std::string_view from, const Bytes& payload,
                          std::string label = "inject");
  // Same, to every present member (except `except`).
  void deliver_all(std::string_view from, const Bytes& payload, std::string label = "inject",
                   std::string_view except = {});

  // Membership with presence lag: `nick` (already added to the room) becomes present and
  // sees the new roster at once; every other present member sees it after `lag(member)`
  // more packets. Packets queued before the join are not relayed to the joiner.
  void join(std::string_view nick, const std::function<std::size_t(const SimMember&)>& lag = {});
  // `nick` disappears (connection dropped, or it left): it receives nothing more; the others
  // see the new roster after lag(member) packets.
  void part(std::string_view nick, const std::function<std::size_t(const SimMember&)>& lag = {});

  // Everything popped from the room queue, in order (what the real sender broadcast).
  const std::vector<Packet>& packets() const { return m_packets; }
  // Packets of a type from a sender, in order.
  std::vector<Packet> packets_of(std::string_view from, MessageType type) const;
  const std::vector<Delivery>& deliveries() const { return m_deliveries; }
  std::vector<Delivery> deliveries_to(std::string_view to) const;
  // Error codes a member's engine returned, in order.
  std::vector<ErrorCode> errors_of(std::string_view nick) const;
  // Contract violations found so far ("error but state changed", ...). Tests require none.
  const std::vector<std::string>& violations() const { return m_violations; }

  // Helpers for predicates.
  static Match of_type(MessageType t);
  static Match from(std::string_view nick, std::optional<MessageType> t = std::nullopt);
  static Match to(std::string_view nick, Match inner = {});
  static Match nth(std::string_view from, MessageType t, std::size_t n, std::string_view to = {});

 private:
  struct Rule {
    std::size_t id = 0;
    Match match;
    Decide decide;
    int uses = -1;
  };
  struct Held {
    std::string to;
    std::string from;
    Bytes payload;
    std::optional<std::vector<Member>> roster;  // a presence update instead of a payload
    std::size_t steps_left = 0;                 // HoldSteps
    std::size_t since_step = 0;                 // the step that held it (not counted)
    std::optional<TimeMs> until;                // HoldUntil
    bool manual = false;                        // HoldForever
    std::string label;
  };

  void handle(const Packet& p, SimMember& m);
  void apply_roster(SimMember& m, const std::vector<Member>& roster);
  void queue_presence(SimMember& m, const std::vector<Member>& roster, std::size_t lag);
  void release_due(bool stepped, bool end_of_queue);
  void deliver_held(Held h);
  bool stalled(const std::string& nick) const;

  Room& m_room;
  std::mt19937_64 m_rng;
  std::vector<Rule> m_rules;
  std::size_t m_next_rule = 1;
  std::size_t m_step = 0;
  std::vector<Packet> m_packets;
  std::map<std::pair<std::string, int>, std::size_t> m_counts;
  std::vector<Delivery> m_deliveries;
  std::vector<std::string> m_violations;
  std::deque<Held> m_held;
  std::map<std::string, std::size_t, std::less<>> m_skip;    // joiner: packets to skip
  std::map<std::string, std::size_t, std::less<>> m_stall;   // member: packets left stalled
};

// --- message layout helpers ---------------------------------------------------------------

// Byte regions of an encoded message, for tamper sweeps. Names are stable and used in tests.
struct Region {
  std::string name;
  std::size_t begin = 0, end = 0;  // [begin, end)
};
std::vector<Region> regions_of(ByteView payload);
const Region& region_at(const std::vector<Region>& regions, std::size_t offset);

std::string type_name(std::optional<MessageType> t);
std::string describe(const std::vector<ErrorCode>& codes);
std::string describe(const Event& e);

}  // namespace mpotr::sim
