// SPDX-License-Identifier: MIT
// The wire codec: canonical round trips and the exact rejection of every malformed input.
#include <catch2/catch.hpp>

#include "mpotr/codec/messages.h"
#include "mpotr/codec/reader.h"

using namespace mpotr;
using namespace mpotr::codec;

namespace {

Point point(std::uint8_t fill) {
  Point p{};
  p.fill(fill);
  p[0] = 0x04;
  return p;
}

template <std::size_t N>
std::array<std::uint8_t, N> filled(std::uint8_t v) {
  std::array<std::uint8_t, N> a{};
  a.fill(v);
  return a;
}

Offer sample_offer() {
  Offer m;
  m.roster_digest = filled<32>(1);
  m.nick = "alice";
  m.nonce = filled<32>(2);
  m.identity_key = point(3);
  m.dh_key = point(4);
  m.signing_key = point(5);
  return m;
}

Data sample_data(MessageType type = MessageType::Data) {
  Data m;
  m.type = type;
  m.session_tag = filled<8>(7);
  m.sender = 1;
  m.seq = 300;
  m.acks = {0, 127, 128, 70000};
  m.view_digest = filled<32>(8);
  if (type == MessageType::Data) {
    m.ciphertext = Bytes(100, 0xab);
  }
  m.mac = filled<32>(10);
  m.signature = filled<64>(9);
  return m;
}

std::vector<Bytes> one_of_each() {
  KeyShare ks;
  ks.session_id = filled<32>(1);
  ks.sender = 2;
  ks.elgamal_r = point(6);
  ks.commit = filled<32>(7);
  ks.refused.set(1);
  ks.shares.resize(2);
  ks.signature = filled<64>(3);
  Attest at;
  at.session_id = filled<32>(4);
  at.transcript_hash = filled<32>(5);
  at.key_confirm = filled<32>(6);
  Shutdown sd;
  sd.session_tag = filled<8>(1);
  sd.final_count = 12;
  Digest dg;
  dg.session_tag = filled<8>(2);
  dg.transcript_digest = filled<32>(3);
  KeyReveal kr;
  kr.session_tag = filled<8>(3);
  kr.private_key = filled<32>(4);
  Accuse ac;
  ac.session_id = filled<32>(5);
  ac.sender = 1;
  ac.accused = 2;
  ac.dh_private = filled<32>(6);
  ac.key_share = encode(ks);
  End en;
  en.session_tag = filled<8>(7);
  en.present.set(0);
  en.present.set(2);
  en.digests_hash = filled<32>(8);
  Quit qt;
  qt.session_tag = filled<8>(9);
  qt.final_count = kMaxMessagesPerSession;
  return {encode(sample_offer()), encode(ks),  encode(at), encode(sample_data()), encode(sample_data(MessageType::Heartbeat)),
          encode(sd),             encode(dg),  encode(kr), encode(ac),            encode(en),
          encode(qt)};
}

ErrorCode decode_error(const Bytes& b) {
  auto r = decode(view(b));
  REQUIRE_FALSE(r.ok());
  return r.error().code;
}

Bytes reencode(const Decoded& d) {
  return std::visit([](const auto& m) { return encode(m); }, d.message);
}

}  // namespace

TEST_CASE("every message type round-trips byte for byte", "[codec]") {
  for (const Bytes& b : one_of_each()) {
    auto d = decode(view(b));
    REQUIRE(d.ok());
    REQUIRE(reencode(*d) == b);
  }
}

TEST_CASE("signed_len covers everything but the trailing signature, mac_len everything but the MAC too", "[codec]") {
  const Data m = sample_data();
  const Bytes b = encode(m);
  auto d = decode(view(b));
  REQUIRE(d.ok());
  REQUIRE(d->signed_len == b.size() - 64);
  REQUIRE(d->mac_len == b.size() - 64 - kMacLen);
  REQUIRE(encode_signed_part(m) == Bytes(b.begin(), b.end() - 64));
  REQUIRE(encode_mac_part(m) == Bytes(b.begin(), b.end() - 64 - kMacLen));
  auto at = decode(view(one_of_each()[2]));
  REQUIRE(at->mac_len == 0);  // setup messages carry no group MAC
  auto offer = decode(view(encode(sample_offer())));
  REQUIRE(offer->signed_len == encode(sample_offer()).size());
}

TEST_CASE("header errors: version and type", "[codec]") {
  Bytes b = encode(sample_offer());
  b[0] = 1;  // version 1
  REQUIRE(decode_error(b) == ErrorCode::DecodeBadVersion);
  b[0] = kProtocolVersion;
  b[1] = 0x7f;
  REQUIRE(decode_error(b) == ErrorCode::DecodeUnknownType);
  REQUIRE(decode_error(Bytes{}) == ErrorCode::DecodeTruncated);
  REQUIRE(decode_error(Bytes{kProtocolVersion}) == ErrorCode::DecodeTruncated);
  REQUIRE(decode_error(Bytes{1}) == ErrorCode::DecodeBadVersion);  // the version is read first
}

TEST_CASE("every strict prefix of every message is truncated, one more byte is trailing", "[codec]") {
  for (const Bytes& b : one_of_each()) {
    for (std::size_t len = 2; len < b.size(); ++len) {
      Bytes prefix(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(len));
      auto r = decode(view(prefix));
      REQUIRE_FALSE(r.ok());
      // A cut inside a length-prefixed field may also read as an oversize/empty value.
      REQUIRE((r.error().code == ErrorCode::DecodeTruncated || r.error().code == ErrorCode::DecodeBadValue));
    }
    Bytes longer = b;
    longer.push_back(0);
    REQUIRE(decode_error(longer) == ErrorCode::DecodeTrailingBytes);
  }
}

TEST_CASE("field bounds are enforced", "[codec]") {
  SECTION("nick: empty and oversize") {
    Offer m = sample_offer();
    m.nick = "";
    REQUIRE(decode_error(encode(m)) == ErrorCode::DecodeBadValue);
    m.nick = std::string(kMaxNickLen + 1, 'x');
    REQUIRE(decode_error(encode(m)) == ErrorCode::DecodeOversize);
    m.nick = std::string(kMaxNickLen, 'x');
    REQUIRE(decode(view(encode(m))).ok());
  }
  SECTION("points must be uncompressed") {
    Offer m = sample_offer();
    m.dh_key[0] = 0x02;
    REQUIRE(decode_error(encode(m)) == ErrorCode::DecodeBadValue);
  }
  SECTION("key share entry count") {
    KeyShare ks;
    ks.elgamal_r = point(1);
    REQUIRE(decode_error(encode(ks)) == ErrorCode::DecodeBadValue);  // zero entries
    ks.shares.resize(kMaxMembers);
    REQUIRE(decode_error(encode(ks)) == ErrorCode::DecodeOversize);
    ks.shares.resize(kMaxMembers - 1);
    REQUIRE(decode(view(encode(ks))).ok());
  }
  SECTION("data: seq 0, empty chat, heartbeat with text, oversize text, ack count") {
    Data m = sample_data();
    m.seq = 0;
    REQUIRE(decode_error(encode(m)) == ErrorCode::DecodeBadValue);
    m = sample_data();
    m.ciphertext.clear();
    REQUIRE(decode_error(encode(m)) == ErrorCode::DecodeBadValue);
    m = sample_data(MessageType::Heartbeat);
    m.ciphertext = Bytes(1, 0);
    REQUIRE(decode_error(encode(m)) == ErrorCode::DecodeBadValue);
    m = sample_data();
    m.ciphertext = Bytes(kMaxTextLen + 1, 0);
    REQUIRE(decode_error(encode(m)) == ErrorCode::DecodeOversize);
    m = sample_data();
    m.acks.clear();
    REQUIRE(decode_error(encode(m)) == ErrorCode::DecodeBadValue);
  }
  SECTION("counts above 2^20: seq, acks, final counts") {
    Data m = sample_data();
    m.seq = kMaxMessagesPerSession + 1;
    REQUIRE(decode_error(encode(m)) == ErrorCode::DecodeBadValue);
    m.seq = kMaxMessagesPerSession;
    REQUIRE(decode(view(encode(m))).ok());
    m.acks[0] = kMaxMessagesPerSession + 1;
    REQUIRE(decode_error(encode(m)) == ErrorCode::DecodeBadValue);
    Shutdown sd;
    sd.final_count = 0xffffffffu;
    REQUIRE(decode_error(encode(sd)) == ErrorCode::DecodeBadValue);
    Quit q;
    q.final_count = kMaxMessagesPerSession + 1;
    REQUIRE(decode_error(encode(q)) == ErrorCode::DecodeBadValue);
  }
  SECTION("accusations: not of oneself, and with a key share") {
    Accuse a;
    a.sender = 1;
    a.accused = 1;
    a.key_share = Bytes{1};
    REQUIRE(decode_error(encode(a)) == ErrorCode::DecodeBadValue);
    a.accused = 0;
    a.key_share.clear();
    REQUIRE(decode_error(encode(a)) == ErrorCode::DecodeBadValue);
  }
  SECTION("whole message size") {
    Bytes huge(kMaxWireMessageLen + 1, 0);
    huge[0] = kProtocolVersion;
    huge[1] = static_cast<std::uint8_t>(MessageType::Data);
    REQUIRE(decode_error(huge) == ErrorCode::DecodeOversize);
  }
}

TEST_CASE("varints are minimal, bounded and round-trip", "[codec]") {
  for (std::uint32_t v : {0u, 1u, 127u, 128u, 16383u, 16384u, 0xffffffffu}) {
    Writer w;
    w.varint(v);
    Reader r(view(w.data()));
    auto got = r.varint();
    REQUIRE(got.ok());
    REQUIRE(*got == v);
    REQUIRE(r.expect_end().ok());
  }
  const Bytes non_minimal{0x80, 0x00};
  REQUIRE(Reader(view(non_minimal)).varint().error().code == ErrorCode::DecodeBadValue);
  const Bytes too_long{0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
  REQUIRE(Reader(view(too_long)).varint().error().code == ErrorCode::DecodeBadValue);
  const Bytes too_big{0xff, 0xff, 0xff, 0xff, 0x1f};
  REQUIRE(Reader(view(too_big)).varint().error().code == ErrorCode::DecodeBadValue);
  const Bytes cut{0x80};
  REQUIRE(Reader(view(cut)).varint().error().code == ErrorCode::DecodeTruncated);
}

TEST_CASE("member sets: bit i of byte i/8, bound() is one past the highest", "[codec]") {
  MemberSet s;
  REQUIRE(s.empty());
  REQUIRE(s.bound() == 0);
  s.set(0);
  s.set(9);
  s.set(127);
  REQUIRE(s.bits[0] == 0x01);
  REQUIRE(s.bits[1] == 0x02);
  REQUIRE(s.bits[15] == 0x80);
  REQUIRE(s.test(9));
  REQUIRE_FALSE(s.test(8));
  REQUIRE_FALSE(s.test(128));  // outside: never set
  REQUIRE(s.bound() == 128);
}

TEST_CASE("errors name the offending field", "[codec]") {
  Offer m = sample_offer();
  m.signing_key[0] = 0x03;
  auto r = decode(view(encode(m)));
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.error().detail.find("signing_key") != std::string::npos);
}
