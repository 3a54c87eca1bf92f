// SPDX-License-Identifier: MIT
// RoomHost: what every mpOTR client does around the engine for one MUC room, whatever its
// XMPP library (mpotr-chat over libstrophe, the Profanity plugin over Profanity's hooks).
// Like the engine it is sans-I/O: presence and payloads go in, payloads to broadcast and
// notices for the user come out.
//
//  * Occupants and their real JIDs are tracked from presence. The join burst is collected
//    until our own presence (status 110) arrives; then the engine is created with the nick the
//    room gave us, and every later join, leave or nick change re-keys the room.
//  * Engine events become notices in words a person understands, with a stable machine name.
//  * Trust on first use is recorded in the caller's TrustStore; changed keys need the user.
//  * Our own messages' confirmation status is tracked for /status.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "mpotr/engine.h"
#include "mpotr/transport/marker.h"

namespace mpotr::transport {

// Bounds of what the host keeps (spec/mpotr.md §13.5).
inline constexpr std::size_t kMaxOccupants = 1024;        // presence we track per room
inline constexpr std::size_t kMaxTrackedSent = 256;       // own messages kept for /status
inline constexpr std::uint32_t kMaxAutoRestarts = 3;      // setup retries per roster before asking the user

struct Occupant {
  std::string nick;
  std::string real_jid;  // bare JID; empty if the room hides it (semi-anonymous room)
  // Its presence carries the mpOTR marker (spec X-8): it takes part in the session. Occupants
  // without it are outsiders: tracked, shown to the user, never in the roster.
  bool mpotr = true;
  // The marker says status='out': it uses mpOTR but stays out of the session (it does
  // not accept a member). Not in the roster; its return is a join.
  bool out = false;
};

// Who vouches for what a notice says (spec R-GEN-4, §13.4). Front ends word Claimed notices so
// that the server cannot put words or blame in a member's mouth.
enum class Attribution : std::uint8_t {
  Local,    // our own state or decision (setup progress, our key, our refusals)
  Member,   // authenticated by a member's session key (its lines, its signed statements)
  Claimed,  // only the server's word: presence, the sender nick of an unauthenticated payload
};
std::string_view to_string(Attribution a) noexcept;

enum class Severity : std::uint8_t {
  Debug,    // normal protocol noise (old-session traffic after a re-key, acknowledgements)
  Info,     // progress: session secure, message confirmed, key published
  Warning,  // something went wrong but nothing was forged: gap, timeout, unconfirmed message
  Alert,    // evidence of tampering, forgery, replay, split views or a changed identity
};
std::string_view to_string(Severity s) noexcept;

struct Notice {
  std::string kind;  // stable machine name: "secure", "message", "gap", "tampered", ...
  Severity severity = Severity::Info;
  std::string text;  // one sentence for a person
  std::string nick;  // the member it is about, if any
  std::optional<Event> event;          // the engine event behind it
  std::optional<ErrorCode> code;       // for rejected input and failures
  Attribution attribution = Attribution::Local;
};

Notice make_notice(std::string kind, Severity severity, std::string text, std::string nick = {});

struct HostOutput {
  std::vector<Bytes> payloads;  // broadcast to the room, in order
  std::vector<Notice> notices;
  bool trust_changed = false;   // the TrustStore was modified: persist it
  bool leave_room = false;      // shutdown finished after leave(): send unavailable presence now
  bool marker_changed = false;  // our participation marker changed: send a presence with marker()

  void merge(HostOutput&& other);
};

struct RoomHostConfig {
  std::string room;       // bare room JID
  std::string self_jid;   // our bare JID (for messages and trust)
  Timeouts timeouts;
  // Presence changes that arrive within this window are folded into one re-key (0 = re-key
  // on every change at once).
  TimeMs roster_settle_ms = 0;
  AdmissionPolicy admission = AdmissionPolicy::Trusted;  // "verified only" per room (spec §7.10)
};

// The room address as the engine must see it (spec §13.2): ASCII letters lower-cased.
std::string normalise_room(std::string_view room);

// Status of one message we sent.
struct SentStatus {
  std::uint32_t seq = 0;
  std::set<std::string> confirmed_by;
  bool fully_confirmed = false;
  bool overdue = false;
};

class RoomHost {
 public:
  // trust may be null (every identity accepted as new, nothing recorded).
  RoomHost(RoomHostConfig config, IdentityKey identity, TrustStore* trust);

  // Presence of another occupant (join, or updated info). Ours is on_self_present.
  HostOutput on_occupant_present(const Occupant& occupant, TimeMs now, Rng& rng);
  HostOutput on_occupant_gone(std::string_view nick, TimeMs now, Rng& rng);
  HostOutput on_nick_change(std::string_view old_nick, std::string_view new_nick, TimeMs now, Rng& rng);
  // Our own presence: we are in the room under `nick`, the occupant list is complete.
  // `room_shows_jids` is false when the room is semi-anonymous: mpOTR refuses to run there,
  // because identities are bound to real JIDs.
  HostOutput on_self_present(std::string_view nick, bool room_shows_jids, TimeMs now, Rng& rng);
  // A groupchat message carrying an mpOTR payload (base64 text of the <mpotr/> element).
  HostOutput on_payload(std::string_view nick, std::string_view payload_text, TimeMs now, Rng& rng);
  // A groupchat message without a payload: unencrypted text in this room.
  HostOutput on_plaintext(std::string_view nick, std::string_view body);
  // The connection or the room membership was lost: the session cannot be closed properly.
  // Everything is reset; a later on_self_present starts afresh.
  HostOutput on_disconnected(std::string_view why);

  HostOutput send_text(std::string_view text, TimeMs now, Rng& rng);
  HostOutput leave(TimeMs now, Rng& rng);
  // Leave at once (the shutdown cannot or need not finish): a Quit for every open session,
  // our keys withheld (spec R-SD-17). Then send the unavailable presence.
  HostOutput quit(TimeMs now, Rng& rng);
  HostOutput restart(TimeMs now, Rng& rng);
  HostOutput tick(TimeMs now, Rng& rng);
  std::optional<TimeMs> wake_at() const;

  // Trust commands. Errors: InvalidArgument (no such occupant / no JID, bad fingerprint).
  // verify: the user compared `fingerprint` with the member out of band.
  Result<HostOutput> verify(std::string_view nick, std::string_view fingerprint, TimeMs now, Rng& rng);
  // accept: forget the recorded key, so the member's current key is trusted on first use
  // (what a user does after a legitimate key change). Re-keys the room.
  Result<HostOutput> accept_new_key(std::string_view nick, TimeMs now, Rng& rng);
  // block: refuse the member's JID and its key's fingerprint (under any JID). We stay out of
  // the session while it is in (spec R-ADM-2). Errors: InvalidArgument (no such member).
  Result<HostOutput> block(std::string_view nick, TimeMs now, Rng& rng);
  // Changes whom this room admits ("verified only", spec §7.10) and re-keys.
  HostOutput set_admission(AdmissionPolicy policy, TimeMs now, Rng& rng);
  AdmissionPolicy admission() const noexcept { return m_config.admission; }

  bool in_room() const noexcept { return m_in_room; }
  const std::string& self_nick() const noexcept { return m_self_nick; }
  Phase phase() const noexcept;
  std::optional<SessionInfo> session() const;
  const std::map<std::string, Occupant, std::less<>>& occupants() const noexcept { return m_occupants; }
  Fingerprint fingerprint() const { return m_identity.fingerprint(); }
  const std::vector<SentStatus>& sent() const noexcept { return m_sent; }
  const TrustStore* trust() const noexcept { return m_trust; }
  // What our presence marker must say: Out while our engine refuses a member.
  Marker marker() const noexcept { return m_self_out ? Marker::Out : Marker::In; }
  // The identity key this room shows for `nick`: in the session, in the running attempt, or in
  // our last refusal of it — what a user verifies, also while out of the session.
  std::optional<Fingerprint> identity_of(std::string_view nick) const;

 private:
  HostOutput roster_changed(TimeMs now, Rng& rng);
  HostOutput apply_roster(TimeMs now, Rng& rng);
  HostOutput absorb(Result<Output> result);
  void translate(const Event& ev, HostOutput& out);
  void track_sent(const Event& ev);
  std::vector<Member> roster() const;

  RoomHostConfig m_config;
  IdentityKey m_identity;
  TrustStore* m_trust;
  std::unique_ptr<Engine> m_engine;  // exists while we are in the room
  std::map<std::string, Occupant, std::less<>> m_occupants;  // others, by nick
  std::string m_self_nick;
  bool m_in_room = false;
  bool m_refused = false;             // semi-anonymous room: no session
  std::optional<TimeMs> m_roster_due;  // settle timer
  std::uint32_t m_auto_restarts = 0;
  std::optional<TimeMs> m_restart_due;
  std::optional<TimeMs> m_engine_wake;  // from the engine's latest output
  std::vector<SentStatus> m_sent;
  bool m_self_out = false;              // our engine is Out: our marker says so
  // Keys shown by members out of the session (those we refuse, those who refuse someone), by
  // nick: what the user can verify while out. Forgotten when the occupant leaves or renames.
  std::map<std::string, Fingerprint, std::less<>> m_out_keys;
};

}  // namespace mpotr::transport
