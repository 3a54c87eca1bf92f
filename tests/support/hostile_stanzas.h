// SPDX-License-Identifier: MIT
// What a hostile server (a FaultProxy with inject() and Rewrite rules) sends a client: forged
// presence and payloads in the shapes ejabberd and transport/xmpp/xmpp_stanza.cpp use, and
// stanzas built to hurt an XML parser, produced in chunks so that none is ever held whole.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace mpotr::test::hostile {

// Chunk generators: each call returns the next piece, "" once everything was returned. A copy
// continues independently from where the original was when copied (FaultProxy::inject_stream
// gives each connection its own copy).
using ChunkGenerator = std::function<std::string()>;
inline constexpr std::size_t kChunkBytes = 64 * 1024;

// The room's presence for occupant room/nick leaving (XEP-0045 §7.14): type='unavailable' with
// the muc#user item; real_jid, when given, is the item's jid (as non-anonymous rooms show it).
std::string unavailable_presence(std::string_view room, std::string_view nick, std::string_view real_jid = {});
// An available presence of room/nick without the mpOTR marker <mpotr xmlns='urn:mpotr:2'/>:
// the occupant is an outsider (spec §13.2, X-8).
std::string presence_without_marker(std::string_view room, std::string_view nick, std::string_view real_jid = {});
// A groupchat message from room/nick carrying `base64` in <mpotr xmlns='urn:mpotr:2'>, with the
// encryption and hint elements and the fallback body, as build_payload_message() makes them.
std::string payload_message(std::string_view room, std::string_view nick, std::string_view base64,
                            std::string_view id = "hostile-1");
// `stanza` without any empty <mpotr xmlns='urn:mpotr:2'/> marker, with or without status='out'
// (for a Rewrite rule).
std::string strip_marker(std::string_view stanza);

// A groupchat message from room/nick with `depth` nested elements (<a><a>…</a></a>) inside:
// depth × 7 bytes and then some.
ChunkGenerator nested_stanza(std::size_t depth, std::string_view room, std::string_view nick,
                             std::size_t chunk = kChunkBytes);
// A groupchat message from room/nick of exactly `bytes` bytes (a <body> of 'x'). Throws
// std::invalid_argument when `bytes` is below the message's own markup.
ChunkGenerator sized_stanza(std::size_t bytes, std::string_view room, std::string_view nick,
                            std::size_t chunk = kChunkBytes);
// Everything a generator produces, concatenated (tests of small sizes only).
std::string drain(ChunkGenerator next);

}  // namespace mpotr::test::hostile
