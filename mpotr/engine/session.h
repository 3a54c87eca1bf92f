// SPDX-License-Identifier: MIT
// An established session (spec/mpotr.md §6.3–§7.8): signed, MAC'd, encrypted transcript entries
// with per-sender hash chains, confirmations, loss/reorder/split-view detection, and shutdown.
//
//   Active ──begin_shutdown / peer Shutdown or Quit──▶ Closing ──all final entries──▶ Digested
//     ──all digests (compared)──▶ Ended ──every other member's End or Quit──▶ Revealed (our key
//     published) ──all keys──▶ Closed
//   At the shutdown deadline the members still missing are excused from the consistency check;
//   our key stays withheld until each of them has sent its End or Quit (R-SD-10, R-SD-15).
//
// Handlers validate first and mutate only after every check passed.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "mpotr/codec/messages.h"
#include "mpotr/engine/attempt.h"
#include "mpotr/engine/context.h"
#include "mpotr/engine/key_schedule.h"
#include "mpotr/engine/transcript.h"

namespace mpotr::detail {

enum class SessionPhase : std::uint8_t { Active, Closing, Digested, Ended, Revealed, Closed };
std::string_view to_string(SessionPhase phase) noexcept;

class Session {
 public:
  static Result<Session> create(SessionMaterial material, const Timeouts& timeouts);

  const Hash32& id() const noexcept { return m_sid; }
  const codec::SessionTag& tag() const noexcept { return m_tag; }
  SessionPhase phase() const noexcept { return m_phase; }
  const std::vector<Member>& roster() const noexcept { return m_roster; }
  SessionInfo info() const;
  // Our key is published, or withheld for good as far as we can act: a leaving member may go.
  bool done_with_own_key() const noexcept {
    return m_phase == SessionPhase::Revealed || m_phase == SessionPhase::Closed || m_key_withheld;
  }
  bool finished() const noexcept { return m_phase == SessionPhase::Closed; }

  Result<Output> send_text(std::string_view text, TimeMs now, Rng& rng);
  Result<Output> on_data(const codec::Data& msg, ByteView payload, const codec::Decoded& d, std::string_view from_nick,
                         TimeMs now, Rng& rng);
  Result<Output> on_shutdown(const codec::Shutdown& msg, ByteView payload, const codec::Decoded& d,
                             std::string_view from_nick, TimeMs now, Rng& rng);
  Result<Output> on_digest(const codec::Digest& msg, ByteView payload, const codec::Decoded& d,
                           std::string_view from_nick, TimeMs now, Rng& rng);
  Result<Output> on_end(const codec::End& msg, ByteView payload, const codec::Decoded& d, std::string_view from_nick,
                        TimeMs now, Rng& rng);
  Result<Output> on_quit(const codec::Quit& msg, ByteView payload, const codec::Decoded& d, std::string_view from_nick,
                         TimeMs now, Rng& rng);
  Result<Output> on_key_reveal(const codec::KeyReveal& msg, ByteView payload, std::string_view from_nick, TimeMs now,
                               Rng& rng);
  // A key share, attest or accusation naming this (established) session (R-KS-1): checked like
  // any signed message of it before it is called a duplicate.
  Result<Output> on_late_setup(codec::MessageType type, std::uint8_t sender, const Hash32& sid, ByteView payload,
                               std::size_t signed_len, const codec::Signature& sig, std::string_view from_nick) const;

  Result<Output> begin_shutdown(std::string_view reason, TimeMs now, Rng& rng);
  // Engine::quit(): a Quit unless our End is out; the session is closed for us (SessionClosed),
  // our key withheld unless it is published.
  Result<Output> quit(TimeMs now, Rng& rng);
  Result<Output> on_timer(TimeMs now, Rng& rng);
  std::optional<TimeMs> next_deadline() const;

  void summarize(crypto::Sha256& h) const;

 private:
  struct Held {
    codec::Data msg;
    Hash32 id{};
    Bytes plaintext;
  };
  struct Peer {
    crypto::PublicKey signing_key;
    Fingerprint fingerprint;
    ks::SenderKey sender_key;
    Hash32 key_share_id{};                      // H(signed part) of its key share and attest,
    Hash32 attest_id{};                         // for late copies (R-KS-1)
    MemberTranscript transcript;                // its entries as we hold them
    std::map<std::uint32_t, Held> held;         // arrived ahead of a gap
    std::uint32_t expected = 0;                 // highest count someone proved exists
    std::uint32_t vouched = 0;                  // highest count the member itself vouched for
    std::optional<std::uint8_t> claimed_by;     // whose acknowledgement raised `expected` above that
    std::optional<TimeMs> gap_deadline;
    std::vector<std::uint32_t> confirmed_by;    // per member: entries of this peer it confirmed
    std::uint32_t fully_confirmed = 0;
    std::optional<std::uint32_t> final_count;
    Bytes shutdown_signed;  // signed parts: signatures are malleable, the statement is not
    std::optional<Hash32> digest;
    Bytes digest_signed;
    bool mismatch_reported = false;
    Bytes end_signed;                 // its End: it holds every digest
    std::optional<Hash32> end_hash;   // the digests it compared
    codec::MemberSet end_present;     // whose digests those were
    Bytes quit_signed;                // its Quit: it left without finishing, accepts nothing more
    bool revealed = false;
    Bytes reveal_bytes;
    bool excused = false;  // missing at a shutdown deadline: no longer waited for in the check
    bool done() const noexcept { return end_hash.has_value() || !quit_signed.empty(); }
  };
  struct PendingView {
    std::uint8_t sender = 0;
    std::uint32_t seq = 0;
    std::vector<std::uint32_t> counts;
    Hash32 digest{};
  };
  struct OwnPending {
    std::uint32_t seq = 0;
    TimeMs sent_at = 0;
    bool reported = false;
  };

  Session() = default;
  Result<void> check_authentic(const Peer& peer, ByteView payload, const codec::Decoded& d, const codec::Mac& mac,
                               const codec::Signature& sig, const Hash32& digest) const;
  template <class M>
  Result<Bytes> seal(M& msg, Rng& rng, Hash32* digest_out = nullptr) const;
  Result<Output> send_entry(codec::MessageType type, std::string_view text, TimeMs now, Rng& rng);
  std::vector<std::uint32_t> ack_counts() const;
  bool has_unacknowledged() const;
  Result<bool> screen_signed(std::uint8_t j, const Bytes& stored, bool have, ByteView payload, const codec::Decoded& d,
                             const codec::Mac& mac, const codec::Signature& sig, std::string_view what) const;
  Result<void> check_final_count(std::uint8_t j, std::uint32_t final_count, std::string_view what) const;
  void note_final_count(std::uint8_t j, std::uint32_t final_count, TimeMs now, Output& out);
  std::optional<Hash32> chain_at(std::size_t member, std::uint32_t count) const;
  void deliver(std::uint8_t j, const Held& entry, bool late, TimeMs now, Output& out);
  void check_view(const PendingView& v, Output& out, bool first_time, TimeMs now);
  void recheck_pending(Output& out, TimeMs now);
  void confirm(std::size_t author, std::uint32_t count, std::size_t by, Output& out);
  void declare_lost(std::size_t j, TimeMs now, Output& out);
  Result<Output> progress(TimeMs now, Rng& rng);
  Result<Output> join_shutdown(std::string_view reason, TimeMs now, Rng& rng);
  Result<Output> publish_key();
  void compare_ends(Output& out);
  void report_mismatch(std::size_t m, std::string detail, Output& out);
  Result<Output> resolve_stalled(TimeMs now, Rng& rng);

  Hash32 m_sid{};
  codec::SessionTag m_tag{};
  std::vector<Member> m_roster;
  std::uint8_t m_self = 0;
  crypto::PrivateKey m_signing_key;
  SecretBytes m_auth_key;  // K_auth (§5.16): the group MAC on entries and shutdown messages
  std::vector<Peer> m_peers;
  Timeouts m_timeouts;
  SessionPhase m_phase = SessionPhase::Active;

  std::vector<std::uint32_t> m_last_acked;  // counts our last entry acknowledged
  std::optional<TimeMs> m_heartbeat_due;
  std::deque<OwnPending> m_own_pending;     // our chat messages not yet confirmed by all
  std::deque<PendingView> m_pending_views;  // views naming entries we don't have yet
  std::size_t m_held_total = 0;
  std::optional<TimeMs> m_shutdown_deadline;
  bool m_consistent = true;
  bool m_key_withheld = false;  // Ended, but some member's End/Quit is missing (R-SD-15)
  SessionPhase m_incomplete_reported_in = SessionPhase::Active;  // ShutdownIncomplete once per phase
};

}  // namespace mpotr::detail
