// SPDX-License-Identifier: MIT
// One session-setup attempt (spec/mpotr.md §5): Offer → KeyShare → Attest.
//
//   Offers ──all offers──▶ KeyShares ──all key shares──▶ Attests ──all attests match──▶ Done
//     │                       │                            │
//     └──── timeout ──────────┴──── timeout / authenticated disagreement ──▶ Failed
//
// Handlers validate first and mutate only when the message is accepted, so an error leaves
// the attempt exactly as it was. Messages for a later phase are buffered (one per member).
#pragma once

#include <optional>
#include <vector>

#include "mpotr/codec/messages.h"
#include "mpotr/engine/context.h"
#include "mpotr/engine/key_schedule.h"

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
  crypto::PrivateKey signing_key;
  SecretBytes group_secret;
};

class Attempt {
 public:
  // Generates fresh ephemeral keys, secret and nonce, and returns the attempt with our Offer
  // in `out`. `roster` is sorted by nick and contains ourselves.
  static Result<Attempt> start(const Context& ctx, std::vector<Member> roster, std::uint32_t number, TimeMs now, Rng& rng,
                               Output& out);

  SetupPhase phase() const noexcept { return m_phase; }
  const Hash32& roster_digest() const noexcept { return m_roster_digest; }
  std::uint32_t number() const noexcept { return m_number; }
  const std::vector<Member>& roster() const noexcept { return m_roster; }
  std::optional<Hash32> session_id() const;
  TimeMs deadline() const noexcept { return m_deadline; }
  // Nonce of the offer we hold from `nick`, if any.
  std::optional<Hash32> offer_nonce(std::string_view nick) const;

  // `payload` is the exact received bytes, `decoded` its decoding. from_nick is the transport sender.
  Result<Output> on_offer(const Context& ctx, const codec::Offer& offer, ByteView payload, std::string_view from_nick,
                          Rng& rng);
  Result<Output> on_key_share(const Context& ctx, const codec::KeyShare& msg, ByteView payload, std::size_t signed_len,
                              std::string_view from_nick, Rng& rng);
  Result<Output> on_attest(const Context& ctx, const codec::Attest& msg, ByteView payload, std::size_t signed_len,
                           std::string_view from_nick, Rng& rng);

  // Setup timeout: Failed with a SetupTimeout event naming who is missing.
  Output on_timer(TimeMs now);

  // Valid once phase() == Done.
  SessionMaterial take_material();

  void summarize(crypto::Sha256& h) const;

 private:
  struct Peer {
    std::optional<codec::Offer> offer;
    Bytes offer_bytes;
    std::optional<crypto::PublicKey> identity_key, dh_key, signing_key;
    Fingerprint fingerprint;
    SecretBytes mac_in;   // key of the MAC this peer sends us
    SecretBytes mac_out;  // key of the MAC we send this peer
    // Messages are identified by their signed part: ECDSA signatures are malleable ((r, n−s)
    // verifies too), so the signature bytes must not decide "same" or "different".
    Bytes key_share_signed;
    SecretBytes secret;   // the peer's group-key contribution
    Bytes attest_signed;
    std::vector<Bytes> early_key_shares, early_attests;  // arrived before their phase (bounded)
  };

  Attempt() = default;
  Result<Output> send_key_share(const Context& ctx, Rng& rng);
  Result<Output> send_attest(Rng& rng);
  Output replay_early(const Context& ctx, Rng& rng);
  Result<Peer*> early_peer(std::string_view from_nick, std::string_view what);
  Result<void> buffer_early(Peer& peer, std::vector<Bytes>& early, ByteView payload, std::size_t signed_len,
                            const Hash32& claimed_sid, const codec::Signature& sig, std::string_view what);
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
};

}  // namespace mpotr::detail
