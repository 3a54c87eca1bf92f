// SPDX-License-Identifier: MIT
// An established session (spec/mpotr.md §6–§7): signed, encrypted transcript entries with
// per-sender hash chains, confirmations, loss/reorder/split-view detection, and shutdown.
//
//   Active ──begin_shutdown / peer Shutdown──▶ Closing ──all final entries──▶ Digested
//     ──all digests (compared)──▶ Ended ──all Ends──▶ Revealed (our key published) ──all keys──▶ Closed
//   At the shutdown deadline members that left the room are excused; while a missing member is
//   still present our key stays withheld (published once they leave).
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
  // Our key is published or withheld for good: a leaving member may go.
  bool done_with_own_key() const noexcept {
    return m_phase == SessionPhase::Revealed || m_phase == SessionPhase::Closed || m_awaiting_departure;
  }
  bool finished() const noexcept { return m_phase == SessionPhase::Closed; }

  Result<Output> send_text(std::string_view text, TimeMs now, Rng& rng);
  Result<Output> on_data(const codec::Data& msg, ByteView payload, std::size_t signed_len, std::string_view from_nick,
                         TimeMs now, Rng& rng);
  Result<Output> on_shutdown(const codec::Shutdown& msg, ByteView payload, std::size_t signed_len,
                             std::string_view from_nick, TimeMs now, Rng& rng);
  Result<Output> on_digest(const codec::Digest& msg, ByteView payload, std::size_t signed_len,
                           std::string_view from_nick, TimeMs now, Rng& rng);
  Result<Output> on_end(const codec::End& msg, ByteView payload, std::size_t signed_len, std::string_view from_nick,
                        TimeMs now, Rng& rng);
  Result<Output> on_key_reveal(const codec::KeyReveal& msg, ByteView payload, std::string_view from_nick, TimeMs now,
                               Rng& rng);

  Result<Output> begin_shutdown(std::string_view reason, TimeMs now, Rng& rng);
  // present: nicks currently in the room (a silent member who left cannot be misled any more).
  Result<Output> on_timer(TimeMs now, Rng& rng, const std::vector<Member>& present);
  std::optional<TimeMs> next_deadline() const;
  // After a shutdown timeout that withheld our key: publish it once every member that did not
  // finish the shutdown has left the room.
  Result<Output> on_roster(const std::vector<Member>& present, TimeMs now, Rng& rng);

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
    std::vector<std::optional<Hash32>> ids;     // ids[s−1]; nullopt where the entry was lost
    std::vector<std::optional<Hash32>> chains;  // chains[c] after c entries; nullopt after a loss
    std::uint32_t delivered = 0;
    std::map<std::uint32_t, Held> held;         // arrived ahead of a gap
    std::uint32_t expected = 0;                 // highest count someone proved exists
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
    bool revealed = false;
    Bytes reveal_bytes;
    bool excused = false;  // left the room before finishing the shutdown: not waited for
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
  Result<void> check_signed(const Peer& peer, ByteView payload, std::size_t signed_len, const codec::Signature& sig,
                            Hash32* digest_out) const;
  Result<Bytes> encrypt_entry(codec::Data& msg, std::string_view text, Rng& rng);
  Result<Output> send_entry(codec::MessageType type, std::string_view text, TimeMs now, Rng& rng);
  std::vector<std::uint32_t> ack_counts() const;
  bool has_unacknowledged() const;
  Result<bool> screen_signed(std::uint8_t j, const Bytes& stored, bool have, ByteView payload, std::size_t signed_len,
                             const codec::Signature& sig, std::string_view what) const;
  std::optional<Hash32> chain_at(std::size_t member, std::uint32_t count) const;
  void deliver(std::uint8_t j, const Held& entry, bool late, TimeMs now, Output& out);
  void check_view(const PendingView& v, Output& out, bool first_time, TimeMs now);
  void recheck_pending(Output& out, TimeMs now);
  void confirm(std::size_t author, std::uint32_t count, std::size_t by, Output& out);
  Result<Output> progress(TimeMs now, Rng& rng);
  Result<Output> publish_key(Rng& rng);
  void report_mismatch(std::size_t m, std::string detail, Output& out);
  Result<Output> resolve_stalled(const std::vector<Member>& present, TimeMs now, Rng& rng);
  std::vector<std::string> nicks_where(bool (*pred)(const Peer&)) const;

  Hash32 m_sid{};
  codec::SessionTag m_tag{};
  std::vector<Member> m_roster;
  std::uint8_t m_self = 0;
  crypto::PrivateKey m_signing_key;
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
  bool m_awaiting_departure = false;  // key withheld while silent members are still present
  SessionPhase m_incomplete_reported_in = SessionPhase::Active;  // ShutdownIncomplete once per phase
};

}  // namespace mpotr::detail
