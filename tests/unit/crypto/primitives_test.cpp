// SPDX-License-Identifier: MIT
// SHA-256, HMAC-SHA-256, HKDF-SHA-256 and AES-128-CTR against published vectors
// (tests/data/rfc, tests/data/nist) plus a few edge cases.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
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

nlohmann::json load_json(const std::string& relative) {
  const std::string path = std::string(MPOTR_SOURCE_DIR) + "/" + relative;
  std::ifstream in(path);
  INFO("reading " << path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

AesIv to_iv(const Bytes& b) {
  REQUIRE(b.size() == kAesBlockLen);
  AesIv iv{};
  std::copy(b.begin(), b.end(), iv.begin());
  return iv;
}

}  // namespace

TEST_CASE("sha256 known answers", "[crypto]") {
  // FIPS 180-2 example "abc" and the empty message.
  CHECK(to_hex(view(sha256(as_bytes("abc")))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(to_hex(view(sha256(ByteView{}))) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("Sha256 incremental matches one-shot", "[crypto]") {
  Bytes data(1000);
  for (std::size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<std::uint8_t>(i * 7);
  }
  const Hash32 expected = sha256(view(data));
  for (std::size_t split : {0u, 1u, 63u, 64u, 65u, 999u, 1000u}) {
    Sha256 h;
    h.update(ByteView(data).first(split)).update(ByteView(data).subspan(split));
    CHECK(h.finish() == expected);
  }
  // update_u8 / update_u32 (big-endian) / string_view feed the same bytes.
  Sha256 h;
  h.update_u32(0x01020304).update_u8(0xab);
  CHECK(to_hex(view(h.finish())) == "a25b09bff998b9983110cc1e503c22ae9b913ac9cc8caac4c86a18e91159ddf4");
  Sha256 s;
  s.update(std::string_view("abc"));
  CHECK(s.finish() == sha256(as_bytes("abc")));
  // After finish the object is a fresh, empty hash.
  CHECK(s.finish() == sha256(ByteView{}));
}

TEST_CASE("HMAC-SHA-256: RFC 4231 test cases 1-4, 6, 7", "[crypto]") {
  const auto doc = load_json("tests/data/rfc/rfc4231-hmac-sha256.json");
  int ran = 0;
  for (const auto& tc : doc.at("tests")) {
    INFO(tc.at("name").get<std::string>());
    const Bytes key = unhex(tc.at("key").get<std::string>());
    const Bytes data = unhex(tc.at("data").get<std::string>());
    CHECK(to_hex(view(hmac_sha256(view(key), view(data)))) == tc.at("hmac_sha256").get<std::string>());
    ++ran;
  }
  REQUIRE(ran == 6);
}

TEST_CASE("HMAC-SHA-256 key-length edge cases", "[crypto]") {
  // Expected values from Python's hmac module.
  CHECK(to_hex(view(hmac_sha256(ByteView{}, ByteView{}))) ==
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  const Bytes key64(64, 0x11);  // exactly one block: used as is
  CHECK(to_hex(view(hmac_sha256(view(key64), as_bytes("x")))) ==
        "583812b1fafb74c0758058316df305bda81c05674df3313f9e2c792f1a2299c1");
  const Bytes key65(65, 0x22);  // one byte over: hashed first
  const Bytes data100(100, 0x33);
  CHECK(to_hex(view(hmac_sha256(view(key65), view(data100)))) ==
        "d72061539b32348bd5382bf802c2ddc669633e0d019bd80ac5af7b6a040fdbec");
  const Bytes data1000(1000, 0x44);
  CHECK(to_hex(view(hmac_sha256(as_bytes("k"), view(data1000)))) ==
        "84ac17400c922e72a9bce99034dfcdfcc8ead47b59c29c9d8784d09f3cf17c49");
}

TEST_CASE("HKDF-SHA-256: RFC 5869 A.1-A.3", "[crypto]") {
  const auto doc = load_json("tests/data/rfc/rfc5869-hkdf-sha256.json");
  int ran = 0;
  for (const auto& tc : doc.at("tests")) {
    INFO(tc.at("name").get<std::string>());
    const Bytes ikm = unhex(tc.at("ikm").get<std::string>());
    const Bytes salt = unhex(tc.at("salt").get<std::string>());
    const Bytes info = unhex(tc.at("info").get<std::string>());
    const auto length = tc.at("length").get<std::size_t>();
    const SecretBytes prk = hkdf_extract(view(salt), view(ikm));
    CHECK(to_hex(prk.view()) == tc.at("prk").get<std::string>());
    auto okm = hkdf_expand(prk.view(), view(info), length);
    REQUIRE(okm.ok());
    CHECK(to_hex(okm->view()) == tc.at("okm").get<std::string>());
    auto okm2 = hkdf_sha256(view(salt), view(ikm), view(info), length);
    REQUIRE(okm2.ok());
    CHECK(*okm2 == *okm);
    ++ran;
  }
  REQUIRE(ran == 3);
}

TEST_CASE("HKDF output length limits", "[crypto]") {
  const auto max = hkdf_sha256(ByteView{}, as_bytes("ikm"), as_bytes("info"), 255 * 32);
  REQUIRE(max.ok());
  REQUIRE(max->size() == 8160);
  // SHA-256 of the 8160-byte output, from an independent Python HKDF.
  CHECK(to_hex(view(sha256(max->view()))) == "70b5c23ddfb68881931274a467ac1fa14e33d2618b3449106fd9aefc9a74c676");

  const auto too_long = hkdf_sha256(ByteView{}, as_bytes("ikm"), as_bytes("info"), 255 * 32 + 1);
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.error().code == ErrorCode::InvalidArgument);
  const auto too_long2 = hkdf_expand(max->view().first(32), ByteView{}, 255 * 32 + 1);
  REQUIRE_FALSE(too_long2.ok());
  CHECK(too_long2.error().code == ErrorCode::InvalidArgument);

  const auto empty = hkdf_sha256(ByteView{}, as_bytes("ikm"), ByteView{}, 0);
  REQUIRE(empty.ok());
  CHECK(empty->empty());
  // Shorter outputs are prefixes of longer ones.
  const auto short_out = hkdf_sha256(ByteView{}, as_bytes("ikm"), as_bytes("info"), 45);
  REQUIRE(short_out.ok());
  CHECK(ct_equal(short_out->view(), max->view().first(45)));
}

TEST_CASE("AES-128-CTR: NIST SP 800-38A F.5.1 / F.5.2", "[crypto]") {
  const auto doc = load_json("tests/data/nist/sp800-38a-ctr.json");
  int ran = 0;
  for (const auto& tc : doc.at("tests")) {
    INFO(tc.at("name").get<std::string>());
    const Bytes key = unhex(tc.at("key").get<std::string>());
    const AesIv iv = to_iv(unhex(tc.at("init_counter").get<std::string>()));
    const Bytes input = unhex(tc.at("input").get<std::string>());
    const Bytes expected = unhex(tc.at("output").get<std::string>());
    REQUIRE(input.size() == 64);

    Bytes out(input.size());
    REQUIRE(aes128_ctr(view(key), iv, view(input), out.data()).ok());
    CHECK(out == expected);

    // In place.
    Bytes buf = input;
    REQUIRE(aes128_ctr(view(key), iv, view(buf), buf.data()).ok());
    CHECK(buf == expected);

    // Block by block with an explicitly incremented counter block (f0…feff + 1 = f0…ff00
    // carries across a byte): the counter is one big-endian integer.
    AesIv ctr = iv;
    for (std::size_t block = 0; block < 4; ++block) {
      Bytes one(kAesBlockLen);
      REQUIRE(aes128_ctr(view(key), ctr, ByteView(input).subspan(block * 16, 16), one.data()).ok());
      CHECK(std::equal(one.begin(), one.end(), expected.begin() + static_cast<std::ptrdiff_t>(block * 16)));
      for (std::size_t i = kAesBlockLen; i-- > 0;) {
        if (++ctr[i] != 0) {
          break;
        }
      }
    }
    // A partial final block uses a prefix of the keystream.
    Bytes part(37);
    REQUIRE(aes128_ctr(view(key), iv, ByteView(input).first(37), part.data()).ok());
    CHECK(std::equal(part.begin(), part.end(), expected.begin()));
    ++ran;
  }
  REQUIRE(ran == 2);
}

TEST_CASE("AES-128-CTR counter carries through all 128 bits", "[crypto]") {
  const Bytes key = unhex("000102030405060708090a0b0c0d0e0f");
  const Bytes zeros(32, 0);
  AesIv all_ones{};
  all_ones.fill(0xff);
  Bytes ks(32);
  REQUIRE(aes128_ctr(view(key), all_ones, view(zeros), ks.data()).ok());
  // The block after ff…ff is 00…00, not ff…ff‖00…00 (which a 64-bit counter would give).
  Bytes after_wrap(16);
  REQUIRE(aes128_ctr(view(key), AesIv{}, ByteView(zeros).first(16), after_wrap.data()).ok());
  CHECK(std::equal(after_wrap.begin(), after_wrap.end(), ks.begin() + 16));
}

TEST_CASE("AES-128-CTR argument checks", "[crypto]") {
  const Bytes data(16, 0x5a);
  Bytes out(16);
  for (std::size_t len : {0u, 15u, 17u, 24u, 32u}) {
    INFO("key length " << len);
    const Bytes key(len, 1);
    const auto r = aes128_ctr(view(key), AesIv{}, view(data), out.data());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::InvalidArgument);
  }
  const Bytes key(16, 1);
  CHECK(aes128_ctr(view(key), AesIv{}, ByteView{}, nullptr).ok());  // nothing to do
}
