// SPDX-License-Identifier: MIT
// Everything mpotr-chat prints, in both modes: a notice as one JSON object (--json) or as one
// terminal line, and the replies to /who, /status and /fingerprint. Pure: main.cpp only
// writes the strings. The JSON conversion of a notice exists here and nowhere else.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mpotr/transport/room_host.h"

namespace mpotr::chat {

// --- primitives ---------------------------------------------------------------------------------

// One line of JSON output: never contains a newline (json escapes them) and never throws on
// text that is not UTF-8 (peers choose their messages and nicks: bad bytes become U+FFFD).
std::string json_line(const nlohmann::json& j);

// Untrusted text made safe for a terminal: every byte < 0x20 and 0x7f (and the two-byte UTF-8
// encodings of the C1 controls U+0080..U+009F, which some terminals obey like ESC) become '?',
// so a peer cannot move the cursor, clear the screen or forge a line with escape sequences.
std::string sanitize_for_terminal(std::string_view text);

// First 4 bytes of a session id in hex, as RoomHost's notices print it.
std::string short_session_id(const Hash32& id);

// --- notices ----------------------------------------------------------------------------------

// {"event": kind, "severity", "text", "time_ms", "nick" (null if none)} plus, when the notice
// carries them: "code", and from its engine event "engine_event", "seq", "seq_end", "by",
// "nicks", "message", "late", "fingerprint", "session" (full hex), "detail".
nlohmann::json notice_to_json(const transport::Notice& notice, TimeMs now);

struct LineStyle {
  std::string self_nick;  // our nick in the room: our own messages and confirmations are shown differently
  bool verbose = false;   // show Debug notices
};

// "[12:34:56] <bob> hello", "[12:34:56] * text", "! WARNING: text", "!! ALERT: text", our own
// "<alice> hi (#3)" and "✓ #3 confirmed by everyone". No value: not shown (Debug without
// verbose). `clock` is the wall-clock time "HH:MM:SS".
std::optional<std::string> notice_to_line(const transport::Notice& notice, std::string_view clock, const LineStyle& style);

// A line of our own (command errors, help): "[12:34:56] ! text" / "[12:34:56] * text".
std::string error_line(std::string_view clock, std::string_view text);
std::string info_line(std::string_view clock, std::string_view text);

// --- lifecycle and command replies (JSON mode) -----------------------------------------------------

nlohmann::json started_event(std::string_view nick, std::string_view jid, std::string_view room, const Fingerprint& fp,
                             TimeMs now);
nlohmann::json state_event(std::string_view state, TimeMs now);
nlohmann::json exit_event(int code, TimeMs now);
nlohmann::json command_error_event(std::string_view error, const nlohmann::json& id, TimeMs now);
// Commands without a reply of their own (send, verify, trust, restart, leave, quit) are acknowledged.
nlohmann::json command_ok_event(std::string_view cmd, const nlohmann::json& id, TimeMs now);

// --- /who -------------------------------------------------------------------------------------

struct SelfInfo {
  std::string nick;  // the nick we asked for (the room may have given us another: host().self_nick())
  std::string jid;
};

struct WhoEntry {
  std::string nick;
  std::string jid;           // empty: the room hides it
  bool in_room = true;       // false: a member of the current session who has left the room since
  bool in_session = false;   // member of the current secured session
  std::optional<Fingerprint> fingerprint;
  std::string fingerprint_source;  // "session" (the key in use), "recorded" (trust store), "" (unknown)
  TrustLevel trust = TrustLevel::Unknown;
};

struct WhoView {
  std::string self_nick;
  std::string self_jid;
  Fingerprint self_fingerprint;
  std::vector<WhoEntry> others;  // by nick
  std::optional<Hash32> session;
  Phase phase = Phase::Idle;
};

WhoView make_who_view(const transport::RoomHost& host, const SelfInfo& self);
// {"event":"who","occupants":[{"nick","jid","in_room","in_session","fingerprint","fingerprint_source","trust"}],
//  "self":{"nick","jid","fingerprint"},"session":hex|null,"phase":..,"id":..,"time_ms":..}
nlohmann::json who_to_json(const WhoView& who, const nlohmann::json& id, TimeMs now);
std::vector<std::string> who_to_lines(const WhoView& who);

// --- /status ----------------------------------------------------------------------------------

// Our messages listed by /status in interactive mode (JSON lists every tracked one).
inline constexpr std::size_t kStatusRecentMessages = 10;

struct StatusView {
  std::string state;  // the connection state's name
  Phase phase = Phase::Idle;
  std::optional<Hash32> session;
  std::vector<std::string> members;          // current session, canonical order
  std::size_t confirmations_needed = 0;      // members other than us
  std::vector<transport::SentStatus> sent;   // oldest first
};

StatusView make_status_view(const transport::RoomHost& host, std::string_view state);
// {"event":"status","state","phase","session":hex|null,"members":[..],"confirmations_needed",
//  "sent":[{"seq","confirmed_by":[..],"fully_confirmed","overdue"}],"id","time_ms"}
nlohmann::json status_to_json(const StatusView& status, const nlohmann::json& id, TimeMs now);
std::vector<std::string> status_to_lines(const StatusView& status);

// --- /fingerprint -----------------------------------------------------------------------------

struct FingerprintView {
  std::string nick;
  std::string jid;
  Fingerprint fingerprint;
  bool self = false;
  std::string source;  // "self", "session" or "recorded"
  TrustLevel trust = TrustLevel::Unknown;
};

// Ours for an empty nick (or our own nick); else the key NICK uses in the current session, or
// the one recorded for their JID. Errors: InvalidArgument (no such occupant, no key known).
Result<FingerprintView> find_fingerprint(const transport::RoomHost& host, const SelfInfo& self, std::string_view nick);
// {"event":"fingerprint","nick","jid","fingerprint","self","source","trust","id","time_ms"}
nlohmann::json fingerprint_to_json(const FingerprintView& fp, const nlohmann::json& id, TimeMs now);
std::string fingerprint_to_line(const FingerprintView& fp);

}  // namespace mpotr::chat
