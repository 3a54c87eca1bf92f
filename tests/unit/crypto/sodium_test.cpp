// SPDX-License-Identifier: MIT
// Poly1305 and BLAKE2b (the one-time-pad mode's primitives, from libsodium) against published
// vectors: RFC 8439 §2.5.2 and Appendix A.3 for Poly1305, RFC 7693 Appendix A for BLAKE2b-512.
// The other BLAKE2b lengths were checked against Python's hashlib.blake2b(digest_size=N).
#include <catch2/catch.hpp>

#include <string>

#include "mpotr/crypto/crypto.h"

using namespace mpotr;
using namespace mpotr::crypto;

namespace {

Bytes unhex(std::string_view s) {
  Bytes out;
  REQUIRE(from_hex(s, out));
  return out;
}

Poly1305Key key_of(const Bytes& k) {
  REQUIRE(k.size() == kPoly1305KeyLen);
  return Poly1305Key(k.data(), kPoly1305KeyLen);
}

Poly1305Tag tag_of(std::string_view hex) {
  const Bytes b = unhex(hex);
  REQUIRE(b.size() == kPoly1305TagLen);
  Poly1305Tag t{};
  std::copy(b.begin(), b.end(), t.begin());
  return t;
}

}  // namespace

TEST_CASE("Poly1305 known answers (RFC 8439)", "[crypto]") {
  struct Case {
    const char* name;
    std::string key;
    Bytes msg;
    std::string tag;
  };
  const std::string ipr_key = "85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b";
  const std::string text = "Cryptographic Forum Research Group";
  const Case cases[] = {
      {"§2.5.2", ipr_key, Bytes(text.begin(), text.end()), "a8061dc1305136c6c22b8baf0c0127a9"},
      {"A.3 #1: all-zero key and text", std::string(64, '0'), Bytes(64, 0), "00000000000000000000000000000000"},
      // r = 2, s = 0, text 16 × ff: the partially reduced result must be fully reduced.
      {"A.3 #5", "02" + std::string(62, '0'), Bytes(16, 0xff), "03000000000000000000000000000000"},
      // Empty message: the tag is s, the key's second half.
      {"empty message", ipr_key, Bytes{}, "0103808afb0db2fd4abff6af4149f51b"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const Bytes key = unhex(c.key);
    const Poly1305Tag tag = poly1305(key_of(key), view(c.msg));
    CHECK(to_hex(view(tag)) == c.tag);
    CHECK(poly1305_verify(tag_of(c.tag), key_of(key), view(c.msg)));
  }
}

TEST_CASE("Poly1305 verification rejects any change", "[crypto]") {
  const Bytes key = unhex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b");
  const std::string text = "Cryptographic Forum Research Group";
  const Bytes msg(text.begin(), text.end());
  const Poly1305Tag tag = tag_of("a8061dc1305136c6c22b8baf0c0127a9");
  REQUIRE(poly1305_verify(tag, key_of(key), view(msg)));
  for (std::size_t bit : {0u, 64u, 127u}) {
    Poly1305Tag t = tag;
    t[bit / 8] ^= static_cast<std::uint8_t>(1U << (bit % 8));
    CHECK_FALSE(poly1305_verify(t, key_of(key), view(msg)));
  }
  for (std::size_t i : {std::size_t{0}, msg.size() - 1}) {
    Bytes m = msg;
    m[i] ^= 0x01;
    CHECK_FALSE(poly1305_verify(tag, key_of(key), view(m)));
  }
  Bytes longer = msg;
  longer.push_back(0);
  CHECK_FALSE(poly1305_verify(tag, key_of(key), view(longer)));
  for (std::size_t i : {std::size_t{0}, std::size_t{20}}) {  // r half, s half
    Bytes k = key;
    k[i] ^= 0x01;
    CHECK_FALSE(poly1305_verify(tag, key_of(k), view(msg)));
  }
}

TEST_CASE("BLAKE2b known answers", "[crypto]") {
  // RFC 7693 Appendix A: BLAKE2b-512("abc").
  CHECK(to_hex(view(blake2b<64>(as_bytes("abc")))) ==
        "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
        "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
  // The output length is a parameter, not a truncation.
  CHECK(to_hex(view(blake2b<32>(as_bytes("abc")))) ==
        "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
  CHECK(to_hex(view(blake2b<32>(ByteView{}))) == "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  CHECK(to_hex(view(blake2b<16>(ByteView{}))) == "cae66941d9efbd404e4d88758ea67670");
}

TEST_CASE("incremental BLAKE2b equals the one-shot hash and starts over after finish", "[crypto]") {
  // 1024 bytes: 00 01 … ff four times (several 128-byte blocks, split off block boundaries).
  Bytes msg(1024);
  for (std::size_t i = 0; i < msg.size(); ++i) {
    msg[i] = static_cast<std::uint8_t>(i);
  }
  const std::string want16 = "0b4661484ed1cc8e28c4a7f18e8b1019";
  const std::string want64 =
      "6b490f42e902f61b1ee12d3c85e34152e37c94d07ab9ea577cad6a6eb4690fad"
      "38064f53a19c225703a5c52cdc9a85add71b339d327e1630ee3432b920240e8a";
  CHECK(to_hex(view(blake2b<16>(view(msg)))) == want16);
  CHECK(to_hex(view(blake2b<64>(view(msg)))) == want64);
  for (std::size_t split : {std::size_t{0}, std::size_t{1}, std::size_t{127}, std::size_t{128}, std::size_t{129},
                            std::size_t{1000}, msg.size()}) {
    INFO("split at " << split);
    Blake2b<16> h16;
    h16.update(ByteView(msg).first(split)).update(ByteView(msg).subspan(split));
    CHECK(to_hex(view(h16.finish())) == want16);
    Blake2b<64> h64;
    h64.update(ByteView(msg).first(split));
    h64.update(ByteView{});
    h64.update(ByteView(msg).subspan(split));
    CHECK(to_hex(view(h64.finish())) == want64);
    // finish() leaves a fresh hash behind.
    CHECK(to_hex(view(h64.finish())) == to_hex(view(blake2b<64>(ByteView{}))));
    h16.update(as_bytes("abc"));
    CHECK(h16.finish() == blake2b<16>(as_bytes("abc")));
  }
}
