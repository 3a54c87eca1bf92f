// SPDX-License-Identifier: MIT
#include "mpotr/engine/attempt.h"

#include <algorithm>

namespace mpotr::detail {

std::string_view to_string(SetupPhase phase) noexcept {
  switch (phase) {
    case SetupPhase::Offers: return "offers";
    case SetupPhase::KeyShares: return "key_shares";
    case SetupPhase::Attests: return "attests";
    case SetupPhase::Done: return "done";
    case SetupPhase::Failed: return "failed";
  }
  return "unknown";
}

namespace {

std::vector<std::string> nicks_of(const std::vector<Member>& roster) {
  std::vector<std::string> nicks;
  nicks.reserve(roster.size());
  for (const auto& m : roster) {
    nicks.push_back(m.nick);
  }
  return nicks;
}

Error unexpected(std::string_view what, SetupPhase phase) {
  return make_error(ErrorCode::UnexpectedMessage, std::string(what) + " during setup phase " + std::string(to_string(phase)));
}

// A repeated message is a harmless duplicate when identical, proof of equivocation otherwise
// (callers check the signature first, so "otherwise" really is the sender's doing).
Error repeated(const Bytes& stored_signed, ByteView signed_part, std::string_view what) {
  if (std::equal(stored_signed.begin(), stored_signed.end(), signed_part.begin(), signed_part.end())) {
    return make_error(ErrorCode::Duplicate, std::string(what) + " received twice");
  }
  return make_error(ErrorCode::Equivocation, "two different " + std::string(what) + " messages from one member");
}

}  // namespace

Result<Attempt> Attempt::start(const Context& ctx, std::vector<Member> roster, std::uint32_t number, TimeMs now,
                               Rng& rng, Output& out) {
  Attempt a;
  a.m_roster = std::move(roster);
  a.m_number = number;
  const int self = index_of(a.m_roster, ctx.config.self_nick);
  if (self < 0) {
    return make_error(ErrorCode::InvalidArgument, "roster does not contain our own nick");
  }
  a.m_self = static_cast<std::uint8_t>(self);
  a.m_roster_digest = ks::roster_digest(ctx.config.room, nicks_of(a.m_roster));
  a.m_deadline = now + ctx.config.timeouts.setup;
  a.m_peers.resize(a.m_roster.size());

  MPOTR_TRY(crypto::PrivateKey dh, crypto::PrivateKey::generate(rng));
  MPOTR_TRY(crypto::PrivateKey signing, crypto::PrivateKey::generate(rng));
  MPOTR_TRY(crypto::PrivateKey elgamal_r, crypto::PrivateKey::generate(rng));
  a.m_secret = rng.secret(32);

  codec::Offer offer;
  offer.roster_digest = a.m_roster_digest;
  offer.attempt = number;
  offer.nick = ctx.config.self_nick;
  offer.nonce = rng.array<32>();
  offer.identity_key = ctx.identity.public_key().point();
  offer.dh_key = dh.public_key().point();
  offer.signing_key = signing.public_key().point();
  a.m_dh = std::move(dh);
  a.m_signing = std::move(signing);
  a.m_elgamal_r = std::move(elgamal_r);

  Peer& me = a.m_peers[a.m_self];
  me.offer_bytes = codec::encode(offer);
  me.identity_key = ctx.identity.public_key();
  me.dh_key = a.m_dh->public_key();
  me.signing_key = a.m_signing->public_key();
  me.fingerprint = ctx.identity.fingerprint();
  me.offer = std::move(offer);

  out.broadcasts.push_back(me.offer_bytes);
  Event started = make_event(EventKind::SetupStarted);
  started.nicks = nicks_of(a.m_roster);
  out.events.push_back(std::move(started));
  return a;
}

std::optional<Hash32> Attempt::session_id() const {
  if (m_phase == SetupPhase::Offers) {
    return std::nullopt;
  }
  return m_sid;
}

std::optional<Hash32> Attempt::offer_nonce(std::string_view nick) const {
  const int idx = index_of(m_roster, nick);
  if (idx < 0 || !m_peers[static_cast<std::size_t>(idx)].offer) {
    return std::nullopt;
  }
  return m_peers[static_cast<std::size_t>(idx)].offer->nonce;
}

// --- round 1 -------------------------------------------------------------------------------

Result<Output> Attempt::on_offer(const Context& ctx, const codec::Offer& offer, ByteView payload,
                                 std::string_view from_nick, Rng& rng) {
  // The engine has checked offer.nick == from_nick and the roster digest.
  const int found = index_of(m_roster, from_nick);
  if (found < 0) {
    return make_error(ErrorCode::NotAMember, "'" + std::string(from_nick) + "' is not in the roster");
  }
  const auto idx = static_cast<std::uint8_t>(found);
  Peer& peer = m_peers[idx];
  if (offer.attempt != m_number || offer.roster_digest != m_roster_digest) {
    return make_error(ErrorCode::RosterMismatch, "offer made for another attempt or roster");
  }
  if (peer.offer) {
    if (std::equal(peer.offer_bytes.begin(), peer.offer_bytes.end(), payload.begin(), payload.end())) {
      // Our own offer reflected by the room, or a plain duplicate.
      if (idx == m_self) {
        return Output{};
      }
      return make_error(ErrorCode::Duplicate, "offer received twice");
    }
    if (idx == m_self) {
      return make_error(ErrorCode::NickMismatch, "an offer in our name that we did not send");
    }
    return make_error(ErrorCode::UnexpectedMessage, "second offer from '" + std::string(from_nick) + "' in one attempt");
  }
  if (m_phase != SetupPhase::Offers) {
    return unexpected("offer", m_phase);
  }

  // Validate everything before storing anything.
  MPOTR_TRY(crypto::PublicKey identity_key, crypto::PublicKey::from_point(view(offer.identity_key)));
  MPOTR_TRY(crypto::PublicKey dh_key, crypto::PublicKey::from_point(view(offer.dh_key)));
  MPOTR_TRY(crypto::PublicKey signing_key, crypto::PublicKey::from_point(view(offer.signing_key)));
  const Fingerprint fp = fingerprint_of(identity_key);
  if (ctx.trust != nullptr) {
    switch (ctx.trust->check(m_roster[idx].jid, fp)) {
      case TrustDecision::Blocked:
        return make_error(ErrorCode::IdentityBlocked, m_roster[idx].jid + " is blocked");
      case TrustDecision::Changed:
        return make_error(ErrorCode::IdentityChanged,
                          m_roster[idx].jid + " presented key " + fp.grouped() + ", not the one we trust");
      case TrustDecision::NewIdentity:
      case TrustDecision::Trusted:
        break;
    }
  }

  Output out;
  peer.offer = offer;
  peer.offer_bytes.assign(payload.begin(), payload.end());
  peer.identity_key = std::move(identity_key);
  peer.dh_key = std::move(dh_key);
  peer.signing_key = std::move(signing_key);
  peer.fingerprint = fp;

  const bool complete = std::all_of(m_peers.begin(), m_peers.end(), [](const Peer& p) { return p.offer.has_value(); });
  if (complete) {
    Attempt next = *this;  // the key share can fail (crypto); commit only on success
    MPOTR_TRY(Output sent, next.send_key_share(ctx, rng));
    *this = std::move(next);
    out.merge(std::move(sent));
  }
  return out;
}

// --- round 2 -------------------------------------------------------------------------------

Result<Output> Attempt::send_key_share(const Context& ctx, Rng& rng) {
  std::vector<codec::Offer> offers;
  offers.reserve(m_peers.size());
  for (const auto& p : m_peers) {
    offers.push_back(*p.offer);
  }
  m_sid = ks::session_id(ctx.config.room, offers);

  codec::KeyShare msg;
  msg.session_id = m_sid;
  msg.sender = m_self;
  msg.elgamal_r = m_elgamal_r->public_key().point();
  const crypto::Point& own_signing = m_signing->public_key().point();
  const crypto::Point& own_dh = m_dh->public_key().point();
  for (std::size_t j = 0; j < m_peers.size(); ++j) {
    if (j == m_self) {
      continue;
    }
    Peer& peer = m_peers[j];
    const auto pj = static_cast<std::uint8_t>(j);
    MPOTR_TRY(ks::PairwiseKeys keys, ks::pairwise_keys_for(m_sid, m_self, pj, ctx.identity.private_key(), *m_dh,
                                                           *peer.identity_key, *peer.dh_key));
    peer.mac_out = m_self < pj ? keys.mac_low_to_high : keys.mac_high_to_low;
    peer.mac_in = m_self < pj ? keys.mac_high_to_low : keys.mac_low_to_high;

    codec::PairShare share;
    share.mac = ks::dake_mac(peer.mac_out, m_sid, m_self, pj, own_signing, own_dh, msg.elgamal_r);
    MPOTR_TRY(SecretBytes shared, m_elgamal_r->ecdh(*peer.dh_key));
    MPOTR_TRY(SecretBytes pad, ks::elgamal_pad(m_sid, m_self, pj, shared, msg.elgamal_r, peer.offer->dh_key));
    for (std::size_t b = 0; b < share.secret_ct.size(); ++b) {
      share.secret_ct[b] = static_cast<std::uint8_t>(m_secret.data()[b] ^ pad.data()[b]);
    }
    msg.shares.push_back(share);
  }
  MPOTR_TRY(const Bytes signed_part, sign_message(msg, m_sid, *m_signing, rng));

  Peer& me = m_peers[m_self];
  me.key_share_signed = signed_part;
  me.secret = m_secret;
  m_phase = SetupPhase::KeyShares;

  Output out;
  out.broadcasts.push_back(codec::encode(msg));
  out.merge(replay_early(ctx, rng));
  return out;
}

Result<Output> Attempt::on_key_share(const Context& ctx, const codec::KeyShare& msg, ByteView payload,
                                     std::size_t signed_len, std::string_view from_nick, Rng& rng) {
  if (m_phase == SetupPhase::Offers) {
    // Sent by a member that already has every offer; keep it until we do too (R-KS-3).
    MPOTR_TRY(Peer* early, early_peer(from_nick, "key share"));
    MPOTR_CHECK(buffer_early(*early, early->early_key_shares, payload, signed_len, msg.session_id, msg.signature,
                             "key share"));
    return Output{};
  }
  if (msg.session_id != m_sid) {
    // Only buffered messages get here (routing checks the sid of the others).
    return make_error(ErrorCode::UnknownSession, "buffered key share names another session: it belongs to an abandoned attempt");
  }
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  Peer& peer = m_peers[j];
  const ByteView signed_part = payload.first(signed_len);
  if (j == m_self) {
    if (std::equal(peer.key_share_signed.begin(), peer.key_share_signed.end(), signed_part.begin(), signed_part.end())) {
      return Output{};  // our own, reflected
    }
    return make_error(ErrorCode::NickMismatch, "a key share in our name that we did not send");
  }
  if (msg.shares.size() != m_roster.size() - 1) {
    return make_error(ErrorCode::DecodeBadValue, "key share has " + std::to_string(msg.shares.size()) +
                                                     " entries for a roster of " + std::to_string(m_roster.size()));
  }
  const Hash32 digest = ks::signed_digest(m_sid, payload.first(signed_len));
  if (!peer.signing_key->verify_digest(digest, view(msg.signature))) {
    return make_error(ErrorCode::BadSignature, "key share signature does not verify");
  }
  if (!peer.key_share_signed.empty()) {
    return repeated(peer.key_share_signed, signed_part, "key share");
  }
  if (m_phase != SetupPhase::KeyShares) {
    return unexpected("key share", m_phase);
  }
  MPOTR_TRY(crypto::PublicKey elgamal_r, crypto::PublicKey::from_point(view(msg.elgamal_r)));
  const codec::PairShare& share = msg.shares[m_self < j ? m_self : m_self - 1];
  const Hash32 expected = ks::dake_mac(peer.mac_in, m_sid, j, m_self, peer.offer->signing_key, peer.offer->dh_key,
                                       msg.elgamal_r);
  if (!ct_equal(view(expected), view(share.mac))) {
    return make_error(ErrorCode::BadMac, "deniable authentication of '" + m_roster[j].nick + "' failed");
  }
  MPOTR_TRY(SecretBytes shared, m_dh->ecdh(elgamal_r));
  MPOTR_TRY(SecretBytes pad, ks::elgamal_pad(m_sid, j, m_self, shared, msg.elgamal_r, m_peers[m_self].offer->dh_key));
  SecretBytes secret(32);
  for (std::size_t b = 0; b < 32; ++b) {
    secret.data()[b] = static_cast<std::uint8_t>(share.secret_ct[b] ^ pad.data()[b]);
  }

  const auto missing =
      std::count_if(m_peers.begin(), m_peers.end(), [](const Peer& p) { return p.key_share_signed.empty(); });
  if (missing > 1) {
    peer.key_share_signed.assign(signed_part.begin(), signed_part.end());
    peer.secret = std::move(secret);
    return Output{};
  }
  // The last key share: derive the group key on a copy and commit only if that succeeds.
  Attempt next = *this;
  next.m_peers[j].key_share_signed.assign(signed_part.begin(), signed_part.end());
  next.m_peers[j].secret = std::move(secret);
  MPOTR_TRY(Output out, next.send_attest(rng));
  *this = std::move(next);
  out.merge(replay_early(ctx, rng));
  return out;
}

// --- round 3 -------------------------------------------------------------------------------

Result<Output> Attempt::send_attest(Rng& rng) {
  std::vector<Bytes> offers, shares;
  std::vector<SecretBytes> secrets;
  for (const auto& p : m_peers) {
    offers.push_back(p.offer_bytes);
    shares.push_back(p.key_share_signed);
    secrets.push_back(p.secret);
  }
  SecretBytes group = ks::group_secret(m_sid, secrets);
  const Hash32 th = ks::setup_transcript_hash(offers, shares);
  MPOTR_TRY(Hash32 kc, ks::key_confirm(group, th));

  codec::Attest msg;
  msg.session_id = m_sid;
  msg.sender = m_self;
  msg.transcript_hash = th;
  msg.key_confirm = kc;
  MPOTR_TRY(const Bytes signed_part, sign_message(msg, m_sid, *m_signing, rng));

  m_group_secret = std::move(group);
  m_transcript_hash = th;
  m_key_confirm = kc;
  m_peers[m_self].attest_signed = signed_part;
  m_phase = SetupPhase::Attests;
  Output out;
  out.broadcasts.push_back(codec::encode(msg));
  return out;
}

Result<Output> Attempt::on_attest(const Context& ctx, const codec::Attest& msg, ByteView payload,
                                  std::size_t signed_len, std::string_view from_nick, Rng& rng) {
  if (m_phase == SetupPhase::Offers) {
    MPOTR_TRY(Peer* early, early_peer(from_nick, "attest"));
    MPOTR_CHECK(buffer_early(*early, early->early_attests, payload, signed_len, msg.session_id, msg.signature, "attest"));
    return Output{};
  }
  if (msg.session_id != m_sid) {
    // Only buffered messages get here (routing checks the sid of the others).
    return make_error(ErrorCode::UnknownSession, "buffered attest names another session: it belongs to an abandoned attempt");
  }
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  Peer& peer = m_peers[j];
  if (m_phase == SetupPhase::KeyShares) {
    MPOTR_CHECK(buffer_early(peer, peer.early_attests, payload, signed_len, msg.session_id, msg.signature, "attest"));
    return Output{};
  }
  const ByteView signed_part = payload.first(signed_len);
  if (j == m_self) {
    if (std::equal(peer.attest_signed.begin(), peer.attest_signed.end(), signed_part.begin(), signed_part.end())) {
      return Output{};
    }
    return make_error(ErrorCode::NickMismatch, "an attest in our name that we did not send");
  }
  const Hash32 digest = ks::signed_digest(m_sid, payload.first(signed_len));
  if (!peer.signing_key->verify_digest(digest, view(msg.signature))) {
    return make_error(ErrorCode::BadSignature, "attest signature does not verify");
  }
  if (!peer.attest_signed.empty()) {
    return repeated(peer.attest_signed, signed_part, "attest");
  }
  if (m_phase != SetupPhase::Attests) {
    return unexpected("attest", m_phase);
  }

  // Authentic disagreement is final: nothing this member sends later can fix it.
  Output out;
  std::optional<ErrorCode> disagreement;
  if (msg.transcript_hash != m_transcript_hash) {
    disagreement = ErrorCode::TranscriptMismatch;
  } else if (!ct_equal(view(msg.key_confirm), view(m_key_confirm))) {
    disagreement = ErrorCode::GroupKeyMismatch;
  }
  if (disagreement) {
    m_phase = SetupPhase::Failed;
    forget_secrets();
    Event failed = make_event(EventKind::SetupFailed, m_roster[j].nick);
    failed.code = *disagreement;
    failed.detail = *disagreement == ErrorCode::TranscriptMismatch
                        ? "'" + m_roster[j].nick + "' saw a different setup transcript"
                        : "'" + m_roster[j].nick + "' derived a different group key: some member sent "
                          "inconsistent secrets (which one cannot be told)";
    out.events.push_back(std::move(failed));
    return out;
  }
  peer.attest_signed.assign(signed_part.begin(), signed_part.end());
  const bool complete = std::all_of(m_peers.begin(), m_peers.end(), [](const Peer& p) { return !p.attest_signed.empty(); });
  if (complete) {
    m_phase = SetupPhase::Done;
  }
  (void)ctx;
  (void)rng;
  return out;
}

// Keeps a setup message that arrived before its phase. If the sender's offer (with its signing
// key) is already here the signature is checked at once, so a forgery cannot take the place of
// the genuine message; otherwise a few candidates are kept and sorted out when the phase comes.
// In round 1 the session id is unknown, so a setup message cannot yet be tied to this attempt:
// it may be a late message of an abandoned attempt for another roster (whose sender index means
// another member) or of the same member's earlier attempt (signed with an older key). Only the
// transport sender is checked here; the index is checked with the sid when the phase comes.
Result<Attempt::Peer*> Attempt::early_peer(std::string_view from_nick, std::string_view what) {
  const int idx = index_of(m_roster, from_nick);
  if (idx < 0) {
    return make_error(ErrorCode::UnknownSession, std::string(what) + " from '" + std::string(from_nick) +
                                                     "', who is not in the roster being set up: it belongs to another attempt");
  }
  return &m_peers[static_cast<std::size_t>(idx)];
}

Result<void> Attempt::buffer_early(Peer& peer, std::vector<Bytes>& early, ByteView payload, std::size_t signed_len,
                                   const Hash32& claimed_sid, const codec::Signature& sig, std::string_view what) {
  if (peer.signing_key &&
      !peer.signing_key->verify_digest(ks::signed_digest(claimed_sid, payload.first(signed_len)), view(sig))) {
    // Not signed with the key of the sender's offer for this attempt: a message of one of its
    // abandoned attempts, or a forgery. Neither is kept, and a stale one is not evidence.
    return make_error(ErrorCode::UnknownSession, std::string(what) +
                                                     " is not signed with the sender's key for this attempt (stale or forged)");
  }
  // A verified copy is identified by its signed part; an unverifiable one only by all its
  // bytes, or a forgery with a genuine signed part and a broken signature would shadow the
  // genuine message.
  const std::size_t compared = peer.signing_key ? signed_len : payload.size();
  for (const Bytes& kept : early) {
    if (kept.size() == payload.size() && std::equal(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(compared),
                                                    payload.begin())) {
      return make_error(ErrorCode::Duplicate, std::string(what) + " received twice");
    }
  }
  if (early.size() >= kMaxEarlyPerSender) {
    return make_error(ErrorCode::LimitExceeded, "too many early " + std::string(what) + " messages from one member");
  }
  early.emplace_back(payload.begin(), payload.end());
  return {};
}

// Feeds messages that arrived before their phase. Their errors are reported, not returned:
// the call that triggered the replay has itself succeeded.
Output Attempt::replay_early(const Context& ctx, Rng& rng) {
  Output out;
  for (std::size_t j = 0; j < m_peers.size(); ++j) {
    std::vector<Bytes>* early = nullptr;
    if (m_phase == SetupPhase::KeyShares) {
      early = &m_peers[j].early_key_shares;
    } else if (m_phase == SetupPhase::Attests) {
      early = &m_peers[j].early_attests;
    }
    if (early == nullptr || early->empty()) {
      continue;
    }
    const std::vector<Bytes> payloads = std::move(*early);
    early->clear();
    const std::string nick = m_roster[j].nick;
    for (const Bytes& payload : payloads) {
      auto decoded = codec::decode(view(payload));
      Result<Output> r = decoded.ok() ? Result<Output>(Output{}) : Result<Output>(decoded.error());
      if (decoded.ok()) {
        if (const auto* ks_msg = std::get_if<codec::KeyShare>(&decoded->message)) {
          r = on_key_share(ctx, *ks_msg, view(payload), decoded->signed_len, nick, rng);
        } else if (const auto* at = std::get_if<codec::Attest>(&decoded->message)) {
          r = on_attest(ctx, *at, view(payload), decoded->signed_len, nick, rng);
        }
      }
      if (r.ok()) {
        out.merge(std::move(r).value());
      } else {
        m_last_rejection = nick + ": " + r.error().detail;
        out.events.push_back(rejected_event(r.error(), nick));
      }
      if (m_phase == SetupPhase::Done || m_phase == SetupPhase::Failed) {
        return out;
      }
    }
  }
  return out;
}

Output Attempt::on_timer(TimeMs now) {
  Output out;
  if (now < m_deadline || m_phase == SetupPhase::Done || m_phase == SetupPhase::Failed) {
    return out;
  }
  Event timeout = make_event(EventKind::SetupTimeout);
  timeout.code = ErrorCode::LimitExceeded;
  for (std::size_t j = 0; j < m_peers.size(); ++j) {
    const Peer& p = m_peers[j];
    const bool missing = (m_phase == SetupPhase::Offers && !p.offer) ||
                         (m_phase == SetupPhase::KeyShares && p.key_share_signed.empty()) ||
                         (m_phase == SetupPhase::Attests && p.attest_signed.empty());
    if (missing) {
      timeout.nicks.push_back(m_roster[j].nick);
    }
  }
  timeout.detail = "setup stalled in phase " + std::string(to_string(m_phase));
  if (!m_last_rejection.empty()) {
    timeout.detail += "; last rejected: " + m_last_rejection;
  }
  m_phase = SetupPhase::Failed;
  forget_secrets();
  out.events.push_back(std::move(timeout));
  return out;
}

// A failed attempt never becomes a session: its ephemeral secrets have no further use.
void Attempt::forget_secrets() {
  m_dh.reset();
  m_elgamal_r.reset();
  m_signing.reset();
  m_secret.clear();
  m_group_secret.clear();
  for (auto& p : m_peers) {
    p.secret.clear();
    p.mac_in.clear();
    p.mac_out.clear();
  }
}

SessionMaterial Attempt::take_material() {
  SessionMaterial m;
  m.session_id = m_sid;
  m.roster = m_roster;
  m.self = m_self;
  for (const auto& p : m_peers) {
    m.signing_keys.push_back(*p.signing_key);
    m.fingerprints.push_back(p.fingerprint);
  }
  m.signing_key = *m_signing;
  m.group_secret = std::move(m_group_secret);
  // The ephemeral DH key, El Gamal randomness and secrets are not needed any more: forget them
  // now for forward secrecy.
  m_dh.reset();
  m_elgamal_r.reset();
  m_secret.clear();
  for (auto& p : m_peers) {
    p.secret.clear();
    p.mac_in.clear();
    p.mac_out.clear();
  }
  return m;
}

void Attempt::summarize(crypto::Sha256& h) const {
  h.update("attempt").update_u8(static_cast<std::uint8_t>(m_phase)).update(view(m_roster_digest)).update(view(m_sid));
  h.update_u32(m_number);
  for (const auto& p : m_peers) {
    h.update_u8(p.offer ? 1 : 0)
        .update_u32(static_cast<std::uint32_t>(p.key_share_signed.size()))
        .update_u32(static_cast<std::uint32_t>(p.attest_signed.size()))
        .update_u32(static_cast<std::uint32_t>(p.early_key_shares.size()))
        .update_u32(static_cast<std::uint32_t>(p.early_attests.size()));
  }
}

}  // namespace mpotr::detail
