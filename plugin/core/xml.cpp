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

StanzaPtr with_marker(xmpp_ctx_t* ctx, const xmpp_stanza_t* presence, transport::Marker m) {
  StanzaPtr out = copy_without(ctx, presence, transport::kPayloadElement, transport::kPayloadNs);
  StanzaPtr marker = transport::new_marker(ctx, m);
  xmpp_stanza_add_child(out.get(), marker.get());
  return out;
}

StanzaPtr build_otr_message(xmpp_ctx_t* ctx, std::string_view to_full_jid, std::string_view id, std::string_view otr_text) {
  const std::string to(to_full_jid);
  const std::string id_s(id);
  StanzaPtr msg(xmpp_message_new(ctx, "chat", to.c_str(), id_s.c_str()));
  if (!msg) throw std::bad_alloc();
  transport::add_text_element(ctx, msg.get(), kOtrElement, kOtrNs, otr_text);
  for (const char* hint : {"no-store", "no-copy"}) {
    StanzaPtr h = transport::new_element(ctx, hint, transport::kHintsNs);
    xmpp_stanza_add_child(msg.get(), h.get());
  }
  StanzaPtr priv = transport::new_element(ctx, "private", "urn:xmpp:carbons:2");
  xmpp_stanza_add_child(msg.get(), priv.get());
  return msg;
}

}  // namespace mpotr::plugin
