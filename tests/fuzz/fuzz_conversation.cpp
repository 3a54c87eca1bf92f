// SPDX-License-Identifier: MIT
// Whole conversations through three mpotr::Engine instances and a hostile room: the input is a
// script (conversation_script.h) that delivers, drops, duplicates, corrupts, reorders and
// replays payloads, delivers to only some members, injects raw bytes under any nick, changes
// the roster, advances time, sends texts and leaves. Every Result error is acceptable; what
// must hold:
//   - no crash, leak or undefined behaviour (ASan/UBSan);
//   - a call that returns an Error leaves the engine unchanged (summary() before == after);
//   - phase() is always a valid Phase; an Established engine has a session containing itself;
//   - everything an engine broadcasts is a well-formed wire message within kMaxWireMessageLen;
//   - a copy of an engine has the same state;
//   - no single engine call allocates more than kMaxBytesPerCall or takes longer than
//     kMaxMillisPerCall (spec R-GEN-3: a message costs O(its size), whatever numbers it claims).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <chrono>

#include "conversation_script.h"
#include "fuzz_check.h"
#include "support/alloc_counter.h"
#include "mpotr/codec/messages.h"
#include "mpotr/engine.h"

using namespace mpotr;
using mpotr::fuzz::Op;
using mpotr::fuzz::TrustSetup;

namespace {

constexpr std::size_t kMembers = 3;
constexpr std::size_t kMaxQueue = 512;     // payloads in flight; more are lost
constexpr std::size_t kMaxHistory = 64;    // delivered payloads remembered for Replay
constexpr std::size_t kMaxCalls = 3000;    // engine calls per input, bounds the time per input
constexpr std::size_t kDeliverAllMax = 64;
constexpr const char* kRoom = "room@conference.localhost";
constexpr std::array<const char*, kMembers> kNicks{"alice", "bob", "carol"};
constexpr std::array<const char*, kMembers> kJids{"alice@localhost", "bob@localhost", "carol@localhost"};
constexpr const char* kOutsider = "mallory";
// Per-call ceilings. A call copies the engine state at most a few times (copy, then commit);
// with kMaxCalls per input that state stays far below this. Time: a full setup step (a few
// dozen P-256 operations) under ASan takes milliseconds; a second is a hang.
constexpr std::size_t kMaxBytesPerCall = 32u << 20;
constexpr std::int64_t kMaxMillisPerCall = 2000;

const std::vector<IdentityKey>& identities() {
  static const std::vector<IdentityKey> keys = [] {
    std::vector<IdentityKey> out;
    for (std::size_t i = 0; i < kMembers; ++i) {
      DeterministicRng rng(static_cast<std::uint64_t>(1000 + i));
      auto key = IdentityKey::generate(rng);
      FUZZ_CHECK(key.ok());
      out.push_back(std::move(key).value());
    }
    return out;
  }();
  return keys;
}

// Reads the script; past the end every byte is 0.
class Script {
 public:
  Script(const std::uint8_t* data, std::size_t size) : m_data(data), m_size(size) {}
  bool done() const noexcept { return m_pos >= m_size; }
  std::uint8_t byte() noexcept { return m_pos < m_size ? m_data[m_pos++] : 0; }
  Bytes take(std::size_t n) {
    const std::size_t k = std::min(n, m_size - std::min(m_pos, m_size));
    Bytes out(m_data + m_pos, m_data + m_pos + k);
    m_pos += k;
    return out;
  }

 private:
  const std::uint8_t* m_data;
  std::size_t m_size;
  std::size_t m_pos = 0;
};

struct Packet {
  std::string from;
  Bytes payload;
};

// MPOTR_FUZZ_VERBOSE=1: print every call's result and events (to check what a seed script does).
bool verbose() {
  static const bool on = [] {
    const char* v = std::getenv("MPOTR_FUZZ_VERBOSE");
    return v != nullptr && *v != '\0' && *v != '0';
  }();
  return on;
}

void check_engine(const Engine& engine) {
  const Phase phase = engine.phase();
  // to_string() names every enumerator and says "unknown" for anything else.
  FUZZ_CHECK(to_string(phase) != "unknown");
  if (phase == Phase::Established) {
    const auto session = engine.session();
    FUZZ_CHECK(session.has_value());
    FUZZ_CHECK(session->self_index < session->members.size());
    FUZZ_CHECK(session->members[session->self_index].nick == engine.self_nick());
  }
}

class Room {
 public:
  Room(std::uint64_t seed, TrustSetup trust_setup) : m_rng(seed) {
    const auto& keys = identities();
    m_engines.reserve(kMembers);
    setup_trust(trust_setup);
    for (std::size_t i = 0; i < kMembers; ++i) {
      EngineConfig config;
      config.room = kRoom;
      config.self_nick = kNicks[i];
      const TrustStore* trust = trust_setup == TrustSetup::None ? nullptr : &m_trust[i];
      m_engines.emplace_back(std::move(config), keys[i], trust);
      m_in_room[i] = true;
    }
    for (std::size_t i = 0; i < kMembers; ++i) {
      call(i, "set_roster", [&](Engine& e) { return e.set_roster(roster(), m_now, m_rng); });
    }
  }

  bool exhausted() const noexcept { return m_calls >= kMaxCalls; }

  void step(Script& script) {
    const auto op = static_cast<Op>(script.byte() % fuzz::kOpCount);
    switch (op) {
      case Op::DeliverNext:
        if (auto p = pop()) deliver(*p, kAll);
        break;
      case Op::DeliverAll:
        for (std::size_t k = 0; k < kDeliverAllMax && !m_queue.empty() && !exhausted(); ++k) {
          if (auto p = pop()) deliver(*p, kAll);
        }
        break;
      case Op::Drop:
        (void)pop();
        break;
      case Op::Duplicate:
        if (!m_queue.empty()) enqueue(Packet(m_queue.front()));
        break;
      case Op::FlipBit: {
        const std::size_t pos = (std::size_t{script.byte()} << 8) | script.byte();
        const std::uint8_t bit = script.byte() & 7;
        if (!m_queue.empty() && !m_queue.front().payload.empty()) {
          Bytes& payload = m_queue.front().payload;
          payload[pos % payload.size()] ^= static_cast<std::uint8_t>(1u << bit);
        }
        break;
      }
      case Op::DeliverSome: {
        const std::uint8_t who = script.byte();
        const std::size_t member = who % kMembers;
        if (auto p = pop()) {
          const unsigned mask = (who & 4) ? (1u << member) : (kAll & ~(1u << member));
          deliver(*p, mask);
        }
        break;
      }
      case Op::Swap: {
        const std::size_t a = script.byte();
        const std::size_t b = script.byte();
        if (!m_queue.empty() && a % m_queue.size() != b % m_queue.size()) {
          std::swap(m_queue[a % m_queue.size()], m_queue[b % m_queue.size()]);
        }
        break;
      }
      case Op::AdvanceTime:
        m_now += 1 + std::uint64_t{script.byte()} * 250;
        tick_all();
        break;
      case Op::SendText: {
        const std::size_t member = script.byte() % kMembers;
        const std::size_t len = script.byte();
        std::string text(len, 'x');
        for (std::size_t k = 0; k < len; ++k) text[k] = static_cast<char>('a' + (k + m_calls) % 26);
        if (m_in_room[member]) {
          call(member, "send_text", [&](Engine& e) { return e.send_text(text, m_now, m_rng); });
        }
        break;
      }
      case Op::Leave: {
        const std::size_t member = script.byte() % kMembers;
        if (m_in_room[member]) {
          call(member, "leave", [&](Engine& e) { return e.leave(m_now, m_rng); });
        }
        break;
      }
      case Op::Inject: {
        const std::uint8_t nick = script.byte() % (kMembers + 1);
        const std::size_t len = script.byte();
        Packet p{nick < kMembers ? kNicks[nick] : kOutsider, script.take(len)};
        deliver(p, kAll);
        break;
      }
      case Op::Roster: {
        const std::uint8_t mask = script.byte();
        change_room(mask & 7u, (mask & 8u) != 0);
        break;
      }
      case Op::Restart: {
        const std::size_t member = script.byte() % kMembers;
        if (m_in_room[member]) {
          call(member, "restart", [&](Engine& e) { return e.restart(m_now, m_rng); });
        }
        break;
      }
      case Op::Replay: {
        const std::size_t k = script.byte();
        if (!m_history.empty()) {
          Packet p = m_history[m_history.size() - 1 - k % m_history.size()];
          deliver(p, kAll);
        }
        break;
      }
      case Op::Delay:
        if (auto p = pop()) enqueue(std::move(*p));
        break;
      case Op::WakeUp: {
        std::optional<TimeMs> next;
        for (std::size_t i = 0; i < kMembers; ++i) {
          if (m_in_room[i] && m_wake[i] && (!next || *m_wake[i] < *next)) next = m_wake[i];
        }
        if (next && *next > m_now) m_now = *next;
        tick_all();
        break;
      }
      case Op::kCount:
        break;
    }
  }

  void finish() {
    for (const Engine& engine : m_engines) {
      check_engine(engine);
      const Engine copy(engine);  // NOLINT(performance-unnecessary-copy-initialization)
      FUZZ_CHECK(copy.summary() == engine.summary());
      FUZZ_CHECK(copy.phase() == engine.phase());
    }
  }

 private:
  static constexpr unsigned kAll = (1u << kMembers) - 1;

  void setup_trust(TrustSetup setup) {
    if (setup == TrustSetup::None) return;
    const auto& keys = identities();
    for (std::size_t i = 0; i < kMembers; ++i) {
      for (std::size_t j = 0; j < kMembers; ++j) {
        if (i == j) continue;
        Fingerprint fp = keys[j].fingerprint();
        if (setup == TrustSetup::ChangedKey && i == 0 && j == 2) fp.bytes[0] ^= 0x01;
        FUZZ_CHECK(m_trust[i].record_first_use(kJids[j], fp).ok());
      }
    }
    if (setup == TrustSetup::Blocked) FUZZ_CHECK(m_trust[0].block(kJids[1]).ok());
  }

  std::vector<Member> roster() const {
    std::vector<Member> members;
    for (std::size_t i = 0; i < kMembers; ++i) {
      if (m_in_room[i]) members.push_back(Member{kNicks[i], kJids[i]});
    }
    return members;
  }

  // Runs one engine call and checks the engine's contracts around it.
  template <class F>
  void call(std::size_t i, const char* what, F&& fn) {
    if (exhausted()) return;
    ++m_calls;
    Engine& engine = m_engines[i];
    const StateSummary before = engine.summary();
    const auto started = std::chrono::steady_clock::now();
    std::size_t allocated = 0;
    Result<Output> result = [&] {
      test::AllocationScope scope;
      Result<Output> r = fn(engine);
      allocated = scope.bytes();
      return r;
    }();
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    FUZZ_CHECK_MSG(allocated <= kMaxBytesPerCall, "%s: %s allocated %zu bytes in one call", kNicks[i], what, allocated);
    FUZZ_CHECK_MSG(millis <= kMaxMillisPerCall, "%s: %s took %lld ms", kNicks[i], what, static_cast<long long>(millis));
    check_engine(engine);
    if (!result.ok()) {
      if (verbose()) {
        std::fprintf(stderr, "t=%llu %s %s: error %u %s\n", static_cast<unsigned long long>(m_now), kNicks[i], what,
                     static_cast<unsigned>(result.error().code), result.error().detail.c_str());
      }
      FUZZ_CHECK_MSG(engine.summary() == before, "%s: %s returned error %u (%s) but changed the engine state",
                     kNicks[i], what, static_cast<unsigned>(result.error().code), result.error().detail.c_str());
      return;
    }
    Output& out = result.value();
    if (out.wake_at) m_wake[i] = out.wake_at;
    for (Bytes& payload : out.broadcasts) {
      FUZZ_CHECK(payload.size() <= kMaxWireMessageLen);
      auto decoded = codec::decode(view(payload));
      FUZZ_CHECK_MSG(decoded.ok(), "%s: %s broadcast a payload that does not decode: %s", kNicks[i], what,
                     decoded.ok() ? "" : decoded.error().detail.c_str());
      enqueue(Packet{kNicks[i], std::move(payload)});
    }
    if (verbose()) {
      std::fprintf(stderr, "t=%llu %s %s: ok, %zu broadcasts, phase %s\n", static_cast<unsigned long long>(m_now),
                   kNicks[i], what, out.broadcasts.size(), std::string(to_string(engine.phase())).c_str());
    }
    for (const Event& event : out.events) {
      FUZZ_CHECK(to_string(event.kind) != "unknown");
      if (verbose()) {
        std::fprintf(stderr, "    event %s nick=%s code=%u %s\n", std::string(to_string(event.kind)).c_str(),
                     event.nick.c_str(), static_cast<unsigned>(event.code), event.detail.c_str());
      }
      if (event.kind == EventKind::ReadyToLeave) m_leaving[i] = true;
    }
    if (m_leaving[i]) {
      // The host leaves the room; the others see the roster change.
      m_leaving[i] = false;
      unsigned mask = 0;
      for (std::size_t k = 0; k < kMembers; ++k) {
        if (m_in_room[k] && k != i) mask |= 1u << k;
      }
      change_room(mask, false);
    }
  }

  void change_room(unsigned mask, bool tell_only_first) {
    for (std::size_t i = 0; i < kMembers; ++i) m_in_room[i] = (mask >> i) & 1u;
    const std::vector<Member> members = roster();
    for (std::size_t i = 0; i < kMembers; ++i) {
      if (!m_in_room[i]) continue;
      call(i, "set_roster", [&](Engine& e) { return e.set_roster(members, m_now, m_rng); });
      if (tell_only_first) break;
    }
  }

  void enqueue(Packet p) {
    if (m_queue.size() < kMaxQueue) m_queue.push_back(std::move(p));
  }

  std::optional<Packet> pop() {
    if (m_queue.empty()) return std::nullopt;
    Packet p = std::move(m_queue.front());
    m_queue.pop_front();
    return p;
  }

  // The room reflects every payload to its sender too.
  void deliver(const Packet& p, unsigned mask) {
    for (std::size_t i = 0; i < kMembers; ++i) {
      if (!m_in_room[i] || ((mask >> i) & 1u) == 0) continue;
      call(i, "receive", [&](Engine& e) { return e.receive(p.from, view(p.payload), m_now, m_rng); });
    }
    if (m_history.size() == kMaxHistory) m_history.pop_front();
    m_history.push_back(p);
  }

  void tick_all() {
    for (std::size_t i = 0; i < kMembers; ++i) {
      if (m_in_room[i]) call(i, "tick", [&](Engine& e) { return e.tick(m_now, m_rng); });
    }
  }

  DeterministicRng m_rng;
  TimeMs m_now = 1'000'000;
  std::array<TrustStore, kMembers> m_trust{};
  std::vector<Engine> m_engines;
  std::array<bool, kMembers> m_in_room{};
  std::array<bool, kMembers> m_leaving{};
  std::array<std::optional<TimeMs>, kMembers> m_wake{};
  std::deque<Packet> m_queue;
  std::deque<Packet> m_history;
  std::size_t m_calls = 0;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  (void)identities();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Script script(data, size);
  std::uint64_t seed = 0;
  for (int i = 0; i < 8; ++i) seed |= std::uint64_t{script.byte()} << (8 * i);
  const auto trust = static_cast<TrustSetup>(script.byte() & 3);
  Room room(seed, trust);
  while (!script.done() && !room.exhausted()) {
    room.step(script);
  }
  room.finish();
  return 0;
}
