// SPDX-License-Identifier: MIT
// Key verification by the Socialist Millionaires' Protocol over a private OTRv3 channel
// (libotr 4.1), one per pair of real full JIDs (spec/verification.md).
//
// Sans-I/O: the class never sends anything. Every call returns the OTR texts to deliver (the
// caller wraps each in <otr xmlns='urn:mpotr:otr:1'> and sends it to to_full_jid) and the events
// to show. The only I/O is libotr's three files in the directory given to open(). There is
// no clock: the caller aborts a run that takes too long (spec/verification.md V-7). Not
// thread-safe: call everything from one thread (Profanity's main loop). libotr types never
// appear here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mpotr/bytes.h"
#include "mpotr/result.h"
#include "plugin/smp/smp_secret.h"

namespace mpotr::plugin {

inline constexpr std::size_t kMaxOtrMessageLen = 64 * 1024;  // one inbound OTR text
inline constexpr std::size_t kMaxSmpPeers = 32;              // peers with OTR state at once
inline constexpr std::size_t kMaxSmpQuestionLen = 512;       // bytes, both directions
inline constexpr std::size_t kMaxOtrFileLen = 1024 * 1024;   // each libotr file we read
// libotr "protocol" name: keeps this key and these sessions apart from any other OTR use of
// the same account (Profanity's own OTR uses "xmpp").
inline constexpr std::string_view kOtrProtocol = "xmpp-mpotr";

struct OtrOutgoing {
  std::string to_full_jid;
  std::string text;  // "?OTR..." text, to be wrapped by the caller
};

enum class SmpEventKind : std::uint8_t {
  ChannelSecure,    // the private OTR channel with peer is (re)established
  SecretRequested,  // peer started SMP: ask our user for the secret, then call answer()
  Succeeded,        // both sides used the same bound secret (same user secret and same keys)
  Failed,           // the bound secrets differ: wrong secret, or someone sees a different key
  Aborted,          // peer aborted, or ended the OTR session, during a verification
  Error,            // protocol or channel error; any verification with peer has been stopped
};
std::string_view to_string(SmpEventKind kind) noexcept;

struct SmpEvent {
  SmpEventKind kind = SmpEventKind::Error;
  std::string peer;      // full JID
  std::string question;  // SecretRequested only; untrusted text chosen by the peer (may be empty)
  std::string detail;    // human-readable, never secret
};

struct OtrOutput {
  std::vector<OtrOutgoing> send;  // in order
  std::vector<SmpEvent> events;   // in order
};

// Where a verification with one peer stands (our side).
enum class SmpPhase : std::uint8_t {
  Idle,             // nothing pending (a channel may exist)
  AwaitingChannel,  // start() sent an OTR query; SMP starts when the channel is secure
  Initiated,        // we sent SMP step 1; waiting for the result
  SecretRequested,  // peer sent SMP step 1; waiting for answer()
  Responded,        // we sent SMP step 2; waiting for the result
};

class OtrVerifier {
 public:
  // Opens (creating, mode 0700) dir and loads <dir>/otr.private_key and <dir>/otr.instance_tags
  // if present (each must be a regular file of ours with mode 0600, at most kMaxOtrFileLen);
  // creates the instance tag file if missing. Does not generate the DSA key (see ensure_key).
  // <dir>/otr.fingerprints (peers' OTR keys seen in current sessions) is only written.
  // All writes are atomic (temp file, fsync, rename) with mode 0600.
  // account_bare_jid is our bare JID, used as libotr's account name.
  // Errors: InvalidArgument (bad JID, empty dir), Storage, Crypto (libotr refused a file).
  static Result<std::unique_ptr<OtrVerifier>> open(std::string dir, std::string account_bare_jid);

  OtrVerifier(const OtrVerifier&) = delete;
  OtrVerifier& operator=(const OtrVerifier&) = delete;
  ~OtrVerifier();  // forgets all sessions quietly

  // Generates and stores the 1024-bit DSA key if there is none. This blocks once (measured
  // 20-150 ms; longer if libgcrypt waits for entropy). start() and receive() call it; call it
  // earlier to choose when the pause happens. Errors: Storage, Crypto.
  Result<void> ensure_key();
  bool has_key() const;
  // Our OTR fingerprint, libotr's human form ("1A2B3C4D 5E6F7081 ..."). InvalidState if no key.
  Result<std::string> otr_fingerprint() const;

  // Starts verifying peer with bound_secret (kBoundSmpSecretLen bytes, from bound_smp_secret).
  // Sends an OTR query, so that a fresh AKE runs (the peer may have lost its session), then,
  // when the channel is secure, SMP: mutual without a question, libotr's question mode with
  // one (both sides still learn the result). If the peer started first (its request pending,
  // its query already answered, or queries crossing and the peer leads), no second run starts:
  // the peer's SMP request is answered with bound_secret. Errors: InvalidArgument (JID, secret
  // length, question empty, too long or with a NUL), InvalidState (a verification with peer
  // is already running; abort() first), LimitExceeded (kMaxSmpPeers peers busy),
  // Storage/Crypto (key generation).
  Result<OtrOutput> start(std::string_view peer_full_jid, std::optional<std::string> question,
                          const SecretBytes& bound_secret);

  // Answers the peer's SMP request (after SecretRequested). Errors: InvalidArgument,
  // InvalidState (no request pending, or the channel has ended meanwhile).
  Result<OtrOutput> answer(std::string_view peer_full_jid, const SecretBytes& bound_secret);

  // Feeds one inbound OTR text from from_full_jid. Only OTR protocol messages are accepted
  // ("?OTR:", "?OTR Error:", "?OTRv3?" queries); chat text inside the channel is dropped, never
  // returned. Errors (no peer state changed): DecodeOversize (> kMaxOtrMessageLen),
  // DecodeBadValue (not an OTR message, a fragment, a NUL byte), InvalidArgument (JID),
  // LimitExceeded, Storage/Crypto (key generation). Protocol trouble inside a valid-looking
  // OTR message is an Error event instead.
  Result<OtrOutput> receive(std::string_view from_full_jid, std::string_view otr_text);

  // Stops any verification with peer (telling it with an SMP abort), ends the OTR session and
  // forgets the peer, freeing its slot. No event for our own abort.
  OtrOutput abort(std::string_view peer_full_jid);

  // libotr's housekeeping (wipes stale AKE keys: forward secrecy). Call it every
  // poll_interval_seconds() seconds when that is non-zero; more often is harmless.
  OtrOutput poll();
  unsigned poll_interval_seconds() const noexcept;

  // Drops every OTR session and peer without sending anything (plugin unload).
  void forget_all();

  SmpPhase phase(std::string_view peer_full_jid) const;
  std::size_t peer_count() const noexcept;

 private:
  struct Impl;
  explicit OtrVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m;
};

}  // namespace mpotr::plugin
