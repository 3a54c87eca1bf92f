// SPDX-License-Identifier: MIT
#include "plugin/core/xml.h"

#include <cstring>
#include <new>
#include <string>

#include "mpotr/transport/stanza.h"

namespace mpotr::plugin {

using transport::StanzaPtr;

namespace {
xmpp_stanza_t* mut(const xmpp_stanza_t* s) { return const_cast<xmpp_stanza_t*>(s); }

StanzaPtr element(xmpp_ctx_t* ctx, const char* name, const char* ns) {
  StanzaPtr e(xmpp_stanza_new(ctx));
  if (!e) throw std::bad_alloc();
  xmpp_stanza_set_name(e.get(), name);
  if (ns != nullptr) xmpp_stanza_set_ns(e.get(), ns);
  return e;
}
}  // namespace

XmlContext::XmlContext() : m_ctx(xmpp_ctx_new(nullptr, nullptr)) {
  if (m_ctx == nullptr) throw std::bad_alloc();
}

XmlContext::~XmlContext() { xmpp_ctx_free(m_ctx); }

StanzaPtr XmlContext::parse(std::string_view text) const {
  if (text.empty() || text.size() > kMaxStanzaTextLen) return nullptr;
  const std::string copy(text);  // libstrophe wants a NUL-terminated string
  return StanzaPtr(xmpp_stanza_new_from_string(m_ctx, copy.c_str()));
}

std::string attribute(const xmpp_stanza_t* s, const char* name) {
  const char* v = xmpp_stanza_get_attribute(mut(s), name);
  return v != nullptr ? std::string(v) : std::string();
}

const xmpp_stanza_t* find_child(const xmpp_stanza_t* s, const char* name, const char* ns) {
  // libstrophe's by_name_and_ns never matches a null namespace: <body/> is looked up by name.
  return ns == nullptr ? xmpp_stanza_get_child_by_name(mut(s), name) : xmpp_stanza_get_child_by_name_and_ns(mut(s), name, ns);
}

std::string element_text(const xmpp_stanza_t* s) {
  char* t = xmpp_stanza_get_text(mut(s));
  if (t == nullptr) return {};
  std::string out(t);
  xmpp_free(xmpp_stanza_get_context(s), t);
  return out;
}

StanzaPtr copy_without(xmpp_ctx_t* ctx, const xmpp_stanza_t* s, const char* name, const char* ns) {
  // libstrophe 0.12 cannot delete a child, and xmpp_stanza_clone() only shares the tree: the
  // copy is rebuilt from deep copies of the children that stay.
  StanzaPtr out(xmpp_stanza_new(ctx));
  if (!out) throw std::bad_alloc();
  xmpp_stanza_set_name(out.get(), xmpp_stanza_get_name(mut(s)));
  int count = xmpp_stanza_get_attribute_count(mut(s));
  if (count > 0) {
    std::vector<const char*> attrs(static_cast<std::size_t>(count) * 2);
    xmpp_stanza_get_attributes(mut(s), attrs.data(), count * 2);
    for (std::size_t i = 0; i + 1 < attrs.size(); i += 2) {
      xmpp_stanza_set_attribute(out.get(), attrs[i], attrs[i + 1]);
    }
  }
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(mut(s)); c != nullptr; c = xmpp_stanza_get_next(c)) {
    const char* cname = xmpp_stanza_get_name(c);
    const char* cns = xmpp_stanza_get_ns(c);
    const bool drop = xmpp_stanza_is_tag(c) && cname != nullptr && std::strcmp(cname, name) == 0 &&
                      cns != nullptr && std::strcmp(cns, ns) == 0;
    if (drop) continue;
    StanzaPtr copy(xmpp_stanza_copy(c));
    if (!copy) throw std::bad_alloc();
    xmpp_stanza_add_child(out.get(), copy.get());
  }
  return out;
}

StanzaPtr with_marker(xmpp_ctx_t* ctx, const xmpp_stanza_t* presence) {
  StanzaPtr out = copy_without(ctx, presence, transport::kPayloadElement, transport::kPayloadNs);
  StanzaPtr marker = element(ctx, transport::kPayloadElement, transport::kPayloadNs);
  xmpp_stanza_add_child(out.get(), marker.get());
  return out;
}

StanzaPtr build_otr_message(xmpp_ctx_t* ctx, std::string_view to_full_jid, std::string_view id, std::string_view otr_text) {
  const std::string to(to_full_jid);
  const std::string id_s(id);
  StanzaPtr msg(xmpp_message_new(ctx, "chat", to.c_str(), id_s.c_str()));
  if (!msg) throw std::bad_alloc();
  StanzaPtr otr = element(ctx, kOtrElement, kOtrNs);
  StanzaPtr text(xmpp_stanza_new(ctx));
  if (!text) throw std::bad_alloc();
  const std::string t(otr_text);
  xmpp_stanza_set_text(text.get(), t.c_str());
  xmpp_stanza_add_child(otr.get(), text.get());
  xmpp_stanza_add_child(msg.get(), otr.get());
  for (const char* hint : {"no-store", "no-copy"}) {
    StanzaPtr h = element(ctx, hint, transport::kHintsNs);
    xmpp_stanza_add_child(msg.get(), h.get());
  }
  StanzaPtr priv = element(ctx, "private", "urn:xmpp:carbons:2");
  xmpp_stanza_add_child(msg.get(), priv.get());
  return msg;
}

}  // namespace mpotr::plugin
