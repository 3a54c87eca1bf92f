// SPDX-License-Identifier: MIT
// The XMPP binding (spec/mpotr.md §13): the message stanza we send, and what we read out of
// presence and messages, through libstrophe's own parser.
#include <catch2/catch.hpp>

#include "mpotr/codec/messages.h"
#include "mpotr/transport/stanza.h"
#include "mpotr/transport/xmpp_client.h"
#include "mpotr/transport/xmpp_stanza.h"

using namespace mpotr;
using namespace mpotr::transport;

namespace {

constexpr const char* kRoom = "room@conference.localhost";

struct Ctx {
  XmppLoop loop;  // initialises libstrophe
  xmpp_ctx_t* ctx() const { return loop.ctx(); }
  StanzaPtr parse(const std::string& xml) const {
    StanzaPtr s(xmpp_stanza_new_from_string(ctx(), xml.c_str()));
    REQUIRE(s);
    return s;
  }
};

Bytes data_payload() {
  codec::Data d;
  d.type = codec::MessageType::Data;
  d.session_tag = {};
  d.sender = 1;
  d.seq = 1;
  d.ciphertext = {1, 2, 3};
  d.signature = {};
  return codec::encode(d);
}

}  // namespace

TEST_CASE("payload text is canonical base64 within a bound", "[transport][stanza]") {
  const Bytes payload{0, 1, 2, 250, 251, 252};
  const auto text = encode_payload_text(view(payload));
  auto back = decode_payload_text(text);
  REQUIRE(back.ok());
  CHECK(back.value() == payload);
  CHECK(decode_payload_text("AAA=\n").error().code == ErrorCode::DecodeBadValue);
  CHECK(decode_payload_text("AA==AA==").error().code == ErrorCode::DecodeBadValue);
  CHECK(decode_payload_text(std::string(kMaxPayloadTextLen + 4, 'A')).error().code == ErrorCode::DecodeOversize);
  CHECK(decode_payload_text(std::string(kMaxPayloadTextLen, 'A')).ok());
}

TEST_CASE("a chat payload travels with EME, no-store hints and a fallback body", "[transport][stanza]") {
  Ctx c;
  const Bytes payload = data_payload();
  StanzaPtr msg = build_payload_message(c.ctx(), kRoom, "id-1", view(payload));
  const std::string xml = stanza_text(msg.get());
  CHECK(xml.find("type=\"groupchat\"") != std::string::npos);
  CHECK(xml.find("<mpotr xmlns=\"urn:mpotr:2\">" + encode_payload_text(view(payload)) + "</mpotr>") != std::string::npos);
  // libstrophe orders attributes as it likes: check the element through the parser.
  StanzaPtr reparsed = c.parse(xml);
  xmpp_stanza_t* eme = xmpp_stanza_get_child_by_name_and_ns(reparsed.get(), "encryption", "urn:xmpp:eme:0");
  REQUIRE(eme != nullptr);
  CHECK(std::string(xmpp_stanza_get_attribute(eme, "namespace")) == "urn:mpotr:2");
  CHECK(std::string(xmpp_stanza_get_attribute(eme, "name")) == "mpOTR");
  CHECK(xml.find("<no-store xmlns=\"urn:xmpp:hints\"/>") != std::string::npos);
  CHECK(xml.find("<no-permanent-store xmlns=\"urn:xmpp:hints\"/>") != std::string::npos);
  CHECK(xml.find("<body>[This message is encrypted with mpOTR") != std::string::npos);

  // What the room relays back (with a from address) parses to the same payload text.
  StanzaPtr echoed = c.parse("<message from='" + std::string(kRoom) + "/alice' type='groupchat' id='id-1'>" +
                             "<mpotr xmlns='urn:mpotr:2'>" + encode_payload_text(view(payload)) + "</mpotr>" +
                             "<body>fallback</body></message>");
  auto in = parse_muc_stanza(echoed.get(), kRoom);
  REQUIRE(in);
  const auto& m = std::get<MessageIn>(*in);
  CHECK(m.nick == "alice");
  REQUIRE(m.payload_text);
  CHECK(decode_payload_text(*m.payload_text).value() == payload);
  CHECK_FALSE(m.delayed);
}

TEST_CASE("protocol control messages carry no body", "[transport][stanza]") {
  Ctx c;
  codec::Data hb;
  hb.type = codec::MessageType::Heartbeat;
  const Bytes payload = codec::encode(hb);
  CHECK_FALSE(wants_fallback_body(view(payload)));
  CHECK(wants_fallback_body(view(data_payload())));
  const auto xml = stanza_text(build_payload_message(c.ctx(), kRoom, "x", view(payload)).get());
  CHECK(xml.find("<body>") == std::string::npos);
  CHECK_FALSE(wants_fallback_body(ByteView{}));
}

TEST_CASE("the join asks for no history", "[transport][stanza]") {
  Ctx c;
  const auto xml = stanza_text(build_join_presence(c.ctx(), kRoom, "alice").get());
  CHECK(xml.find("to=\"room@conference.localhost/alice\"") != std::string::npos);
  CHECK(xml.find("<x xmlns=\"http://jabber.org/protocol/muc\"><history maxstanzas=\"0\"/></x>") != std::string::npos);
  CHECK(xml.find("<mpotr xmlns=\"urn:mpotr:2\"/>") != std::string::npos);  // we take part
  const auto leave = stanza_text(build_leave_presence(c.ctx(), kRoom, "alice").get());
  CHECK(leave.find("type=\"unavailable\"") != std::string::npos);
  const auto config = stanza_text(build_room_config(c.ctx(), kRoom, "cfg").get());
  CHECK(config.find("muc#roomconfig_whois") != std::string::npos);
  CHECK(config.find("<value>anyone</value>") != std::string::npos);
}

TEST_CASE("presence: real JIDs, self, nick changes, removal and errors", "[transport][stanza]") {
  Ctx c;
  auto parse = [&](const std::string& xml) {
    StanzaPtr s = c.parse(xml);
    auto in = parse_muc_stanza(s.get(), kRoom);
    REQUIRE(in);
    return std::get<PresenceIn>(*in);
  };
  const std::string x = "<x xmlns='http://jabber.org/protocol/muc#user'>";
  auto bob = parse("<presence from='room@conference.localhost/bob'>" + x +
                   "<item affiliation='none' role='participant' jid='bob@localhost/res1'/></x></presence>");
  CHECK(bob.nick == "bob");
  CHECK(bob.real_jid == "bob@localhost");
  CHECK(bob.real_full_jid == "bob@localhost/res1");
  CHECK(bob.available);
  CHECK_FALSE(bob.self);
  CHECK_FALSE(bob.mpotr);  // no marker: an outsider
  auto marked = parse("<presence from='room@conference.localhost/bob'>" + x +
                      "<item jid='bob@localhost/res1'/></x><mpotr xmlns='urn:mpotr:2'/></presence>");
  CHECK(marked.mpotr);
  CHECK_FALSE(marked.mpotr_out);
  auto out = parse("<presence from='room@conference.localhost/bob'>" + x +
                   "<item jid='bob@localhost/res1'/></x><mpotr xmlns='urn:mpotr:2' status='out'/></presence>");
  CHECK(out.mpotr);
  CHECK(out.mpotr_out);  // in mpOTR, out of the session
  auto other_status = parse("<presence from='room@conference.localhost/bob'>" + x +
                            "<item jid='bob@localhost/res1'/></x><mpotr xmlns='urn:mpotr:2' status='x'/></presence>");
  CHECK(other_status.mpotr);
  CHECK_FALSE(other_status.mpotr_out);
  auto wrong_ns = parse("<presence from='room@conference.localhost/bob'>" + x +
                        "<item jid='bob@localhost/res1'/></x><mpotr xmlns='urn:mpotr:1'/></presence>");
  CHECK_FALSE(wrong_ns.mpotr);  // a version 1 client's marker
  auto leaving = parse("<presence from='room@conference.localhost/bob' type='unavailable'>" + x +
                       "<item jid='bob@localhost/res1'/></x><mpotr xmlns='urn:mpotr:2'/></presence>");
  CHECK_FALSE(leaving.mpotr);  // only available presence takes part

  auto self = parse("<presence from='Room@Conference.Localhost/alice'>" + x +
                    "<item jid='alice@localhost/r'/><status code='100'/><status code='110'/><status code='201'/></x></presence>");
  CHECK(self.self);
  CHECK(self.shows_jids);
  CHECK(self.room_created);

  auto renamed = parse("<presence from='room@conference.localhost/bob' type='unavailable'>" + x +
                       "<item nick='robert' jid='bob@localhost/res1'/><status code='303'/></x></presence>");
  CHECK_FALSE(renamed.available);
  CHECK(renamed.new_nick == "robert");

  auto gone = parse("<presence from='room@conference.localhost/bob' type='unavailable'>" + x +
                    "<item nick='ignored' jid='bob@localhost/res1'/></x></presence>");
  CHECK(gone.new_nick.empty());  // a nick attribute without 303 is not a rename

  auto kicked = parse("<presence from='room@conference.localhost/bob' type='unavailable'>" + x +
                      "<item jid='bob@localhost/res1'/><status code='307'/></x></presence>");
  CHECK(kicked.removed);

  auto conflict = parse("<presence from='room@conference.localhost/alice' type='error'><error type='cancel'>"
                        "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
  CHECK(conflict.error == "conflict");
}

TEST_CASE("stanzas from elsewhere, private messages and history are told apart", "[transport][stanza]") {
  Ctx c;
  StanzaPtr other = c.parse("<message from='other@conference.localhost/bob' type='groupchat'><body>x</body></message>");
  CHECK_FALSE(parse_muc_stanza(other.get(), kRoom));
  StanzaPtr prefix = c.parse("<message from='room@conference.localhost.evil/bob' type='groupchat'><body>x</body></message>");
  CHECK_FALSE(parse_muc_stanza(prefix.get(), kRoom));
  StanzaPtr room_caps = c.parse("<presence from='room@conference.localhost'><c xmlns='http://jabber.org/protocol/caps'/></presence>");
  CHECK_FALSE(parse_muc_stanza(room_caps.get(), kRoom));  // the room itself is not an occupant
  StanzaPtr pm = c.parse("<message from='room@conference.localhost/bob' type='chat'><body>x</body></message>");
  CHECK_FALSE(parse_muc_stanza(pm.get(), kRoom));
  StanzaPtr history = c.parse("<message from='room@conference.localhost/bob' type='groupchat'><body>old</body>"
                              "<delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/></message>");
  auto in = parse_muc_stanza(history.get(), kRoom);
  REQUIRE(in);
  CHECK(std::get<MessageIn>(*in).delayed);
  StanzaPtr error = c.parse("<message from='room@conference.localhost' type='error'><error type='modify'>"
                            "<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
  auto err = parse_muc_stanza(error.get(), kRoom);
  REQUIRE(err);
  CHECK(std::get<MessageIn>(*err).error == "not-acceptable");
  CHECK(occupant_nick("room@conference.localhost", kRoom) == std::string());
  CHECK(occupant_nick("room@conference.localhost/a/b", kRoom) == std::string("a/b"));
}
