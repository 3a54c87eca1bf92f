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

// R-ADM-1: why we do not accept this identity, if we do not.
std::optional<ErrorCode> refusal(const Context& ctx, const Member& m, const Fingerprint& fp) {
  const bool verified_only = ctx.config.admission == AdmissionPolicy::VerifiedOnly;
  if (ctx.trust == nullptr) {
    return verified_only ? std::optional(ErrorCode::IdentityUnverified) : std::nullopt;
  }
  switch (ctx.trust->check(m.jid, fp)) {
    case TrustDecision::Blocked: return ErrorCode::IdentityBlocked;
    case TrustDecision::Changed: return ErrorCode::IdentityChanged;
    case TrustDecision::NewIdentity: return verified_only ? std::optional(ErrorCode::IdentityUnverified) : std::nullopt;
    case TrustDecision::Trusted:
      return verified_only && ctx.trust->level(m.jid) != TrustLevel::Verified ? std::optional(ErrorCode::IdentityUnverified)
                                                                                : std::nullopt;
  }
  return std::nullopt;
}

std::string refusal_text(ErrorCode code) {
  switch (code) {
    case ErrorCode::IdentityBlocked: return "blocked";
    case ErrorCode::IdentityChanged: return "its identity key changed and the new one is not accepted";
    case ErrorCode::IdentityUnverified: return "not verified, and this room admits verified members only";
    default: return std::string(to_string(code));
  }
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
  me.offer_bytes = SharedBytes(view(codec::encode(offer)));
  me.identity_key = ctx.identity.public_key();
  me.dh_key = a.m_dh->public_key();
  me.signing_key = a.m_signing->public_key();
  me.fingerprint = ctx.identity.fingerprint();
  me.offer = std::move(offer);

  out.broadcasts.push_back(me.offer_bytes.copy());
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

std::vector<std::pair<std::string, ErrorCode>> Attempt::refused() const {
  std::vector<std::pair<std::string, ErrorCode>> out;
  for (std::size_t j = 0; j < m_peers.size(); ++j) {
    if (m_peers[j].refused) {
      out.emplace_back(m_roster[j].nick, *m_peers[j].refused);
    }
  }
  return out;
}

std::vector<std::pair<Member, Fingerprint>> Attempt::identities() const {
  std::vector<std::pair<Member, Fingerprint>> out;
  for (std::size_t j = 0; j < m_peers.size(); ++j) {
    if (m_peers[j].offer) {
      out.emplace_back(m_roster[j], m_peers[j].fingerprint);
    }
  }
  return out;
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
    if (same_bytes(peer.offer_bytes.view(), payload)) {
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

  Output out;
  // R-ADM-1: a member we do not accept is not an error; our key share will say so, and the
  // attempt ends with us out of the session (we cannot force anyone else out).
  peer.refused = refusal(ctx, m_roster[idx], fp);
  if (peer.refused) {
    Event ev = make_event(EventKind::Refusing, m_roster[idx].nick);
    ev.code = *peer.refused;
    ev.detail = fp.grouped() + ": " + refusal_text(*peer.refused);
    ev.data.assign(fp.bytes.begin(), fp.bytes.end());
    out.events.push_back(std::move(ev));
  }
  // One identity key under two JIDs in one roster: the same person twice, or a copied key.
  std::vector<std::string> sharing;
  for (std::size_t j = 0; j < m_peers.size(); ++j) {
    if (j != idx && m_peers[j].offer && m_peers[j].fingerprint == fp && m_roster[j].jid != m_roster[idx].jid) {
      sharing.push_back(m_roster[j].nick);
    }
  }
  if (!sharing.empty()) {
    Event ev = make_event(EventKind::IdentityShared, m_roster[idx].nick);
    ev.nicks = std::move(sharing);
    ev.detail = fp.grouped();
    ev.data.assign(fp.bytes.begin(), fp.bytes.end());
    out.events.push_back(std::move(ev));
  }
  peer.offer = offer;
  peer.offer_bytes = SharedBytes(payload);
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
  msg.commit = ks::commit(m_sid, m_self, m_secret);
  const crypto::Point& own_signing = m_signing->public_key().point();
  const crypto::Point& own_dh = m_dh->public_key().point();
  for (std::size_t j = 0; j < m_peers.size(); ++j) {
    if (j == m_self) {
      continue;
    }
    Peer& peer = m_peers[j];
    const auto pj = static_cast<std::uint8_t>(j);
    if (peer.refused) {
      msg.refused.set(j);
    }
    MPOTR_TRY(ks::DakeKeys keys,
              ks::dake_keys(m_sid, m_self, pj, ctx.identity.private_key(), *m_dh, *peer.identity_key, *peer.dh_key));
    const SecretBytes mac_out = std::move(keys.to_peer);
    peer.mac_in = SharedSecret(std::move(keys.from_peer));

    codec::PairShare share;
    share.mac = ks::dake_mac(mac_out, m_sid, m_self, pj, own_signing, own_dh, msg.elgamal_r);
    MPOTR_TRY(SecretBytes shared, m_elgamal_r->ecdh(*peer.dh_key));
    MPOTR_TRY(SecretBytes pad, ks::elgamal_pad(m_sid, m_self, pj, shared, msg.elgamal_r, peer.offer->dh_key));
    for (std::size_t b = 0; b < share.secret_ct.size(); ++b) {
      share.secret_ct[b] = static_cast<std::uint8_t>(m_secret.data()[b] ^ pad.data()[b]);
    }
    msg.shares.push_back(share);
  }
  MPOTR_TRY(const Bytes signed_part, sign_message(msg, m_sid, *m_signing, rng));

  Peer& me = m_peers[m_self];
  me.key_share_signed = SharedBytes(view(signed_part));
  me.key_share = SharedBytes(view(codec::encode(msg)));
  me.refuses = msg.refused;
  me.secret = SharedSecret(m_secret);
  m_phase = SetupPhase::KeyShares;

  Output out;
  out.broadcasts.push_back(me.key_share.copy());
  out.merge(replay_early(ctx, rng));
  return out;
}

// The checks any holder of `to_dh` (the recipient's ephemeral DH key: the recipient itself, or
// anyone after an accusation revealed it) can make of the share a key share carries for `to`:
// the DAKE MAC, and the decrypted contribution against the sender's commitment.
Result<Attempt::KeyShareFault> Attempt::check_share_for(const codec::KeyShare& msg, std::uint8_t to,
                                                         const crypto::PrivateKey& to_dh, SecretBytes* secret_out) const {
  const std::uint8_t from = msg.sender;
  const Peer& sender = m_peers[from];
  MPOTR_TRY(crypto::PublicKey elgamal_r, crypto::PublicKey::from_point(view(msg.elgamal_r)));
  const codec::PairShare& share = msg.shares[to < from ? to : to - 1];
  // The key of a share to us was derived with our own key share; anyone else's is derived here.
  SecretBytes key = to == m_self ? sender.mac_in.get() : SecretBytes{};
  if (key.empty()) {
    MPOTR_TRY(key, ks::dake_key_from(m_sid, from, to, to_dh, *sender.identity_key, *sender.dh_key));
  }
  const Hash32 expected =
      ks::dake_mac(key, m_sid, from, to, sender.offer->signing_key, sender.offer->dh_key, msg.elgamal_r);
  if (!ct_equal(view(expected), view(share.mac))) {
    return KeyShareFault::BadMac;
  }
  MPOTR_TRY(SecretBytes shared, to_dh.ecdh(elgamal_r));
  MPOTR_TRY(SecretBytes pad, ks::elgamal_pad(m_sid, from, to, shared, msg.elgamal_r, m_peers[to].offer->dh_key));
  SecretBytes secret(32);
  for (std::size_t b = 0; b < 32; ++b) {
    secret.data()[b] = static_cast<std::uint8_t>(share.secret_ct[b] ^ pad.data()[b]);
  }
  if (ks::commit(m_sid, from, secret) != msg.commit) {
    return KeyShareFault::BadSecret;
  }
  if (secret_out != nullptr) {
    *secret_out = std::move(secret);
  }
  return KeyShareFault::None;
}

// The member index a setup message claims, once the sid is known (R-KS-2), and whether it is
// our own message reflected (then the caller ignores it).
Result<std::uint8_t> Attempt::check_setup_sender(std::string_view from_nick, std::uint8_t claimed, ByteView signed_part,
                                                 ByteView own_copy, std::string_view what) const {
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, claimed));
  if (j == m_self && !same_bytes(own_copy, signed_part)) {
    return make_error(ErrorCode::NickMismatch, "a " + std::string(what) + " in our name that we did not send");
  }
  return j;
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
  const ByteView signed_part = payload.first(signed_len);
  MPOTR_TRY(const std::uint8_t j,
            check_setup_sender(from_nick, msg.sender, signed_part, m_peers[m_self].key_share_signed.view(), "key share"));
  if (j == m_self) {
    return Output{};  // our own, reflected
  }
  Peer& peer = m_peers[j];
  if (msg.shares.size() != m_roster.size() - 1) {
    return make_error(ErrorCode::DecodeBadValue, "key share has " + std::to_string(msg.shares.size()) +
                                                     " entries for a roster of " + std::to_string(m_roster.size()));
  }
  if (msg.refused.bound() > m_roster.size() || msg.refused.test(j)) {
    return make_error(ErrorCode::DecodeBadValue, "key share refuses a member outside the roster, or its sender");
  }
  const Hash32 digest = ks::signed_digest(m_sid, signed_part);
  if (!peer.signing_key->verify_digest(digest, view(msg.signature))) {
    return make_error(ErrorCode::BadSignature, "key share signature does not verify");
  }
  if (!peer.key_share_signed.empty()) {
    return repeated(peer.key_share_signed.view(), signed_part, "key share");
  }
  if (m_phase != SetupPhase::KeyShares) {
    return unexpected("key share", m_phase);
  }
  SecretBytes secret;
  MPOTR_TRY(const KeyShareFault fault, check_share_for(msg, m_self, *m_dh, &secret));
  if (fault != KeyShareFault::None) {
    // Authentic or not, this key share cannot be used: prove what is wrong with it to everyone
    // (R-KS-13). This changes state (the attempt fails), so it is not an error.
    Attempt next = *this;
    next.m_peers[j].key_share = SharedBytes(payload);
    MPOTR_TRY(Output out, next.accuse(j, fault, rng));
    *this = std::move(next);
    return out;
  }

  const bool last = std::all_of(m_peers.begin(), m_peers.end(), [&](const Peer& p) {
    return &p == &peer || !p.key_share_signed.empty();
  });
  const auto store = [&](Peer& p) {
    p.key_share_signed = SharedBytes(signed_part);
    p.key_share = SharedBytes(payload);
    p.refuses = msg.refused;
    p.secret = SharedSecret(std::move(secret));
  };
  if (!last && peer.early_accusations.empty()) {
    store(peer);  // nothing after storing it can fail: no copy of the attempt (O(n) bytes)
    return Output{};
  }
  Attempt next = *this;  // the last key share derives the group key: commit only on success
  Peer& np = next.m_peers[j];
  store(np);
  Output out;
  // Accusations by this member waited for its key share, which authenticates it (R-KS-13).
  if (!np.early_accusations.empty()) {
    out.merge(next.replay_early(ctx, rng));
    if (!next.running()) {
      *this = std::move(next);
      return out;
    }
  }
  const bool complete =
      std::all_of(next.m_peers.begin(), next.m_peers.end(), [](const Peer& p) { return !p.key_share_signed.empty(); });
  if (complete) {
    MPOTR_TRY(Output more, next.finish_key_shares(rng));
    out.merge(std::move(more));
    if (next.running()) {
      out.merge(next.replay_early(ctx, rng));
    }
  }
  *this = std::move(next);
  return out;
}

// Every key share is in. If any member refuses another, the refusers stay out and the rest
// start over without them (R-ADM-2); otherwise round 3.
Result<Output> Attempt::finish_key_shares(Rng& rng) {
  Verdict verdict;
  verdict.kind = Verdict::Kind::Refusals;
  Output out;
  for (std::size_t i = 0; i < m_peers.size(); ++i) {
    const codec::MemberSet& refuses = m_peers[i].refuses;
    if (refuses.empty()) {
      continue;
    }
    Event ev = make_event(EventKind::MemberOut, m_roster[i].nick);
    for (std::size_t j = 0; j < m_roster.size(); ++j) {
      if (refuses.test(j)) {
        ev.nicks.push_back(m_roster[j].nick);
      }
    }
    verdict.members.push_back(Engine::OutMember{m_roster[i], ev.nicks, ErrorCode::Internal});
    out.events.push_back(std::move(ev));
    verdict.self_out = verdict.self_out || i == m_self;
  }
  if (!verdict.members.empty()) {
    return fail_with(std::move(verdict), std::move(out));
  }
  MPOTR_TRY(Output sent, send_attest(rng));
  out.merge(std::move(sent));
  return out;
}

Result<Output> Attempt::accuse(std::uint8_t accused, KeyShareFault fault, Rng& rng) {
  codec::Accuse msg;
  msg.session_id = m_sid;
  msg.sender = m_self;
  msg.accused = accused;
  const SecretBytes e = m_dh->scalar();  // this attempt is over: its DH key protects nothing now
  std::copy_n(e.data(), msg.dh_private.size(), msg.dh_private.begin());
  msg.key_share = m_peers[accused].key_share.copy();
  MPOTR_TRY(const Bytes signed_part, sign_message(msg, m_sid, *m_signing, rng));
  (void)signed_part;
  Output out;
  out.broadcasts.push_back(codec::encode(msg));
  Event ev = make_event(EventKind::MemberExcluded, m_roster[accused].nick);
  ev.code = fault == KeyShareFault::BadMac ? ErrorCode::BadMac : ErrorCode::GroupKeyMismatch;
  ev.by = m_roster[m_self].nick;
  ev.detail = fault == KeyShareFault::BadMac
                  ? "its key share did not authenticate to us: it misbehaved, or the server forged its offer"
                  : "it sent us a group-key contribution that does not match its own signed commitment";
  out.events.push_back(std::move(ev));
  Verdict verdict;
  verdict.kind = Verdict::Kind::Excluded;
  verdict.members.push_back(Engine::OutMember{m_roster[accused], {}, out.events.back().code});
  return fail_with(std::move(verdict), std::move(out));
}

Output Attempt::fail_with(Verdict verdict, Output out) {
  m_phase = SetupPhase::Failed;
  forget_secrets();
  m_verdict = std::move(verdict);
  return out;
}

// An accusation (R-KS-13): the accuser j reveals its ephemeral e_j and the accused i's key share
// as j received it. We name i if that key share is authentic (signed by S_i and, to us, either
// the copy we verified or one whose MAC to us verifies) and it differs from our copy, or
// carries a bad MAC or a secret off its commitment for j; we name j if i's share for j checks
// out (or j's revealed key is not its E_j) and j's own key share authenticated j to us. Anything
// else cannot be decided and is rejected without changing the attempt.
Result<Output> Attempt::on_accuse(const Context& ctx, const codec::Accuse& msg, ByteView payload, std::size_t signed_len,
                                  std::string_view from_nick, Rng& rng) {
  (void)ctx;
  (void)rng;
  if (m_phase == SetupPhase::Offers) {
    MPOTR_TRY(Peer* early, early_peer(from_nick, "accusation"));
    MPOTR_CHECK(buffer_early(*early, early->early_accusations, payload, signed_len, msg.session_id, msg.signature,
                             "accusation"));
    return Output{};
  }
  if (msg.session_id != m_sid) {
    return make_error(ErrorCode::UnknownSession, "buffered accusation names another session: it belongs to an abandoned attempt");
  }
  MPOTR_TRY(const std::uint8_t j, check_sender(m_roster, from_nick, msg.sender));
  if (j == m_self) {
    return make_error(ErrorCode::NickMismatch, "an accusation in our name that we did not make");
  }
  if (msg.accused >= m_roster.size()) {
    return make_error(ErrorCode::DecodeBadValue, "accused index " + std::to_string(msg.accused) + " outside the roster");
  }
  const std::uint8_t i = msg.accused;
  Peer& accuser = m_peers[j];
  if (!accuser.signing_key->verify_digest(ks::signed_digest(m_sid, payload.first(signed_len)), view(msg.signature))) {
    return make_error(ErrorCode::BadSignature, "accusation signature does not verify");
  }
  if (!running()) {
    return unexpected("accusation", m_phase);
  }
  // The embedded key share must be the accused's, for this session, validly signed by it.
  auto embedded = codec::decode(view(msg.key_share));
  const auto* share = embedded.ok() ? std::get_if<codec::KeyShare>(&embedded->message) : nullptr;
  if (share == nullptr || share->session_id != m_sid || share->sender != i ||
      share->shares.size() != m_roster.size() - 1) {
    return make_error(ErrorCode::DecodeBadValue, "accusation does not carry the accused's key share of this session");
  }
  const ByteView share_signed = view(msg.key_share).first(embedded->signed_len);
  if (!m_peers[i].signing_key->verify_digest(ks::signed_digest(m_sid, share_signed), view(share->signature))) {
    return make_error(ErrorCode::BadSignature, "the accused's key share in the accusation is not signed by it");
  }

  // Is that key share authentic to us, and is it the one we hold?
  ErrorCode guilty_code = ErrorCode::Internal;
  std::optional<std::uint8_t> guilty;
  std::string detail;
  const Peer& accused = m_peers[i];
  if (i == m_self || !accused.key_share_signed.empty()) {
    if (!same_bytes(accused.key_share_signed.view(), share_signed)) {
      if (i == m_self) {
        return make_error(ErrorCode::NickMismatch, "an accusation embeds a key share in our name that we did not send");
      }
      guilty = i;
      guilty_code = ErrorCode::Equivocation;
      detail = "it signed two different key shares (one to us, another to " + m_roster[j].nick + ")";
    }
  } else {
    MPOTR_TRY(const KeyShareFault to_us, check_share_for(*share, m_self, *m_dh, nullptr));
    if (to_us != KeyShareFault::None) {
      guilty = i;  // what the accuser says of it holds for us too
      guilty_code = to_us == KeyShareFault::BadMac ? ErrorCode::BadMac : ErrorCode::GroupKeyMismatch;
      detail = to_us == KeyShareFault::BadMac
                   ? "its key share did not authenticate to us either: it misbehaved, or the server forged its offer"
                   : "it sent us a group-key contribution that does not match its own signed commitment";
    }
  }
  if (!guilty) {
    // The key share is authentic to us: check it for the accuser with the revealed key.
    auto e_j = crypto::PrivateKey::from_scalar(view(msg.dh_private));
    const bool key_ok = e_j.ok() && e_j->public_key() == *accuser.dh_key;
    KeyShareFault fault = KeyShareFault::None;
    if (key_ok) {
      MPOTR_TRY(fault, check_share_for(*share, j, *e_j, nullptr));
    }
    if (fault != KeyShareFault::None) {
      guilty = i;
      guilty_code = fault == KeyShareFault::BadMac ? ErrorCode::BadMac : ErrorCode::GroupKeyMismatch;
      detail = fault == KeyShareFault::BadMac ? "it sent " + m_roster[j].nick + " a wrong authentication code (proven)"
                                              : "it sent " + m_roster[j].nick +
                                                    " a group-key contribution that does not match its signed commitment (proven)";
    } else {
      // The accusation is false (or names a key that is not the accuser's). That proves the
      // accuser's misconduct only once its own key share authenticated it to us.
      if (accuser.key_share_signed.empty()) {
        MPOTR_CHECK(buffer_early(accuser, accuser.early_accusations, payload, signed_len, msg.session_id, msg.signature,
                                 "accusation"));
        return Output{};
      }
      guilty = j;
      guilty_code = ErrorCode::FalseAccusation;
      detail = key_ok ? "it accused " + m_roster[i].nick + ", whose key share checks out (proven)"
                      : "its accusation reveals a key that is not its own (proven)";
    }
  }
  Output out;
  Event ev = make_event(EventKind::MemberExcluded, m_roster[*guilty].nick);
  ev.code = guilty_code;
  ev.by = m_roster[j].nick;
  ev.detail = std::move(detail);
  out.events.push_back(std::move(ev));
  Verdict verdict;
  verdict.kind = Verdict::Kind::Excluded;
  verdict.members.push_back(Engine::OutMember{m_roster[*guilty], {}, guilty_code});
  verdict.self_out = *guilty == m_self;
  return fail_with(std::move(verdict), std::move(out));
}

// --- round 3 -------------------------------------------------------------------------------

Result<Output> Attempt::send_attest(Rng& rng) {
  std::vector<Bytes> offers, shares;
  std::vector<SecretBytes> secrets;
  for (const auto& p : m_peers) {
    offers.push_back(p.offer_bytes.copy());
    shares.push_back(p.key_share_signed.copy());
    secrets.push_back(p.secret.get());
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
  m_peers[m_self].attest_signed = SharedBytes(view(signed_part));
  m_phase = SetupPhase::Attests;
  Output out;
  out.broadcasts.push_back(codec::encode(msg));
  return out;
}

Result<Output> Attempt::on_attest(const Context& ctx, const codec::Attest& msg, ByteView payload,
                                  std::size_t signed_len, std::string_view from_nick, Rng& rng) {
  (void)ctx;
  (void)rng;
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
    if (same_bytes(peer.attest_signed.view(), signed_part)) {
      return Output{};
    }
    return make_error(ErrorCode::NickMismatch, "an attest in our name that we did not send");
  }
  const Hash32 digest = ks::signed_digest(m_sid, signed_part);
  if (!peer.signing_key->verify_digest(digest, view(msg.signature))) {
    return make_error(ErrorCode::BadSignature, "attest signature does not verify");
  }
  if (!peer.attest_signed.empty()) {
    return repeated(peer.attest_signed.view(), signed_part, "attest");
  }
  if (m_phase != SetupPhase::Attests) {
    return unexpected("attest", m_phase);
  }

  // Authentic disagreement is final: nothing this member sends later can fix it.
  Output out;
  if (msg.transcript_hash != m_transcript_hash) {
    m_phase = SetupPhase::Failed;
    forget_secrets();
    Event failed = make_event(EventKind::SetupFailed, m_roster[j].nick);
    failed.code = ErrorCode::TranscriptMismatch;
    failed.detail = "'" + m_roster[j].nick + "' saw a different setup transcript";
    out.events.push_back(std::move(failed));
    return out;
  }
  if (!ct_equal(view(msg.key_confirm), view(m_key_confirm))) {
    // Every contribution was checked against its signed commitment by every member that
    // accepted it, and the transcripts are equal: an honest member derives our group key. This
    // member's signed attest says otherwise, so it is the one at fault (R-AT-7).
    Event ev = make_event(EventKind::MemberExcluded, m_roster[j].nick);
    ev.code = ErrorCode::GroupKeyMismatch;
    ev.detail = "its signed attest confirms a different group key, although every contribution matched its commitment";
    out.events.push_back(std::move(ev));
    Verdict verdict;
    verdict.kind = Verdict::Kind::Excluded;
    verdict.members.push_back(Engine::OutMember{m_roster[j], {}, ErrorCode::GroupKeyMismatch});
    return fail_with(std::move(verdict), std::move(out));
  }
  peer.attest_signed = SharedBytes(signed_part);
  const bool complete = std::all_of(m_peers.begin(), m_peers.end(), [](const Peer& p) { return !p.attest_signed.empty(); });
  if (complete) {
    m_phase = SetupPhase::Done;
  }
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

// Feeds messages that arrived before their phase: key shares in round 2, attests in round 3,
// accusations from round 2 on. Their errors are reported, not returned: the call that
// triggered the replay has itself succeeded.
Output Attempt::replay_early(const Context& ctx, Rng& rng) {
  Output out;
  for (std::size_t j = 0; j < m_peers.size(); ++j) {
    for (std::vector<Bytes> Peer::*list : {&Peer::early_accusations, &Peer::early_key_shares, &Peer::early_attests}) {
      const bool due = list == &Peer::early_accusations ? m_phase == SetupPhase::KeyShares || m_phase == SetupPhase::Attests
                       : list == &Peer::early_key_shares ? m_phase == SetupPhase::KeyShares
                                                         : m_phase == SetupPhase::Attests;
      std::vector<Bytes>& early = m_peers[j].*list;
      if (!due || early.empty()) {
        continue;
      }
      const std::vector<Bytes> payloads = std::move(early);
      early.clear();
      const std::string nick = m_roster[j].nick;
      for (const Bytes& payload : payloads) {
        auto decoded = codec::decode(view(payload));
        Result<Output> r = decoded.ok() ? Result<Output>(Output{}) : Result<Output>(decoded.error());
        if (decoded.ok()) {
          if (const auto* ks_msg = std::get_if<codec::KeyShare>(&decoded->message)) {
            r = on_key_share(ctx, *ks_msg, view(payload), decoded->signed_len, nick, rng);
          } else if (const auto* at = std::get_if<codec::Attest>(&decoded->message)) {
            r = on_attest(ctx, *at, view(payload), decoded->signed_len, nick, rng);
          } else if (const auto* ac = std::get_if<codec::Accuse>(&decoded->message)) {
            r = on_accuse(ctx, *ac, view(payload), decoded->signed_len, nick, rng);
          }
        }
        if (r.ok()) {
          out.merge(std::move(r).value());
        } else {
          m_last_rejection = nick + ": " + r.error().detail;
          out.events.push_back(rejected_event(r.error(), nick));
        }
        if (!running()) {
          return out;
        }
      }
    }
  }
  return out;
}

Result<Output> Attempt::on_timer(TimeMs now, Rng& rng) {
  if (now < m_deadline || !running()) {
    return Output{};
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
  Attempt next = *this;
  MPOTR_TRY(Output out, next.abandon(rng));
  out.events.insert(out.events.begin(), std::move(timeout));
  *this = std::move(next);
  return out;
}

Result<Output> Attempt::abandon(Rng& rng) {
  Output out;
  if (m_phase == SetupPhase::Attests) {
    MPOTR_TRY(const SecretBytes auth, ks::auth_key(m_group_secret));
    codec::Quit msg;
    msg.session_tag = ks::session_tag(m_sid);
    msg.sender = m_self;
    msg.final_count = 0;
    msg.mac = ks::message_mac(auth, view(codec::encode_mac_part(msg)));
    MPOTR_TRY(const Bytes signed_part, sign_message(msg, m_sid, *m_signing, rng));
    (void)signed_part;
    out.broadcasts.push_back(codec::encode(msg));
  }
  if (running()) {
    m_phase = SetupPhase::Failed;
    forget_secrets();
  }
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
    m.key_share_ids.push_back(crypto::sha256(p.key_share_signed.view()));
    m.attest_ids.push_back(crypto::sha256(p.attest_signed.view()));
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
  }
  return m;
}

void Attempt::summarize(crypto::Sha256& h) const {
  h.update("attempt").update_u8(static_cast<std::uint8_t>(m_phase)).update(view(m_roster_digest)).update(view(m_sid));
  h.update_u32(m_number).update_u8(m_verdict ? 1 : 0);
  for (const auto& p : m_peers) {
    h.update_u8(p.offer ? 1 : 0)
        .update_u8(p.refused ? 1 : 0)
        .update_u32(static_cast<std::uint32_t>(p.key_share_signed.size()))
        .update_u32(static_cast<std::uint32_t>(p.attest_signed.size()))
        .update_u32(static_cast<std::uint32_t>(p.early_key_shares.size()))
        .update_u32(static_cast<std::uint32_t>(p.early_attests.size()))
        .update_u32(static_cast<std::uint32_t>(p.early_accusations.size()));
  }
}

}  // namespace mpotr::detail
