// SPDX-License-Identifier: MIT
#include "mpotr/engine.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <set>

#include "mpotr/codec/messages.h"
#include "mpotr/engine/attempt.h"
#include "mpotr/engine/context.h"
#include "mpotr/engine/session.h"

namespace mpotr {

using detail::Attempt;
using detail::Context;
using detail::make_event;
using detail::Session;
using detail::SessionPhase;
using detail::SetupPhase;
using detail::Verdict;

namespace {

// Every event about a session names it, so hosts can tell old-session traffic during a re-key.
void stamp(Output& out, const Hash32& session_id) {
  for (auto& e : out.events) {
    if (e.session_id == Hash32{}) {
      e.session_id = session_id;
    }
  }
}

constexpr std::size_t kMaxRetiredSessions = 16;  // closed sessions whose late traffic we recognise
constexpr std::size_t kMaxRememberedOwn = 256;    // our recent broadcasts, to recognise the room's echo

struct PendingOffer {
  Hash32 roster_digest{};
  std::uint32_t attempt = 0;
  Hash32 nonce{};
  Bytes payload;
};

// A member left out of our attempts (R-ADM-2, R-KS-13): kept while that member (nick and JID)
// stays in the room; a refusal is decided again when someone joins.
struct OutRecord {
  std::string jid;
  std::vector<std::string> refuses;
  ErrorCode code = ErrorCode::Internal;
  // The key its offer showed: what a user checks (fingerprint or SMP) to let it back in.
  std::optional<Fingerprint> fingerprint;
};

bool same_members(const std::vector<Member>& a, const std::vector<Member>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const Member& x, const Member& y) { return x.nick == y.nick && x.jid == y.jid; });
}

}  // namespace

std::string_view to_string(AdmissionPolicy policy) noexcept {
  switch (policy) {
    case AdmissionPolicy::Trusted: return "trusted";
    case AdmissionPolicy::VerifiedOnly: return "verified_only";
  }
  return "unknown";
}

struct Engine::State {
  State(EngineConfig c, IdentityKey id, const TrustStore* t) : config(std::move(c)), identity(std::move(id)), trust(t) {}

  EngineConfig config;
  IdentityKey identity;
  const TrustStore* trust = nullptr;

  std::vector<Member> room;    // what the host sees in the room, sorted by nick
  std::vector<Member> roster;  // the session's candidates: room minus `left_out`, sorted by nick
  Hash32 roster_digest{};      // of `roster`, as offers carry it
  std::map<std::string, OutRecord, std::less<>> left_out;  // members left out (never ourselves)
  std::optional<std::vector<std::pair<std::string, ErrorCode>>> self_out;  // we refuse these: we stay out
  std::uint32_t attempt_number = 0;  // of the latest attempt for this roster (kept after it ends)
  std::optional<Attempt> attempt;
  std::optional<Session> active;
  std::deque<Session> closing;
  std::map<std::string, std::deque<PendingOffer>, std::less<>> pending_offers;  // offers not acted upon yet
  std::map<std::string, Hash32, std::less<>> unauthenticated_offers;  // nonce of an offer held by the active session
  bool offer_flood_reported = false;                          // once per active session (R-OFF-9)
  std::deque<Hash32> seen_nonces;
  std::set<Hash32> seen_nonce_set;
  std::deque<codec::SessionTag> retired;
  std::deque<Hash32> own_sent;  // hashes of our recent broadcasts
  bool leaving = false;
  bool left = false;

  Context ctx() const { return Context{config, identity, trust}; }

  Session* find_session(const codec::SessionTag& tag) {
    if (active && active->tag() == tag) {
      return &*active;
    }
    for (auto& s : closing) {
      if (s.tag() == tag) {
        return &s;
      }
    }
    return nullptr;
  }

  bool is_retired(const codec::SessionTag& tag) const {
    return std::find(retired.begin(), retired.end(), tag) != retired.end();
  }

  void remember_nonce(const Hash32& nonce) {
    if (!seen_nonce_set.insert(nonce).second) {
      return;
    }
    seen_nonces.push_back(nonce);
    if (seen_nonces.size() > kMaxRememberedNonces) {
      seen_nonce_set.erase(seen_nonces.front());
      seen_nonces.pop_front();
    }
  }

  // Every API call ends here: remember what we broadcast so its reflection is recognised even
  // after the attempt or session that sent it is gone.
  void finish(Output& out) {
    for (const auto& b : out.broadcasts) {
      // Chat entries are recognised by their session (by message id) without a second hash.
      const auto type = codec::peek_type(view(b));
      if (type.ok() && (*type == codec::MessageType::Data || *type == codec::MessageType::Heartbeat)) {
        continue;
      }
      own_sent.push_back(crypto::sha256(view(b)));
      if (own_sent.size() > kMaxRememberedOwn) {
        own_sent.pop_front();
      }
    }
    out.wake_at = next_deadline();
  }

  bool is_own_echo(std::string_view from, ByteView payload) const {
    if (from != config.self_nick) {
      return false;
    }
    const Hash32 h = crypto::sha256(payload);
    return std::find(own_sent.begin(), own_sent.end(), h) != own_sent.end();
  }

  void retire(const codec::SessionTag& tag) {
    retired.push_back(tag);
    if (retired.size() > kMaxRetiredSessions) {
      retired.pop_front();
    }
  }

  std::optional<TimeMs> next_deadline() const {
    std::optional<TimeMs> t;
    auto take = [&t](std::optional<TimeMs> d) {
      if (d && (!t || *d < *t)) {
        t = d;
      }
    };
    if (attempt && attempt->running()) {
      take(attempt->deadline());
    }
    if (active) {
      take(active->next_deadline());
    }
    for (const auto& s : closing) {
      take(s.next_deadline());
    }
    return t;
  }

  // Sessions that are fully closed leave; the engine keeps only their tag.
  void collect_finished(Output& out) {
    for (auto it = closing.begin(); it != closing.end();) {
      if (it->finished()) {
        retire(it->tag());
        it = closing.erase(it);
      } else {
        ++it;
      }
    }
    if (leaving && !left) {
      const bool own_keys_done = std::all_of(closing.begin(), closing.end(), [](const Session& s) {
        return s.done_with_own_key();
      }) && (!active || active->done_with_own_key());
      if (own_keys_done) {
        left = true;
        out.events.push_back(make_event(EventKind::ReadyToLeave));
      }
    }
  }

  // Moves the active session into shutdown; it keeps running until its keys are published.
  Result<Output> close_active(std::string_view reason, TimeMs now, Rng& rng) {
    Output out;
    if (!active) {
      return out;
    }
    MPOTR_TRY(Output closing_out, active->begin_shutdown(reason, now, rng));
    stamp(closing_out, active->id());
    out.merge(std::move(closing_out));
    if (closing.size() >= kMaxClosingSessions) {
      // Bound the old sessions we track: the oldest stops waiting for its stragglers.
      retire(closing.front().tag());
      closing.pop_front();
    }
    closing.push_back(std::move(*active));
    active.reset();
    unauthenticated_offers.clear();
    offer_flood_reported = false;
    return out;
  }

  // The candidates of our attempts: the room minus the members left out.
  void update_roster() {
    roster.clear();
    std::copy_if(room.begin(), room.end(), std::back_inserter(roster),
                 [&](const Member& m) { return left_out.find(m.nick) == left_out.end(); });
    std::vector<std::string> nicks;
    for (const auto& m : roster) {
      nicks.push_back(m.nick);
    }
    roster_digest = ks::roster_digest(config.room, nicks);
  }

  // The highest attempt number among buffered offers for the current roster, at most `limit`:
  // a member that saw this roster before us may already have restarted on it.
  std::uint32_t pending_attempt_number(std::uint32_t floor, std::uint32_t limit) const {
    std::uint32_t highest = floor;
    for (const auto& [nick, offers] : pending_offers) {
      for (const auto& p : offers) {
        if (p.roster_digest == roster_digest && p.attempt <= limit) {
          highest = std::max(highest, p.attempt);
        }
      }
    }
    return highest;
  }

  void buffer_offer(std::string_view from, const codec::Offer& offer, ByteView payload) {
    auto& queue = pending_offers[std::string(from)];
    for (const auto& p : queue) {
      if (p.nonce == offer.nonce) {
        return;  // the same offer again
      }
    }
    if (queue.size() >= kMaxPendingOffersPerSender) {
      queue.pop_front();
    }
    queue.push_back(PendingOffer{offer.roster_digest, offer.attempt, offer.nonce, Bytes(payload.begin(), payload.end())});
    if (pending_offers.size() > 2 * kMaxMembers) {
      pending_offers.erase(pending_offers.begin());
    }
  }

  // A new attempt for the current roster, seeded with the offers that were waiting for it. No
  // attempt while we are out (we refuse a member) or leaving, or with fewer than two members.
  Result<Output> start_attempt(std::uint32_t number, TimeMs now, Rng& rng,
                               const std::optional<std::pair<codec::Offer, Bytes>>& seed) {
    MPOTR_TRY(Output out, drop_attempt(rng));
    attempt_number = number;
    if (roster.size() < 2 || leaving || self_out) {
      if (seed) {
        buffer_offer(seed->first.nick, seed->first, view(seed->second));
      }
      return out;
    }
    MPOTR_TRY(Attempt a, Attempt::start(ctx(), roster, number, now, rng, out));
    remember_nonce(*a.offer_nonce(config.self_nick));
    attempt = std::move(a);
    std::vector<std::pair<std::string, Bytes>> waiting;
    for (auto& [nick, offers] : pending_offers) {
      for (auto it = offers.begin(); it != offers.end();) {
        if (it->roster_digest == attempt->roster_digest()) {
          if (it->attempt == number) {
            waiting.emplace_back(nick, std::move(it->payload));
          }
          it = offers.erase(it);  // lower numbers belong to abandoned attempts
        } else {
          ++it;
        }
      }
    }
    std::erase_if(pending_offers, [](const auto& kv) { return kv.second.empty(); });
    if (seed) {
      waiting.emplace_back(seed->first.nick, seed->second);
    }
    for (const auto& [nick, payload] : waiting) {
      auto decoded = codec::decode(view(payload));
      if (!decoded.ok()) {
        continue;  // only decoded offers are ever stored
      }
      const auto& offer = std::get<codec::Offer>(decoded->message);
      // R-OFF-11 holds for seeds too: a second offer of that member for this attempt, with
      // another nonce, means one of the two is stale (typically both were buffered, one from an
      // earlier time the room had these members). The next attempt starts, seeded with neither;
      // the seeds not yet processed carry the abandoned number and are dropped.
      if (const auto held = attempt->offer_nonce(nick); held && *held != offer.nonce) {
        if (number == std::numeric_limits<std::uint32_t>::max()) {
          out.events.push_back(detail::rejected_event(
              make_error(ErrorCode::LimitExceeded, "attempt numbers exhausted for this roster"), nick));
          continue;
        }
        MPOTR_TRY(Output restarted, start_attempt(number + 1, now, rng, std::nullopt));
        out.merge(std::move(restarted));
        return out;
      }
      auto r = attempt->on_offer(ctx(), offer, view(payload), nick, rng);
      if (r.ok()) {
        remember_nonce(offer.nonce);
        out.merge(std::move(r).value());
      } else {
        out.events.push_back(detail::rejected_event(r.error(), nick));
      }
    }
    MPOTR_TRY(Output settled, settle_attempt(now, rng));
    out.merge(std::move(settled));
    return out;
  }

  // One step of the running attempt, on a copy of it, committed on success. Only the attempt
  // changes unless the step concludes it, so the whole state (sessions, nonce memory: far
  // larger) is copied only to settle it. The nonce of an accepted offer is remembered.
  template <class Step>
  Result<Output> step_attempt(const Step& step, const std::optional<Hash32>& nonce, TimeMs now, Rng& rng) {
    Attempt trial = *attempt;
    MPOTR_TRY(Output out, step(trial));
    if (!trial.concluded()) {
      *attempt = std::move(trial);
      if (nonce) {
        remember_nonce(*nonce);
      }
      return out;
    }
    State next = *this;
    next.attempt = std::move(trial);
    if (nonce) {
      next.remember_nonce(*nonce);
    }
    MPOTR_TRY(Output settled, next.settle_attempt(now, rng));
    out.merge(std::move(settled));
    *this = std::move(next);
    return out;
  }

  // The running attempt is given up (R-AT-10: a Quit if the others may have established it).
  Result<Output> drop_attempt(Rng& rng) {
    Output out;
    if (attempt && attempt->running()) {
      MPOTR_TRY(out, attempt->abandon(rng));
    }
    attempt.reset();
    return out;
  }

  // After any step of the attempt: a session if it completed, the next attempt if it failed
  // with a verdict everyone reaches (members left out), nothing otherwise.
  Result<Output> settle_attempt(TimeMs now, Rng& rng) {
    Output out;
    if (!attempt) {
      return out;
    }
    if (std::optional<Verdict> verdict = attempt->take_verdict()) {
      const auto shown = attempt->identities();
      for (const Engine::OutMember& m : verdict->members) {
        if (m.member.nick == config.self_nick) {
          continue;
        }
        std::optional<Fingerprint> fp;
        for (const auto& [who, key] : shown) {
          if (who.nick == m.member.nick) {
            fp = key;
          }
        }
        left_out.insert_or_assign(m.member.nick, OutRecord{m.member.jid, m.refuses, m.code, fp});
      }
      if (verdict->self_out) {
        // We refuse someone (or were excluded): the others go on without us (R-ADM-2).
        // restart() after a trust change, or a join, brings us back.
        self_out = attempt->refused();
        attempt.reset();
        return out;
      }
      const std::uint32_t next = attempt_number == std::numeric_limits<std::uint32_t>::max() ? attempt_number
                                                                                              : attempt_number + 1;
      update_roster();
      return start_attempt(next, now, rng, std::nullopt);
    }
    if (attempt->phase() != SetupPhase::Done) {
      return out;
    }
    detail::SessionMaterial material = attempt->take_material();
    std::vector<std::pair<std::string, Fingerprint>> fresh;
    if (trust != nullptr) {
      for (std::size_t j = 0; j < material.roster.size(); ++j) {
        if (j != material.self && trust->check(material.roster[j].jid, material.fingerprints[j]) == TrustDecision::NewIdentity) {
          fresh.emplace_back(material.roster[j].nick, material.fingerprints[j]);
        }
      }
    }
    MPOTR_TRY(Session s, Session::create(std::move(material), config.timeouts));
    Event ev = make_event(EventKind::SessionEstablished);
    ev.session_id = s.id();
    for (const auto& m : s.roster()) {
      ev.nicks.push_back(m.nick);
    }
    out.events.push_back(std::move(ev));
    for (const auto& [nick, fp] : fresh) {
      Event id = make_event(EventKind::NewIdentity, nick);
      id.detail = fp.grouped();
      id.data.assign(fp.bytes.begin(), fp.bytes.end());
      out.events.push_back(std::move(id));
    }
    active = std::move(s);
    attempt.reset();
    unauthenticated_offers.clear();
    offer_flood_reported = false;
    return out;
  }

  // Offers for our roster held while the active session ran (R-OFF-9) take effect once that
  // session is no longer Active: its members' authenticated Shutdown (restart() sends one before
  // its new Offer) or Quit closed it.
  bool held_offers_may_start() const {
    return active && active->phase() != SessionPhase::Active && !(attempt && attempt->running());
  }

  Result<Output> take_held_offers(TimeMs now, Rng& rng) {
    if (!held_offers_may_start()) {
      return Output{};
    }
    const std::uint32_t limit = attempt_number > std::numeric_limits<std::uint32_t>::max() - kMaxAttemptJump
                                    ? std::numeric_limits<std::uint32_t>::max()
                                    : attempt_number + kMaxAttemptJump;
    const std::uint32_t number = pending_attempt_number(attempt_number, limit);
    if (number <= attempt_number) {
      return Output{};
    }
    MPOTR_TRY(Output out, close_active("a member restarted the session", now, rng));
    MPOTR_TRY(Output started, start_attempt(number, now, rng, std::nullopt));
    out.merge(std::move(started));
    return out;
  }

  Result<Output> on_offer(const codec::Offer& offer, ByteView payload, std::string_view from, TimeMs now, Rng& rng);
  Result<Output> on_setup_message(const codec::Decoded& decoded, ByteView payload, std::string_view from, TimeMs now,
                                  Rng& rng);
  Result<Output> on_session_message(const codec::Decoded& decoded, ByteView payload, std::string_view from,
                                    TimeMs now, Rng& rng);
  Result<Output> dispatch_to_session(Session& s, const codec::Decoded& decoded, ByteView payload,
                                     std::string_view from, TimeMs now, Rng& rng);
  void summarize(crypto::Sha256& h) const;
};

// --- construction --------------------------------------------------------------------------

Engine::Engine(EngineConfig config, IdentityKey identity, const TrustStore* trust)
    : m_state(std::make_unique<State>(std::move(config), std::move(identity), trust)) {}
Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;
Engine::Engine(const Engine& other) : m_state(std::make_unique<State>(*other.m_state)) {}
Engine& Engine::operator=(const Engine& other) {
  if (this != &other) {
    m_state = std::make_unique<State>(*other.m_state);
  }
  return *this;
}

// --- roster ----------------------------------------------------------------------------------

Result<Output> Engine::set_roster(const std::vector<Member>& members, TimeMs now, Rng& rng) {
  State& st = *m_state;
  if (st.leaving) {
    return make_error(ErrorCode::InvalidState, "leaving: the roster no longer matters");
  }
  if (st.config.room.empty() || st.config.room.size() > kMaxRoomLen) {
    return make_error(ErrorCode::InvalidArgument, "room address must have 1.." + std::to_string(kMaxRoomLen) + " bytes");
  }
  if (members.size() > kMaxMembers) {
    return make_error(ErrorCode::InvalidArgument, "at most " + std::to_string(kMaxMembers) + " members");
  }
  std::vector<Member> sorted = members;
  std::sort(sorted.begin(), sorted.end(), [](const Member& a, const Member& b) { return a.nick < b.nick; });
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const auto& nick = sorted[i].nick;
    if (nick.empty() || nick.size() > kMaxNickLen) {
      return make_error(ErrorCode::InvalidArgument, "nicks must have 1.." + std::to_string(kMaxNickLen) + " bytes");
    }
    if (i > 0 && sorted[i - 1].nick == nick) {
      return make_error(ErrorCode::InvalidArgument, "duplicate nick '" + nick + "'");
    }
  }
  if (detail::index_of(sorted, st.config.self_nick) < 0) {
    return make_error(ErrorCode::InvalidArgument, "the roster must contain our own nick");
  }
  if (same_members(sorted, st.room)) {
    return Output{};
  }
  State next = st;
  // Who is left out is re-decided on a join (a newcomer, or a member back after a trust change
  // — its presence said so), and forgotten for members that left or whose JID changed.
  const bool joined = std::any_of(sorted.begin(), sorted.end(), [&](const Member& m) {
    return !std::any_of(st.room.begin(), st.room.end(), [&](const Member& r) { return r.nick == m.nick && r.jid == m.jid; });
  });
  if (joined) {
    std::erase_if(next.left_out, [](const auto& kv) { return !kv.second.refuses.empty(); });
    next.self_out.reset();
  }
  // A refuser (we or another) stays out only while someone it refuses is in the room (R-ADM-3).
  const auto in_room = [&](const std::string& nick) { return detail::index_of(sorted, nick) >= 0; };
  if (next.self_out && std::none_of(next.self_out->begin(), next.self_out->end(),
                                    [&](const auto& refused) { return in_room(refused.first); })) {
    next.self_out.reset();
  }
  std::erase_if(next.left_out, [&](const auto& kv) {
    const auto& refuses = kv.second.refuses;
    return !refuses.empty() && std::none_of(refuses.begin(), refuses.end(), in_room);
  });
  std::erase_if(next.left_out, [&](const auto& kv) {
    const int idx = detail::index_of(sorted, kv.first);
    return idx < 0 || sorted[static_cast<std::size_t>(idx)].jid != kv.second.jid;
  });
  next.room = std::move(sorted);
  const std::vector<Member> before = next.roster;
  next.update_roster();
  Output out;
  if (!same_members(before, next.roster) || joined) {
    MPOTR_TRY(Output closed, next.close_active("membership changed", now, rng));
    out.merge(std::move(closed));
    MPOTR_TRY(Output started, next.start_attempt(next.pending_attempt_number(0, kMaxAttemptJump), now, rng, std::nullopt));
    out.merge(std::move(started));
  }
  next.collect_finished(out);
  *m_state = std::move(next);
  m_state->finish(out);
  return out;
}

Result<Output> Engine::restart(TimeMs now, Rng& rng) {
  State& st = *m_state;
  if (st.leaving) {
    return make_error(ErrorCode::InvalidState, "leaving");
  }
  if (st.room.size() < 2) {
    return make_error(ErrorCode::InvalidState, "no roster to set up a session with");
  }
  if (st.attempt_number == std::numeric_limits<std::uint32_t>::max()) {
    return make_error(ErrorCode::LimitExceeded, "attempt numbers exhausted for this roster");
  }
  State next = st;
  next.self_out.reset();  // our trust may have changed: try again with everyone we are offered
  MPOTR_TRY(Output out, next.close_active("restarting the session", now, rng));
  MPOTR_TRY(Output started, next.start_attempt(st.attempt_number + 1, now, rng, std::nullopt));
  out.merge(std::move(started));
  *m_state = std::move(next);
  m_state->finish(out);
  return out;
}

Result<Output> Engine::set_admission(AdmissionPolicy policy, TimeMs now, Rng& rng) {
  if (m_state->config.admission == policy) {
    return Output{};
  }
  Engine next = *this;
  next.m_state->config.admission = policy;
  Output out;
  if (next.m_state->room.size() >= 2 && !next.m_state->leaving) {
    MPOTR_TRY(out, next.restart(now, rng));
  }
  *this = std::move(next);
  return out;
}

// --- receiving ------------------------------------------------------------------------------

Result<Output> Engine::State::on_offer(const codec::Offer& offer, ByteView payload, std::string_view from, TimeMs now,
                                       Rng& rng) {
  if (offer.nick != from) {
    return make_error(ErrorCode::NickMismatch, "offer names '" + offer.nick + "' but came from '" + std::string(from) + "'");
  }
  const auto held_nonce = attempt ? attempt->offer_nonce(from) : std::nullopt;
  if (from == config.self_nick) {
    if (attempt && held_nonce && *held_nonce == offer.nonce) {
      return attempt->on_offer(ctx(), offer, payload, from, rng);  // our own offer reflected
    }
    if (seen_nonce_set.count(offer.nonce) != 0) {
      return Output{};  // reflection of an offer from one of our earlier attempts
    }
    return make_error(ErrorCode::NickMismatch, "an offer in our name that we did not send");
  }
  if (held_nonce && *held_nonce == offer.nonce) {
    return attempt->on_offer(ctx(), offer, payload, from, rng);  // reports the duplicate
  }
  if (seen_nonce_set.count(offer.nonce) != 0) {
    return make_error(ErrorCode::Replay, "offer from an earlier attempt replayed");
  }
  if (leaving) {
    return make_error(ErrorCode::UnexpectedMessage, "offer while we are leaving");
  }
  if (offer.roster_digest != roster_digest || self_out) {
    // Made for a membership we have not seen yet, or while we stay out: keep it (bounded)
    // until our roster catches up or we come back (R-OFF-6).
    buffer_offer(from, offer, payload);
    return Output{};
  }
  if (detail::index_of(roster, from) < 0) {
    return make_error(ErrorCode::NotAMember, "'" + std::string(from) + "' is not in our roster");
  }
  if (offer.attempt < attempt_number) {
    // Normal when members restart concurrently; an exact replay was caught by the nonce memory.
    return make_error(ErrorCode::UnexpectedMessage, "stale offer from abandoned attempt " + std::to_string(offer.attempt) +
                                                        " (we are at " + std::to_string(attempt_number) + ")");
  }
  if (offer.attempt - attempt_number > kMaxAttemptJump) {
    // An honest member is at most a few restarts ahead; a huge number would only let a forger
    // push everyone towards the end of the counter.
    return make_error(ErrorCode::UnexpectedMessage, "offer's attempt number " + std::to_string(offer.attempt) +
                                                        " is too far ahead of ours (" +
                                                        std::to_string(attempt_number) + ")");
  }
  if (offer.attempt > attempt_number && active && active->phase() == SessionPhase::Active &&
      detail::index_of(active->roster(), from) >= 0) {
    // R-OFF-9: offers are not authenticated, and a member of the running session restarts by
    // first closing it with its signed Shutdown. So this offer closes nothing: it is held until
    // the session stops being Active. The server can send such offers at will; a second one
    // from the same member while the session runs is reported once, never blamed on it.
    Output out;
    const auto held = unauthenticated_offers.find(from);
    const bool again = held != unauthenticated_offers.end() && held->second != offer.nonce;
    unauthenticated_offers.insert_or_assign(std::string(from), offer.nonce);
    buffer_offer(from, offer, payload);
    if (again && !offer_flood_reported) {
      offer_flood_reported = true;
      Event ev = make_event(EventKind::UnauthenticatedOffers, std::string(from));
      ev.session_id = active->id();
      ev.detail = "restart offers in its name that its session key does not authenticate: probably forged by the server";
      out.events.push_back(std::move(ev));
    }
    return out;
  }
  if (offer.attempt > attempt_number) {
    // That member started over (after a failure or timeout): every member moves to the highest
    // attempt number it sees, so concurrent restarts converge instead of chasing each other.
    // This touches the session and the attempt: work on a copy, commit on success.
    State next = *this;
    Output out;
    MPOTR_TRY(Output closed, next.close_active("'" + std::string(from) + "' restarted the session", now, rng));
    out.merge(std::move(closed));
    // This offer is the attempt's last seed (R-OFF-6): its errors are Rejected events, and its
    // nonce is remembered only if it is stored, so a corrupted copy cannot make the genuine
    // offer a replay.
    MPOTR_TRY(Output started, next.start_attempt(offer.attempt, now, rng,
                                                 std::make_pair(offer, Bytes(payload.begin(), payload.end()))));
    out.merge(std::move(started));
    *this = std::move(next);
    return out;
  }
  if (!attempt || !attempt->running()) {
    return make_error(ErrorCode::UnexpectedMessage, "offer for attempt " + std::to_string(offer.attempt) +
                                                        ", which has already ended; a restart is needed");
  }
  if (held_nonce && *held_nonce != offer.nonce) {
    // R-OFF-11: the sender runs this attempt with a different offer of its own than the one we
    // hold. A roster can recur (A,B → A,B,C → A,B) and an offer made the first time can arrive
    // after the roster moved on, be buffered, and seed the attempt when the roster returns, so
    // one of the two offers is stale. Both ends see the conflict and move to the next attempt
    // number, where only fresh offers count (R-OFF-12 keeps that convergent).
    if (attempt_number == std::numeric_limits<std::uint32_t>::max()) {
      return make_error(ErrorCode::LimitExceeded, "attempt numbers exhausted for this roster");
    }
    State next = *this;
    MPOTR_TRY(Output out, next.start_attempt(attempt_number + 1, now, rng, std::nullopt));
    *this = std::move(next);
    return out;
  }
  return step_attempt([&](Attempt& a) { return a.on_offer(ctx(), offer, payload, from, rng); }, offer.nonce, now, rng);
}

Result<Output> Engine::State::on_setup_message(const codec::Decoded& decoded, ByteView payload, std::string_view from,
                                               TimeMs now, Rng& rng) {
  struct Fields {
    Hash32 sid;
    std::uint8_t sender;
    codec::Signature sig;
  };
  const Fields f = std::visit(
      [](const auto& m) -> Fields {
        if constexpr (requires { m.session_id; m.sender; m.signature; }) {
          return Fields{m.session_id, m.sender, m.signature};
        } else {
          return Fields{};
        }
      },
      decoded.message);
  const codec::MessageType type = *codec::peek_type(payload);
  const bool for_attempt = attempt && (attempt->phase() == SetupPhase::Offers || attempt->session_id() == f.sid);
  if (!for_attempt) {
    if (Session* s = find_session(ks::session_tag(f.sid))) {
      // R-KS-1: a late copy of an established session's setup message is checked (sender,
      // signature) before it is called a duplicate.
      return s->on_late_setup(type, f.sender, f.sid, payload, decoded.signed_len, f.sig, from);
    }
    if (is_retired(ks::session_tag(f.sid))) {
      return make_error(ErrorCode::Replay, "setup message of a closed session");
    }
    return make_error(ErrorCode::UnknownSession, "setup message for a session we are not setting up");
  }
  const auto step = [&](Attempt& a) -> Result<Output> {
    if (const auto* ks_msg = std::get_if<codec::KeyShare>(&decoded.message)) {
      return a.on_key_share(ctx(), *ks_msg, payload, decoded.signed_len, from, rng);
    }
    if (const auto* at = std::get_if<codec::Attest>(&decoded.message)) {
      return a.on_attest(ctx(), *at, payload, decoded.signed_len, from, rng);
    }
    if (const auto* ac = std::get_if<codec::Accuse>(&decoded.message)) {
      return a.on_accuse(ctx(), *ac, payload, decoded.signed_len, from, rng);
    }
    return make_error(ErrorCode::Internal, "unrouted setup message");
  };
  return step_attempt(step, std::nullopt, now, rng);
}

Result<Output> Engine::State::on_session_message(const codec::Decoded& decoded, ByteView payload,
                                                 std::string_view from, TimeMs now, Rng& rng) {
  const codec::SessionTag tag = std::visit(
      [](const auto& m) -> codec::SessionTag {
        if constexpr (requires { m.session_tag; }) {
          return m.session_tag;
        } else {
          return codec::SessionTag{};
        }
      },
      decoded.message);
  Session* s = find_session(tag);
  if (s == nullptr) {
    if (is_retired(tag)) {
      return make_error(ErrorCode::Replay, "message of a closed session");
    }
    return make_error(ErrorCode::UnknownSession, "message for a session we are not part of");
  }
  MPOTR_TRY(Output out, dispatch_to_session(*s, decoded, payload, from, now, rng));
  stamp(out, s->id());
  // Copying the state costs O(transcript); only a closing active session can need it.
  if (s == (active ? &*active : nullptr) && held_offers_may_start()) {
    State next = *this;
    MPOTR_TRY(Output held, next.take_held_offers(now, rng));
    out.merge(std::move(held));
    *this = std::move(next);
  }
  return out;
}

Result<Output> Engine::State::dispatch_to_session(Session& s, const codec::Decoded& decoded, ByteView payload,
                                                  std::string_view from, TimeMs now, Rng& rng) {
  if (const auto* d = std::get_if<codec::Data>(&decoded.message)) {
    return s.on_data(*d, payload, decoded, from, now, rng);
  }
  if (const auto* sd = std::get_if<codec::Shutdown>(&decoded.message)) {
    return s.on_shutdown(*sd, payload, decoded, from, now, rng);
  }
  if (const auto* dg = std::get_if<codec::Digest>(&decoded.message)) {
    return s.on_digest(*dg, payload, decoded, from, now, rng);
  }
  if (const auto* en = std::get_if<codec::End>(&decoded.message)) {
    return s.on_end(*en, payload, decoded, from, now, rng);
  }
  if (const auto* q = std::get_if<codec::Quit>(&decoded.message)) {
    return s.on_quit(*q, payload, decoded, from, now, rng);
  }
  if (const auto* kr = std::get_if<codec::KeyReveal>(&decoded.message)) {
    return s.on_key_reveal(*kr, payload, from, now, rng);
  }
  return make_error(ErrorCode::Internal, "unrouted message");
}

Result<Output> Engine::receive(std::string_view from_nick, ByteView payload, TimeMs now, Rng& rng) {
  State& st = *m_state;
  // After ReadyToLeave we still take the peers' key reveals until the host leaves the room.
  if (st.is_own_echo(from_nick, payload)) {
    Output none;
    none.wake_at = st.next_deadline();
    return none;  // the room reflected one of our own messages
  }
  MPOTR_TRY(codec::Decoded decoded, codec::decode(payload));
  Result<Output> r = Output{};
  if (const auto* offer = std::get_if<codec::Offer>(&decoded.message)) {
    r = st.on_offer(*offer, payload, from_nick, now, rng);
  } else if (std::holds_alternative<codec::KeyShare>(decoded.message) ||
             std::holds_alternative<codec::Attest>(decoded.message) ||
             std::holds_alternative<codec::Accuse>(decoded.message)) {
    r = st.on_setup_message(decoded, payload, from_nick, now, rng);
  } else {
    r = st.on_session_message(decoded, payload, from_nick, now, rng);
  }
  if (r.ok()) {
    st.collect_finished(*r);
    m_state->finish(*r);
  }
  return r;
}

// --- sending, leaving, timers -----------------------------------------------------------

Result<Output> Engine::send_text(std::string_view text, TimeMs now, Rng& rng) {
  State& st = *m_state;
  if (!st.active || st.active->phase() != SessionPhase::Active || st.leaving) {
    return make_error(ErrorCode::NotReady, st.attempt ? "the secure session is still being set up"
                                                      : "there is no secure session in this room");
  }
  MPOTR_TRY(Output out, st.active->send_text(text, now, rng));
  stamp(out, st.active->id());
  st.finish(out);
  return out;
}

Result<Output> Engine::leave(TimeMs now, Rng& rng) {
  State& st = *m_state;
  if (st.leaving) {
    return make_error(ErrorCode::InvalidState, "already leaving");
  }
  State next = st;
  next.leaving = true;
  MPOTR_TRY(Output out, next.drop_attempt(rng));
  MPOTR_TRY(Output closed, next.close_active("leaving the room", now, rng));
  out.merge(std::move(closed));
  next.collect_finished(out);
  *m_state = std::move(next);
  m_state->finish(out);
  return out;
}

Result<Output> Engine::quit(TimeMs now, Rng& rng) {
  State& st = *m_state;
  if (st.left) {
    return make_error(ErrorCode::InvalidState, "already left");
  }
  State next = st;
  next.leaving = true;
  next.left = true;
  MPOTR_TRY(Output out, next.drop_attempt(rng));
  if (next.active) {
    MPOTR_TRY(Output q, next.active->quit(now, rng));
    stamp(q, next.active->id());
    out.merge(std::move(q));
    next.retire(next.active->tag());
    next.active.reset();
  }
  for (auto& s : next.closing) {
    MPOTR_TRY(Output q, s.quit(now, rng));
    stamp(q, s.id());
    out.merge(std::move(q));
    next.retire(s.tag());
  }
  next.closing.clear();
  *m_state = std::move(next);
  m_state->finish(out);
  return out;
}

Result<Output> Engine::tick(TimeMs now, Rng& rng) {
  // Each part commits on its own (Session::on_timer works on a copy when something is due), so
  // the common call with nothing due copies nothing.
  State& st = *m_state;
  Output out;
  if (st.attempt) {
    MPOTR_TRY(Output t, st.attempt->on_timer(now, rng));
    out.merge(std::move(t));
  }
  if (st.active) {
    MPOTR_TRY(Output t, st.active->on_timer(now, rng));
    stamp(t, st.active->id());
    out.merge(std::move(t));
  }
  for (auto& s : st.closing) {
    MPOTR_TRY(Output t, s.on_timer(now, rng));
    stamp(t, s.id());
    out.merge(std::move(t));
  }
  st.collect_finished(out);
  st.finish(out);
  return out;
}

// --- queries -----------------------------------------------------------------------------

Phase Engine::phase() const noexcept {
  const State& st = *m_state;
  if (st.left) {
    return Phase::Left;
  }
  if (st.leaving) {
    return Phase::Leaving;
  }
  if (st.active && st.active->phase() == SessionPhase::Active) {
    return Phase::Established;
  }
  if (st.self_out) {
    return Phase::Out;
  }
  if (st.attempt && st.attempt->running()) {
    return Phase::SettingUp;
  }
  return Phase::Idle;
}

std::optional<SessionInfo> Engine::session() const {
  if (!m_state->active) {
    return std::nullopt;
  }
  return m_state->active->info();
}

std::vector<MemberInfo> Engine::identities() const {
  std::vector<MemberInfo> out;
  if (m_state->attempt) {
    for (const auto& [m, fp] : m_state->attempt->identities()) {
      out.push_back(MemberInfo{m.nick, m.jid, fp});
    }
  } else if (m_state->active) {
    out = m_state->active->info().members;
  }
  for (const auto& entry : m_state->left_out) {
    const std::string& nick = entry.first;
    const OutRecord& rec = entry.second;
    const bool listed = std::any_of(out.begin(), out.end(), [&](const MemberInfo& m) { return m.nick == nick; });
    if (rec.fingerprint && !listed) {
      out.push_back(MemberInfo{nick, rec.jid, *rec.fingerprint});
    }
  }
  return out;
}

std::vector<Engine::OutMember> Engine::out_members() const {
  std::vector<OutMember> out;
  for (const auto& [nick, rec] : m_state->left_out) {
    out.push_back(OutMember{Member{nick, rec.jid}, rec.refuses, rec.code});
  }
  return out;
}

std::vector<std::pair<std::string, ErrorCode>> Engine::refused() const {
  return m_state->self_out.value_or(std::vector<std::pair<std::string, ErrorCode>>{});
}

const std::string& Engine::self_nick() const noexcept { return m_state->config.self_nick; }

Fingerprint Engine::fingerprint() const { return m_state->identity.fingerprint(); }

void Engine::State::summarize(crypto::Sha256& h) const {
  h.update_u8(leaving ? 1 : 0).update_u8(left ? 1 : 0).update_u32(static_cast<std::uint32_t>(room.size()));
  h.update_u32(attempt_number).update_u8(self_out ? 1 : 0).update_u32(static_cast<std::uint32_t>(left_out.size()));
  for (const auto& m : roster) {
    h.update(m.nick).update_u8(0).update(m.jid).update_u8(0);
  }
  if (attempt) {
    attempt->summarize(h);
  }
  if (active) {
    active->summarize(h);
  }
  for (const auto& s : closing) {
    s.summarize(h);
  }
  h.update_u32(static_cast<std::uint32_t>(seen_nonces.size())).update_u32(static_cast<std::uint32_t>(retired.size()));
  h.update_u32(static_cast<std::uint32_t>(unauthenticated_offers.size())).update_u8(offer_flood_reported ? 1 : 0);
  for (const auto& [nick, offers] : pending_offers) {
    h.update(nick).update_u32(static_cast<std::uint32_t>(offers.size()));
  }
}

StateSummary Engine::summary() const {
  crypto::Sha256 h;
  m_state->summarize(h);
  return StateSummary{phase(), h.finish()};
}

}  // namespace mpotr
