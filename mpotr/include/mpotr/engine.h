// SPDX-License-Identifier: MIT
// The mpOTR engine for one room: sans-I/O, single-threaded, deterministic given its inputs
// (bytes, time, randomness). See spec/mpotr.md for the protocol it implements.
//
// Lifecycle: set_roster() starts a session attempt for the members the host sees in the room;
// every later roster change closes the current session (transcript check, key publication)
// and starts a new one with fresh keys. receive() takes every payload the room delivers,
// including our own reflected messages. tick() runs timers.
//
// Error contract: a call that returns an Error left the engine unchanged. Messages that are
// authentic but prove disagreement (a valid Attest with a different transcript, a valid message
// with a different view) are not errors: they produce events.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mpotr/bytes.h"
#include "mpotr/events.h"
#include "mpotr/identity.h"
#include "mpotr/limits.h"
#include "mpotr/result.h"
#include "mpotr/rng.h"
#include "mpotr/trust.h"

namespace mpotr {

struct Member {
  std::string nick;  // room nick, the transport's sender name
  std::string jid;   // real bare JID (non-anonymous room); used for trust decisions
};

struct Timeouts {
  TimeMs setup = kDefaultSetupTimeoutMs;
  TimeMs heartbeat = kDefaultHeartbeatMs;
  TimeMs gap = kDefaultGapTimeoutMs;
  TimeMs confirm = kDefaultConfirmTimeoutMs;
  TimeMs shutdown = kDefaultShutdownTimeoutMs;
};

// Whom we admit to a session with us (spec §7.10). A member we do not admit is not forced out:
// we stay out of the session ourselves, the others go on without us (R-ADM-2).
enum class AdmissionPolicy : std::uint8_t {
  Trusted,       // every identity that is not blocked and not a changed key (TOFU)
  VerifiedOnly,  // only identities the user verified (fingerprint or SMP)
};
std::string_view to_string(AdmissionPolicy policy) noexcept;

struct EngineConfig {
  std::string room;       // room address, bound into the session id (normalised by the host, §13.2)
  std::string self_nick;
  Timeouts timeouts;
  AdmissionPolicy admission = AdmissionPolicy::Trusted;
};

// Engine-level phase, for hosts and UIs. Per-attempt and per-session phases are in spec §5.
enum class Phase : std::uint8_t {
  Idle,         // no roster yet, or the last attempt failed
  SettingUp,    // an attempt is running (offers, key shares, attests)
  Established,  // a session is ready: send_text() works
  Out,          // we refuse a member of the room (block, changed key, "verified only"): the others run
                // without us until our trust changes (restart()) or the roster does
  Leaving,      // leave() called: shutting down, then ReadyToLeave
  Left,
};
std::string_view to_string(Phase phase) noexcept;

struct MemberInfo {
  std::string nick;
  std::string jid;
  Fingerprint fingerprint;
};

struct SessionInfo {
  Hash32 session_id{};
  std::vector<MemberInfo> members;  // canonical order (by nick bytes)
  std::size_t self_index = 0;
  std::uint32_t messages_sent = 0;
};

// A comparable snapshot of everything that evolves; tests assert it is unchanged after errors.
struct StateSummary {
  Phase phase{};
  Hash32 digest{};  // hash over all protocol state
  friend bool operator==(const StateSummary&, const StateSummary&) = default;
};

class Engine {
 public:
  // trust may be null (accept every identity as new). The engine only reads it.
  Engine(EngineConfig config, IdentityKey identity, const TrustStore* trust = nullptr);
  ~Engine();
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;
  Engine(const Engine&);
  Engine& operator=(const Engine&);

  // The members the host sees in the room, including ourselves. A changed list closes the
  // current session and starts a new attempt. Errors: InvalidArgument (self missing, duplicate
  // or oversize nick, too many members).
  Result<Output> set_roster(const std::vector<Member>& members, TimeMs now, Rng& rng);
  // Start a new attempt with the same roster (after SetupFailed / SetupTimeout).
  Result<Output> restart(TimeMs now, Rng& rng);

  // A payload the room delivered, with the transport's sender nick. Errors leave state unchanged.
  Result<Output> receive(std::string_view from_nick, ByteView payload, TimeMs now, Rng& rng);

  // Encrypt, sign and broadcast a chat line. Errors: NotReady, InvalidArgument (too long), LimitExceeded.
  Result<Output> send_text(std::string_view text, TimeMs now, Rng& rng);

  // Graceful leave: shut the session down, publish our key, then emit ReadyToLeave.
  Result<Output> leave(TimeMs now, Rng& rng);
  // Leave at once without finishing the shutdown: a signed Quit for every session that has not
  // sent its End (we accept nothing more in it, so the others may publish their keys); our own
  // keys stay withheld where not yet published (KeyWithheld), and every session still kept is
  // closed (SessionClosed). No ReadyToLeave. Afterwards the engine is Left.
  Result<Output> quit(TimeMs now, Rng& rng);

  // Changes whom we admit and starts a new attempt if a roster is set.
  Result<Output> set_admission(AdmissionPolicy policy, TimeMs now, Rng& rng);

  // Run due timers (heartbeat, gap, confirmation, setup and shutdown timeouts).
  Result<Output> tick(TimeMs now, Rng& rng);

  Phase phase() const noexcept;
  std::optional<SessionInfo> session() const;
  // The identities of the current attempt's offers, or of the active session, and the keys the
  // members left out showed: what a user can verify while a member (or we) is out of the session.
  std::vector<MemberInfo> identities() const;
  // Members left out of our attempts, and why.
  struct OutMember {
    Member member;
    // Non-empty: it refuses these members, so it stays out (R-ADM-2). Empty: it was excluded for
    // `code` (MemberExcluded: R-KS-13, R-AT-7).
    std::vector<std::string> refuses;
    ErrorCode code = ErrorCode::Internal;
  };
  std::vector<OutMember> out_members() const;
  // The members we refuse while Phase::Out (R-ADM-1), with why (IdentityBlocked/Changed/Unverified).
  std::vector<std::pair<std::string, ErrorCode>> refused() const;
  const std::string& self_nick() const noexcept;
  Fingerprint fingerprint() const;
  StateSummary summary() const;

 private:
  struct State;
  std::unique_ptr<State> m_state;
};

}  // namespace mpotr
