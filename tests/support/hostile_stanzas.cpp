// SPDX-License-Identifier: MIT
#include "support/hostile_stanzas.h"

#include <algorithm>
#include <stdexcept>

#include "mpotr/transport/stanza.h"

namespace mpotr::test::hostile {

namespace {

std::string attr(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '\'': out += "&apos;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string occupant(std::string_view room, std::string_view nick) {
  return attr(room) + "/" + attr(nick);
}

std::string muc_item(std::string_view real_jid, std::string_view role) {
  std::string item = "<x xmlns='" + std::string(transport::kMucUserNs) + "'><item affiliation='none' role='" +
                     std::string(role) + "'";
  if (!real_jid.empty()) item += " jid='" + attr(real_jid) + "'";
  return item + "/></x>";
}

std::string message_start(std::string_view room, std::string_view nick, std::string_view id) {
  return "<message from='" + occupant(room, nick) + "' type='groupchat' id='" + attr(id) + "'>";
}

// Emits `prefix`, then `count` copies of `unit`, then `suffix`, at most `chunk` bytes a call.
ChunkGenerator repeated(std::string prefix, std::string unit, std::size_t count, std::string suffix,
                        std::size_t chunk) {
  std::size_t emitted = 0;  // copies of unit so far
  bool prefix_done = false;
  bool suffix_done = false;
  return [=]() mutable -> std::string {
    std::string out;
    if (!prefix_done) {
      out = prefix;
      prefix_done = true;
    }
    const std::size_t per_chunk = std::max<std::size_t>(1, chunk / std::max<std::size_t>(1, unit.size()));
    const std::size_t n = std::min(per_chunk, count - emitted);
    if (unit.size() == 1) {
      out.append(n, unit[0]);
    } else {
      out.reserve(out.size() + n * unit.size());
      for (std::size_t i = 0; i < n; ++i) out += unit;
    }
    emitted += n;
    if (emitted == count && !suffix_done && out.size() < chunk) {
      out += suffix;
      suffix_done = true;
    }
    return out;
  };
}

// Runs one generator, then the next.
ChunkGenerator then(ChunkGenerator a, ChunkGenerator b) {
  bool first = true;
  return [=]() mutable -> std::string {
    if (first) {
      std::string out = a();
      if (!out.empty()) return out;
      first = false;
    }
    return b();
  };
}

}  // namespace

std::string unavailable_presence(std::string_view room, std::string_view nick, std::string_view real_jid) {
  return "<presence from='" + occupant(room, nick) + "' type='unavailable'>" + muc_item(real_jid, "none") +
         "</presence>";
}

std::string presence_without_marker(std::string_view room, std::string_view nick, std::string_view real_jid) {
  return "<presence from='" + occupant(room, nick) + "'>" + muc_item(real_jid, "participant") + "</presence>";
}

std::string payload_message(std::string_view room, std::string_view nick, std::string_view base64, std::string_view id) {
  using namespace transport;
  return message_start(room, nick, id) + "<" + kPayloadElement + " xmlns='" + kPayloadNs + "'>" + std::string(base64) +
         "</" + kPayloadElement + "><encryption xmlns='" + kEmeNs + "' namespace='" + kPayloadNs + "' name='" +
         kEmeName + "'/><no-store xmlns='" + kHintsNs + "'/><no-permanent-store xmlns='" + kHintsNs +
         "'/><no-copy xmlns='" + kHintsNs + "'/><body>" + kFallbackBody + "</body></message>";
}

std::string strip_marker(std::string_view stanza) {
  // Any empty marker element, whatever its attributes' order and quotes (status='out' too).
  const std::string open = std::string("<") + transport::kPayloadElement;
  std::string out(stanza);
  for (std::size_t at = out.find(open); at != std::string::npos; at = out.find(open, at)) {
    const std::size_t end = out.find('>', at);
    if (end == std::string::npos) break;
    const std::string_view tag = std::string_view(out).substr(at, end - at + 1);
    const bool empty_marker = tag.ends_with("/>") && tag.find(transport::kPayloadNs) != std::string_view::npos &&
                              (tag.size() > open.size() && (tag[open.size()] == ' ' || tag[open.size()] == '/'));
    if (empty_marker) {
      out.erase(at, tag.size());
    } else {
      at = end;
    }
  }
  return out;
}

ChunkGenerator nested_stanza(std::size_t depth, std::string_view room, std::string_view nick, std::size_t chunk) {
  return then(repeated(message_start(room, nick, "deep"), "<a>", depth, "", chunk),
              repeated("", "</a>", depth, "</message>", chunk));
}

ChunkGenerator sized_stanza(std::size_t bytes, std::string_view room, std::string_view nick, std::size_t chunk) {
  const std::string head = message_start(room, nick, "big") + "<body>";
  const std::string tail = "</body></message>";
  if (bytes < head.size() + tail.size()) {
    throw std::invalid_argument("sized_stanza: " + std::to_string(bytes) + " bytes cannot hold the message's markup");
  }
  return repeated(head, "x", bytes - head.size() - tail.size(), tail, chunk);
}

std::string drain(ChunkGenerator next) {
  std::string out;
  for (std::string c = next(); !c.empty(); c = next()) out += c;
  return out;
}

}  // namespace mpotr::test::hostile
