// SPDX-License-Identifier: MIT
// What a hostile room or server can send a client: XML stanzas, parsed by libstrophe and then
// by our MUC parser, fed to a RoomHost as presence and payloads. The input is up to 16 stanzas
// separated by NUL bytes, so join bursts, our own presence, nick changes and payloads can come
// in any order. Properties: nothing crashes or leaks, every rejected payload yields a notice,
// and the occupant table stays within its bound.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_check.h"
#include "mpotr/transport/room_host.h"
#include "mpotr/transport/stanza.h"
#include "mpotr/transport/xmpp_client.h"
#include "mpotr/transport/xmpp_stanza.h"

using namespace mpotr;
using namespace mpotr::transport;

namespace {

constexpr std::string_view kRoom = "room@conference.localhost";
constexpr std::size_t kMaxStanzas = 16;

const IdentityKey& identity() {
  static const IdentityKey key = [] {
    DeterministicRng rng(7);
    return IdentityKey::generate(rng).value();
  }();
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static XmppLoop loop;  // the libstrophe context that parses
  DeterministicRng rng(size);
  TrustStore trust;
  RoomHost host(RoomHostConfig{std::string(kRoom), "alice@localhost", {}, 0}, identity(), &trust);
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0;
  TimeMs now = 1000;
  for (std::size_t n = 0; n < kMaxStanzas && start <= input.size(); ++n) {
    const std::size_t end = std::min(input.find('\0', start), input.size());
    const std::string xml(input.substr(start, end - start));
    start = end + 1;
    StanzaPtr stanza(xmpp_stanza_new_from_string(loop.ctx(), xml.c_str()));
    if (!stanza) {
      continue;
    }
    const auto in = parse_muc_stanza(stanza.get(), kRoom);
    if (!in) {
      continue;
    }
    now += 10;
    if (const auto* p = std::get_if<PresenceIn>(&*in)) {
      if (p->self && p->available) {
        host.on_self_present(p->nick, p->shows_jids, now, rng);
      } else if (p->available) {
        host.on_occupant_present(Occupant{p->nick, p->real_jid, p->mpotr}, now, rng);
      } else if (!p->new_nick.empty()) {
        host.on_nick_change(p->nick, p->new_nick, now, rng);
      } else {
        host.on_occupant_gone(p->nick, now, rng);
      }
    } else {
      const auto& m = std::get<MessageIn>(*in);
      if (m.payload_text) {
        const HostOutput out = host.on_payload(m.nick, *m.payload_text, now, rng);
        // Text that is not a payload is always reported, whatever the room state.
        Bytes raw;
        if (m.payload_text->size() > kMaxPayloadTextLen || !from_base64(*m.payload_text, raw)) {
          FUZZ_CHECK(out.payloads.empty());
          FUZZ_CHECK(!out.notices.empty() &&
                     (out.notices[0].kind == "malformed" || out.notices[0].kind == "ignored"));
        }
      } else {
        host.on_plaintext(m.nick, m.body);
      }
    }
    FUZZ_CHECK(host.occupants().size() <= kMaxOccupants);
    host.tick(now, rng);
  }
  return 0;
}
