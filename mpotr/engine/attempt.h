// SPDX-License-Identifier: MIT
// One session-setup attempt (spec/mpotr.md §6.2): Offer → KeyShare → Attest.
//
//   Offers ──all offers──▶ KeyShares ──all key shares──▶ Attests ──all attests match──▶ Done
//     │                       │                            │
//     └──── timeout ──────────┴──── timeout / authenticated disagreement / refusal / accusation ──▶ Failed
//
// Handlers validate first and mutate only when the message is accepted, so an error leaves
// the attempt exactly as it was. Messages for a later phase are buffered (a few per member).
// An attempt that fails for a reason every member can establish (a member refuses another, a
// member proven to cheat) leaves a Verdict: who is left out of the next attempt.
#pragma once

#include <optional>
#include <vector>

#include "mpotr/codec/messages.h"
#include "mpotr/engine/context.h"
#include "mpotr/engine/key_schedule.h"
#include "mpotr/engine/shared_bytes.h"

namespace mpotr::detail {

enum class SetupPhase : std::uint8_t { Offers, KeyShares, Attests, Done, Failed };
std::string_view to_string(SetupPhase phase) noexcept;

// Everything an established session needs from its setup.
struct SessionMaterial {
  Hash32 session_id{};
  std::vector<Member> roster;
  std::uint8_t self = 0;
  std::vector<crypto::PublicKey> signing_keys;
  std::vector<Fingerprint> fingerprints;
  std::vector<Hash32> key_share_ids;  // H(signed part) of each member's key share
  std::vector<Hash32> attest_ids;     // H(signed part) of each member's attest
  crypto::PrivateKey signing_key;
  SecretBytes group_secret;
};

// Why a failed attempt leaves members out of the next one (spec §7.4, §7.11).
struct Verdict {
  enum class Kind : std::uint8_t {
    Refusals,  // these members refuse someone: they stay out (R-ADM-2)
    Excluded,  // this member was proven to cheat, or failed authentication (R-KS-13)
  };
  Kind kind = Kind::Refusals;
  std::vector<Engine::OutMember> members;  // left out of the next attempt
  bool self_out = false;                   // we are among them
};

class Attempt {
 public:
  // Generates fresh ephemeral keys, secret and nonce, and returns the attempt with our Offer
  // in `out`. `roster` is sorted by nick and contains ourselves.
  static Result<Attempt> start(const Context& ctx, std::vector<Member> roster, std::uint32_t number, TimeMs now, Rng& rng,
                               Output& out);

  SetupPhase phase() const noexcept { return m_phase; }
  bool running() const noexcept { return m_phase != SetupPhase::Done && m_phase != SetupPhase::Failed; }
  const Hash32& roster_digest() const noexcept { return m_roster_digest; }
  std::uint32_t number() const noexcept { return m_number; }
  const std::vector<Member>& roster() const noexcept { return m_roster; }
  std::optional<Hash32> session_id() const;
  TimeMs deadline() const noexcept { return m_deadline; }
  // Nonce of the offer we hold from `nick`, if any.
  std::optional<Hash32> offer_nonce(std::string_view nick) const;
  // Identities seen in this attempt's offers (for the host: keys to verify while a member is out).
  std::vector<std::pair<Member, Fingerprint>> identities() const;
  // The members we refuse (R-ADM-1), with why.
  std::vector<std::pair<std::string, ErrorCode>> refused() const;

  // `payload` is the exact received bytes, `decoded` its decoding. from_nick is the transport sender.
  Result<Output> on_offer(const Context& ctx, const codec::Offer& offer, ByteView payload, std::string_view from_nick,
                          Rng& rng);
  Result<Output> on_key_share(const Context& ctx, const codec::KeyShare& msg, ByteView payload, std::size_t signed_len,
                              std::string_view from_nick, Rng& rng);
  Result<Output> on_attest(const Context& ctx, const codec::Attest& msg, ByteView payload, std::size_t signed_len,
                           std::string_view from_nick, Rng& rng);
  Result<Output> on_accuse(const Context& ctx, const codec::Accuse& msg, ByteView payload, std::size_t signed_len,
                           std::string_view from_nick, Rng& rng);

  // Setup timeout: Failed with a SetupTimeout event naming who is missing, and the Quit of
  // abandon() when it applies.
  Result<Output> on_timer(TimeMs now, Rng& rng);
  // The attempt is given up (timeout, restart, roster change, leave). In phase Attests our
  // attest is out, so the others may have established the session without us: a signed,
  // MAC'd Quit for it (final count 0) lets them close it and publish their keys (R-AT-10).
  Result<Output> abandon(Rng& rng);

  // Valid once phase() == Done.
  SessionMaterial take_material();
  // Set once, when the attempt failed for a reason every member can establish; taken by the engine.
  std::optional<Verdict> take_verdict() { return std::exchange(m_verdict, std::nullopt); }
  // Something for the engine to act on: a verdict, or a completed setup.
  bool concluded() const noexcept { return m_verdict.has_value() || m_phase == SetupPhase::Done; }

  void summarize(crypto::Sha256& h) const;

 private:
  struct Peer {
    std::optional<codec::Offer> offer;
    SharedBytes offer_bytes;
    std::optional<crypto::PublicKey> identity_key, dh_key, signing_key;
    Fingerprint fingerprint;
    std::optional<ErrorCode> refused;  // we do not accept this member (R-ADM-1)
    SharedSecret mac_in;  // K_{peer→self}: the DAKE key of the MAC this peer sends us
    // Messages are identified by their signed part: ECDSA signatures are malleable ((r, n−s)
    // verifies too), so the signature bytes must not decide "same" or "different".
    SharedBytes key_share_signed;
    SharedBytes key_share;  // whole, as received: an accusation of this member embeds it
    codec::MemberSet refuses;  // whom this member refuses (from its key share)
    SharedSecret secret;  // the peer's group-key contribution
    SharedBytes attest_signed;
    std::vector<Bytes> early_key_shares, early_attests, early_accusations;  // before their phase (bounded)
  };
  // The checks of an accused member's key share, as anyone can make them (spec R-KS-13).
  enum class KeyShareFault : std::uint8_t { None, BadMac, BadSecret };

  Attempt() = default;
  Result<Output> send_key_share(const Context& ctx, Rng& rng);
  Result<Output> send_attest(Rng& rng);
  Result<Output> finish_key_shares(Rng& rng);
  Result<Output> accuse(std::uint8_t accused, KeyShareFault fault, Rng& rng);
  Result<KeyShareFault> check_share_for(const codec::KeyShare& ks, std::uint8_t to, const crypto::PrivateKey& to_dh,
                                        SecretBytes* secret_out) const;
  Output fail_with(Verdict verdict, Output out);
  Output replay_early(const Context& ctx, Rng& rng);
  Result<Peer*> early_peer(std::string_view from_nick, std::string_view what);
  Result<void> buffer_early(Peer& peer, std::vector<Bytes>& early, ByteView payload, std::size_t signed_len,
                            const Hash32& claimed_sid, const codec::Signature& sig, std::string_view what);
  Result<std::uint8_t> check_setup_sender(std::string_view from_nick, std::uint8_t claimed, ByteView signed_part,
                                          ByteView own_copy, std::string_view what) const;
  void forget_secrets();

  SetupPhase m_phase = SetupPhase::Offers;
  std::vector<Member> m_roster;
  std::uint8_t m_self = 0;
  std::uint32_t m_number = 0;
  Hash32 m_roster_digest{};
  TimeMs m_deadline = 0;
  std::vector<Peer> m_peers;  // indexed like m_roster, including ourselves

  std::optional<crypto::PrivateKey> m_dh, m_signing, m_elgamal_r;
  SecretBytes m_secret;
  Hash32 m_sid{};
  SecretBytes m_group_secret;
  Hash32 m_transcript_hash{};
  Hash32 m_key_confirm{};
  std::string m_last_rejection;
  std::optional<Verdict> m_verdict;
};

}  // namespace mpotr::detail
