// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <string>

#include "mpotr/identity.h"

using namespace mpotr;

namespace {

IdentityKey make_key(std::uint64_t seed) {
  DeterministicRng rng(seed);
  auto key = IdentityKey::generate(rng);
  REQUIRE(key.ok());
  return std::move(key).value();
}

Bytes scalar_one() {
  Bytes s(crypto::kScalarLen, 0);
  s.back() = 1;
  return s;
}

}  // namespace

TEST_CASE("fingerprint of the P-256 generator matches an independent SHA-256", "[identity]") {
  // d = 1 gives Q = G; SHA-256 of G's uncompressed encoding computed with Python's hashlib.
  auto key = IdentityKey::from_scalar(view(scalar_one()));
  REQUIRE(key.ok());
  CHECK(key->fingerprint().grouped() ==
        "698BEA63 DC44A344 663FF142 9AEA1084 2DF27B6B 991EF258 66B2C6C0 2CDCC5BE");
  CHECK(fingerprint_of(key->public_key()) == key->fingerprint());
  CHECK(key->fingerprint().bytes == crypto::sha256(view(key->public_key().point())));
}

TEST_CASE("grouped fingerprint is 8 groups of 8 upper-case hex digits", "[identity]") {
  const std::string text = make_key(1).fingerprint().grouped();
  REQUIRE(text.size() == 71);
  for (std::size_t i = 0; i < text.size(); ++i) {
    INFO("position " << i);
    if (i % 9 == 8) {
      CHECK(text[i] == ' ');
    } else {
      const char c = text[i];
      CHECK(((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')));
    }
  }
}

TEST_CASE("fingerprint parse round trips grouped, plain, lower and upper case", "[identity]") {
  const Fingerprint fp = make_key(2).fingerprint();
  const std::string grouped = fp.grouped();
  std::string plain;
  for (char c : grouped) {
    if (c != ' ') {
      plain.push_back(c);
    }
  }
  std::string lower = plain;
  for (char& c : lower) {
    if (c >= 'A' && c <= 'F') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  std::string mixed = lower;
  mixed[0] = grouped[0];
  for (const std::string& text : {grouped, plain, lower, mixed}) {
    INFO(text);
    auto parsed = Fingerprint::parse(text);
    REQUIRE(parsed.ok());
    CHECK(*parsed == fp);
    CHECK(parsed->grouped() == grouped);
  }
}

TEST_CASE("fingerprint parse rejects anything but 64 hex digits", "[identity]") {
  const std::string plain(64, 'a');
  struct Case {
    std::string text;
    std::string detail;
  };
  const Case cases[] = {
      {plain.substr(0, 63), "got 63"},
      {plain + "a", "got 65"},
      {"", "got 0"},
      {std::string(63, 'a') + "g", "non-hex character at position 63"},
      {"0x" + plain.substr(0, 62), "non-hex character at position 1"},
      {std::string(32, 'a') + "\t" + std::string(32, 'a'), "non-hex character at position 32"},
      {std::string(32, 'a') + "-" + std::string(32, 'a'), "non-hex"},
      {std::string(1000, ' ') + plain, "too long"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto parsed = Fingerprint::parse(c.text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().code == ErrorCode::DecodeBadValue);
    CHECK_THAT(parsed.error().detail, Catch::Contains(c.detail));
  }
}

TEST_CASE("different keys have different fingerprints, the same scalar gives the same one", "[identity]") {
  const IdentityKey a = make_key(10);
  const IdentityKey b = make_key(11);
  CHECK_FALSE(a.fingerprint() == b.fingerprint());
  CHECK(a.fingerprint() == make_key(10).fingerprint());

  const SecretBytes scalar = a.private_key().scalar();
  auto again = IdentityKey::from_scalar(scalar.view());
  REQUIRE(again.ok());
  CHECK(again->public_key() == a.public_key());
  CHECK(again->fingerprint() == a.fingerprint());
}

TEST_CASE("identity key from_scalar rejects zero and wrong lengths", "[identity]") {
  const Bytes zero(crypto::kScalarLen, 0);
  CHECK_FALSE(IdentityKey::from_scalar(view(zero)).ok());
  const Bytes short_scalar(crypto::kScalarLen - 1, 1);
  CHECK_FALSE(IdentityKey::from_scalar(view(short_scalar)).ok());
  const Bytes n_order = {0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,
                         0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17,
                         0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};
  CHECK_FALSE(IdentityKey::from_scalar(view(n_order)).ok());
}
