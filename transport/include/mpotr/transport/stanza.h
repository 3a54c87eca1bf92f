// SPDX-License-Identifier: MIT
// How an mpOTR payload travels in an XMPP groupchat message (spec/mpotr.md §13, "XMPP binding"):
//
//   <message to='room@conference.example' type='groupchat' id='…'>
//     <mpotr xmlns='urn:mpotr:2'>BASE64 of one protocol message</mpotr>
//     <encryption xmlns='urn:xmpp:eme:0' namespace='urn:mpotr:2' name='mpOTR'/>   (XEP-0380)
//     <no-store xmlns='urn:xmpp:hints'/><no-permanent-store xmlns='urn:xmpp:hints'/>  (XEP-0334)
//     <no-copy xmlns='urn:xmpp:hints'/>
//     <body>fallback text</body>    (chat messages only: clients without mpOTR show it)
//   </message>
//
// This header is the pure part (names, payload text codec); building and parsing XML is done
// with libstrophe in xmpp_stanza.h.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "mpotr/bytes.h"
#include "mpotr/limits.h"
#include "mpotr/result.h"

namespace mpotr::transport {

inline constexpr const char* kPayloadElement = "mpotr";
inline constexpr const char* kPayloadNs = "urn:mpotr:2";  // the wire version (spec X-1)
// The participation marker's attribute while its sender is out of the session (spec X-13).
inline constexpr const char* kMarkerStatus = "status";
inline constexpr const char* kMarkerOut = "out";
inline constexpr const char* kEmeNs = "urn:xmpp:eme:0";
inline constexpr const char* kEmeName = "mpOTR";
inline constexpr const char* kHintsNs = "urn:xmpp:hints";
inline constexpr const char* kMucNs = "http://jabber.org/protocol/muc";
inline constexpr const char* kMucUserNs = "http://jabber.org/protocol/muc#user";
inline constexpr const char* kMucOwnerNs = "http://jabber.org/protocol/muc#owner";

// Shown by clients that do not speak mpOTR, in place of each chat message.
inline constexpr const char* kFallbackBody =
    "[This message is encrypted with mpOTR (multi-party Off-the-Record). Your client does not "
    "support it, so you cannot read it, and the other members' session does not include you.]";

// Base64 of the largest wire message; longer payload text is rejected before decoding.
inline constexpr std::size_t kMaxPayloadTextLen = (kMaxWireMessageLen + 2) / 3 * 4;

std::string encode_payload_text(ByteView payload);

// Errors: DecodeOversize (longer than kMaxPayloadTextLen), DecodeBadValue (not canonical base64,
// which includes any whitespace: senders never wrap the text).
Result<Bytes> decode_payload_text(std::string_view text);

// Chat messages carry the human-readable fallback <body>; setup, heartbeat and shutdown
// messages do not, so clients without mpOTR are not flooded with notices.
bool wants_fallback_body(ByteView payload);

}  // namespace mpotr::transport
