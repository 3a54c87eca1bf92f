// SPDX-License-Identifier: MIT
// Project Wycheproof vectors (tests/data/wycheproof, Apache-2.0): ECDSA P-256/SHA-256 with
// P1363 signatures, and ECDH P-256 with raw-point public keys.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "mpotr/crypto/crypto.h"

using namespace mpotr;
using namespace mpotr::crypto;

namespace {

Bytes unhex(const std::string& s) {
  Bytes out;
  INFO("hex: " << s);
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

// Wycheproof writes private keys as ASN.1-style integers: a leading 00 when the top bit is
// set, or fewer than 32 bytes when the value is small. Normalise to 32 bytes big-endian.
Bytes scalar32(const std::string& hex) {
  Bytes raw = unhex(hex);
  std::size_t skip = 0;
  while (skip < raw.size() && raw[skip] == 0 && raw.size() - skip > 32) {
    ++skip;
  }
  raw.erase(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(skip));
  REQUIRE(raw.size() <= 32);
  Bytes out(32 - raw.size(), 0);
  out.insert(out.end(), raw.begin(), raw.end());
  return out;
}

}  // namespace

TEST_CASE("Wycheproof ECDSA P-256 SHA-256 P1363 verify", "[crypto]") {
  const auto doc = load_json("tests/data/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json");
  REQUIRE(doc.at("algorithm") == "ECDSA");
  int ran = 0;
  int valid = 0;
  int invalid = 0;
  int acceptable = 0;
  int acceptable_accepted = 0;
  for (const auto& group : doc.at("testGroups")) {
    REQUIRE(group.at("type") == "EcdsaP1363Verify");
    REQUIRE(group.at("sha") == "SHA-256");
    REQUIRE(group.at("publicKey").at("curve") == "secp256r1");
    const Bytes point = unhex(group.at("publicKey").at("uncompressed").get<std::string>());
    auto pub = PublicKey::from_point(view(point));
    REQUIRE(pub.ok());
    for (const auto& tc : group.at("tests")) {
      const int id = tc.at("tcId").get<int>();
      const std::string result = tc.at("result").get<std::string>();
      INFO("tcId " << id << " (" << tc.at("comment").get<std::string>() << "), expected " << result);
      const Bytes msg = unhex(tc.at("msg").get<std::string>());
      const Bytes sig = unhex(tc.at("sig").get<std::string>());
      const bool ok = pub->verify_digest(sha256(view(msg)), view(sig));
      if (result == "valid") {
        CHECK(ok);
        ++valid;
      } else if (result == "invalid") {
        CHECK_FALSE(ok);
        ++invalid;
      } else {
        REQUIRE(result == "acceptable");
        ++acceptable;
        acceptable_accepted += ok ? 1 : 0;
      }
      ++ran;
    }
  }
  WARN("Wycheproof ECDSA: " << ran << " cases (" << valid << " valid, " << invalid << " invalid, " << acceptable
                            << " acceptable of which " << acceptable_accepted << " accepted)");
  REQUIRE(ran == doc.at("numberOfTests").get<int>());
  REQUIRE(ran >= 250);
  REQUIRE(valid > 100);
  REQUIRE(invalid > 50);
}

TEST_CASE("Wycheproof ECDH P-256 ecpoint", "[crypto]") {
  const auto doc = load_json("tests/data/wycheproof/ecdh_secp256r1_ecpoint_test.json");
  REQUIRE(doc.at("algorithm") == "ECDH");
  int ran = 0;
  int shared_checked = 0;
  int invalid_rejected = 0;
  int non_uncompressed_rejected = 0;
  int non_uncompressed_but_allowed = 0;  // valid/acceptable in Wycheproof, refused by our wire format
  for (const auto& group : doc.at("testGroups")) {
    REQUIRE(group.at("curve") == "secp256r1");
    REQUIRE(group.at("encoding") == "ecpoint");
    for (const auto& tc : group.at("tests")) {
      const int id = tc.at("tcId").get<int>();
      const std::string result = tc.at("result").get<std::string>();
      INFO("tcId " << id << " (" << tc.at("comment").get<std::string>() << "), expected " << result);
      const Bytes pub_bytes = unhex(tc.at("public").get<std::string>());
      const Bytes d = scalar32(tc.at("private").get<std::string>());
      auto priv = PrivateKey::from_scalar(view(d));
      REQUIRE(priv.ok());
      auto pub = PublicKey::from_point(view(pub_bytes));
      ++ran;

      const bool uncompressed = pub_bytes.size() == kPointLen && pub_bytes[0] == 0x04;
      if (!uncompressed) {
        // Our wire admits only uncompressed points, whatever Wycheproof thinks of the encoding.
        CHECK_FALSE(pub.ok());
        ++non_uncompressed_rejected;
        if (result != "invalid") {
          ++non_uncompressed_but_allowed;
        }
        continue;
      }
      if (result == "invalid") {
        if (pub.ok()) {
          // Should not happen: from_point ought to have refused it. ECDH must then fail.
          FAIL_CHECK("from_point accepted an invalid point");
          CHECK_FALSE(priv->ecdh(*pub).ok());
        } else {
          CHECK(pub.error().code == ErrorCode::DecodeBadValue);
          ++invalid_rejected;
        }
        continue;
      }
      REQUIRE(pub.ok());
      auto shared = priv->ecdh(*pub);
      REQUIRE(shared.ok());
      CHECK(to_hex(shared->view()) == tc.at("shared").get<std::string>());
      ++shared_checked;
    }
  }
  WARN("Wycheproof ECDH: " << ran << " cases, " << shared_checked << " shared secrets matched, " << invalid_rejected
                           << " invalid points rejected, " << non_uncompressed_rejected
                           << " non-uncompressed encodings rejected (" << non_uncompressed_but_allowed
                           << " of them valid/acceptable in Wycheproof)");
  REQUIRE(ran == doc.at("numberOfTests").get<int>());
  REQUIRE(ran >= 300);
  REQUIRE(shared_checked >= 300);
  REQUIRE(invalid_rejected > 0);
  REQUIRE(non_uncompressed_rejected > 0);
}
