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

void earliest(std::optional<TimeMs>& acc, std::optional<TimeMs> t) {
  if (t && (!acc || *t < *acc)) {
    acc = t;
  }
}

Event session_event(EventKind kind, const Hash32& sid) {
  Event ev = make_event(kind);
  ev.session_id = sid;
  return ev;
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
  MPOTR_TRY(s.m_auth_key, ks::auth_key(material.group_secret));
  const std::size_t n = s.m_roster.size();
  s.m_peers.reserve(n);
  for (std::size_t j = 0; j < n; ++j) {
    const auto idx = static_cast<std::uint8_t>(j);
    MPOTR_TRY(ks::SenderKey sender_key, ks::sender_key(material.group_secret, idx));
    Peer p;
    p.signing_key = material.signing_keys[j];
    p.fingerprint = material.fingerprints[j];
    p.sender_key = std::move(sender_key);
    p.key_share_id = material.key_share_ids[j];
    p.attest_id = material.attest_ids[j];
    p.transcript = MemberTranscript(ks::chain_start(s.m_sid, idx));
    p.confirmed_by.assign(n, 0);
    s.m_peers.push_back(std::move(p));
  }
  s.m_last_acked.assign(n, 0);
  return s;
}

SessionInfo Session::info() const {
  SessionInfo info;
  info.session_id = m_sid;
  info.self_index = m_self;
  info.messages_sent = m_peers[m_self].transcript.count();
  for (std::size_t j = 0; j < m_roster.size(); ++j) {
    info.members.push_back(MemberInfo{m_roster[j].nick, m_roster[j].jid, m_peers[j].fingerprint});
  }
  return info;
}

// The group MAC first (only members hold K_auth: an outsider holding a published signing key
// still cannot forge), then revocation, then the signature (R-DATA-2, R-DATA-3).
Result<void> Session::check_authentic(const Peer& peer, ByteView payload, const codec::Decoded& d, const codec::Mac& mac,
                                      const codec::Signature& sig, const Hash32& digest) const {
  const Hash32 expected = ks::message_mac(m_auth_key, payload.first(d.mac_len));
  if (!ct_equal(view(expected), view(mac))) {
    return make_error(ErrorCode::BadMac, "not authenticated by the session's group key: forged by a non-member, or altered");
  }
  if (peer.revealed) {
    return make_error(ErrorCode::KeyRevoked, "signed with an ephemeral key that was already published");
  }
  if (!peer.signing_key.verify_digest(digest, view(sig))) {
    return make_error(ErrorCode::BadSignature, "signature does not verify");
  }
  return {};
}

// Fills in the group MAC and the signature; returns the signed part, which identifies the message.
template <class M>
Result<Bytes> Session::seal(M& msg, Rng& rng, Hash32* digest_out) const {
  msg.mac = ks::message_mac(m_auth_key, view(codec::encode_mac_part(msg)));
  return sign_message(msg, m_sid, m_signing_key, rng, digest_out);
}

// What a signed shutdown-round message from member j passes before it is looked at: our own
// reflection (true: nothing more to do), a forgery in our name, MAC and signature, a repeat of
// the copy we already hold (`have`, signed part `stored`).
Result<bool> Session::screen_signed(std::uint8_t j, const Bytes& stored, bool have, ByteView payload,
                                    const codec::Decoded& d, const codec::Mac& mac, const codec::Signature& sig,
                                    std::string_view what) const {
  const ByteView signed_part = payload.first(d.signed_len);
  if (j == m_self) {
    if (same_bytes(stored, signed_part)) {
      return true;
    }
    return make_error(ErrorCode::NickMismatch, "a " + std::string(what) + " in our name that we did not send");
  }
  MPOTR_CHECK(check_authentic(m_peers[j], payload, d, mac, sig, ks::signed_digest(m_sid, signed_part)));
  if (have) {
    return repeated(stored, signed_part, what);
  }
  return false;
}

std::optional<Hash32> Session::chain_at(std::size_t member, std::uint32_t count) const {
  return m_peers[member].transcript.chain_at(count);
}

// Counts we acknowledge: per member, the longest prefix whose hash chain we know.
std::vector<std::uint32_t> Session::ack_counts() const {
  std::vector<std::uint32_t> counts(m_peers.size());
  for (std::size_t m = 0; m < m_peers.size(); ++m) {
    counts[m] = m_peers[m].transcript.intact();
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
  if (me.transcript.count() >= kMaxMessagesPerSession) {
    return make_error(ErrorCode::LimitExceeded, "session transcript is full; re-key needed");
  }
  const std::uint32_t seq = me.transcript.count() + 1;
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
  Hash32 id{};  // the signature's digest is the entry's id (§5.11)
  MPOTR_CHECK(seal(msg, rng, &id));

  // Commit: our own entry joins our transcript at once; the room's echo is checked against it.
  me.transcript.append(id);
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

Result<Output> Session::on_data(const codec::Data& msg, ByteView payload, const codec::Decoded& d,
                                std::string_view from_nick, TimeMs now, Rng& rng) {
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  Peer& peer = m_peers[j];
  const Hash32 id = ks::signed_digest(m_sid, payload.first(d.signed_len));
  if (j == m_self) {
    if (msg.seq <= peer.transcript.count() && peer.transcript.id_at(msg.seq) == id) {
      return Output{};  // the room reflected our own entry
    }
    return make_error(ErrorCode::NickMismatch, "an entry in our name that we did not send");
  }
  if (msg.acks.size() != m_roster.size() - 1) {
    return make_error(ErrorCode::DecodeBadValue, "entry acknowledges " + std::to_string(msg.acks.size()) +
                                                     " members, roster has " + std::to_string(m_roster.size()));
  }
  MPOTR_CHECK(check_authentic(peer, payload, d, msg.mac, msg.signature, id));
  const std::string who(from_nick);
  if (msg.seq <= peer.transcript.count()) {
    if (const auto known = peer.transcript.id_at(msg.seq)) {
      if (*known == id) {
        return make_error(ErrorCode::Duplicate, "entry " + std::to_string(msg.seq) + " of '" + who + "' replayed");
      }
      return make_error(ErrorCode::Equivocation, "'" + who + "' signed two different entries " + std::to_string(msg.seq));
    }
  }
  if (auto it = peer.held.find(msg.seq); it != peer.held.end()) {
    if (it->second.id == id) {
      return make_error(ErrorCode::Duplicate, "entry " + std::to_string(msg.seq) + " received twice");
    }
    return make_error(ErrorCode::Equivocation, "'" + who + "' signed two different entries " + std::to_string(msg.seq));
  }
  if (peer.final_count && msg.seq > *peer.final_count) {
    return make_error(ErrorCode::UnexpectedMessage, "entry after its sender's shutdown");
  }
  if (m_phase != SessionPhase::Active && m_phase != SessionPhase::Closing) {
    return make_error(ErrorCode::UnexpectedMessage, "entry after our transcript was closed");
  }
  const bool ahead = msg.seq > peer.transcript.count() + 1;
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
  if (msg.seq <= peer.transcript.count()) {
    // An entry we had declared lost arrives after all: show it, the chain stays broken.
    peer.transcript.fill(msg.seq, id);
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
    peer.vouched = std::max(peer.vouched, msg.seq - 1);  // it wrote seq, so it wrote all before
    if (!peer.gap_deadline) {
      Event gap = make_event(EventKind::Gap, m_roster[j].nick);
      gap.seq = peer.transcript.count() + 1;
      gap.seq_end = msg.seq - 1;
      out.events.push_back(std::move(gap));
      peer.gap_deadline = now + m_timeouts.gap;
    }
    peer.expected = std::max(peer.expected, msg.seq);
    return out;
  }
  const bool late = !peer.held.empty();
  deliver(j, entry, late, now, out);
  while (!peer.held.empty() && peer.held.begin()->first == peer.transcript.count() + 1) {
    Held next = std::move(peer.held.begin()->second);
    peer.held.erase(peer.held.begin());
    --m_held_total;
    deliver(j, next, false, now, out);
  }
  if (peer.held.empty() && peer.transcript.count() >= peer.expected) {
    peer.gap_deadline.reset();
  }
  recheck_pending(out, now);
  MPOTR_TRY(Output more, progress(now, rng));
  out.merge(std::move(more));
  return out;
}

void Session::deliver(std::uint8_t j, const Held& entry, bool late, TimeMs now, Output& out) {
  Peer& peer = m_peers[j];
  peer.transcript.append(entry.id);
  peer.vouched = std::max(peer.vouched, entry.msg.seq);
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

  // Only a chat entry asks for an acknowledgement: heartbeats answering heartbeats would never stop.
  if (is_chat && m_phase == SessionPhase::Active && !m_heartbeat_due) {
    m_heartbeat_due = now + m_timeouts.heartbeat;
  }
}

// A view digest can be checked once we hold every entry it names. Mismatch means the sender
// was shown a different transcript than we were (or is lying about it): a split view.
void Session::check_view(const PendingView& v, Output& out, bool first_time, TimeMs now) {
  const std::string& nick = m_roster[v.sender].nick;
  // R-DATA-10 first, whatever else the view names: entries in our name we never wrote.
  if (v.counts[m_self] > m_peers[m_self].transcript.count()) {
    Event split = make_event(EventKind::SplitView, nick);
    split.detail = "claims " + std::to_string(v.counts[m_self]) + " of our entries; we sent " +
                   std::to_string(m_peers[m_self].transcript.count());
    out.events.push_back(std::move(split));
    return;
  }
  // R-DATA-11 for every member whose entries the view names and we lack, in index order.
  bool incomplete = false;
  bool contradicted = false;
  for (std::size_t m = 0; m < v.counts.size(); ++m) {
    if (m == m_self || v.counts[m] <= m_peers[m].transcript.count()) {
      continue;
    }
    Peer& missing = m_peers[m];
    if (missing.final_count && v.counts[m] > *missing.final_count) {
      // R-SD-18 in the other order: m's signed final count is already held, and the sender
      // claims more. The author's own statement counts: a split view naming the sender; the
      // count known to exist stays the final count (no Gap, no loss beyond it).
      contradicted = true;
      Event split = make_event(EventKind::SplitView, nick);
      split.detail = "acknowledged " + std::to_string(v.counts[m]) + " entries of '" + m_roster[m].nick +
                     "', whose signed final count is " + std::to_string(*missing.final_count);
      out.events.push_back(std::move(split));
      continue;
    }
    incomplete = true;
    // The sender has entries of member m that we lack: lost or delayed on the way to us, or a
    // claim the sender alone makes (reported as such if they never come).
    if (v.counts[m] > missing.expected) {
      missing.expected = v.counts[m];
      if (v.counts[m] > missing.vouched) {
        missing.claimed_by = v.sender;
      }
    }
    if (!missing.gap_deadline) {
      Event gap = make_event(EventKind::Gap, m_roster[m].nick);
      gap.seq = missing.transcript.count() + 1;
      gap.seq_end = v.counts[m];
      gap.by = nick;
      gap.detail = "'" + nick + "' acknowledged them";
      out.events.push_back(std::move(gap));
      missing.gap_deadline = now + m_timeouts.gap;
    }
  }
  if (contradicted) {
    return;  // it names entries that can never be held: not kept, never checked
  }
  if (incomplete) {
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
      ready = ready && v.counts[m] <= m_peers[m].transcript.count();
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

  std::uint32_t all = p.transcript.count();
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

// The gap of member j timed out: the missing range is lost. Entries only another member's
// acknowledgement claims are reported with that member as `by` (honest attribution: the
// author never vouched for them).
void Session::declare_lost(std::size_t j, TimeMs now, Output& out) {
  Peer& p = m_peers[j];
  p.gap_deadline.reset();
  const std::uint32_t count = p.transcript.count();
  const std::uint32_t last_missing = p.held.empty() ? p.expected : p.held.begin()->first - 1;
  if (last_missing > count) {
    Event lost = make_event(EventKind::MessageLost, m_roster[j].nick);
    lost.seq = count + 1;
    lost.seq_end = last_missing;
    if (last_missing > p.vouched && p.claimed_by) {
      lost.by = m_roster[*p.claimed_by].nick;
      lost.detail = "only '" + lost.by + "' acknowledged entries beyond #" + std::to_string(p.vouched);
    }
    out.events.push_back(std::move(lost));
  }
  // Skip past the hole, even when nothing is held beyond it (the lost entries were the last
  // ones): our transcript then visibly lacks them, and shutdown can still complete.
  p.transcript.skip_to(last_missing);
  while (!p.held.empty() && p.held.begin()->first == p.transcript.count() + 1) {
    Held h = std::move(p.held.begin()->second);
    p.held.erase(p.held.begin());
    --m_held_total;
    deliver(static_cast<std::uint8_t>(j), h, false, now, out);
  }
  const std::uint32_t count_after = p.transcript.count();
  const std::uint32_t next_missing = p.held.empty() ? p.expected : p.held.begin()->first - 1;
  if (next_missing > count_after) {
    // Another hole further on (entries held beyond it, or claimed by a view): time it too.
    p.gap_deadline = now + m_timeouts.gap;
    Event gap = make_event(EventKind::Gap, m_roster[j].nick);
    gap.seq = count_after + 1;
    gap.seq_end = next_missing;
    if (next_missing > p.vouched && p.claimed_by) {
      gap.by = m_roster[*p.claimed_by].nick;
      gap.detail = "'" + gap.by + "' acknowledged them";
    }
    out.events.push_back(std::move(gap));
  }
  // Views that name the lost entries can never be checked.
  std::erase_if(m_pending_views, [&](const PendingView& v) { return v.counts[j] > p.transcript.count(); });
}

// --- shutdown ----------------------------------------------------------------------------

Result<Output> Session::begin_shutdown(std::string_view reason, TimeMs now, Rng& rng) {
  if (m_phase != SessionPhase::Active) {
    return Output{};
  }
  codec::Shutdown msg;
  msg.session_tag = m_tag;
  msg.sender = m_self;
  msg.final_count = m_peers[m_self].transcript.count();
  MPOTR_TRY(const Bytes signed_part, seal(msg, rng));

  Session next = *this;
  Peer& me = next.m_peers[m_self];
  me.final_count = msg.final_count;
  me.shutdown_signed = signed_part;
  next.m_phase = SessionPhase::Closing;
  next.m_heartbeat_due.reset();
  next.m_shutdown_deadline = now + m_timeouts.shutdown;
  Output out;
  Event closing = session_event(EventKind::SessionClosing, m_sid);
  closing.detail = std::string(reason);
  out.events.push_back(std::move(closing));
  out.broadcasts.push_back(codec::encode(msg));
  MPOTR_TRY(Output more, next.progress(now, rng));
  out.merge(std::move(more));
  *this = std::move(next);
  return out;
}

// A final count (Shutdown or Quit) below an entry of that member we hold means it signed more
// entries than it now claims (R-SD-4); two different final counts are two different statements.
Result<void> Session::check_final_count(std::uint8_t j, std::uint32_t final_count, std::string_view what) const {
  const Peer& peer = m_peers[j];
  const std::uint32_t have = std::max(peer.transcript.count(), peer.held.empty() ? 0u : peer.held.rbegin()->first);
  if (final_count < have) {
    return make_error(ErrorCode::Equivocation, std::string(what) + " claims " + std::to_string(final_count) +
                                                   " entries; we hold " + std::to_string(have));
  }
  if (peer.final_count && *peer.final_count != final_count && !peer.excused) {
    return make_error(ErrorCode::Equivocation, std::string(what) + " claims " + std::to_string(final_count) +
                                                   " entries; its earlier statement said " +
                                                   std::to_string(*peer.final_count));
  }
  return {};
}

// Member j signed that it wrote final_count entries. A member whose acknowledgement claimed
// more contradicted it (a split view we can name); anything between what we hold and the final
// count is a gap (R-SD-5).
void Session::note_final_count(std::uint8_t j, std::uint32_t final_count, TimeMs now, Output& out) {
  Peer& p = m_peers[j];
  p.final_count = final_count;
  p.vouched = std::max(p.vouched, final_count);
  if (p.expected > final_count) {
    if (p.claimed_by) {
      Event split = make_event(EventKind::SplitView, m_roster[*p.claimed_by].nick);
      split.detail = "acknowledged " + std::to_string(p.expected) + " entries of '" + m_roster[j].nick +
                     "', whose signed final count is " + std::to_string(final_count);
      out.events.push_back(std::move(split));
    }
    p.expected = final_count;
    p.claimed_by.reset();
    if (p.held.empty() && p.transcript.count() >= final_count) {
      p.gap_deadline.reset();
    }
    // Views that name more of j's entries than exist can never be complete (R-DATA-5): dropped
    // unchecked, as a view that arrives after the final count is never kept.
    std::erase_if(m_pending_views, [&](const PendingView& v) { return v.counts[j] > final_count; });
  }
  p.expected = std::max(p.expected, final_count);
  if (p.transcript.count() < final_count && !p.gap_deadline) {
    Event gap = make_event(EventKind::Gap, m_roster[j].nick);
    gap.seq = p.transcript.count() + 1;
    gap.seq_end = final_count;
    gap.detail = "announced in its shutdown";
    out.events.push_back(std::move(gap));
    p.gap_deadline = now + m_timeouts.gap;
  }
}

Result<Output> Session::on_shutdown(const codec::Shutdown& msg, ByteView payload, const codec::Decoded& d,
                                    std::string_view from_nick, TimeMs now, Rng& rng) {
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  const Peer& peer = m_peers[j];
  MPOTR_TRY(const bool own_echo, screen_signed(j, peer.shutdown_signed, !peer.shutdown_signed.empty(), payload, d,
                                               msg.mac, msg.signature, "shutdown"));
  if (own_echo) {
    return Output{};
  }
  MPOTR_CHECK(check_final_count(j, msg.final_count, "shutdown"));
  const ByteView signed_part = payload.first(d.signed_len);
  Session next = *this;
  next.m_peers[j].shutdown_signed.assign(signed_part.begin(), signed_part.end());
  Output out;
  next.note_final_count(j, msg.final_count, now, out);
  MPOTR_TRY(Output more, next.join_shutdown("'" + std::string(from_nick) + "' is closing the session", now, rng));
  out.merge(std::move(more));
  *this = std::move(next);
  return out;
}

// A member's Shutdown or Quit: we start our own shutdown if we had not, else it moves on.
Result<Output> Session::join_shutdown(std::string_view reason, TimeMs now, Rng& rng) {
  if (m_phase == SessionPhase::Active) {
    return begin_shutdown(reason, now, rng);
  }
  return progress(now, rng);
}

// A Quit (R-SD-15): the sender leaves without finishing and accepts nothing more here. It
// counts as its shutdown (final count) and as its End for our key publication; it is excused
// from the consistency check.
Result<Output> Session::on_quit(const codec::Quit& msg, ByteView payload, const codec::Decoded& d,
                                std::string_view from_nick, TimeMs now, Rng& rng) {
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  const Peer& peer = m_peers[j];
  MPOTR_TRY(const bool own_echo, screen_signed(j, peer.quit_signed, !peer.quit_signed.empty(), payload, d, msg.mac,
                                               msg.signature, "quit"));
  if (own_echo) {
    return Output{};
  }
  MPOTR_CHECK(check_final_count(j, msg.final_count, "quit"));
  const ByteView signed_part = payload.first(d.signed_len);
  Session next = *this;
  Peer& np = next.m_peers[j];
  np.quit_signed.assign(signed_part.begin(), signed_part.end());
  np.excused = true;
  Output out;
  if (!np.final_count) {
    next.note_final_count(j, msg.final_count, now, out);
  }
  MPOTR_TRY(Output more, next.join_shutdown("'" + std::string(from_nick) + "' quit the session", now, rng));
  out.merge(std::move(more));
  *this = std::move(next);
  return out;
}

Result<Output> Session::on_digest(const codec::Digest& msg, ByteView payload, const codec::Decoded& d,
                                  std::string_view from_nick, TimeMs now, Rng& rng) {
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  const Peer& peer = m_peers[j];
  MPOTR_TRY(const bool own_echo, screen_signed(j, peer.digest_signed, peer.digest.has_value(), payload, d, msg.mac,
                                               msg.signature, "digest"));
  if (own_echo) {
    return Output{};
  }
  if (m_phase == SessionPhase::Active) {
    return make_error(ErrorCode::UnexpectedMessage, "digest before any shutdown");
  }
  const ByteView signed_part = payload.first(d.signed_len);
  Session next = *this;
  next.m_peers[j].digest = msg.transcript_digest;
  next.m_peers[j].digest_signed.assign(signed_part.begin(), signed_part.end());
  Output out;
  const auto& mine = next.m_peers[m_self].digest;
  if (mine && *mine != msg.transcript_digest) {
    // Late (from a member excused at the deadline) or in time: a different transcript either way.
    next.report_mismatch(j, "'" + m_roster[j].nick + "' ended the session with a different transcript", out);
  }
  MPOTR_TRY(Output more, next.progress(now, rng));
  out.merge(std::move(more));
  *this = std::move(next);
  return out;
}

Result<Output> Session::on_end(const codec::End& msg, ByteView payload, const codec::Decoded& d,
                               std::string_view from_nick, TimeMs now, Rng& rng) {
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  const Peer& peer = m_peers[j];
  MPOTR_TRY(const bool own_echo, screen_signed(j, peer.end_signed, peer.end_hash.has_value(), payload, d, msg.mac,
                                               msg.signature, "end"));
  if (own_echo) {
    return Output{};
  }
  if (msg.present.bound() > m_roster.size()) {
    return make_error(ErrorCode::DecodeBadValue, "end names digests of members outside the roster");
  }
  if (m_phase == SessionPhase::Active) {
    return make_error(ErrorCode::UnexpectedMessage, "end before any shutdown");
  }
  const ByteView signed_part = payload.first(d.signed_len);
  Session next = *this;
  Peer& np = next.m_peers[j];
  np.end_signed.assign(signed_part.begin(), signed_part.end());
  np.end_hash = msg.digests_hash;
  np.end_present = msg.present;
  MPOTR_TRY(Output out, next.progress(now, rng));
  *this = std::move(next);
  return out;
}

// Compares each End we hold with the digests we hold: over the sender's own `present` set, so
// that members excused by one of us and not the other are not a false alarm. An End naming a
// digest we lack cannot be compared yet (R-SD-14); it is, once that digest arrives, in Ended or
// Revealed. Each member's mismatch is reported once.
void Session::compare_ends(Output& out) {
  for (std::size_t m = 0; m < m_peers.size(); ++m) {
    const Peer& p = m_peers[m];
    if (m == m_self || !p.end_hash) {
      continue;
    }
    std::vector<std::optional<Hash32>> digests(m_peers.size());
    bool comparable = true;
    for (std::size_t k = 0; k < m_peers.size(); ++k) {
      if (p.end_present.test(k)) {
        digests[k] = m_peers[k].digest;
        comparable = comparable && digests[k].has_value();
      }
    }
    if (comparable && ks::end_digest(digests) != *p.end_hash) {
      report_mismatch(m, "'" + m_roster[m].nick + "' compared other digests than we did", out);
    }
  }
}

// Moves the shutdown forward as far as the collected messages allow.
Result<Output> Session::progress(TimeMs now, Rng& rng) {
  Output out;
  if (m_phase == SessionPhase::Closing) {
    const bool closed = std::all_of(m_peers.begin(), m_peers.end(), [](const Peer& p) {
      return p.final_count && p.transcript.count() >= *p.final_count;
    });
    if (!closed) {
      return out;
    }
    std::vector<std::uint32_t> counts;
    std::vector<Hash32> chains;
    for (const Peer& p : m_peers) {
      counts.push_back(*p.final_count);
      chains.push_back(p.transcript.closing_chain(counts.back()));
    }
    codec::Digest msg;
    msg.session_tag = m_tag;
    msg.sender = m_self;
    msg.transcript_digest = ks::transcript_digest(counts, chains);
    MPOTR_TRY(const Bytes signed_part, seal(msg, rng));
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
      Event ev = session_event(EventKind::TranscriptConsistent, m_sid);
      for (std::size_t m = 0; m < m_peers.size(); ++m) {
        if (m_peers[m].excused && !m_peers[m].digest) {
          ev.nicks.push_back(m_roster[m].nick);
        }
      }
      if (!ev.nicks.empty()) {
        ev.detail = "among the members that finished the check; the others did not send their final digest";
      }
      out.events.push_back(std::move(ev));
    }
    // End: we hold (and have compared) every digest we will wait for; from now on we accept
    // no entry and no digest that could change our verdict, which is what lets others publish.
    std::vector<std::optional<Hash32>> digests;
    codec::End msg;
    for (std::size_t m = 0; m < m_peers.size(); ++m) {
      digests.push_back(m_peers[m].digest);
      if (m_peers[m].digest) {
        msg.present.set(m);
      }
    }
    msg.session_tag = m_tag;
    msg.sender = m_self;
    msg.digests_hash = ks::end_digest(digests);
    MPOTR_TRY(const Bytes signed_part, seal(msg, rng));
    m_peers[m_self].end_signed = signed_part;
    m_peers[m_self].end_hash = msg.digests_hash;
    m_peers[m_self].end_present = msg.present;
    out.broadcasts.push_back(codec::encode(msg));
    m_phase = SessionPhase::Ended;
  }
  if (m_phase == SessionPhase::Ended || m_phase == SessionPhase::Revealed) {
    // An End naming a digest we lacked is compared as soon as we hold it, also after we
    // published (R-SD-14): a late digest can still show that its sender compared other ones.
    compare_ends(out);
  }
  if (m_phase == SessionPhase::Ended) {
    // R-SD-15: publish only when every other member authenticated that it accepts nothing more
    // (its End or its Quit). Presence is never enough: the server controls it.
    std::vector<std::string> pending;
    bool waiting = false;
    for (std::size_t m = 0; m < m_peers.size(); ++m) {
      const Peer& p = m_peers[m];
      if (m != m_self && !p.done()) {
        pending.push_back(m_roster[m].nick);
        waiting = waiting || !p.excused;
      }
    }
    if (pending.empty()) {
      MPOTR_TRY(Output published, publish_key());
      out.merge(std::move(published));
      m_key_withheld = false;
      m_shutdown_deadline = now + m_timeouts.shutdown;
    } else if (!waiting && !m_key_withheld) {
      // Everyone we wait for was excused at the deadline without an End: withheld until they
      // send one (or a Quit). Deniability is lost for this session meanwhile, which is the
      // lesser evil: a published key would let the server forge our entries to them.
      m_key_withheld = true;
      m_shutdown_deadline.reset();
      Event ev = session_event(EventKind::KeyWithheld, m_sid);
      ev.nicks = std::move(pending);
      ev.detail = "they have not confirmed the end of the session";
      out.events.push_back(std::move(ev));
    }
  }
  if (m_phase == SessionPhase::Revealed) {
    const bool all = std::all_of(m_peers.begin(), m_peers.end(), [&](const Peer& p) {
      return &p == &m_peers[m_self] || p.revealed || p.excused;
    });
    if (all) {
      m_phase = SessionPhase::Closed;
      out.events.push_back(session_event(EventKind::SessionClosed, m_sid));
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
  Event ev = session_event(EventKind::TranscriptMismatch, m_sid);
  ev.nick = m_roster[m].nick;
  ev.detail = std::move(detail);
  out.events.push_back(std::move(ev));
}

// Every other member has stopped accepting anything in this session, so our signing key can no
// longer authenticate anything new to anyone: publish it (deniability).
Result<Output> Session::publish_key() {
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
  out.events.push_back(session_event(EventKind::KeyPublished, m_sid));
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
  Event ev = session_event(EventKind::PeerKeyPublished, m_sid);
  ev.nick = m_roster[j].nick;
  ev.data.assign(msg.private_key.begin(), msg.private_key.end());
  out.events.push_back(std::move(ev));
  MPOTR_TRY(Output more, next.progress(now, rng));
  out.merge(std::move(more));
  *this = std::move(next);
  return out;
}

Result<Output> Session::on_late_setup(codec::MessageType type, std::uint8_t sender, const Hash32& sid, ByteView payload,
                                      std::size_t signed_len, const codec::Signature& sig,
                                      std::string_view from_nick) const {
  if (sid != m_sid) {
    return make_error(ErrorCode::UnknownSession, "setup message whose session id only shares this session's tag");
  }
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, sender));
  const ByteView signed_part = payload.first(signed_len);
  const Hash32 id = crypto::sha256(signed_part);
  const Peer& peer = m_peers[j];
  const Hash32* held = type == codec::MessageType::KeyShare ? &peer.key_share_id
                       : type == codec::MessageType::Attest ? &peer.attest_id
                                                            : nullptr;
  if (j == m_self) {
    if (held != nullptr && *held == id) {
      return Output{};  // a late reflection of our own
    }
    return make_error(ErrorCode::NickMismatch, "a setup message in our name that we did not send");
  }
  if (!peer.signing_key.verify_digest(ks::signed_digest(m_sid, signed_part), view(sig))) {
    return make_error(ErrorCode::BadSignature, "late setup message: signature does not verify");
  }
  if (held == nullptr) {
    return make_error(ErrorCode::UnexpectedMessage, "accusation for a session that is already established");
  }
  if (*held == id) {
    return make_error(ErrorCode::Duplicate, "setup message of a session that is already established");
  }
  return make_error(ErrorCode::Equivocation, "a second, different setup message of an established session");
}

// Every session that quit() retires is closed for us (R-SD-17): a Quit unless our End is out
// (the End already says all a Quit would), `KeyWithheld` unless our key is published (also when
// R-SD-15 reported it withheld before: it is now withheld for good), then `SessionClosed`.
Result<Output> Session::quit(TimeMs now, Rng& rng) {
  (void)now;
  if (m_phase == SessionPhase::Closed) {
    return Output{};  // closed and reported already
  }
  Session next = *this;
  Output out;
  const bool end_sent = m_phase == SessionPhase::Ended || m_phase == SessionPhase::Revealed;
  if (!end_sent) {
    codec::Quit msg;
    msg.session_tag = m_tag;
    msg.sender = m_self;
    msg.final_count = m_peers[m_self].transcript.count();
    MPOTR_TRY(const Bytes signed_part, next.seal(msg, rng));
    next.m_peers[m_self].quit_signed = signed_part;
    out.broadcasts.push_back(codec::encode(msg));
  }
  if (m_phase != SessionPhase::Revealed) {
    next.m_key_withheld = true;
    Event ev = session_event(EventKind::KeyWithheld, m_sid);
    for (std::size_t m = 0; m < m_peers.size(); ++m) {
      if (m != m_self && !m_peers[m].done()) {
        ev.nicks.push_back(m_roster[m].nick);
      }
    }
    ev.detail = "we quit before the end of the session";
    out.events.push_back(std::move(ev));
  }
  next.m_phase = SessionPhase::Closed;
  out.events.push_back(session_event(EventKind::SessionClosed, m_sid));
  *this = std::move(next);
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

Result<Output> Session::on_timer(TimeMs now, Rng& rng) {
  const auto due = next_deadline();
  if (!due || *due > now) {
    return Output{};  // the common case: nothing due, no copy
  }
  Session next = *this;
  Output out;
  // Gaps that did not fill in time: report the loss and release what we held.
  for (std::size_t j = 0; j < next.m_peers.size(); ++j) {
    const auto& gap = next.m_peers[j].gap_deadline;
    if (gap && *gap <= now) {
      next.declare_lost(j, now, out);
    }
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
      Event ev = session_event(EventKind::ShutdownIncomplete, m_sid);
      for (std::size_t m = 0; m < next.m_peers.size(); ++m) {
        const Peer& p = next.m_peers[m];
        if (m != m_self && !p.revealed && !p.excused) {
          ev.nicks.push_back(m_roster[m].nick);
        }
      }
      if (!ev.nicks.empty()) {
        out.events.push_back(std::move(ev));
      }
      next.m_phase = SessionPhase::Closed;
      out.events.push_back(session_event(EventKind::SessionClosed, m_sid));
    } else {
      MPOTR_TRY(Output resolved, next.resolve_stalled(now, rng));
      out.merge(std::move(resolved));
    }
  }
  *this = std::move(next);
  return out;
}

// The shutdown deadline passed with members missing in the current round. They are excused
// from the consistency check — whatever presence says, which the server controls — and the
// shutdown goes on without them (R-SD-10). Our key is still published only once each of them
// has sent its End or Quit (R-SD-15): until then it is withheld.
Result<Output> Session::resolve_stalled(TimeMs now, Rng& rng) {
  Output out;
  const SessionPhase phase_before = m_phase;
  std::vector<std::string> missing;
  for (std::size_t m = 0; m < m_peers.size(); ++m) {
    Peer& p = m_peers[m];
    const bool stalled = m_phase == SessionPhase::Closing ? !p.final_count || p.transcript.count() < *p.final_count
                         : m_phase == SessionPhase::Digested ? !p.digest && !p.excused
                                                             : !p.done() && !p.excused;
    if (m == m_self || !stalled) {
      continue;
    }
    missing.push_back(m_roster[m].nick);
    p.excused = true;
    if (!p.final_count || *p.final_count > p.transcript.count()) {
      p.final_count = p.transcript.count();  // what we have of it is all we will use
      p.held.clear();
      p.gap_deadline.reset();
    }
  }
  m_held_total = 0;
  for (const Peer& p : m_peers) {
    m_held_total += p.held.size();
  }
  MPOTR_TRY(Output more, progress(now, rng));
  out.merge(std::move(more));
  const bool published = m_phase == SessionPhase::Revealed || m_phase == SessionPhase::Closed;
  if (!published && !m_key_withheld && !m_shutdown_deadline) {
    // Excusing moved us on to a round that waits for members: time it too.
    m_shutdown_deadline = now + m_timeouts.shutdown;
  }
  if (!missing.empty() && m_incomplete_reported_in != phase_before) {
    m_incomplete_reported_in = phase_before;
    Event ev = session_event(EventKind::ShutdownIncomplete, m_sid);
    ev.nicks = std::move(missing);
    out.events.insert(out.events.begin(), std::move(ev));
  }
  return out;
}

void Session::summarize(crypto::Sha256& h) const {
  h.update("session").update(view(m_sid)).update_u8(static_cast<std::uint8_t>(m_phase));
  h.update_u32(static_cast<std::uint32_t>(m_held_total)).update_u32(static_cast<std::uint32_t>(m_pending_views.size()));
  h.update_u32(static_cast<std::uint32_t>(m_own_pending.size())).update_u8(m_heartbeat_due ? 1 : 0);
  h.update_u8(m_key_withheld ? 1 : 0).update_u8(static_cast<std::uint8_t>(m_incomplete_reported_in));
  for (const auto& p : m_peers) {
    h.update_u32(p.transcript.count()).update_u32(p.transcript.intact()).update_u32(p.expected).update_u32(p.vouched);
    h.update_u32(static_cast<std::uint32_t>(p.transcript.lost_runs())).update_u32(p.fully_confirmed);
    h.update(view(p.transcript.closing_chain(p.transcript.count())));
    for (std::uint32_t c : p.confirmed_by) {
      h.update_u32(c);
    }
    h.update_u32(p.final_count.value_or(0xffffffffu)).update(view(p.digest.value_or(Hash32{})));
    h.update(view(p.end_hash.value_or(Hash32{}))).update_u8(p.quit_signed.empty() ? 0 : 1);
    h.update_u8(p.revealed ? 1 : 0).update_u8(p.gap_deadline ? 1 : 0).update_u8(p.excused ? 1 : 0);
  }
}

}  // namespace mpotr::detail
