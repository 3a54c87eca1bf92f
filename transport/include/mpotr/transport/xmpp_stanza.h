// SPDX-License-Identifier: MIT
// Building and parsing the XMPP stanzas of a MUC client with libstrophe (spec/mpotr.md §13).
// Parsing copies what matters into plain structs, so the rest of the code never holds
// libstrophe objects and can be tested without a connection.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <strophe.h>

#include "mpotr/bytes.h"
#include "mpotr/transport/marker.h"

namespace mpotr::transport {

struct StanzaRelease {
  void operator()(xmpp_stanza_t* s) const noexcept { xmpp_stanza_release(s); }
};
using StanzaPtr = std::unique_ptr<xmpp_stanza_t, StanzaRelease>;

// A presence from an occupant of the room.
struct PresenceIn {
  std::string nick;
  std::string real_jid;         // bare JID from <item jid=…>, empty if hidden
  std::string real_full_jid;    // the same with its resource (a private channel to this client)
  bool mpotr = false;           // carries <mpotr xmlns='urn:mpotr:2'/>: takes part in mpOTR
  bool mpotr_out = false;       // … with status='out': in the room, out of the session
  bool available = true;
  bool self = false;            // status 110: this presence is about us
  std::string new_nick;         // status 303: a nick change (with available = false)
  bool room_created = false;    // status 201: we created the room, it waits for configuration
  bool shows_jids = false;      // status 100 or 172: the room is non-anonymous
  bool removed = false;         // kicked, banned, or the room went away (301, 307, 321, 322, 332)
  std::string error;            // presence type='error': the condition (conflict, not-authorized…)
};

// A groupchat message from the room.
struct MessageIn {
  std::string nick;             // empty for messages from the room itself
  std::optional<std::string> payload_text;  // text of <mpotr xmlns='urn:mpotr:2'/>
  std::string body;
  bool delayed = false;         // carries <delay/>: history replay, not live traffic
  std::string error;            // message type='error': the condition
};

using Inbound = std::variant<PresenceIn, MessageIn>;

// Nick part of an occupant JID "room@service/nick" if it belongs to `room` (bare, compared
// case-insensitively as JID domains and MUC room names are case-insensitive).
std::optional<std::string> occupant_nick(std::string_view from, std::string_view room);
std::string bare_jid(std::string_view jid);

// The stanza, parsed, if it is a presence or message from `room`; nullopt otherwise.
std::optional<Inbound> parse_muc_stanza(const xmpp_stanza_t* stanza, std::string_view room);

StanzaPtr build_payload_message(xmpp_ctx_t* ctx, std::string_view room, std::string_view id, ByteView payload);
// The participation marker.
StanzaPtr new_marker(xmpp_ctx_t* ctx, Marker marker);
// Join without history: the room must not replay an off-the-record conversation. The
// presence carries the participation marker.
StanzaPtr build_join_presence(xmpp_ctx_t* ctx, std::string_view room, std::string_view nick, Marker marker = Marker::In);
// An available presence to the room that only changes our marker.
StanzaPtr build_marker_presence(xmpp_ctx_t* ctx, std::string_view room, std::string_view nick, Marker marker);
StanzaPtr build_leave_presence(xmpp_ctx_t* ctx, std::string_view room, std::string_view nick);
// Configuration form for a room we just created: non-anonymous (members see real JIDs,
// which bind identities), not persistent, no logging, no archive; the room is then unlocked.
StanzaPtr build_room_config(xmpp_ctx_t* ctx, std::string_view room, std::string_view id);

// XML text of a stanza (tests, the fault proxy, the plugin).
std::string stanza_text(const xmpp_stanza_t* stanza);

// Small libstrophe helpers, also used by the Profanity plugin (which parses and builds the
// stanza text its host client hands it).
std::string stanza_attribute(const xmpp_stanza_t* s, const char* name);  // "" if absent
// The first child element `name` in namespace `ns`; with ns null, whatever its namespace
// (libstrophe's by_name_and_ns never matches a null namespace).
const xmpp_stanza_t* stanza_child(const xmpp_stanza_t* s, const char* name, const char* ns);
std::string stanza_element_text(const xmpp_stanza_t* s);  // concatenated text content
StanzaPtr new_element(xmpp_ctx_t* ctx, const char* name, const char* ns);  // ns may be null
// Appends <name xmlns=ns>text</name> to parent.
void add_text_element(xmpp_ctx_t* ctx, xmpp_stanza_t* parent, const char* name, const char* ns, std::string_view text);

}  // namespace mpotr::transport
