// SPDX-License-Identifier: MIT
#include "mpotr/engine/session.h"

#include <algorithm>

namespace mpotr::detail {

std::string_view to_string(SessionPhase phase) noexcept {
  switch (phase) {
    case SessionPhase::Active: return "active";
    case SessionPhase::Closing: return "closing";
    case SessionPhase::Digested: return "digested";
    case SessionPhase::Ended: return "ended";
    case SessionPhase::Revealed: return "revealed";
    case SessionPhase::Closed: return "closed";
  }
  return "unknown";
}

namespace {

constexpr std::size_t kMaxOwnPending = 1024;  // own messages awaiting confirmation we track

bool same_bytes(const Bytes& a, ByteView b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

// Compared by signed part: a second valid signature over the same bytes is the same message.
Error repeated(const Bytes& stored_signed, ByteView signed_part, std::string_view what) {
  if (same_bytes(stored_signed, signed_part)) {
    return make_error(ErrorCode::Duplicate, std::string(what) + " received twice");
  }
  return make_error(ErrorCode::Equivocation, "two different " + std::string(what) + " messages from one member");
}

void earliest(std::optional<TimeMs>& acc, std::optional<TimeMs> t) {
  if (t && (!acc || *t < *acc)) {
    acc = t;
  }
}

}  // namespace

Result<Session> Session::create(SessionMaterial material, const Timeouts& timeouts) {
  Session s;
  s.m_sid = material.session_id;
  s.m_tag = ks::session_tag(s.m_sid);
  s.m_roster = std::move(material.roster);
  s.m_self = material.self;
  s.m_signing_key = std::move(material.signing_key);
  s.m_timeouts = timeouts;
  const std::size_t n = s.m_roster.size();
  s.m_peers.resize(n);
  for (std::size_t j = 0; j < n; ++j) {
    Peer& p = s.m_peers[j];
    p.signing_key = material.signing_keys[j];
    p.fingerprint = material.fingerprints[j];
    MPOTR_TRY(p.sender_key, ks::sender_key(material.group_secret, static_cast<std::uint8_t>(j)));
    p.chains.push_back(ks::chain_start(s.m_sid, static_cast<std::uint8_t>(j)));
    p.confirmed_by.assign(n, 0);
  }
  s.m_last_acked.assign(n, 0);
  return s;
}

SessionInfo Session::info() const {
  SessionInfo info;
  info.session_id = m_sid;
  info.self_index = m_self;
  info.messages_sent = m_peers[m_self].delivered;
  for (std::size_t j = 0; j < m_roster.size(); ++j) {
    info.members.push_back(MemberInfo{m_roster[j].nick, m_roster[j].jid, m_peers[j].fingerprint});
  }
  return info;
}

Result<void> Session::check_signed(const Peer& peer, ByteView payload, std::size_t signed_len,
                                   const codec::Signature& sig, Hash32* digest_out) const {
  if (peer.revealed) {
    return make_error(ErrorCode::KeyRevoked, "signed with an ephemeral key that was already published");
  }
  const Hash32 digest = ks::signed_digest(m_sid, payload.first(signed_len));
  if (!peer.signing_key.verify_digest(digest, view(sig))) {
    return make_error(ErrorCode::BadSignature, "signature does not verify");
  }
  if (digest_out != nullptr) {
    *digest_out = digest;
  }
  return {};
}

// What a signed Shutdown or Digest from member j passes before it is looked at: our own
// reflection (true: nothing more to do), a forgery in our name, the signature, a repeat of the
// copy we already hold (`have`, signed part `stored`).
Result<bool> Session::screen_signed(std::uint8_t j, const Bytes& stored, bool have, ByteView payload,
                                    std::size_t signed_len, const codec::Signature& sig, std::string_view what) const {
  const ByteView signed_part = payload.first(signed_len);
  if (j == m_self) {
    if (same_bytes(stored, signed_part)) {
      return true;
    }
    return make_error(ErrorCode::NickMismatch, "a " + std::string(what) + " in our name that we did not send");
  }
  MPOTR_CHECK(check_signed(m_peers[j], payload, signed_len, sig, nullptr));
  if (have) {
    return repeated(stored, signed_part, what);
  }
  return false;
}

std::optional<Hash32> Session::chain_at(std::size_t member, std::uint32_t count) const {
  const auto& chains = m_peers[member].chains;
  return count < chains.size() ? chains[count] : std::nullopt;
}

// Counts we acknowledge: per member, the longest prefix whose hash chain we know.
std::vector<std::uint32_t> Session::ack_counts() const {
  std::vector<std::uint32_t> counts(m_peers.size());
  for (std::size_t m = 0; m < m_peers.size(); ++m) {
    std::uint32_t c = m_peers[m].delivered;
    while (c > 0 && !chain_at(m, c)) {
      --c;
    }
    counts[m] = c;
  }
  return counts;
}

// Entries of others we have not yet acknowledged in an entry of our own.
bool Session::has_unacknowledged() const {
  const std::vector<std::uint32_t> counts = ack_counts();
  for (std::size_t m = 0; m < counts.size(); ++m) {
    if (m != m_self && counts[m] != m_last_acked[m]) {
      return true;
    }
  }
  return false;
}

// --- sending ---------------------------------------------------------------------------------

Result<Output> Session::send_text(std::string_view text, TimeMs now, Rng& rng) {
  if (text.empty() || text.size() > kMaxTextLen) {
    return make_error(ErrorCode::InvalidArgument, "message must have 1.." + std::to_string(kMaxTextLen) + " bytes");
  }
  return send_entry(codec::MessageType::Data, text, now, rng);
}

Result<Output> Session::send_entry(codec::MessageType type, std::string_view text, TimeMs now, Rng& rng) {
  if (m_phase != SessionPhase::Active) {
    return make_error(ErrorCode::NotReady, "the session is shutting down");
  }
  Peer& me = m_peers[m_self];
  if (me.delivered >= kMaxMessagesPerSession) {
    return make_error(ErrorCode::LimitExceeded, "session transcript is full; re-key needed");
  }
  const std::uint32_t seq = me.delivered + 1;
  std::vector<std::uint32_t> counts = ack_counts();
  counts[m_self] = seq - 1;
  std::vector<Hash32> chains(counts.size());
  for (std::size_t m = 0; m < counts.size(); ++m) {
    chains[m] = *chain_at(m, counts[m]);
  }

  codec::Data msg;
  msg.type = type;
  msg.session_tag = m_tag;
  msg.sender = m_self;
  msg.seq = seq;
  for (std::size_t m = 0; m < counts.size(); ++m) {
    if (m != m_self) {
      msg.acks.push_back(counts[m]);
    }
  }
  msg.view_digest = ks::view_digest(counts, chains);
  msg.ciphertext.resize(text.size());
  if (!text.empty()) {
    MPOTR_CHECK(crypto::aes128_ctr(me.sender_key.key.view(), ks::message_iv(me.sender_key, seq), as_bytes(text),
                                   msg.ciphertext.data()));
  }
  const Bytes signed_part = codec::encode_signed_part(msg);
  const Hash32 id = ks::signed_digest(m_sid, view(signed_part));
  MPOTR_TRY(msg.signature, m_signing_key.sign_digest(id, rng));

  // Commit: our own entry joins our transcript at once; the room's echo is checked against it.
  me.ids.emplace_back(id);
  me.chains.emplace_back(ks::chain_next(*me.chains.back(), id));
  me.delivered = seq;
  me.confirmed_by[m_self] = seq;
  m_last_acked = counts;
  m_heartbeat_due.reset();
  if (type == codec::MessageType::Data) {
    if (m_own_pending.size() >= kMaxOwnPending) {
      m_own_pending.pop_front();
    }
    m_own_pending.push_back(OwnPending{seq, now, false});
  }
  Output out;
  out.broadcasts.push_back(codec::encode(msg));
  for (std::size_t m = 0; m < counts.size(); ++m) {
    if (m != m_self) {
      confirm(m, counts[m], m_self, out);  // our entry acknowledges what we had seen
    }
  }
  return out;
}

// --- receiving chat entries --------------------------------------------------------------

Result<Output> Session::on_data(const codec::Data& msg, ByteView payload, std::size_t signed_len,
                                std::string_view from_nick, TimeMs now, Rng& rng) {
  (void)rng;
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  Peer& peer = m_peers[j];
  if (j == m_self) {
    const Hash32 id = ks::signed_digest(m_sid, payload.first(signed_len));
    if (msg.seq <= peer.delivered && peer.ids[msg.seq - 1] == id) {
      return Output{};  // the room reflected our own entry
    }
    return make_error(ErrorCode::NickMismatch, "an entry in our name that we did not send");
  }
  if (msg.acks.size() != m_roster.size() - 1) {
    return make_error(ErrorCode::DecodeBadValue, "entry acknowledges " + std::to_string(msg.acks.size()) +
                                                     " members, roster has " + std::to_string(m_roster.size()));
  }
  Hash32 id{};
  MPOTR_CHECK(check_signed(peer, payload, signed_len, msg.signature, &id));
  if (msg.seq <= peer.delivered) {
    const auto& known = peer.ids[msg.seq - 1];
    if (known && *known == id) {
      return make_error(ErrorCode::Duplicate, "entry " + std::to_string(msg.seq) + " of '" + std::string(from_nick) +
                                                  "' replayed");
    }
    if (known) {
      return make_error(ErrorCode::Equivocation, "'" + std::string(from_nick) + "' signed two different entries " +
                                                     std::to_string(msg.seq));
    }
  }
  if (auto it = peer.held.find(msg.seq); it != peer.held.end()) {
    if (it->second.id == id) {
      return make_error(ErrorCode::Duplicate, "entry " + std::to_string(msg.seq) + " received twice");
    }
    return make_error(ErrorCode::Equivocation, "'" + std::string(from_nick) + "' signed two different entries " +
                                                   std::to_string(msg.seq));
  }
  if (peer.final_count && msg.seq > *peer.final_count) {
    return make_error(ErrorCode::UnexpectedMessage, "entry after its sender's shutdown");
  }
  if (m_phase != SessionPhase::Active && m_phase != SessionPhase::Closing) {
    return make_error(ErrorCode::UnexpectedMessage, "entry after our transcript was closed");
  }
  const bool ahead = msg.seq > peer.delivered + 1;
  if (ahead && m_held_total >= kMaxHeldMessages) {
    return make_error(ErrorCode::LimitExceeded, "too many out-of-order entries held");
  }
  Held entry{msg, id, {}};
  entry.plaintext.resize(msg.ciphertext.size());
  if (!msg.ciphertext.empty()) {
    MPOTR_CHECK(crypto::aes128_ctr(peer.sender_key.key.view(), ks::message_iv(peer.sender_key, msg.seq),
                                   view(msg.ciphertext), entry.plaintext.data()));
  }

  // Every check passed: commit.
  Output out;
  if (msg.seq <= peer.delivered) {
    // An entry we had declared lost arrives after all: show it, the chain stays broken.
    peer.ids[msg.seq - 1] = id;
    if (msg.type == codec::MessageType::Data) {
      Event ev = make_event(EventKind::MessageReceived, m_roster[j].nick);
      ev.seq = msg.seq;
      ev.text.assign(entry.plaintext.begin(), entry.plaintext.end());
      ev.late = true;
      ev.detail = "arrived after it was reported lost";
      out.events.push_back(std::move(ev));
    }
    return out;
  }
  if (ahead) {
    peer.held.emplace(msg.seq, std::move(entry));
    ++m_held_total;
    if (!peer.gap_deadline) {
      Event gap = make_event(EventKind::Gap, m_roster[j].nick);
      gap.seq = peer.delivered + 1;
      gap.seq_end = msg.seq - 1;
      out.events.push_back(std::move(gap));
      peer.gap_deadline = now + m_timeouts.gap;
    }
    peer.expected = std::max(peer.expected, msg.seq);
    return out;
  }
  const bool late = !peer.held.empty();
  deliver(j, entry, late, now, out);
  while (!peer.held.empty() && peer.held.begin()->first == peer.delivered + 1) {
    Held next = std::move(peer.held.begin()->second);
    peer.held.erase(peer.held.begin());
    --m_held_total;
    deliver(j, next, false, now, out);
  }
  if (peer.held.empty() && peer.delivered >= peer.expected) {
    peer.gap_deadline.reset();
  }
  recheck_pending(out, now);
  MPOTR_TRY(Output more, progress(now, rng));
  out.merge(std::move(more));
  return out;
}

void Session::deliver(std::uint8_t j, const Held& entry, bool late, TimeMs now, Output& out) {
  Peer& peer = m_peers[j];
  const auto& prev = peer.chains.back();
  peer.ids.emplace_back(entry.id);
  peer.chains.push_back(prev ? std::optional<Hash32>(ks::chain_next(*prev, entry.id)) : std::nullopt);
  peer.delivered = entry.msg.seq;
  peer.confirmed_by[j] = entry.msg.seq;

  const bool is_chat = entry.msg.type == codec::MessageType::Data;
  Event ev = make_event(is_chat ? EventKind::MessageReceived : EventKind::Heartbeat, m_roster[j].nick);
  ev.seq = entry.msg.seq;
  ev.late = late;
  if (is_chat) {
    ev.text.assign(entry.plaintext.begin(), entry.plaintext.end());
  }
  out.events.push_back(std::move(ev));

  PendingView v;
  v.sender = j;
  v.seq = entry.msg.seq;
  v.digest = entry.msg.view_digest;
  v.counts.reserve(m_roster.size());
  std::size_t a = 0;
  for (std::size_t m = 0; m < m_roster.size(); ++m) {
    v.counts.push_back(m == j ? entry.msg.seq - 1 : entry.msg.acks[a++]);
  }
  check_view(v, out, true, now);

  if (is_chat && m_phase == SessionPhase::Active && !m_heartbeat_due) {
    m_heartbeat_due = now + m_timeouts.heartbeat;
  }
}

// A view digest can be checked once we hold every entry it names. Mismatch means the sender
// was shown a different transcript than we were (or is lying about it): a split view.
void Session::check_view(const PendingView& v, Output& out, bool first_time, TimeMs now) {
  const std::string& nick = m_roster[v.sender].nick;
  for (std::size_t m = 0; m < v.counts.size(); ++m) {
    if (v.counts[m] <= m_peers[m].delivered) {
      continue;
    }
    if (m == m_self) {
      Event split = make_event(EventKind::SplitView, nick);
      split.detail = "claims " + std::to_string(v.counts[m]) + " of our entries; we sent " +
                     std::to_string(m_peers[m].delivered);
      out.events.push_back(std::move(split));
      return;
    }
    // The sender has entries of member m that we lack: lost or delayed on the way to us.
    Peer& missing = m_peers[m];
    if (v.counts[m] > missing.expected) {
      missing.expected = v.counts[m];
    }
    if (!missing.gap_deadline) {
      Event gap = make_event(EventKind::Gap, m_roster[m].nick);
      gap.seq = missing.delivered + 1;
      gap.seq_end = v.counts[m];
      gap.detail = "'" + nick + "' has seen them";
      out.events.push_back(std::move(gap));
      missing.gap_deadline = now + m_timeouts.gap;
    }
    if (first_time && m_pending_views.size() < kMaxHeldMessages) {
      m_pending_views.push_back(v);
    }
    return;
  }
  std::vector<Hash32> chains(v.counts.size());
  for (std::size_t m = 0; m < v.counts.size(); ++m) {
    auto c = chain_at(m, v.counts[m]);
    if (!c) {
      return;  // names entries we lost; already reported as MessageLost
    }
    chains[m] = *c;
  }
  if (ks::view_digest(v.counts, chains) != v.digest) {
    Event split = make_event(EventKind::SplitView, nick);
    split.seq = v.seq;
    split.detail = "entry " + std::to_string(v.seq) + " of '" + nick + "' was written on a different transcript";
    out.events.push_back(std::move(split));
    return;
  }
  for (std::size_t m = 0; m < v.counts.size(); ++m) {
    if (m != v.sender) {
      confirm(m, v.counts[m], v.sender, out);
    }
  }
}

void Session::recheck_pending(Output& out, TimeMs now) {
  std::deque<PendingView> still;
  while (!m_pending_views.empty()) {
    PendingView v = std::move(m_pending_views.front());
    m_pending_views.pop_front();
    bool ready = true;
    for (std::size_t m = 0; m < v.counts.size(); ++m) {
      ready = ready && v.counts[m] <= m_peers[m].delivered;
    }
    if (ready) {
      check_view(v, out, false, now);
    } else {
      still.push_back(std::move(v));
    }
  }
  m_pending_views = std::move(still);
}

void Session::confirm(std::size_t author, std::uint32_t count, std::size_t by, Output& out) {
  Peer& p = m_peers[author];
  if (count <= p.confirmed_by[by]) {
    return;
  }
  p.confirmed_by[by] = count;
  Event ev = make_event(EventKind::Confirmed, m_roster[author].nick);
  ev.seq = count;
  ev.by = m_roster[by].nick;
  out.events.push_back(std::move(ev));

  std::uint32_t all = p.delivered;
  for (std::size_t k = 0; k < p.confirmed_by.size(); ++k) {
    if (k != author) {
      all = std::min(all, p.confirmed_by[k]);
    }
  }
  if (all > p.fully_confirmed) {
    p.fully_confirmed = all;
    Event full = make_event(EventKind::FullyConfirmed, m_roster[author].nick);
    full.seq = all;
    out.events.push_back(std::move(full));
    if (author == m_self) {
      while (!m_own_pending.empty() && m_own_pending.front().seq <= all) {
        m_own_pending.pop_front();
      }
    }
  }
}

// --- shutdown ----------------------------------------------------------------------------

Result<Output> Session::begin_shutdown(std::string_view reason, TimeMs now, Rng& rng) {
  if (m_phase != SessionPhase::Active) {
    return Output{};
  }
  codec::Shutdown msg;
  msg.session_tag = m_tag;
  msg.sender = m_self;
  msg.final_count = m_peers[m_self].delivered;
  MPOTR_TRY(const Bytes signed_part, sign_message(msg, m_sid, m_signing_key, rng));

  Session next = *this;
  Peer& me = next.m_peers[m_self];
  me.final_count = msg.final_count;
  me.shutdown_signed = signed_part;
  next.m_phase = SessionPhase::Closing;
  next.m_heartbeat_due.reset();
  next.m_shutdown_deadline = now + m_timeouts.shutdown;
  Output out;
  Event closing = make_event(EventKind::SessionClosing);
  closing.session_id = m_sid;
  closing.detail = std::string(reason);
  out.events.push_back(std::move(closing));
  out.broadcasts.push_back(codec::encode(msg));
  MPOTR_TRY(Output more, next.progress(now, rng));
  out.merge(std::move(more));
  *this = std::move(next);
  return out;
}

Result<Output> Session::on_shutdown(const codec::Shutdown& msg, ByteView payload, std::size_t signed_len,
                                    std::string_view from_nick, TimeMs now, Rng& rng) {
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  const Peer& peer = m_peers[j];
  MPOTR_TRY(const bool own_echo, screen_signed(j, peer.shutdown_signed, peer.final_count.has_value(), payload,
                                               signed_len, msg.signature, "shutdown"));
  if (own_echo) {
    return Output{};
  }
  const ByteView signed_part = payload.first(signed_len);
  const std::uint32_t have = std::max(peer.delivered, peer.held.empty() ? 0u : peer.held.rbegin()->first);
  if (msg.final_count < have) {
    return make_error(ErrorCode::Equivocation, "shutdown claims " + std::to_string(msg.final_count) +
                                                   " entries; we hold " + std::to_string(have));
  }
  Session next = *this;
  Peer& np = next.m_peers[j];
  np.final_count = msg.final_count;
  np.shutdown_signed.assign(signed_part.begin(), signed_part.end());
  np.expected = std::max(np.expected, msg.final_count);
  Output out;
  if (np.delivered < msg.final_count && !np.gap_deadline) {
    Event gap = make_event(EventKind::Gap, m_roster[j].nick);
    gap.seq = np.delivered + 1;
    gap.seq_end = msg.final_count;
    gap.detail = "announced in its shutdown";
    out.events.push_back(std::move(gap));
    np.gap_deadline = now + m_timeouts.gap;
  }
  if (next.m_phase == SessionPhase::Active) {
    MPOTR_TRY(Output started, next.begin_shutdown("'" + std::string(from_nick) + "' is closing the session", now, rng));
    out.merge(std::move(started));
  } else {
    MPOTR_TRY(Output more, next.progress(now, rng));
    out.merge(std::move(more));
  }
  *this = std::move(next);
  return out;
}

Result<Output> Session::on_digest(const codec::Digest& msg, ByteView payload, std::size_t signed_len,
                                  std::string_view from_nick, TimeMs now, Rng& rng) {
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  const Peer& peer = m_peers[j];
  MPOTR_TRY(const bool own_echo, screen_signed(j, peer.digest_signed, peer.digest.has_value(), payload, signed_len,
                                               msg.signature, "digest"));
  if (own_echo) {
    return Output{};
  }
  const ByteView signed_part = payload.first(signed_len);
  if (m_phase == SessionPhase::Active) {
    return make_error(ErrorCode::UnexpectedMessage, "digest before any shutdown");
  }
  Session next = *this;
  next.m_peers[j].digest = msg.transcript_digest;
  next.m_peers[j].digest_signed.assign(signed_part.begin(), signed_part.end());
  MPOTR_TRY(Output out, next.progress(now, rng));
  *this = std::move(next);
  return out;
}

Result<Output> Session::on_key_reveal(const codec::KeyReveal& msg, ByteView payload, std::string_view from_nick,
                                      TimeMs now, Rng& rng) {
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  Peer& peer = m_peers[j];
  if (j == m_self) {
    if (same_bytes(peer.reveal_bytes, payload)) {
      return Output{};
    }
    return make_error(ErrorCode::NickMismatch, "a key reveal in our name that we did not send");
  }
  if (peer.revealed) {
    return repeated(peer.reveal_bytes, payload, "key reveal");  // unsigned: the bytes are the message
  }
  auto key = crypto::PrivateKey::from_scalar(view(msg.private_key));
  if (!key.ok() || !(key->public_key() == peer.signing_key)) {
    return make_error(ErrorCode::BadKeyReveal, "published key of '" + std::string(from_nick) +
                                                   "' does not match its session signing key");
  }
  Session next = *this;
  next.m_peers[j].revealed = true;
  next.m_peers[j].reveal_bytes.assign(payload.begin(), payload.end());
  Output out;
  Event ev = make_event(EventKind::PeerKeyPublished, m_roster[j].nick);
  ev.session_id = m_sid;
  ev.data.assign(msg.private_key.begin(), msg.private_key.end());
  out.events.push_back(std::move(ev));
  MPOTR_TRY(Output more, next.progress(now, rng));
  out.merge(std::move(more));
  *this = std::move(next);
  return out;
}

// Moves the shutdown forward as far as the collected messages allow.
Result<Output> Session::progress(TimeMs now, Rng& rng) {
  Output out;
  if (m_phase == SessionPhase::Closing) {
    const bool closed = std::all_of(m_peers.begin(), m_peers.end(), [](const Peer& p) {
      return p.final_count && p.delivered >= *p.final_count;
    });
    if (!closed) {
      return out;
    }
    std::vector<std::uint32_t> counts;
    std::vector<Hash32> chains;
    for (std::size_t m = 0; m < m_peers.size(); ++m) {
      counts.push_back(*m_peers[m].final_count);
      chains.push_back(chain_at(m, counts.back()).value_or(Hash32{}));  // zero after a loss: never matches
    }
    codec::Digest msg;
    msg.session_tag = m_tag;
    msg.sender = m_self;
    msg.transcript_digest = ks::transcript_digest(counts, chains);
    MPOTR_TRY(const Bytes signed_part, sign_message(msg, m_sid, m_signing_key, rng));
    m_peers[m_self].digest = msg.transcript_digest;
    m_peers[m_self].digest_signed = signed_part;
    out.broadcasts.push_back(codec::encode(msg));
    m_phase = SessionPhase::Digested;
  }
  if (m_phase == SessionPhase::Digested) {
    const Hash32& mine = *m_peers[m_self].digest;
    for (std::size_t m = 0; m < m_peers.size(); ++m) {
      const Peer& p = m_peers[m];
      if (m != m_self && p.digest && *p.digest != mine) {
        report_mismatch(m, "'" + m_roster[m].nick + "' ended the session with a different transcript", out);
      }
    }
    const bool all =
        std::all_of(m_peers.begin(), m_peers.end(), [](const Peer& p) { return p.digest.has_value() || p.excused; });
    if (!all) {
      return out;
    }
    if (m_consistent) {
      Event ev = make_event(EventKind::TranscriptConsistent);
      ev.session_id = m_sid;
      for (std::size_t m = 0; m < m_peers.size(); ++m) {
        if (m_peers[m].excused && !m_peers[m].digest) {
          ev.nicks.push_back(m_roster[m].nick);
        }
      }
      if (!ev.nicks.empty()) {
        ev.detail = "among the members still in the room; the others left before the check";
      }
      out.events.push_back(std::move(ev));
    }
    // End: we hold (and have compared) every digest. Nobody publishes before every End, so a
    // digest forged later with a published key reaches only members that already compared.
    std::vector<std::optional<Hash32>> digests;
    for (const auto& p : m_peers) {
      digests.push_back(p.digest);
    }
    codec::End msg;
    msg.session_tag = m_tag;
    msg.sender = m_self;
    msg.digests_hash = ks::end_digest(digests);
    MPOTR_TRY(const Bytes signed_part, sign_message(msg, m_sid, m_signing_key, rng));
    m_peers[m_self].end_signed = signed_part;
    m_peers[m_self].end_hash = msg.digests_hash;
    out.broadcasts.push_back(codec::encode(msg));
    m_phase = SessionPhase::Ended;
  }
  if (m_phase == SessionPhase::Ended) {
    const Hash32& mine = *m_peers[m_self].end_hash;
    for (std::size_t m = 0; m < m_peers.size(); ++m) {
      const Peer& p = m_peers[m];
      if (m != m_self && p.end_hash && *p.end_hash != mine) {
        report_mismatch(m, "'" + m_roster[m].nick + "' compared other digests than we did", out);
      }
    }
    const bool all =
        std::all_of(m_peers.begin(), m_peers.end(), [](const Peer& p) { return p.end_hash.has_value() || p.excused; });
    if (!all) {
      return out;
    }
    MPOTR_TRY(Output published, publish_key(rng));
    out.merge(std::move(published));
    m_shutdown_deadline = now + m_timeouts.shutdown;
  }
  if (m_phase == SessionPhase::Revealed) {
    const bool all = std::all_of(m_peers.begin(), m_peers.end(), [&](const Peer& p) {
      return &p == &m_peers[m_self] || p.revealed || p.excused;
    });
    if (all) {
      m_phase = SessionPhase::Closed;
      Event ev = make_event(EventKind::SessionClosed);
      ev.session_id = m_sid;
      out.events.push_back(std::move(ev));
    }
  }
  return out;
}

void Session::report_mismatch(std::size_t m, std::string detail, Output& out) {
  Peer& p = m_peers[m];
  m_consistent = false;
  if (p.mismatch_reported) {
    return;
  }
  p.mismatch_reported = true;
  Event ev = make_event(EventKind::TranscriptMismatch, m_roster[m].nick);
  ev.session_id = m_sid;
  ev.detail = std::move(detail);
  out.events.push_back(std::move(ev));
}

Result<Output> Session::on_end(const codec::End& msg, ByteView payload, std::size_t signed_len,
                               std::string_view from_nick, TimeMs now, Rng& rng) {
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  const Peer& peer = m_peers[j];
  MPOTR_TRY(const bool own_echo, screen_signed(j, peer.end_signed, peer.end_hash.has_value(), payload, signed_len,
                                               msg.signature, "end"));
  if (own_echo) {
    return Output{};
  }
  if (m_phase == SessionPhase::Active) {
    return make_error(ErrorCode::UnexpectedMessage, "end before any shutdown");
  }
  const ByteView signed_part = payload.first(signed_len);
  Session next = *this;
  next.m_peers[j].end_signed.assign(signed_part.begin(), signed_part.end());
  next.m_peers[j].end_hash = msg.digests_hash;
  MPOTR_TRY(Output out, next.progress(now, rng));
  *this = std::move(next);
  return out;
}

// Every member holds the complete transcript and has stopped accepting entries, so our
// signing key can no longer authenticate anything new: publish it (deniability).
Result<Output> Session::publish_key(Rng& rng) {
  (void)rng;
  codec::KeyReveal msg;
  msg.session_tag = m_tag;
  msg.sender = m_self;
  SecretBytes scalar = m_signing_key.scalar();
  std::copy_n(scalar.data(), msg.private_key.size(), msg.private_key.begin());
  m_peers[m_self].reveal_bytes = codec::encode(msg);
  m_peers[m_self].revealed = true;
  secure_zero(msg.private_key.data(), msg.private_key.size());
  m_phase = SessionPhase::Revealed;
  Output out;
  out.broadcasts.push_back(m_peers[m_self].reveal_bytes);
  Event ev = make_event(EventKind::KeyPublished);
  ev.session_id = m_sid;
  out.events.push_back(std::move(ev));
  return out;
}

// --- timers ------------------------------------------------------------------------------

std::optional<TimeMs> Session::next_deadline() const {
  std::optional<TimeMs> t;
  if (m_phase == SessionPhase::Active) {
    earliest(t, m_heartbeat_due);
    for (const auto& p : m_own_pending) {
      if (!p.reported) {
        earliest(t, p.sent_at + m_timeouts.confirm);
        break;
      }
    }
  }
  if (m_phase != SessionPhase::Closed) {
    earliest(t, m_shutdown_deadline);
    for (const auto& p : m_peers) {
      earliest(t, p.gap_deadline);
    }
  }
  return t;
}

Result<Output> Session::on_timer(TimeMs now, Rng& rng, const std::vector<Member>& present) {
  const auto due = next_deadline();
  if (!due || *due > now) {
    return Output{};  // the common case: nothing due, no copy
  }
  Session next = *this;
  Output out;
  // Gaps that did not fill in time: report the loss and release what we held.
  for (std::size_t j = 0; j < next.m_peers.size(); ++j) {
    Peer& p = next.m_peers[j];
    if (!p.gap_deadline || *p.gap_deadline > now) {
      continue;
    }
    p.gap_deadline.reset();
    const std::uint32_t last_missing = p.held.empty() ? p.expected : p.held.begin()->first - 1;
    if (last_missing > p.delivered) {
      Event lost = make_event(EventKind::MessageLost, m_roster[j].nick);
      lost.seq = p.delivered + 1;
      lost.seq_end = last_missing;
      out.events.push_back(std::move(lost));
    }
    // Skip past the hole, even when nothing is held beyond it (the lost entries were the
    // last ones): our transcript then visibly lacks them, and shutdown can still complete.
    for (std::uint32_t seq = p.delivered + 1; seq <= last_missing; ++seq) {
      p.ids.emplace_back(std::nullopt);
      p.chains.emplace_back(std::nullopt);
    }
    p.delivered = std::max(p.delivered, last_missing);
    if (!p.held.empty()) {
      while (!p.held.empty() && p.held.begin()->first == p.delivered + 1) {
        Held h = std::move(p.held.begin()->second);
        p.held.erase(p.held.begin());
        --next.m_held_total;
        next.deliver(static_cast<std::uint8_t>(j), h, false, now, out);
      }
      if (!p.held.empty()) {
        p.gap_deadline = now + m_timeouts.gap;  // another hole further on
      }
    }
    // Views that name the lost entries can never be checked.
    std::erase_if(next.m_pending_views, [&](const PendingView& v) { return v.counts[j] > p.delivered; });
  }
  next.recheck_pending(out, now);

  if (next.m_phase == SessionPhase::Active) {
    for (auto& pending : next.m_own_pending) {
      if (pending.reported || pending.sent_at + m_timeouts.confirm > now) {
        continue;
      }
      pending.reported = true;
      Event overdue = make_event(EventKind::ConfirmationOverdue, m_roster[m_self].nick);
      overdue.seq = pending.seq;
      for (std::size_t k = 0; k < next.m_peers.size(); ++k) {
        if (k != m_self && next.m_peers[m_self].confirmed_by[k] < pending.seq) {
          overdue.nicks.push_back(m_roster[k].nick);
        }
      }
      out.events.push_back(std::move(overdue));
    }
    if (next.m_heartbeat_due && *next.m_heartbeat_due <= now) {
      next.m_heartbeat_due.reset();
      if (next.has_unacknowledged()) {
        MPOTR_TRY(Output hb, next.send_entry(codec::MessageType::Heartbeat, {}, now, rng));
        out.merge(std::move(hb));
      }
    }
  }

  // A gap that timed out may have been all that kept our transcript from closing.
  if (next.m_phase == SessionPhase::Closing) {
    MPOTR_TRY(Output more, next.progress(now, rng));
    out.merge(std::move(more));
  }

  if (next.m_shutdown_deadline && *next.m_shutdown_deadline <= now && next.m_phase != SessionPhase::Closed) {
    next.m_shutdown_deadline.reset();
    if (next.m_phase == SessionPhase::Revealed) {
      // Our key is out; peers whose keys never came change nothing for us.
      std::vector<std::string> missing;
      for (std::size_t m = 0; m < next.m_peers.size(); ++m) {
        if (m != m_self && !next.m_peers[m].revealed && !next.m_peers[m].excused) {
          missing.push_back(m_roster[m].nick);
        }
      }
      if (!missing.empty()) {
        Event ev = make_event(EventKind::ShutdownIncomplete);
        ev.session_id = m_sid;
        ev.nicks = std::move(missing);
        out.events.push_back(std::move(ev));
      }
      next.m_phase = SessionPhase::Closed;
      Event ev = make_event(EventKind::SessionClosed);
      ev.session_id = m_sid;
      out.events.push_back(std::move(ev));
    } else {
      MPOTR_TRY(Output resolved, next.resolve_stalled(present, now, rng));
      out.merge(std::move(resolved));
    }
  }
  *this = std::move(next);
  return out;
}

// The shutdown deadline passed with members missing. A member that has left the room is
// excused: its transcript is what we received of it, and it cannot be misled any more. While
// a missing member is still in the room our key stays withheld: publishing it would let the
// server forge our entries into a transcript that member has not closed. Our key is only ever
// published from Digested, i.e. after our own Digest went out.
Result<Output> Session::resolve_stalled(const std::vector<Member>& present, TimeMs now, Rng& rng) {
  Output out;
  const SessionPhase phase_before = m_phase;
  std::vector<std::string> missing;
  bool missing_present = false;
  for (std::size_t m = 0; m < m_peers.size(); ++m) {
    Peer& p = m_peers[m];
    const bool stalled = m_phase == SessionPhase::Closing    ? !p.final_count || p.delivered < *p.final_count
                         : m_phase == SessionPhase::Digested ? !p.digest && !p.excused
                                                             : !p.end_hash && !p.excused;
    if (m == m_self || !stalled) {
      continue;
    }
    missing.push_back(m_roster[m].nick);
    if (index_of(present, m_roster[m].nick) >= 0) {
      missing_present = true;
      continue;
    }
    p.excused = true;
    if (!p.final_count || *p.final_count > p.delivered) {
      p.final_count = p.delivered;  // what we have of it is all there will be
    }
  }
  MPOTR_TRY(Output more, progress(now, rng));
  out.merge(std::move(more));
  const bool published = m_phase == SessionPhase::Revealed || m_phase == SessionPhase::Closed;
  m_awaiting_departure = !published && missing_present;
  if (!published && !m_awaiting_departure && !m_shutdown_deadline) {
    // Excusing moved us on to a round that waits for members still here: time it too.
    m_shutdown_deadline = now + m_timeouts.shutdown;
  }
  if (!missing.empty() && m_incomplete_reported_in != phase_before) {
    m_incomplete_reported_in = phase_before;
    Event ev = make_event(EventKind::ShutdownIncomplete);
    ev.session_id = m_sid;
    ev.nicks = std::move(missing);
    if (m_awaiting_departure) {
      ev.detail = "our signing key is withheld until they leave the room";
    }
    out.events.insert(out.events.begin(), std::move(ev));
  }
  return out;
}

Result<Output> Session::on_roster(const std::vector<Member>& present, TimeMs now, Rng& rng) {
  if (!m_awaiting_departure) {
    return Output{};
  }
  Session next = *this;
  MPOTR_TRY(Output out, next.resolve_stalled(present, now, rng));
  *this = std::move(next);
  return out;
}

void Session::summarize(crypto::Sha256& h) const {
  h.update("session").update(view(m_sid)).update_u8(static_cast<std::uint8_t>(m_phase));
  h.update_u32(static_cast<std::uint32_t>(m_held_total)).update_u32(static_cast<std::uint32_t>(m_pending_views.size()));
  h.update_u32(static_cast<std::uint32_t>(m_own_pending.size())).update_u8(m_heartbeat_due ? 1 : 0);
  h.update_u8(m_awaiting_departure ? 1 : 0).update_u8(static_cast<std::uint8_t>(m_incomplete_reported_in));
  for (const auto& p : m_peers) {
    h.update_u32(p.delivered).update_u32(p.expected).update_u32(p.fully_confirmed);
    h.update(view(p.chains.back().value_or(Hash32{})));
    for (std::uint32_t c : p.confirmed_by) {
      h.update_u32(c);
    }
    h.update_u32(p.final_count.value_or(0xffffffffu)).update(view(p.digest.value_or(Hash32{})));
    h.update(view(p.end_hash.value_or(Hash32{})));
    h.update_u8(p.revealed ? 1 : 0).update_u8(p.gap_deadline ? 1 : 0).update_u8(p.excused ? 1 : 0);
  }
}

}  // namespace mpotr::detail
