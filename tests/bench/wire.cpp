// SPDX-License-Identifier: MIT
#include "wire.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "mpotr/codec/messages.h"
#include "mpotr/engine.h"
#include "support/room.h"

namespace mpotr::bench {

namespace {

// The bytes member 0 broadcasts for a `len`-byte line (a copy of its engine, so every length is
// measured at the same point of the session).
std::size_t sent_size(const Engine& established, std::size_t len, TimeMs now, Rng& rng) {
  Engine e(established);
  auto r = e.send_text(std::string(len, 'x'), now, rng);
  if (!r.ok() || r->broadcasts.size() != 1) {
    throw std::runtime_error("send_text of " + std::to_string(len) + " bytes failed");
  }
  return r->broadcasts.front().size();
}

// An acknowledgement-only entry has the Data layout with an empty ciphertext; the engine only
// sends one from its timer, so it is encoded here directly.
std::size_t heartbeat_size(std::size_t members) {
  codec::Data d;
  d.type = codec::MessageType::Heartbeat;
  d.acks.assign(members - 1, 0);
  return codec::encode(d).size();
}

WireRow row(std::size_t members, std::size_t text, std::size_t wire) {
  WireRow r;
  r.members = members;
  r.text = text;
  r.wire = wire;
  r.base64 = base64_size(wire);
  r.goal = wire_goal(text);
  r.pass = static_cast<double>(r.base64) <= r.goal;
  return r;
}

}  // namespace

WireReport measure_wire() {
  WireReport report;
  DeterministicRng rng(7);
  for (std::size_t members : kWireMembers) {
    test::Room room(members, 99 + members);
    room.run();
    if (!room.all_established()) {
      throw std::runtime_error("wire: a room of " + std::to_string(members) + " did not establish");
    }
    const Engine& e = *room.member(0).engine;
    for (std::size_t len : kWireTextSizes) {
      report.rows.push_back(row(members, len, len == 0 ? heartbeat_size(members) : sent_size(e, len, room.now(), rng)));
    }
    if (members != kWireGoalMembers) {
      continue;
    }
    // Every length of the goal room, one engine sending them all in sequence (as a real session
    // would), so growing sequence numbers and acknowledgements are part of the measurement.
    WireSweep& s = report.sweep;
    s.members = members;
    s.from = 1;
    s.to = kWireSweepMax;
    s.pass = true;
    s.worst_margin = -std::numeric_limits<double>::infinity();
    s.min_overhead = std::numeric_limits<std::size_t>::max();
    Engine sender(e);
    for (std::size_t len = s.from; len <= s.to; ++len) {
      auto r = sender.send_text(std::string(len, 'x'), room.now(), rng);
      if (!r.ok() || r->broadcasts.size() != 1) {
        throw std::runtime_error("wire sweep: send_text failed");
      }
      const WireRow w = row(members, len, r->broadcasts.front().size());
      const double margin = static_cast<double>(w.base64) - w.goal;
      if (margin > s.worst_margin) {
        s.worst_margin = margin;
        s.worst_text = len;
      }
      s.pass = s.pass && w.pass;
      s.max_overhead = std::max(s.max_overhead, w.wire - w.text);
      s.min_overhead = std::min(s.min_overhead, w.wire - w.text);
    }
  }
  return report;
}

}  // namespace mpotr::bench
