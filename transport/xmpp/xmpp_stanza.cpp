// SPDX-License-Identifier: MIT
#include "mpotr/transport/xmpp_stanza.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>

#include "mpotr/transport/stanza.h"

namespace mpotr::transport {

std::string stanza_attribute(const xmpp_stanza_t* s, const char* name) {
  const char* v = xmpp_stanza_get_attribute(const_cast<xmpp_stanza_t*>(s), name);
  return v != nullptr ? std::string(v) : std::string();
}

const xmpp_stanza_t* stanza_child(const xmpp_stanza_t* s, const char* name, const char* ns) {
  auto* m = const_cast<xmpp_stanza_t*>(s);
  return ns == nullptr ? xmpp_stanza_get_child_by_name(m, name) : xmpp_stanza_get_child_by_name_and_ns(m, name, ns);
}

// libstrophe allocates the text with the context's allocator.
std::string stanza_element_text(const xmpp_stanza_t* s) {
  char* t = xmpp_stanza_get_text(const_cast<xmpp_stanza_t*>(s));
  if (t == nullptr) {
    return {};
  }
  std::string out(t);
  xmpp_free(xmpp_stanza_get_context(s), t);
  return out;
}

StanzaPtr new_element(xmpp_ctx_t* ctx, const char* name, const char* ns) {
  StanzaPtr e(xmpp_stanza_new(ctx));
  if (!e) {
    throw std::bad_alloc();
  }
  xmpp_stanza_set_name(e.get(), name);
  if (ns != nullptr) {
    xmpp_stanza_set_ns(e.get(), ns);
  }
  return e;
}

void add_text_element(xmpp_ctx_t* ctx, xmpp_stanza_t* parent, const char* name, const char* ns, std::string_view text) {
  StanzaPtr e = new_element(ctx, name, ns);
  StanzaPtr t(xmpp_stanza_new(ctx));
  xmpp_stanza_set_text_with_size(t.get(), text.data(), text.size());
  xmpp_stanza_add_child(e.get(), t.get());
  xmpp_stanza_add_child(parent, e.get());
}

namespace {

// libstrophe's getters are not const-correct; parsing never modifies the stanza.
xmpp_stanza_t* mut(const xmpp_stanza_t* s) { return const_cast<xmpp_stanza_t*>(s); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// The defined condition element of an <error/> child (RFC 6120 §8.3.3), e.g. "conflict".
std::string error_condition(const xmpp_stanza_t* s) {
  const xmpp_stanza_t* err = xmpp_stanza_get_child_by_name(mut(s), "error");
  if (err == nullptr) {
    return "unknown-error";
  }
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(mut(err)); c != nullptr; c = xmpp_stanza_get_next(c)) {
    const char* ns = xmpp_stanza_get_ns(c);
    const char* name = xmpp_stanza_get_name(c);
    if (xmpp_stanza_is_tag(c) && ns != nullptr && name != nullptr &&
        std::strcmp(ns, "urn:ietf:params:xml:ns:xmpp-stanzas") == 0 && std::strcmp(name, "text") != 0) {
      return name;
    }
  }
  return "unknown-error";
}

// add_child takes its own reference; ours is released when `c` goes out of scope.
void add(xmpp_stanza_t* parent, const StanzaPtr& c) { xmpp_stanza_add_child(parent, c.get()); }


PresenceIn parse_presence(const xmpp_stanza_t* s, std::string nick) {
  PresenceIn p;
  p.nick = std::move(nick);
  const std::string type = stanza_attribute(s, "type");
  p.available = type != "unavailable" && type != "error";
  if (type == "error") {
    p.error = error_condition(s);
  }
  const xmpp_stanza_t* marker = p.available ? stanza_child(s, kPayloadElement, kPayloadNs) : nullptr;
  p.mpotr = marker != nullptr;
  p.mpotr_out = marker != nullptr && stanza_attribute(marker, kMarkerStatus) == kMarkerOut;
  if (const xmpp_stanza_t* x = stanza_child(s, "x", kMucUserNs)) {
    for (xmpp_stanza_t* c = xmpp_stanza_get_children(mut(x)); c != nullptr; c = xmpp_stanza_get_next(c)) {
      const char* name = xmpp_stanza_get_name(c);
      if (!xmpp_stanza_is_tag(c) || name == nullptr) {
        continue;
      }
      if (std::strcmp(name, "item") == 0) {
        p.real_full_jid = stanza_attribute(c, "jid");
        p.real_jid = bare_jid(p.real_full_jid);
        p.new_nick = stanza_attribute(c, "nick");
      } else if (std::strcmp(name, "status") == 0) {
        const std::string code = stanza_attribute(c, "code");
        if (code == "110") {
          p.self = true;
        } else if (code == "201") {
          p.room_created = true;
        } else if (code == "100" || code == "172") {
          p.shows_jids = true;
        } else if (code == "301" || code == "307" || code == "321" || code == "322" || code == "332") {
          p.removed = true;
        }
      } else if (std::strcmp(name, "destroy") == 0) {
        p.removed = true;
      }
    }
    // <item nick=…> only means a nick change together with status 303.
    bool changing = false;
    for (xmpp_stanza_t* c = xmpp_stanza_get_children(mut(x)); c != nullptr; c = xmpp_stanza_get_next(c)) {
      const char* name = xmpp_stanza_get_name(c);
      if (xmpp_stanza_is_tag(c) && name != nullptr && std::strcmp(name, "status") == 0 && stanza_attribute(c, "code") == "303") {
        changing = true;
      }
    }
    if (!changing) {
      p.new_nick.clear();
    }
  }
  return p;
}

MessageIn parse_message(const xmpp_stanza_t* s, std::string nick) {
  MessageIn m;
  m.nick = std::move(nick);
  if (stanza_attribute(s, "type") == "error") {
    m.error = error_condition(s);
    return m;
  }
  if (const xmpp_stanza_t* payload = stanza_child(s, kPayloadElement, kPayloadNs)) {
    m.payload_text = stanza_element_text(payload);
  }
  if (const xmpp_stanza_t* body = xmpp_stanza_get_child_by_name(mut(s), "body")) {
    m.body = stanza_element_text(body);
  }
  m.delayed = stanza_child(s, "delay", "urn:xmpp:delay") != nullptr;
  return m;
}

}  // namespace

std::string bare_jid(std::string_view jid) {
  const auto slash = jid.find('/');
  return std::string(jid.substr(0, slash));
}

std::optional<std::string> occupant_nick(std::string_view from, std::string_view room) {
  const auto slash = from.find('/');
  const std::string_view bare = from.substr(0, slash);
  if (!iequals(bare, room)) {
    return std::nullopt;
  }
  if (slash == std::string_view::npos) {
    return std::string();  // the room itself
  }
  return std::string(from.substr(slash + 1));
}

std::optional<Inbound> parse_muc_stanza(const xmpp_stanza_t* stanza, std::string_view room) {
  const char* name = xmpp_stanza_get_name(mut(stanza));
  const char* from = xmpp_stanza_get_from(mut(stanza));
  if (name == nullptr || from == nullptr) {
    return std::nullopt;
  }
  auto nick = occupant_nick(from, room);
  if (!nick) {
    return std::nullopt;
  }
  if (std::strcmp(name, "presence") == 0) {
    if (nick->empty()) {
      return std::nullopt;  // the room's own presence (entity capabilities), not an occupant
    }
    return Inbound{parse_presence(stanza, std::move(*nick))};
  }
  if (std::strcmp(name, "message") == 0) {
    const std::string type = stanza_attribute(stanza, "type");
    if (type != "groupchat" && type != "error") {
      return std::nullopt;  // private messages through the room are not part of the protocol
    }
    return Inbound{parse_message(stanza, std::move(*nick))};
  }
  return std::nullopt;
}

StanzaPtr build_payload_message(xmpp_ctx_t* ctx, std::string_view room, std::string_view id, ByteView payload) {
  const std::string to(room);
  const std::string id_s(id);
  StanzaPtr msg(xmpp_message_new(ctx, "groupchat", to.c_str(), id_s.c_str()));
  if (!msg) {
    throw std::bad_alloc();
  }
  add_text_element(ctx, msg.get(), kPayloadElement, kPayloadNs, encode_payload_text(payload));
  StanzaPtr eme = new_element(ctx, "encryption", kEmeNs);
  xmpp_stanza_set_attribute(eme.get(), "namespace", kPayloadNs);
  xmpp_stanza_set_attribute(eme.get(), "name", kEmeName);
  add(msg.get(), eme);
  for (const char* hint : {"no-store", "no-permanent-store", "no-copy"}) {
    add(msg.get(), new_element(ctx, hint, kHintsNs));
  }
  if (wants_fallback_body(payload)) {
    add_text_element(ctx, msg.get(), "body", nullptr, kFallbackBody);
  }
  return msg;
}

StanzaPtr new_marker(xmpp_ctx_t* ctx, Marker marker) {
  StanzaPtr m = new_element(ctx, kPayloadElement, kPayloadNs);
  if (marker == Marker::Out) {
    xmpp_stanza_set_attribute(m.get(), kMarkerStatus, kMarkerOut);
  }
  return m;
}

StanzaPtr build_marker_presence(xmpp_ctx_t* ctx, std::string_view room, std::string_view nick, Marker marker) {
  StanzaPtr p(xmpp_presence_new(ctx));
  const std::string to = std::string(room) + "/" + std::string(nick);
  xmpp_stanza_set_to(p.get(), to.c_str());
  add(p.get(), new_marker(ctx, marker));
  return p;
}

StanzaPtr build_join_presence(xmpp_ctx_t* ctx, std::string_view room, std::string_view nick, Marker marker) {
  StanzaPtr p = build_marker_presence(ctx, room, nick, marker);
  StanzaPtr x = new_element(ctx, "x", kMucNs);
  StanzaPtr history = new_element(ctx, "history", nullptr);
  xmpp_stanza_set_attribute(history.get(), "maxstanzas", "0");
  add(x.get(), history);
  add(p.get(), x);
  return p;
}

StanzaPtr build_leave_presence(xmpp_ctx_t* ctx, std::string_view room, std::string_view nick) {
  StanzaPtr p(xmpp_presence_new(ctx));
  const std::string to = std::string(room) + "/" + std::string(nick);
  xmpp_stanza_set_to(p.get(), to.c_str());
  xmpp_stanza_set_type(p.get(), "unavailable");
  return p;
}

StanzaPtr build_room_config(xmpp_ctx_t* ctx, std::string_view room, std::string_view id) {
  const std::string id_s(id);
  const std::string to(room);
  StanzaPtr iq(xmpp_iq_new(ctx, "set", id_s.c_str()));
  xmpp_stanza_set_to(iq.get(), to.c_str());
  StanzaPtr query = new_element(ctx, "query", kMucOwnerNs);
  StanzaPtr form = new_element(ctx, "x", "jabber:x:data");
  xmpp_stanza_set_type(form.get(), "submit");
  const std::pair<const char*, const char*> fields[] = {
      {"FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"},
      {"muc#roomconfig_whois", "anyone"},          // non-anonymous: real JIDs bind identities
      {"muc#roomconfig_persistentroom", "0"},
      {"muc#roomconfig_enablelogging", "0"},      // off the record
  };
  for (const auto& [var, value] : fields) {
    StanzaPtr field = new_element(ctx, "field", nullptr);
    xmpp_stanza_set_attribute(field.get(), "var", var);
    add_text_element(ctx, field.get(), "value", nullptr, value);
    add(form.get(), field);
  }
  add(query.get(), form);
  add(iq.get(), query);
  return iq;
}

std::string stanza_text(const xmpp_stanza_t* stanza) {
  char* buf = nullptr;
  std::size_t len = 0;
  if (xmpp_stanza_to_text(mut(stanza), &buf, &len) != XMPP_EOK || buf == nullptr) {
    return {};
  }
  std::string out(buf, len);
  xmpp_free(xmpp_stanza_get_context(stanza), buf);
  return out;
}

}  // namespace mpotr::transport
