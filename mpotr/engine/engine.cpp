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
  Bytes payload;
};
}  // namespace

struct Engine::State {
  State(EngineConfig c, IdentityKey id, const TrustStore* t) : config(std::move(c)), identity(std::move(id)), trust(t) {}

  EngineConfig config;
  IdentityKey identity;
  const TrustStore* trust = nullptr;

  std::vector<Member> roster;  // sorted by nick
  Hash32 roster_digest{};      // of `roster`, as offers carry it
  std::uint32_t attempt_number = 0;  // of the latest attempt for this roster (kept after it ends)
  std::optional<Attempt> attempt;
  std::optional<Session> active;
  std::deque<Session> closing;
  std::map<std::string, std::deque<PendingOffer>, std::less<>> pending_offers;  // offers for rosters we lack
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
    if (attempt && (attempt->phase() == SetupPhase::Offers || attempt->phase() == SetupPhase::KeyShares ||
                    attempt->phase() == SetupPhase::Attests)) {
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
    out.merge(std::move(closing_out));
    if (closing.size() >= kMaxClosingSessions) {
      // Bound the old sessions we track: the oldest stops waiting for its stragglers.
      retire(closing.front().tag());
      closing.pop_front();
    }
    closing.push_back(std::move(*active));
    active.reset();
    return out;
  }

  void set_roster(std::vector<Member> sorted) {
    roster = std::move(sorted);
    std::vector<std::string> nicks;
    for (const auto& m : roster) {
      nicks.push_back(m.nick);
    }
    roster_digest = ks::roster_digest(config.room, nicks);
  }

  // The highest attempt number among buffered offers for the current roster: a member that saw
  // this roster before us may already have restarted on it.
  std::uint32_t pending_attempt_number() const {
    const Hash32& digest = roster_digest;
    std::uint32_t highest = 0;
    for (const auto& [nick, offers] : pending_offers) {
      for (const auto& p : offers) {
        if (p.roster_digest == digest && p.attempt <= kMaxAttemptJump) {
          highest = std::max(highest, p.attempt);
        }
      }
    }
    return highest;
  }

  // A new attempt for the current roster, seeded with the offers that were waiting for it.
  Result<Output> start_attempt(std::uint32_t number, TimeMs now, Rng& rng,
                               const std::optional<std::pair<codec::Offer, Bytes>>& seed) {
    Output out;
    attempt.reset();
    attempt_number = number;
    if (roster.size() < 2 || leaving) {
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
    if (seed) {
      waiting.emplace_back(seed->first.nick, seed->second);
    }
    for (const auto& [nick, payload] : waiting) {
      auto decoded = codec::decode(view(payload));
      if (!decoded.ok()) {
        continue;  // only decoded offers are ever stored
      }
      const auto& offer = std::get<codec::Offer>(decoded->message);
      auto r = attempt->on_offer(ctx(), offer, view(payload), nick, rng);
      if (r.ok()) {
        remember_nonce(offer.nonce);
        out.merge(std::move(r).value());
      } else {
        out.events.push_back(detail::rejected_event(r.error(), nick));
      }
    }
    MPOTR_TRY(Output established, maybe_establish());
    out.merge(std::move(established));
    return out;
  }

  Result<Output> maybe_establish() {
    Output out;
    if (!attempt || attempt->phase() != SetupPhase::Done) {
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
    return out;
  }

  Result<Output> on_offer(const codec::Offer& offer, ByteView payload, std::string_view from, TimeMs now, Rng& rng);
  Result<Output> on_setup_message(const codec::Decoded& decoded, ByteView payload, std::string_view from, Rng& rng);
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
  const bool same = sorted.size() == st.roster.size() &&
                    std::equal(sorted.begin(), sorted.end(), st.roster.begin(), [](const Member& a, const Member& b) {
                      return a.nick == b.nick && a.jid == b.jid;
                    });
  if (same) {
    return Output{};
  }
  State next = st;
  next.set_roster(std::move(sorted));
  MPOTR_TRY(Output out, next.close_active("membership changed", now, rng));
  MPOTR_TRY(Output started, next.start_attempt(next.pending_attempt_number(), now, rng, std::nullopt));
  out.merge(std::move(started));
  for (auto& s : next.closing) {
    MPOTR_TRY(Output departed, s.on_roster(next.roster, now, rng));
    out.merge(std::move(departed));
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
  if (st.roster.size() < 2) {
    return make_error(ErrorCode::InvalidState, "no roster to set up a session with");
  }
  if (st.attempt_number == std::numeric_limits<std::uint32_t>::max()) {
    return make_error(ErrorCode::LimitExceeded, "attempt numbers exhausted for this roster");
  }
  State next = st;
  MPOTR_TRY(Output out, next.close_active("restarting the session", now, rng));
  MPOTR_TRY(Output started, next.start_attempt(st.attempt_number + 1, now, rng, std::nullopt));
  out.merge(std::move(started));
  *m_state = std::move(next);
  m_state->finish(out);
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
  if (offer.roster_digest != roster_digest) {
    // Made for a membership we have not seen yet: keep it (bounded) until our roster catches up.
    auto& queue = pending_offers[std::string(from)];
    if (queue.size() >= kMaxPendingOffersPerSender) {
      queue.pop_front();
    }
    queue.push_back(PendingOffer{offer.roster_digest, offer.attempt, Bytes(payload.begin(), payload.end())});
    if (pending_offers.size() > 2 * kMaxMembers) {
      pending_offers.erase(pending_offers.begin());
    }
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
    // push everyone towards wrapping the counter.
    return make_error(ErrorCode::UnexpectedMessage, "offer's attempt number " + std::to_string(offer.attempt) +
                                                        " is too far ahead of ours (" +
                                                        std::to_string(attempt_number) + ")");
  }
  if (offer.attempt > attempt_number) {
    // That member started over (after a failure or timeout): every member moves to the highest
    // attempt number it sees, so concurrent restarts converge instead of chasing each other.
    // This touches the session and the attempt: work on a copy, commit on success.
    State next = *this;
    Output out;
    MPOTR_TRY(Output closed, next.close_active("'" + std::string(from) + "' restarted the session", now, rng));
    out.merge(std::move(closed));
    MPOTR_TRY(Output started, next.start_attempt(offer.attempt, now, rng,
                                                 std::make_pair(offer, Bytes(payload.begin(), payload.end()))));
    out.merge(std::move(started));
    next.remember_nonce(offer.nonce);
    *this = std::move(next);
    return out;
  }
  const bool running = attempt && attempt->phase() != SetupPhase::Done && attempt->phase() != SetupPhase::Failed;
  if (!running) {
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
    Output out;
    MPOTR_TRY(Output started, next.start_attempt(attempt_number + 1, now, rng, std::nullopt));
    out.merge(std::move(started));
    *this = std::move(next);
    return out;
  }
  MPOTR_TRY(Output out, attempt->on_offer(ctx(), offer, payload, from, rng));
  remember_nonce(offer.nonce);
  MPOTR_TRY(Output established, maybe_establish());
  out.merge(std::move(established));
  return out;
}

Result<Output> Engine::State::on_setup_message(const codec::Decoded& decoded, ByteView payload, std::string_view from,
                                               Rng& rng) {
  const Hash32& sid = std::holds_alternative<codec::KeyShare>(decoded.message)
                          ? std::get<codec::KeyShare>(decoded.message).session_id
                          : std::get<codec::Attest>(decoded.message).session_id;
  const bool for_attempt = attempt && (attempt->phase() == SetupPhase::Offers || attempt->session_id() == sid);
  if (!for_attempt) {
    if (find_session(ks::session_tag(sid)) != nullptr) {
      return make_error(ErrorCode::Duplicate, "setup message of a session that is already established");
    }
    for (const auto& tag : retired) {
      if (tag == ks::session_tag(sid)) {
        return make_error(ErrorCode::Replay, "setup message of a closed session");
      }
    }
    return make_error(ErrorCode::UnknownSession, "setup message for a session we are not setting up");
  }
  Result<Output> r = std::holds_alternative<codec::KeyShare>(decoded.message)
                         ? attempt->on_key_share(ctx(), std::get<codec::KeyShare>(decoded.message), payload,
                                                 decoded.signed_len, from, rng)
                         : attempt->on_attest(ctx(), std::get<codec::Attest>(decoded.message), payload,
                                              decoded.signed_len, from, rng);
  MPOTR_TRY(Output out, std::move(r));
  MPOTR_TRY(Output established, maybe_establish());
  out.merge(std::move(established));
  return out;
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
  if (s != nullptr) {
    MPOTR_TRY(Output out, dispatch_to_session(*s, decoded, payload, from, now, rng));
    stamp(out, s->id());
    return out;
  }
  for (const auto& t : retired) {
    if (t == tag) {
      return make_error(ErrorCode::Replay, "message of a closed session");
    }
  }
  return make_error(ErrorCode::UnknownSession, "message for a session we are not part of");
}

Result<Output> Engine::State::dispatch_to_session(Session& s, const codec::Decoded& decoded, ByteView payload,
                                                  std::string_view from, TimeMs now, Rng& rng) {
  const std::size_t n = decoded.signed_len;
  if (const auto* d = std::get_if<codec::Data>(&decoded.message)) {
    return s.on_data(*d, payload, n, from, now, rng);
  }
  if (const auto* sd = std::get_if<codec::Shutdown>(&decoded.message)) {
    return s.on_shutdown(*sd, payload, n, from, now, rng);
  }
  if (const auto* dg = std::get_if<codec::Digest>(&decoded.message)) {
    return s.on_digest(*dg, payload, n, from, now, rng);
  }
  if (const auto* en = std::get_if<codec::End>(&decoded.message)) {
    return s.on_end(*en, payload, n, from, now, rng);
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
    if (r.ok()) {
      st.collect_finished(*r);
    }
  } else if (std::holds_alternative<codec::KeyShare>(decoded.message) ||
             std::holds_alternative<codec::Attest>(decoded.message)) {
    r = st.on_setup_message(decoded, payload, from_nick, rng);
  } else {
    r = st.on_session_message(decoded, payload, from_nick, now, rng);
    if (r.ok()) {
      st.collect_finished(*r);
    }
  }
  if (r.ok()) {
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
  next.attempt.reset();
  MPOTR_TRY(Output out, next.close_active("leaving the room", now, rng));
  next.collect_finished(out);
  *m_state = std::move(next);
  m_state->finish(out);
  return out;
}

Result<Output> Engine::tick(TimeMs now, Rng& rng) {
  State& st = *m_state;
  Output out;
  if (st.attempt) {
    out.merge(st.attempt->on_timer(now));
  }
  if (st.active) {
    MPOTR_TRY(Output t, st.active->on_timer(now, rng, st.roster));
    stamp(t, st.active->id());
    out.merge(std::move(t));
  }
  for (auto& s : st.closing) {
    MPOTR_TRY(Output t, s.on_timer(now, rng, st.roster));
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
  if (st.attempt && (st.attempt->phase() == SetupPhase::Offers || st.attempt->phase() == SetupPhase::KeyShares ||
                     st.attempt->phase() == SetupPhase::Attests)) {
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

const std::string& Engine::self_nick() const noexcept { return m_state->config.self_nick; }

Fingerprint Engine::fingerprint() const { return m_state->identity.fingerprint(); }

void Engine::State::summarize(crypto::Sha256& h) const {
  h.update_u8(leaving ? 1 : 0).update_u8(left ? 1 : 0).update_u32(static_cast<std::uint32_t>(roster.size()));
  h.update_u32(attempt_number);
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
