// SPDX-License-Identifier: MIT
// spec/vectors/session.json: a complete 3-member conversation.
//   1. live: engines rebuilt from the seeds run the script and broadcast exactly the recorded
//      payloads, in order, with exactly the recorded events;
//   2. isolated: each member alone, fed only the recorded payloads, reproduces its own
//      broadcasts and events (the vectors by themselves reproduce the conversation);
//   3. the recorded payloads agree with the key schedule (session id, signatures, hash chains,
//      view, transcript and end digests, key reveals), without any engine;
//   4. the derived ephemeral values recompute every commitment, DAKE key (from both sides), DAKE
//      MAC, pad, group key, group MAC and ciphertext.
#include <memory>
#include <optional>
#include <variant>

#include "mpotr/codec/messages.h"
#include "mpotr/crypto/crypto.h"
#include "mpotr/engine.h"
#include "mpotr/engine/key_schedule.h"
#include "mpotr/identity.h"
#include "mpotr/rng.h"
#include "vectors/vectors.h"

using namespace mpotr;
using namespace mpotr::vectors;

namespace {

const Json& session_doc() {
  static const Json doc = load("session.json");
  return doc;
}

struct Recorded {
  std::size_t index = 0;
  std::size_t step = 0;
  Json trigger;  // null, or the index of the broadcast whose delivery produced this one
  std::string from;
  std::string type;
  Bytes payload;
};

std::vector<Recorded> recorded_broadcasts() {
  std::vector<Recorded> out;
  for (const auto& b : session_doc().at("broadcasts")) {
    Recorded r{b.at("index").get<std::size_t>(),
               b.at("step").get<std::size_t>(),
               b.at("trigger"),
               str(b.at("from")),
               str(b.at("type")),
               unhex(b.at("payload"))};
    REQUIRE(r.index == out.size());
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> member_nicks() {
  std::vector<std::string> nicks;
  for (const auto& m : session_doc().at("members")) {
    nicks.push_back(str(m.at("nick")));
  }
  return nicks;
}

std::size_t member_index(const std::string& nick) {
  const auto nicks = member_nicks();
  const auto it = std::find(nicks.begin(), nicks.end(), nick);
  REQUIRE(it != nicks.end());
  return static_cast<std::size_t>(it - nicks.begin());
}

Timeouts timeouts() {
  const Json& t = session_doc().at("timeouts");
  Timeouts out;
  out.setup = t.at("setup").get<TimeMs>();
  out.heartbeat = t.at("heartbeat").get<TimeMs>();
  out.gap = t.at("gap").get<TimeMs>();
  out.confirm = t.at("confirm").get<TimeMs>();
  out.shutdown = t.at("shutdown").get<TimeMs>();
  return out;
}

// The comparable form of an event (as documented in session.json): every set field except detail.
Json event_json(const Event& e, std::size_t step, const Json& trigger) {
  Json j;
  j["step"] = step;
  j["trigger"] = trigger;
  j["kind"] = std::string(to_string(e.kind));
  if (e.kind == EventKind::SetupFailed || e.kind == EventKind::SetupTimeout || e.kind == EventKind::Rejected ||
      e.kind == EventKind::Refusing || e.kind == EventKind::MemberExcluded) {
    j["code"] = std::string(to_string(e.code));
  }
  if (!e.nick.empty()) {
    j["nick"] = e.nick;
  }
  if (!e.by.empty()) {
    j["by"] = e.by;
  }
  if (!e.nicks.empty()) {
    j["nicks"] = e.nicks;
  }
  if (e.seq != 0) {
    j["seq"] = e.seq;
  }
  if (e.seq_end != 0) {
    j["seq_end"] = e.seq_end;
  }
  if (!e.text.empty()) {
    j["text"] = e.text;
  }
  if (e.late) {
    j["late"] = true;
  }
  if (e.session_id != Hash32{}) {
    j["session_id"] = hex(e.session_id);
  }
  if (!e.data.empty()) {
    j["data"] = hex(e.data);
  }
  return j;
}

struct Participant {
  std::string nick;
  std::unique_ptr<DeterministicRng> rng;
  std::unique_ptr<Engine> engine;
  Json events = Json::array();
};

// Runs the script of session.json over an in-memory room. Live: every member runs and the room
// relays what they broadcast. Isolated: only member `only` runs, the room relays the recorded
// broadcasts, and the member's own broadcasts must be the recorded ones.
class Driver {
 public:
  explicit Driver(std::optional<std::string> only) : m_isolated(only.has_value()), m_recorded(recorded_broadcasts()) {
    const Json& doc = session_doc();
    for (const auto& m : doc.at("members")) {
      const std::string nick = str(m.at("nick"));
      m_roster.push_back(Member{nick, str(m.at("jid"))});
      if (only && *only != nick) {
        continue;
      }
      DeterministicRng id_rng(m.at("identity_seed").get<std::uint64_t>());
      IdentityKey identity = must(IdentityKey::generate(id_rng));
      REQUIRE(to_hex(view(identity.public_key().point())) == str(m.at("identity_public")));
      Participant p;
      p.nick = nick;
      p.rng = std::make_unique<DeterministicRng>(m.at("rng_seed").get<std::uint64_t>());
      p.engine = std::make_unique<Engine>(EngineConfig{str(doc.at("room")), nick, timeouts()}, std::move(identity));
      m_parts.push_back(std::move(p));
    }
    REQUIRE_FALSE(m_parts.empty());
  }

  void run_script() {
    const Json& script = session_doc().at("script");
    for (std::size_t s = 0; s < script.size(); ++s) {
      const Json& step = script[s];
      const std::string op = str(step.at("op"));
      const TimeMs at = step.at("at").get<TimeMs>();
      INFO("script step " << s << " (" << op << " at " << at << ")");
      if (op == "set_roster") {
        for (auto& p : m_parts) {
          absorb(p, s, nullptr, p.engine->set_roster(m_roster, at, *p.rng));
        }
      } else if (op == "send_text" || op == "leave") {
        for (auto& p : m_parts) {
          if (p.nick == str(step.at("nick"))) {
            absorb(p, s, nullptr,
                   op == "leave" ? p.engine->leave(at, *p.rng) : p.engine->send_text(str(step.at("text")), at, *p.rng));
          }
        }
      } else if (op == "tick") {
        for (auto& p : m_parts) {
          absorb(p, s, nullptr, p.engine->tick(at, *p.rng));
        }
      } else if (op == "run") {
        run(s, at);
      } else {
        FAIL("unknown script op " << op);
      }
    }
  }

  const std::vector<Recorded>& produced() const { return m_produced; }
  const std::vector<Participant>& participants() const { return m_parts; }
  const std::vector<Recorded>& recorded() const { return m_recorded; }

  // In isolated mode: every recorded broadcast of the member has been reproduced.
  bool all_own_reproduced(const std::string& nick) const {
    for (std::size_t k = m_own_next; k < m_recorded.size(); ++k) {
      if (m_recorded[k].from == nick) {
        return false;
      }
    }
    return true;
  }

 private:
  void run(std::size_t step, TimeMs at) {
    std::size_t budget = 10000;
    for (;;) {
      const std::vector<Recorded>& queue = m_isolated ? m_recorded : m_produced;
      if (m_next >= queue.size() || (m_isolated && queue[m_next].step > step)) {
        return;
      }
      REQUIRE(budget-- > 0);
      const Recorded b = queue[m_next];  // a copy: delivering may grow the queue
      const Json trigger = m_next;
      ++m_next;
      for (auto& p : m_parts) {
        absorb(p, step, trigger, p.engine->receive(b.from, view(b.payload), at, *p.rng));
      }
    }
  }

  void absorb(Participant& p, std::size_t step, const Json& trigger, Result<Output> r) {
    INFO(p.nick << " at step " << step << ", trigger " << trigger.dump());
    if (!r.ok()) {
      FAIL("engine error " << to_string(r.error().code) << ": " << r.error().detail);
    }
    for (const auto& payload : r->broadcasts) {
      auto type = must(codec::peek_type(view(payload)));
      Recorded mine{m_produced.size(), step, trigger, p.nick, std::string(codec::to_string(type)), payload};
      if (m_isolated) {
        // The member's next recorded broadcast must be exactly this one, made at the same point.
        while (m_own_next < m_recorded.size() && m_recorded[m_own_next].from != p.nick) {
          ++m_own_next;
        }
        REQUIRE(m_own_next < m_recorded.size());
        const Recorded& want = m_recorded[m_own_next++];
        INFO("recorded broadcast " << want.index << " (" << want.type << ")");
        CHECK(want.step == step);
        CHECK(want.trigger == trigger);
        CHECK(want.type == mine.type);
        CHECK(hex(want.payload) == hex(payload));
      }
      m_produced.push_back(std::move(mine));
    }
    for (const auto& e : r->events) {
      p.events.push_back(event_json(e, step, trigger));
    }
  }

 private:
  bool m_isolated = false;
  std::vector<Member> m_roster;
  std::vector<Participant> m_parts;
  std::vector<Recorded> m_recorded;
  std::vector<Recorded> m_produced;
  std::size_t m_next = 0;
  std::size_t m_own_next = 0;
};

void check_events(const Participant& p) {
  const Json& want = session_doc().at("events").at(p.nick);
  INFO("events of " << p.nick);
  for (std::size_t i = 0; i < std::min(want.size(), p.events.size()); ++i) {
    INFO("event " << i);
    CHECK(p.events[i].dump() == want[i].dump());
  }
  CHECK(p.events.size() == want.size());
}

// Everything the recorded payloads say, decoded and indexed by member.
struct Transcript {
  std::vector<codec::Offer> offers;
  std::vector<Bytes> offer_bytes;
  std::vector<codec::KeyShare> shares;
  std::vector<Bytes> share_bytes;
  std::vector<codec::Attest> attests;
  std::vector<std::optional<std::uint32_t>> final_counts;
  std::vector<std::optional<Hash32>> digests;
  std::vector<std::optional<Hash32>> reveals;
  std::vector<std::pair<std::size_t, codec::Data>> entries;  // (sender, entry) in relay order
  std::vector<std::pair<std::size_t, Bytes>> entry_payloads;
  std::size_t heartbeats = 0;
  // Every End: sender, and the digests it binds, as held when it was relayed (the room is FIFO,
  // so a member's End comes after every Digest it compared).
  struct EndSeen {
    std::size_t sender = 0;
    codec::End end;
    std::vector<std::optional<Hash32>> digests_before;
  };
  std::vector<EndSeen> ends;
  // Every message with a group MAC: (MAC'd part, MAC).
  std::vector<std::pair<Bytes, codec::Mac>> macs;
};

template <class M>
void note_mac(Transcript& t, const M& m, const Bytes& payload, const codec::Decoded& d) {
  CHECK(d.mac_len + codec::kMacLen == d.signed_len);
  t.macs.emplace_back(Bytes(payload.begin(), payload.begin() + static_cast<std::ptrdiff_t>(d.mac_len)), m.mac);
}

Transcript parse_transcript() {
  const std::size_t n = member_nicks().size();
  Transcript t;
  t.offers.resize(n);
  t.offer_bytes.resize(n);
  t.shares.resize(n);
  t.share_bytes.resize(n);
  t.attests.resize(n);
  t.final_counts.resize(n);
  t.digests.resize(n);
  t.reveals.resize(n);
  for (const auto& b : recorded_broadcasts()) {
    INFO("broadcast " << b.index << " from " << b.from);
    const std::size_t i = member_index(b.from);
    CHECK(std::string(codec::to_string(must(codec::peek_type(view(b.payload))))) == b.type);
    const codec::Decoded d = must(codec::decode(view(b.payload)));
    if (const auto* o = std::get_if<codec::Offer>(&d.message)) {
      CHECK(t.offer_bytes[i].empty());
      t.offers[i] = *o;
      t.offer_bytes[i] = b.payload;
    } else if (const auto* k = std::get_if<codec::KeyShare>(&d.message)) {
      CHECK(k->sender == i);
      CHECK(t.share_bytes[i].empty());
      t.shares[i] = *k;
      t.share_bytes[i] = Bytes(b.payload.begin(), b.payload.begin() + static_cast<std::ptrdiff_t>(d.signed_len));
    } else if (const auto* a = std::get_if<codec::Attest>(&d.message)) {
      CHECK(a->sender == i);
      t.attests[i] = *a;
    } else if (const auto* e = std::get_if<codec::Data>(&d.message)) {
      CHECK(e->sender == i);
      note_mac(t, *e, b.payload, d);
      t.entries.emplace_back(i, *e);
      t.entry_payloads.emplace_back(d.signed_len, b.payload);
      t.heartbeats += e->type == codec::MessageType::Heartbeat ? 1 : 0;
    } else if (const auto* s = std::get_if<codec::Shutdown>(&d.message)) {
      CHECK(s->sender == i);
      note_mac(t, *s, b.payload, d);
      t.final_counts[i] = s->final_count;
    } else if (const auto* q = std::get_if<codec::Quit>(&d.message)) {
      CHECK(q->sender == i);
      note_mac(t, *q, b.payload, d);
      t.final_counts[i] = q->final_count;
    } else if (const auto* g = std::get_if<codec::Digest>(&d.message)) {
      CHECK(g->sender == i);
      note_mac(t, *g, b.payload, d);
      t.digests[i] = g->transcript_digest;
    } else if (const auto* en = std::get_if<codec::End>(&d.message)) {
      CHECK(en->sender == i);
      note_mac(t, *en, b.payload, d);
      t.ends.push_back(Transcript::EndSeen{i, *en, t.digests});
    } else if (const auto* r = std::get_if<codec::KeyReveal>(&d.message)) {
      CHECK(r->sender == i);
      t.reveals[i] = r->private_key;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    INFO("member " << i);
    REQUIRE_FALSE(t.offer_bytes[i].empty());
    REQUIRE_FALSE(t.share_bytes[i].empty());
    REQUIRE(t.final_counts[i].has_value());
    REQUIRE(t.digests[i].has_value());
    REQUIRE(t.reveals[i].has_value());
  }
  return t;
}

std::vector<std::string> hashes_hex(const std::vector<Hash32>& hashes) {
  std::vector<std::string> out;
  for (const auto& h : hashes) {
    out.push_back(hex(h));
  }
  return out;
}

}  // namespace

TEST_CASE("session vectors: live replay reproduces every broadcast and event", "[vectors]") {
  Driver driver(std::nullopt);
  driver.run_script();
  const auto& want = driver.recorded();
  const auto& have = driver.produced();
  for (std::size_t k = 0; k < std::min(want.size(), have.size()); ++k) {
    INFO("broadcast " << k << ": recorded " << want[k].type << " from " << want[k].from);
    CHECK(have[k].from == want[k].from);
    CHECK(have[k].type == want[k].type);
    CHECK(have[k].step == want[k].step);
    CHECK(have[k].trigger == want[k].trigger);
    CHECK(hex(have[k].payload) == hex(want[k].payload));
  }
  REQUIRE(have.size() == want.size());
  REQUIRE(want.size() >= 24);
  REQUIRE(driver.participants().size() == 3);
  for (const auto& p : driver.participants()) {
    check_events(p);
    CHECK(std::string(to_string(p.engine->phase())) == str(session_doc().at("expected").at("final_phases").at(p.nick)));
  }
}

TEST_CASE("session vectors: each member alone reproduces its part from the recorded payloads", "[vectors]") {
  int members = 0;
  for (const auto& nick : member_nicks()) {
    INFO("member " << nick);
    Driver driver(nick);
    driver.run_script();
    REQUIRE(driver.participants().size() == 1);
    CHECK(driver.all_own_reproduced(nick));
    const Participant& p = driver.participants().front();
    check_events(p);
    CHECK(std::string(to_string(p.engine->phase())) == str(session_doc().at("expected").at("final_phases").at(nick)));
    ++members;
  }
  REQUIRE(members == 3);
}

TEST_CASE("session vectors: the recorded payloads agree with the key schedule", "[vectors]") {
  const Json& doc = session_doc();
  const Json& expected = doc.at("expected");
  const std::string room = str(doc.at("room"));
  const auto nicks = member_nicks();
  const std::size_t n = nicks.size();
  REQUIRE(n == 3);

  // Identities come from their seeds.
  for (const auto& m : doc.at("members")) {
    DeterministicRng rng(m.at("identity_seed").get<std::uint64_t>());
    const auto identity = must(IdentityKey::generate(rng));
    CHECK(hex(identity.private_key().scalar()) == str(m.at("identity_private")));
    CHECK(to_hex(view(identity.public_key().point())) == str(m.at("identity_public")));
    CHECK(hex(identity.fingerprint().bytes) == str(m.at("fingerprint")));
  }

  const Transcript t = parse_transcript();
  const Hash32 roster = ks::roster_digest(room, nicks);
  CHECK(hex(roster) == str(expected.at("roster_digest")));
  std::vector<crypto::PublicKey> signing;
  for (std::size_t i = 0; i < n; ++i) {
    INFO("offer of " << nicks[i]);
    CHECK(t.offers[i].nick == nicks[i]);
    CHECK(t.offers[i].roster_digest == roster);
    CHECK(to_hex(view(t.offers[i].identity_key)) == str(doc.at("members")[i].at("identity_public")));
    signing.push_back(must(crypto::PublicKey::from_point(view(t.offers[i].signing_key))));
  }
  const Hash32 sid = ks::session_id(room, t.offers);
  REQUIRE(hex(sid) == str(expected.at("session_id")));

  // Every signed payload verifies under its sender's ephemeral key, over the session id.
  int signed_count = 0;
  for (const auto& b : recorded_broadcasts()) {
    const codec::Decoded d = must(codec::decode(view(b.payload)));
    const auto* sig = std::visit(
        [](const auto& m) -> const codec::Signature* {
          if constexpr (requires { m.signature; }) {
            return &m.signature;
          } else {
            return nullptr;
          }
        },
        d.message);
    if (sig == nullptr) {
      continue;
    }
    INFO("broadcast " << b.index << " (" << b.type << " from " << b.from << ")");
    const Hash32 digest = ks::signed_digest(sid, ByteView(b.payload).first(d.signed_len));
    CHECK(signing[member_index(b.from)].verify_digest(digest, view(*sig)));
    ++signed_count;
  }
  REQUIRE(signed_count >= 18);

  // Setup: key shares and attests name the session; attests agree on the setup transcript.
  const Hash32 th = ks::setup_transcript_hash(t.offer_bytes, t.share_bytes);
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(t.shares[i].session_id == sid);
    CHECK(t.shares[i].shares.size() == n - 1);
    CHECK(t.attests[i].session_id == sid);
    CHECK(t.attests[i].transcript_hash == th);
    CHECK(t.attests[i].key_confirm == t.attests[0].key_confirm);
  }

  // Transcript: hash chains per sender, every view digest, the final digests.
  std::vector<std::vector<Hash32>> chains(n);
  for (std::size_t s = 0; s < n; ++s) {
    chains[s].push_back(ks::chain_start(sid, static_cast<std::uint8_t>(s)));
  }
  for (std::size_t e = 0; e < t.entries.size(); ++e) {
    const auto& [i, entry] = t.entries[e];
    INFO("entry " << entry.seq << " of " << nicks[i]);
    CHECK(entry.session_tag == ks::session_tag(sid));
    REQUIRE(entry.seq == chains[i].size());
    std::vector<std::uint32_t> counts;
    std::vector<Hash32> at;
    std::size_t a = 0;
    for (std::size_t m = 0; m < n; ++m) {
      counts.push_back(m == i ? entry.seq - 1 : entry.acks.at(a++));
      REQUIRE(counts.back() < chains[m].size());
      at.push_back(chains[m][counts.back()]);
    }
    CHECK(ks::view_digest(counts, at) == entry.view_digest);
    const auto& [signed_len, payload] = t.entry_payloads[e];
    chains[i].push_back(ks::chain_next(chains[i].back(), ks::signed_digest(sid, ByteView(payload).first(signed_len))));
  }
  CHECK(t.entries.size() >= 6);
  CHECK(t.heartbeats >= 2);
  std::vector<std::uint32_t> counts;
  std::vector<Hash32> finals;
  for (std::size_t s = 0; s < n; ++s) {
    CHECK(*t.final_counts[s] + 1 == chains[s].size());
    counts.push_back(*t.final_counts[s]);
    finals.push_back(chains[s].back());
  }
  CHECK(Json(counts) == expected.at("final_counts"));
  const Hash32 td = ks::transcript_digest(counts, finals);
  CHECK(hex(td) == str(expected.at("transcript_digest")));
  for (std::size_t s = 0; s < n; ++s) {
    INFO("digest of " << nicks[s]);
    CHECK(*t.digests[s] == td);
    CHECK(hex(*t.digests[s]) == str(expected.at("final_transcript_digests").at(nicks[s])));
  }

  // Every End binds, over its present set, the digests relayed before it (§5.14); in this
  // consistent session all three hold all three.
  REQUIRE(t.ends.size() == n);
  for (const auto& seen : t.ends) {
    INFO("end of " << nicks[seen.sender]);
    CHECK(seen.end.present.bound() <= n);
    std::vector<std::optional<Hash32>> bound(n);
    for (std::size_t m = 0; m < n; ++m) {
      if (seen.end.present.test(m)) {
        REQUIRE(seen.digests_before[m].has_value());
        bound[m] = seen.digests_before[m];
      }
    }
    CHECK(ks::end_digest(bound) == seen.end.digests_hash);
    CHECK(hex(seen.end.present.bits) == str(expected.at("end_present")));
    CHECK(hex(seen.end.digests_hash) == str(expected.at("end_digest")));
  }

  // R-SD-15: a member reveals its key only after every other member's End is in.
  std::vector<std::optional<std::size_t>> end_at(n);
  for (const auto& b : recorded_broadcasts()) {
    if (b.type == "end") {
      end_at[member_index(b.from)] = b.index;
    } else if (b.type == "key_reveal") {
      INFO("key reveal of " << b.from << " at broadcast " << b.index);
      for (std::size_t m = 0; m < n; ++m) {
        CHECK((m == member_index(b.from) || (end_at[m] && *end_at[m] < b.index)));
      }
    }
  }

  // Key reveals publish the signing keys, and every other member reports exactly that scalar.
  for (std::size_t s = 0; s < n; ++s) {
    INFO("key reveal of " << nicks[s]);
    const auto key = must(crypto::PrivateKey::from_scalar(view(*t.reveals[s])));
    CHECK(key.public_key() == signing[s]);
    for (std::size_t r = 0; r < n; ++r) {
      if (r == s) {
        continue;
      }
      int reported = 0;
      for (const auto& e : doc.at("events").at(nicks[r])) {
        if (e.at("kind") == "peer_key_published" && e.at("nick") == nicks[s]) {
          CHECK(str(e.at("data")) == hex(*t.reveals[s]));
          CHECK(str(e.at("session_id")) == hex(sid));
          ++reported;
        }
      }
      CHECK(reported == 1);
    }
  }

  // Every member established this session and found the transcript consistent.
  for (const auto& nick : nicks) {
    INFO("events of " << nick);
    int established = 0;
    int consistent = 0;
    for (const auto& e : doc.at("events").at(nick)) {
      established += e.at("kind") == "session_established" && e.at("session_id") == hex(sid) ? 1 : 0;
      consistent += e.at("kind") == "transcript_consistent" ? 1 : 0;
      CHECK(e.at("kind") != "rejected");
    }
    CHECK(established == 1);
    CHECK(consistent == 1);
  }
}

TEST_CASE("session vectors: the derived secrets recompute the setup and decrypt the conversation", "[vectors]") {
  const Json& doc = session_doc();
  const Json& derived = doc.at("derived");
  const Json& expected = doc.at("expected");
  const auto nicks = member_nicks();
  const std::size_t n = nicks.size();
  const Transcript t = parse_transcript();
  const Hash32 sid = unhex32(expected.at("session_id"));
  REQUIRE(ks::session_id(str(doc.at("room")), t.offers) == sid);

  struct Eph {
    crypto::PrivateKey identity, dh, signing, elgamal_r;
    SecretBytes secret;
  };
  std::vector<Eph> eph(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Json& e = derived.at("ephemeral")[i];
    INFO("ephemeral values of " << nicks[i]);
    REQUIRE(str(e.at("nick")) == nicks[i]);
    eph[i].identity = must(crypto::PrivateKey::from_scalar(view(unhex(doc.at("members")[i].at("identity_private")))));
    eph[i].dh = must(crypto::PrivateKey::from_scalar(view(unhex(e.at("dh_private")))));
    eph[i].signing = must(crypto::PrivateKey::from_scalar(view(unhex(e.at("signing_private")))));
    eph[i].elgamal_r = must(crypto::PrivateKey::from_scalar(view(unhex(e.at("elgamal_r_private")))));
    eph[i].secret = unhex_secret(e.at("secret"));
    CHECK(t.offers[i].identity_key == eph[i].identity.public_key().point());
    CHECK(t.offers[i].dh_key == eph[i].dh.public_key().point());
    CHECK(t.offers[i].signing_key == eph[i].signing.public_key().point());
    CHECK(hex(t.offers[i].nonce) == str(e.at("nonce")));
    CHECK(t.shares[i].elgamal_r == eph[i].elgamal_r.public_key().point());
    CHECK(hex(*t.reveals[i]) == hex(eph[i].signing.scalar()));
  }

  // Each pair as both ends compute it: j made K_{j→i} with a_j and e_j, i checks it with e_i
  // alone; the MAC verifies, the pad recovers j's secret, and the secret opens j's commitment.
  int pairs = 0;
  std::vector<SecretBytes> secrets;
  const Json& pair_values = derived.at("pairs");
  for (std::size_t j = 0; j < n; ++j) {
    secrets.push_back(eph[j].secret);
    const Json& e = derived.at("ephemeral")[j];
    CHECK(hex(t.shares[j].commit) == str(e.at("commit")));
    CHECK(ks::commit(sid, static_cast<std::uint8_t>(j), eph[j].secret) == t.shares[j].commit);
    std::size_t slot = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (i == j) {
        continue;
      }
      INFO("share from " << nicks[j] << " to " << nicks[i]);
      const auto j8 = static_cast<std::uint8_t>(j);
      const auto i8 = static_cast<std::uint8_t>(i);
      const codec::PairShare& share = t.shares[j].shares.at(slot++);
      REQUIRE(static_cast<std::size_t>(pairs) < pair_values.size());
      const Json& pv = pair_values[static_cast<std::size_t>(pairs)];
      CHECK(str(pv.at("from")) == nicks[j]);
      CHECK(str(pv.at("to")) == nicks[i]);

      const SecretBytes dh_a = must(eph[j].identity.ecdh(eph[i].dh.public_key()));
      const SecretBytes dh_e = must(eph[j].dh.ecdh(eph[i].dh.public_key()));
      CHECK(hex(dh_a) == str(pv.at("dh_a_from_e_to")));
      CHECK(hex(dh_e) == str(pv.at("dh_e_from_e_to")));
      CHECK(must(eph[i].dh.ecdh(eph[j].identity.public_key())) == dh_a);
      CHECK(must(eph[i].dh.ecdh(eph[j].dh.public_key())) == dh_e);
      const auto key_to = must(ks::dake_key_to(sid, j8, i8, eph[j].identity, eph[j].dh, eph[i].dh.public_key()));
      const auto key_from =
          must(ks::dake_key_from(sid, j8, i8, eph[i].dh, eph[j].identity.public_key(), eph[j].dh.public_key()));
      CHECK(hex(key_to) == str(pv.at("dake_key")));
      CHECK(hex(key_from) == str(pv.at("dake_key")));
      const Hash32 mac =
          ks::dake_mac(key_from, sid, j8, i8, t.offers[j].signing_key, t.offers[j].dh_key, t.shares[j].elgamal_r);
      CHECK(mac == share.mac);
      CHECK(hex(mac) == str(pv.at("dake_mac")));

      const SecretBytes shared = must(eph[i].dh.ecdh(eph[j].elgamal_r.public_key()));
      CHECK(must(eph[j].elgamal_r.ecdh(eph[i].dh.public_key())) == shared);
      CHECK(hex(shared) == str(pv.at("elgamal_shared")));
      const SecretBytes pad = must(ks::elgamal_pad(sid, j8, i8, shared, t.shares[j].elgamal_r, t.offers[i].dh_key));
      CHECK(hex(pad) == str(pv.at("pad")));
      SecretBytes recovered(32);
      for (std::size_t b = 0; b < 32; ++b) {
        recovered.data()[b] = static_cast<std::uint8_t>(share.secret_ct[b] ^ pad.data()[b]);
      }
      CHECK(hex(recovered) == hex(eph[j].secret));
      CHECK(ks::commit(sid, j8, recovered) == t.shares[j].commit);
      ++pairs;
    }
  }
  REQUIRE(pairs == 6);
  CHECK(pair_values.size() == 6);

  const SecretBytes group = ks::group_secret(sid, secrets);
  CHECK(hex(group) == str(derived.at("group_secret")));
  const Hash32 th = ks::setup_transcript_hash(t.offer_bytes, t.share_bytes);
  CHECK(hex(th) == str(derived.at("setup_transcript_hash")));
  const Hash32 kc = must(ks::key_confirm(group, th));
  CHECK(hex(kc) == str(derived.at("key_confirm")));
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(t.attests[i].key_confirm == kc);
  }

  // Every entry and shutdown message carries HMAC(K_auth, its bytes before the MAC).
  const SecretBytes auth = must(ks::auth_key(group));
  CHECK(hex(auth) == str(derived.at("auth_key")));
  for (const auto& [mac_part, mac] : t.macs) {
    INFO("MAC'd part " << to_hex(view(mac_part)).substr(0, 40));
    CHECK(ks::message_mac(auth, view(mac_part)) == mac);
  }
  REQUIRE(t.macs.size() >= 15);

  // The entries' ids, chain values, views and counter blocks.
  const Json& entries = derived.at("entries");
  REQUIRE(entries.size() == t.entries.size());
  std::vector<Hash32> chain_ends;
  for (std::size_t s = 0; s < n; ++s) {
    chain_ends.push_back(ks::chain_start(sid, static_cast<std::uint8_t>(s)));
  }
  for (std::size_t e = 0; e < t.entries.size(); ++e) {
    const auto& [i, entry] = t.entries[e];
    const auto& [signed_len, payload] = t.entry_payloads[e];
    INFO("entry " << entry.seq << " of " << nicks[i]);
    const Json& want = entries[e];
    CHECK(str(want.at("from")) == nicks[i]);
    CHECK(want.at("seq").get<std::uint32_t>() == entry.seq);
    CHECK(str(want.at("type")) == std::string(codec::to_string(entry.type)));
    const Hash32 id = ks::signed_digest(sid, ByteView(payload).first(signed_len));
    CHECK(hex(id) == str(want.at("message_id")));
    chain_ends[i] = ks::chain_next(chain_ends[i], id);
    CHECK(hex(chain_ends[i]) == str(want.at("chain")));
    std::vector<std::uint32_t> counts;
    std::size_t a = 0;
    for (std::size_t m = 0; m < n; ++m) {
      counts.push_back(m == i ? entry.seq - 1 : entry.acks.at(a++));
    }
    CHECK(Json(counts) == want.at("view_counts"));
    // Chat entries list their counter block IV(sender, seq); heartbeats have no ciphertext.
    CHECK(want.contains("iv") == (entry.type == codec::MessageType::Data));
    if (want.contains("iv")) {
      const auto key = must(ks::sender_key(group, static_cast<std::uint8_t>(i)));
      CHECK(str(want.at("iv")) == hex(ks::message_iv(key, entry.seq)));
    }
  }
  CHECK(Json(hashes_hex(chain_ends)) == derived.at("closing_chains"));

  std::vector<ks::SenderKey> sender_keys;
  for (std::size_t s = 0; s < n; ++s) {
    auto key = must(ks::sender_key(group, static_cast<std::uint8_t>(s)));
    const Json& want = derived.at("sender_keys")[s];
    CHECK(want.at("sender") == s);
    CHECK(hex(key.key) == str(want.at("key")));
    CHECK(hex(key.iv_prefix) == str(want.at("iv_prefix")));
    sender_keys.push_back(std::move(key));
  }

  // Decrypt every chat entry: exactly the expected texts, which every other member received.
  Json texts = Json::array();
  for (const auto& [i, entry] : t.entries) {
    if (entry.type != codec::MessageType::Data) {
      CHECK(entry.ciphertext.empty());
      continue;
    }
    Bytes plain(entry.ciphertext.size());
    must(crypto::aes128_ctr(sender_keys[i].key.view(), ks::message_iv(sender_keys[i], entry.seq),
                            view(entry.ciphertext), plain.data()));
    texts.push_back(Json{{"from", nicks[i]}, {"seq", entry.seq}, {"text", std::string(plain.begin(), plain.end())}});
  }
  CHECK(texts == expected.at("texts"));
  REQUIRE(texts.size() >= 3);
  for (const auto& text : texts) {
    for (const auto& nick : nicks) {
      if (nick == str(text.at("from"))) {
        continue;
      }
      INFO(nick << " receiving " << text.dump());
      int received = 0;
      for (const auto& e : doc.at("events").at(nick)) {
        received += e.at("kind") == "message_received" && e.at("nick") == text.at("from") &&
                            e.at("seq") == text.at("seq") && e.at("text") == text.at("text")
                        ? 1
                        : 0;
      }
      CHECK(received == 1);
    }
  }
}
