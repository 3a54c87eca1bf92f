// SPDX-License-Identifier: MIT
// Shared building blocks of the simulation scenarios: driving a room through a whole
// conversation under an Adversary, querying what members saw, and forging messages with keys
// the adversary legitimately learnt (published signing keys, a malicious member's own keys).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mpotr/codec/messages.h"
#include "mpotr/crypto/crypto.h"
#include "sim/adversary.h"

namespace mpotr::sim {

// --- queries -----------------------------------------------------------------------------

std::vector<Event> events_of(const SimMember& m, EventKind kind, std::size_t from_index = 0);
std::vector<Event> events_in(const SimMember& m, const Delivery& d);
bool has_event(const SimMember& m, EventKind kind, std::string_view nick = {}, std::size_t from_index = 0);
std::size_t count_events(const SimMember& m, EventKind kind, std::string_view nick = {}, std::size_t from_index = 0);
// Compact "kind nick seq" lines, without Rejected events, for comparing runs.
std::vector<std::string> event_trace(const SimMember& m);
std::string dump_events(const SimMember& m, std::size_t from_index = 0);
std::optional<Hash32> sid_of(const SimMember& m);
std::vector<std::string> roster_of(const SimMember& m);
// Present members are all Established on one session id with the same roster.
bool converged(Room& room);
std::string room_state(Room& room);
// Texts of MessageReceived from `author` as seen by m, in order.
std::vector<std::string> texts_from(const SimMember& m, std::string_view author, std::size_t from_index = 0);

// --- driving -----------------------------------------------------------------------------

// The member calls leave(); the adversary runs (and settles timers up to `horizon`); when the
// member reports ReadyToLeave the host leaves the room (part). Returns whether it got there.
bool leave_room(Adversary& adv, std::string_view nick, TimeMs horizon = 60'000);
void send(Adversary& adv, std::string_view nick, std::string_view text);
Bytes last_broadcast(Room& room, std::string_view nick);

// --- forging -------------------------------------------------------------------------------

// The session id of the active session of m, or of the most recent SessionEstablished.
Hash32 last_sid(const SimMember& m);
// Re-signs a decoded signed message under `key` for session `sid` and encodes it.
Bytes sign_and_encode(codec::Data msg, const crypto::PrivateKey& key, const Hash32& sid, Rng& rng);
Bytes sign_and_encode(codec::Shutdown msg, const crypto::PrivateKey& key, const Hash32& sid, Rng& rng);
Bytes sign_and_encode(codec::Digest msg, const crypto::PrivateKey& key, const Hash32& sid, Rng& rng);
template <class T>
T decode_as(const Bytes& payload) {
  auto d = codec::decode(view(payload));
  if (!d.ok()) {
    throw std::runtime_error("decode_as: " + d.error().detail);
  }
  return std::get<T>(d->message);
}

// A member whose setup messages the test writes by hand (its engine's own broadcasts are
// dropped by the adversary). Lets a scenario send inconsistent secrets or two different key
// shares, which no honest engine ever does.
class PuppetMember {
 public:
  PuppetMember(std::string nick, std::uint64_t seed);
  const std::string& nick() const { return m_nick; }
  // Offer for the given sorted roster and attempt number.
  Bytes offer(const std::vector<std::string>& sorted_nicks, std::uint32_t attempt);
  // Key share for the session fixed by `offers` (decoded, roster order); `secret_for(j)` is the
  // group-key contribution encrypted to member j (an honest member uses one value for all). The
  // commitment is to `committed` (default: what the first other member gets); `bad_mac_for(j)`
  // true makes the DAKE MAC for member j wrong.
  Bytes key_share(const std::vector<codec::Offer>& offers, const std::function<Hash32(std::size_t)>& secret_for,
                  std::optional<Hash32> committed = std::nullopt,
                  const std::function<bool(std::size_t)>& bad_mac_for = {});
  // The ephemeral DH key of this puppet (what an accusation by it reveals).
  const crypto::PrivateKey& dh_key() const { return *m_dh; }
  // Attest consistent with the given key shares (roster order) and our contribution `own`.
  Bytes attest(const std::vector<Bytes>& offers, const std::vector<Bytes>& key_shares,
               const std::vector<Hash32>& secrets);
  const Hash32& sid() const { return m_sid; }
  const crypto::PrivateKey& signing_key() const { return *m_signing; }
  // Decrypts what member `from` (index) sent us in its key share (after key_share()).
  Hash32 open_share(const std::vector<codec::Offer>& offers, std::size_t from, const codec::KeyShare& ks);

 private:
  std::string m_nick;
  DeterministicRng m_rng;
  std::optional<crypto::PrivateKey> m_identity, m_dh, m_signing, m_r;
  Hash32 m_sid{};
  std::size_t m_self = 0;
};

// The reference conversation of the fault-injection tests: setup, one chat line, heartbeats,
// bob leaves (shutdown, digests, ends, key reveals), re-key of the others.
void reference_conversation(Adversary& adv);
// Each member's event trace of the reference conversation on a clean network.
std::map<std::string, std::vector<std::string>> clean_traces(std::uint64_t room_seed);

}  // namespace mpotr::sim
