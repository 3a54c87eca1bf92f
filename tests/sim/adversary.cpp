// SPDX-License-Identifier: MIT
#include "sim/adversary.h"

#include <algorithm>
#include <stdexcept>

namespace mpotr::sim {

// --- actions -------------------------------------------------------------------------------

Action Action::tamper(const Bytes& genuine, std::size_t offset, std::uint8_t mask, bool then_genuine) {
  Bytes b = genuine;
  if (offset < b.size()) {
    b[offset] = static_cast<std::uint8_t>(b[offset] ^ mask);
  }
  Action a = replace(std::move(b), then_genuine, "tampered");
  return a;
}

Action Action::replace(Bytes payload, bool then_genuine, std::string label) {
  Action a = make(Kind::Substitute);
  a.payload = std::move(payload);
  a.then_genuine = then_genuine;
  a.label = std::move(label);
  return a;
}

Action Action::spoof(std::string from, bool then_genuine) {
  Action a = make(Kind::Substitute);
  a.from = std::move(from);
  a.then_genuine = then_genuine;
  a.label = "spoofed";
  return a;
}

// --- adversary -----------------------------------------------------------------------------

Adversary::Adversary(Room& room, std::uint64_t seed) : m_room(room), m_rng(seed) {}

std::size_t Adversary::on(Match match, Decide decide, int uses) {
  m_rules.push_back(Rule{m_next_rule, std::move(match), std::move(decide), uses});
  return m_next_rule++;
}

std::size_t Adversary::on(Match match, Action action, int uses) {
  return on(std::move(match), [action](const Packet&, const SimMember&) { return action; }, uses);
}

void Adversary::remove(std::size_t rule_id) {
  std::erase_if(m_rules, [rule_id](const Rule& r) { return r.id == rule_id; });
}

void Adversary::clear_rules() { m_rules.clear(); }

bool Adversary::stalled(const std::string& nick) const {
  auto it = m_stall.find(nick);
  return it != m_stall.end() && it->second > 0;
}

const Delivery& Adversary::deliver(std::string_view to, std::string_view from, const Bytes& payload, std::string label) {
  SimMember& m = m_room.by_nick(to);
  Delivery d;
  d.step = m_step;
  d.to = m.nick;
  d.from = std::string(from);
  d.payload = payload;
  auto t = codec::peek_type(view(payload));
  if (t.ok()) {
    d.type = t.value();
  }
  d.label = std::move(label);
  const StateSummary before = m.engine->summary();
  Result<Output> r = m.engine->receive(from, view(payload), m_room.now(), *m.rng);
  const StateSummary after = m.engine->summary();
  d.changed = !(after == before);
  if (r.ok()) {
    d.broadcasts = r->broadcasts.size();
  } else {
    d.error = r.error();
    if (d.changed) {
      m_violations.push_back("step " + std::to_string(m_step) + ": " + m.nick + " returned " +
                             std::string(to_string(r.error().code)) + " (" + r.error().detail + ") for a " +
                             type_name(d.type) + " from " + d.from + " [" + d.label + "] but its state changed");
    }
  }
  d.events_begin = m.events.size();
  m_room.absorb(m, std::move(r));
  d.events_end = m.events.size();
  m_deliveries.push_back(std::move(d));
  return m_deliveries.back();
}

void Adversary::deliver_all(std::string_view from, const Bytes& payload, std::string label, std::string_view except) {
  for (auto& m : m_room.members()) {
    if (m.present && m.nick != except) {
      deliver(m.nick, from, payload, label);
    }
  }
}

void Adversary::apply_roster(SimMember& m, const std::vector<Member>& roster) {
  if (!m.present) {
    return;
  }
  m_room.absorb(m, m.engine->set_roster(roster, m_room.now(), *m.rng));
}

void Adversary::deliver_held(Held h) {
  if (h.roster) {
    apply_roster(m_room.by_nick(h.to), *h.roster);
    return;
  }
  if (!m_room.by_nick(h.to).present) {
    return;
  }
  deliver(h.to, h.from, h.payload, h.label);
}

void Adversary::handle(const Packet& p, SimMember& m) {
  Action act = Action::deliver();
  for (auto& rule : m_rules) {
    if (rule.uses == 0 || !rule.match(p, m)) {
      continue;
    }
    act = rule.decide(p, m);
    if (rule.uses > 0) {
      --rule.uses;
    }
    break;
  }
  const std::string& from = p.wire.from;
  const Bytes& genuine = p.wire.payload;
  // A stalled member gets everything later, in order: its packets join its backlog.
  auto enqueue = [&](std::string f, Bytes b, std::string label, std::size_t steps, std::optional<TimeMs> until,
                     bool manual) {
    Held h;
    h.to = m.nick;
    h.from = std::move(f);
    h.payload = std::move(b);
    h.label = std::move(label);
    h.steps_left = steps;
    h.since_step = m_step;
    h.until = until;
    h.manual = manual;
    m_held.push_back(std::move(h));
  };
  auto now_or_backlog = [&](const std::string& f, const Bytes& b, std::string label) {
    if (stalled(m.nick)) {
      enqueue(f, b, std::move(label) + "+stalled", 0, std::nullopt, false);
    } else {
      deliver(m.nick, f, b, std::move(label));
    }
  };
  switch (act.kind) {
    case Action::Kind::Deliver:
      now_or_backlog(from, genuine, "genuine");
      break;
    case Action::Kind::Drop:
      m_deliveries.push_back(Delivery{m_step, m.nick, from, genuine, p.type, "dropped", std::nullopt, 0, 0, false, 0});
      break;
    case Action::Kind::Duplicate:
      now_or_backlog(from, genuine, "genuine");
      for (std::size_t i = 0; i < act.count; ++i) {
        now_or_backlog(from, genuine, "dup");
      }
      break;
    case Action::Kind::HoldSteps:
      enqueue(from, genuine, "held", act.count, std::nullopt, false);
      break;
    case Action::Kind::HoldUntil:
      enqueue(from, genuine, "held", 0, act.until, false);
      break;
    case Action::Kind::HoldForever:
      enqueue(from, genuine, "held", 0, std::nullopt, true);
      break;
    case Action::Kind::Substitute: {
      const std::string f = act.from.empty() ? from : act.from;
      now_or_backlog(f, act.payload ? *act.payload : genuine, act.label);
      if (act.then_genuine) {
        now_or_backlog(from, genuine, "genuine");
      }
      break;
    }
  }
}

bool Adversary::step() {
  if (m_room.queue().empty()) {
    return false;
  }
  Packet p;
  p.wire = std::move(m_room.queue().front());
  m_room.queue().pop_front();
  p.index = m_packets.size();
  auto t = codec::peek_type(view(p.wire.payload));
  if (t.ok()) {
    p.type = t.value();
  }
  const auto key = std::make_pair(p.wire.from, p.type ? static_cast<int>(*p.type) : -1);
  p.nth = m_counts[key]++;
  m_packets.push_back(p);
  ++m_step;
  // Members may be added while handling (never by the adversary itself), so iterate by index.
  for (std::size_t i = 0; i < m_room.members().size(); ++i) {
    SimMember& m = m_room.members()[i];
    if (!m.present) {
      continue;
    }
    if (auto it = m_skip.find(m.nick); it != m_skip.end() && it->second > 0) {
      --it->second;  // queued before it joined: the room never relays that to it
      continue;
    }
    handle(p, m);
  }
  for (auto& [nick, left] : m_stall) {
    if (left > 0) {
      --left;
    }
  }
  release_due(true, false);
  return true;
}

void Adversary::release_due(bool stepped, bool end_of_queue) {
  // Walk holds in order; a member's stalled backlog and presence updates keep their order.
  std::deque<Held> keep;
  std::vector<Held> due;
  std::map<std::string, bool> blocked;  // a member whose earlier FIFO item is still waiting
  while (!m_held.empty()) {
    Held h = std::move(m_held.front());
    m_held.pop_front();
    const bool fifo = !h.until && !h.manual && h.steps_left == 0;  // backlog / presence items
    bool ready = false;
    if (h.manual) {
      ready = false;
    } else if (h.until) {
      ready = *h.until <= m_room.now();
    } else if (h.steps_left > 0) {
      if (stepped && h.since_step != m_step) {
        --h.steps_left;
      }
      ready = h.steps_left == 0 || end_of_queue;
    } else {
      ready = !stalled(h.to) || end_of_queue;
    }
    if (fifo && blocked[h.to]) {
      ready = false;
    }
    if (ready) {
      due.push_back(std::move(h));
    } else {
      if (fifo) {
        blocked[h.to] = true;
      }
      keep.push_back(std::move(h));
    }
  }
  m_held = std::move(keep);
  for (auto& h : due) {
    deliver_held(std::move(h));
  }
}

void Adversary::run(std::size_t max_steps) {
  for (std::size_t i = 0; i < max_steps; ++i) {
    if (!step()) {
      // Queue drained: packets held "for N steps" and stalled backlogs arrive now.
      const std::size_t before = m_held.size();
      for (auto& [nick, left] : m_stall) {
        left = 0;
      }
      release_due(false, true);
      if (m_room.queue().empty() && m_held.size() == before) {
        return;
      }
      if (m_room.queue().empty()) {
        continue;  // releases may have produced nothing new; try again until stable
      }
    }
  }
}

void Adversary::advance(TimeMs ms) {
  m_room.advance_clock(ms);
  release_due(false, false);
  run();
}

void Adversary::settle(TimeMs horizon) {
  const TimeMs start = m_room.now();
  run();
  for (int guard = 0; guard < 10000; ++guard) {
    std::optional<TimeMs> next;
    for (const auto& m : m_room.members()) {
      if (m.present && m.wake_at && (!next || *m.wake_at < *next)) {
        next = m.wake_at;
      }
    }
    for (const auto& h : m_held) {
      if (h.until && (!next || *h.until < *next)) {
        next = h.until;
      }
    }
    if (!next || *next > start + horizon) {
      return;
    }
    advance(*next > m_room.now() ? *next - m_room.now() : 0);
  }
  throw std::runtime_error("settle: the room never went idle");
}

void Adversary::release(std::string_view to) {
  std::deque<Held> keep;
  std::vector<Held> due;
  for (auto& h : m_held) {
    if (to.empty() || h.to == to) {
      due.push_back(std::move(h));
    } else {
      keep.push_back(std::move(h));
    }
  }
  m_held = std::move(keep);
  for (auto& h : due) {
    deliver_held(std::move(h));
  }
}

void Adversary::stall(std::string_view nick, std::size_t packets) { m_stall[std::string(nick)] = packets; }

void Adversary::queue_presence(SimMember& m, const std::vector<Member>& roster, std::size_t lag) {
  // Presence reaches a member in room order: never before an earlier presence change.
  bool pending = false;
  for (const auto& h : m_held) {
    if (h.to == m.nick && h.roster) {
      pending = true;
      lag = std::max(lag, h.steps_left);
    }
  }
  if (lag == 0 && !pending && !stalled(m.nick)) {
    apply_roster(m, roster);
    return;
  }
  Held h;
  h.to = m.nick;
  h.roster = roster;
  h.steps_left = lag;
  h.since_step = m_step;
  h.label = "presence";
  m_held.push_back(std::move(h));
}

void Adversary::join(std::string_view nick, const std::function<std::size_t(const SimMember&)>& lag) {
  SimMember& joiner = m_room.by_nick(nick);
  joiner.present = true;
  m_skip[joiner.nick] = m_room.queue().size();
  const auto roster = m_room.roster();
  const std::string joiner_nick = joiner.nick;
  for (std::size_t i = 0; i < m_room.members().size(); ++i) {
    SimMember& m = m_room.members()[i];
    if (m.present) {
      queue_presence(m, roster, (m.nick == joiner_nick || !lag) ? 0 : lag(m));
    }
  }
}

void Adversary::part(std::string_view nick, const std::function<std::size_t(const SimMember&)>& lag) {
  SimMember& leaver = m_room.by_nick(nick);
  leaver.present = false;
  std::erase_if(m_held, [&](const Held& h) { return h.to == leaver.nick; });
  const auto roster = m_room.roster();
  for (std::size_t i = 0; i < m_room.members().size(); ++i) {
    SimMember& m = m_room.members()[i];
    if (m.present) {
      queue_presence(m, roster, lag ? lag(m) : 0);
    }
  }
}

std::vector<Packet> Adversary::packets_of(std::string_view from, MessageType type) const {
  std::vector<Packet> out;
  for (const auto& p : m_packets) {
    if (p.wire.from == from && p.type == type) {
      out.push_back(p);
    }
  }
  return out;
}

std::vector<Delivery> Adversary::deliveries_to(std::string_view to) const {
  std::vector<Delivery> out;
  for (const auto& d : m_deliveries) {
    if (d.to == to) {
      out.push_back(d);
    }
  }
  return out;
}

std::vector<ErrorCode> Adversary::errors_of(std::string_view nick) const {
  std::vector<ErrorCode> out;
  for (const auto& d : m_deliveries) {
    if (d.to == nick && d.error) {
      out.push_back(d.error->code);
    }
  }
  return out;
}

Adversary::Match Adversary::of_type(MessageType t) {
  return [t](const Packet& p, const SimMember&) { return p.type == t; };
}

Adversary::Match Adversary::from(std::string_view nick, std::optional<MessageType> t) {
  return [n = std::string(nick), t](const Packet& p, const SimMember&) {
    return p.wire.from == n && (!t || p.type == t);
  };
}

Adversary::Match Adversary::to(std::string_view nick, Match inner) {
  return [n = std::string(nick), inner = std::move(inner)](const Packet& p, const SimMember& m) {
    return m.nick == n && (!inner || inner(p, m));
  };
}

Adversary::Match Adversary::nth(std::string_view from, MessageType t, std::size_t n, std::string_view to) {
  return [f = std::string(from), t, n, dest = std::string(to)](const Packet& p, const SimMember& m) {
    return p.wire.from == f && p.type == t && p.nth == n && (dest.empty() || m.nick == dest);
  };
}

// --- layout --------------------------------------------------------------------------------

namespace {
std::size_t varint_len(std::uint32_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

struct Layout {
  std::vector<Region> regions;
  std::size_t pos = 0;
  void add(std::string name, std::size_t len) {
    regions.push_back(Region{std::move(name), pos, pos + len});
    pos += len;
  }
  void point(const std::string& name) {
    add(name + ".prefix", 1);  // 0x04: anything else is not an uncompressed point
    add(name, 64);
  }
};
}  // namespace

std::vector<Region> regions_of(ByteView payload) {
  auto decoded = codec::decode(payload);
  if (!decoded.ok()) {
    throw std::invalid_argument("regions_of: payload does not decode");
  }
  Layout l;
  l.add("version", 1);
  l.add("type", 1);
  std::visit(
      [&l](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, codec::Offer>) {
          l.add("roster_digest", 32);
          l.add("attempt", 4);
          l.add("nick_len", 1);
          l.add("nick", m.nick.size());
          l.add("nonce", 32);
          l.point("identity_key");
          l.point("dh_key");
          l.point("signing_key");
        } else if constexpr (std::is_same_v<T, codec::KeyShare>) {
          l.add("session_id", 32);
          l.add("sender", 1);
          l.point("elgamal_r");
          l.add("commit", 32);
          l.add("refused", codec::kMemberSetLen);
          l.add("count", 1);
          for (std::size_t i = 0; i < m.shares.size(); ++i) {
            l.add("share.mac", 32);
            l.add("share.secret_ct", 32);
          }
          l.add("signature", 64);
        } else if constexpr (std::is_same_v<T, codec::Attest>) {
          l.add("session_id", 32);
          l.add("sender", 1);
          l.add("transcript_hash", 32);
          l.add("key_confirm", 32);
          l.add("signature", 64);
        } else if constexpr (std::is_same_v<T, codec::Data>) {
          l.add("session_tag", 8);
          l.add("sender", 1);
          l.add("seq", 4);
          l.add("ack_count", 1);
          for (auto a : m.acks) {
            l.add("acks", varint_len(a));
          }
          l.add("view_digest", 32);
          l.add("ct_len", 2);
          l.add("ciphertext", m.ciphertext.size());
          l.add("mac", codec::kMacLen);
          l.add("signature", 64);
        } else if constexpr (std::is_same_v<T, codec::Shutdown> || std::is_same_v<T, codec::Quit>) {
          l.add("session_tag", 8);
          l.add("sender", 1);
          l.add("final_count", 4);
          l.add("mac", codec::kMacLen);
          l.add("signature", 64);
        } else if constexpr (std::is_same_v<T, codec::Digest>) {
          l.add("session_tag", 8);
          l.add("sender", 1);
          l.add("transcript_digest", 32);
          l.add("mac", codec::kMacLen);
          l.add("signature", 64);
        } else if constexpr (std::is_same_v<T, codec::End>) {
          l.add("session_tag", 8);
          l.add("sender", 1);
          l.add("present", codec::kMemberSetLen);
          l.add("digests_hash", 32);
          l.add("mac", codec::kMacLen);
          l.add("signature", 64);
        } else if constexpr (std::is_same_v<T, codec::Accuse>) {
          l.add("session_id", 32);
          l.add("sender", 1);
          l.add("accused", 1);
          l.add("dh_private", 32);
          l.add("ks_len", 2);
          l.add("key_share", m.key_share.size());
          l.add("signature", 64);
        } else if constexpr (std::is_same_v<T, codec::KeyReveal>) {
          l.add("session_tag", 8);
          l.add("sender", 1);
          l.add("private_key", 32);
        }
      },
      decoded->message);
  if (l.pos != payload.size()) {
    throw std::logic_error("regions_of: layout does not cover the payload");
  }
  std::erase_if(l.regions, [](const Region& r) { return r.begin == r.end; });
  return l.regions;
}

const Region& region_at(const std::vector<Region>& regions, std::size_t offset) {
  for (const auto& r : regions) {
    if (offset >= r.begin && offset < r.end) {
      return r;
    }
  }
  throw std::out_of_range("region_at: offset outside the message");
}

std::string type_name(std::optional<MessageType> t) {
  return t ? std::string(codec::to_string(*t)) : std::string("garbage");
}

std::string describe(const std::vector<ErrorCode>& codes) {
  std::string s = "[";
  for (std::size_t i = 0; i < codes.size(); ++i) {
    s += (i ? ", " : "") + std::string(to_string(codes[i]));
  }
  return s + "]";
}

std::string describe(const Event& e) {
  std::string s(to_string(e.kind));
  if (!e.nick.empty()) {
    s += " nick=" + e.nick;
  }
  if (!e.nicks.empty()) {
    s += " nicks=";
    for (const auto& n : e.nicks) {
      s += n + ",";
    }
  }
  if (e.kind == EventKind::SetupFailed || e.kind == EventKind::SetupTimeout || e.kind == EventKind::Rejected) {
    s += " code=" + std::string(to_string(e.code));
  }
  if (e.seq || e.seq_end) {
    s += " seq=" + std::to_string(e.seq) + ".." + std::to_string(e.seq_end);
  }
  if (e.late) {
    s += " late";
  }
  if (!e.detail.empty()) {
    s += " (" + e.detail + ")";
  }
  return s;
}

}  // namespace mpotr::sim
