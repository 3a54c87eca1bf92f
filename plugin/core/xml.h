// SPDX-License-Identifier: MIT
// The stanza text the plugin sees and produces. Profanity hands hooks serialized XML; the
// plugin parses it with libstrophe in a private context (never xmpp_initialize: the client
// already did) and serializes its own stanzas the same way.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mpotr/transport/xmpp_stanza.h"

namespace mpotr::plugin {

// Longest stanza text the plugin parses; a longer one is not ours to interpret (see callers
// for what each hook does with it).
inline constexpr std::size_t kMaxStanzaTextLen = 512 * 1024;

// Namespace of the private 1:1 channel that carries OTR (SMP key verification).
inline constexpr const char* kOtrNs = "urn:mpotr:otr:1";
inline constexpr const char* kOtrElement = "otr";

class XmlContext {
 public:
  XmlContext();
  ~XmlContext();
  XmlContext(const XmlContext&) = delete;
  XmlContext& operator=(const XmlContext&) = delete;

  xmpp_ctx_t* ctx() const noexcept { return m_ctx; }
  // Null for malformed or oversize text.
  transport::StanzaPtr parse(std::string_view text) const;

 private:
  xmpp_ctx_t* m_ctx;
};

// A copy of `s` without its direct children named `name` in namespace `ns`.
transport::StanzaPtr copy_without(xmpp_ctx_t* ctx, const xmpp_stanza_t* s, const char* name, const char* ns);
// A copy of the presence with the mpOTR participation marker (spec ), added once.
transport::StanzaPtr with_marker(xmpp_ctx_t* ctx, const xmpp_stanza_t* presence, transport::Marker marker);

// <message type='chat' to=FULL><otr xmlns='urn:mpotr:otr:1'>TEXT</otr> + no-store, no-copy,
// carbons-private hints: OTR traffic goes to one client, is never archived or copied.
transport::StanzaPtr build_otr_message(xmpp_ctx_t* ctx, std::string_view to_full_jid, std::string_view id,
                                       std::string_view otr_text);

}  // namespace mpotr::plugin
