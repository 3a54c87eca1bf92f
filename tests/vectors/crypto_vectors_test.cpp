// SPDX-License-Identifier: MIT
// spec/vectors/crypto.json: primitive known answers recomputed with mpotr/crypto.
#include "mpotr/crypto/crypto.h"
#include "mpotr/rng.h"
#include "vectors/vectors.h"

using namespace mpotr;
using namespace mpotr::vectors;

namespace {

const Json& crypto_doc() {
  static const Json doc = load("crypto.json");
  return doc;
}

}  // namespace

TEST_CASE("crypto vectors: DeterministicRng streams", "[vectors]") {
  int draws = 0;
  for (const auto& c : crypto_doc().at("deterministic_rng")) {
    DeterministicRng rng(c.at("seed").get<std::uint64_t>());
    for (const auto& d : c.at("draws")) {
      const auto len = d.at("length").get<std::size_t>();
      Bytes out(len);
      rng.fill(out.data(), len);
      INFO("seed " << c.at("seed") << ", draw " << draws);
      CHECK(hex(out) == str(d.at("output")));
      ++draws;
    }
  }
  REQUIRE(draws >= 12);
}

TEST_CASE("crypto vectors: P-256 scalars and public points", "[vectors]") {
  int ran = 0;
  int seeded = 0;
  for (const auto& c : crypto_doc().at("p256_keys")) {
    INFO("private " << str(c.at("private")));
    const auto key = must(crypto::PrivateKey::from_scalar(view(unhex(c.at("private")))));
    CHECK(to_hex(view(key.public_key().point())) == str(c.at("public")));
    CHECK(hex(key.scalar()) == str(c.at("private")));
    const auto pub = must(crypto::PublicKey::from_point(view(unhex(c.at("public")))));
    CHECK(pub == key.public_key());
    if (c.contains("rng_seed")) {
      DeterministicRng rng(c.at("rng_seed").get<std::uint64_t>());
      CHECK(hex(must(crypto::PrivateKey::generate(rng)).scalar()) == str(c.at("private")));
      ++seeded;
    }
    ++ran;
  }
  REQUIRE(ran >= 7);
  REQUIRE(seeded >= 4);

  int invalid = 0;
  for (const auto& c : crypto_doc().at("p256_invalid_scalars")) {
    INFO("private " << str(c.at("private")));
    auto r = crypto::PrivateKey::from_scalar(view(unhex(c.at("private"))));
    REQUIRE_FALSE(r.ok());
    CHECK(to_string(r.error().code) == str(c.at("error")));
    ++invalid;
  }
  REQUIRE(invalid >= 4);
}

TEST_CASE("crypto vectors: ECDH", "[vectors]") {
  int ran = 0;
  for (const auto& c : crypto_doc().at("ecdh")) {
    const auto key = must(crypto::PrivateKey::from_scalar(view(unhex(c.at("private")))));
    const auto peer = must(crypto::PublicKey::from_point(view(unhex(c.at("peer_public")))));
    INFO("case " << ran);
    CHECK(hex(must(key.ecdh(peer))) == str(c.at("shared")));
    ++ran;
  }
  REQUIRE(ran >= 5);
}

TEST_CASE("crypto vectors: hedged ECDSA nonce and signature", "[vectors]") {
  int ran = 0;
  for (const auto& c : crypto_doc().at("ecdsa")) {
    INFO("case " << ran);
    const auto key = must(crypto::PrivateKey::from_scalar(view(unhex(c.at("private")))));
    REQUIRE(to_hex(view(key.public_key().point())) == str(c.at("public")));
    const Hash32 digest = unhex32(c.at("digest"));
    const auto seed = c.at("rng_seed").get<std::uint64_t>();

    // rnd32 is the first 32-byte draw of the signing rng.
    DeterministicRng rnd_rng(seed);
    const auto rnd = rnd_rng.array<32>();
    REQUIRE(hex(rnd) == str(c.at("rnd32")));

    // k = HMAC-SHA-256(d, rnd32 ‖ digest ‖ u32 counter), and r is the x-coordinate of k·G.
    Bytes input(rnd.begin(), rnd.end());
    append(input, view(digest));
    const auto ctr = c.at("nonce_counter").get<std::uint32_t>();
    append(input, view(Bytes{static_cast<std::uint8_t>(ctr >> 24), static_cast<std::uint8_t>(ctr >> 16),
                             static_cast<std::uint8_t>(ctr >> 8), static_cast<std::uint8_t>(ctr)}));
    const Hash32 k = crypto::hmac_sha256(key.scalar().view(), view(input));
    REQUIRE(hex(k) == str(c.at("k")));
    const auto k_key = must(crypto::PrivateKey::from_scalar(view(k)));
    const Bytes sig_bytes = unhex(c.at("signature"));
    REQUIRE(sig_bytes.size() == crypto::kSignatureLen);
    const auto& kg = k_key.public_key().point();
    CHECK(std::equal(kg.begin() + 1, kg.begin() + 33, sig_bytes.begin()));

    // The library reproduces the exact signature, which verifies; a changed digest or
    // signature does not.
    DeterministicRng sign_rng(seed);
    const auto sig = must(key.sign_digest(digest, sign_rng));
    CHECK(hex(sig) == str(c.at("signature")));
    CHECK(key.public_key().verify_digest(digest, view(sig_bytes)));
    Hash32 other = digest;
    other[0] ^= 0x01;
    CHECK_FALSE(key.public_key().verify_digest(other, view(sig_bytes)));
    Bytes bad_sig = sig_bytes;
    bad_sig[63] ^= 0x01;
    CHECK_FALSE(key.public_key().verify_digest(digest, view(bad_sig)));
    ++ran;
  }
  REQUIRE(ran >= 6);
}

TEST_CASE("crypto vectors: SHA-256, HMAC-SHA-256, HKDF-SHA-256", "[vectors]") {
  int sha = 0;
  for (const auto& c : crypto_doc().at("sha256")) {
    const Bytes in = unhex(c.at("input"));
    INFO("input of " << in.size() << " bytes");
    CHECK(hex(crypto::sha256(view(in))) == str(c.at("output")));
    crypto::Sha256 h;  // the incremental hash, fed in two pieces
    h.update(ByteView(in).first(in.size() / 2)).update(ByteView(in).subspan(in.size() / 2));
    CHECK(hex(h.finish()) == str(c.at("output")));
    ++sha;
  }
  REQUIRE(sha >= 6);

  int mac = 0;
  for (const auto& c : crypto_doc().at("hmac_sha256")) {
    INFO("hmac case " << mac);
    CHECK(hex(crypto::hmac_sha256(view(unhex(c.at("key"))), view(unhex(c.at("data"))))) == str(c.at("output")));
    ++mac;
  }
  REQUIRE(mac >= 6);

  int kdf = 0;
  for (const auto& c : crypto_doc().at("hkdf_sha256")) {
    INFO("hkdf case " << kdf);
    const Bytes salt = unhex(c.at("salt"));
    const Bytes ikm = unhex(c.at("ikm"));
    const Bytes info = unhex(c.at("info"));
    const auto length = c.at("length").get<std::size_t>();
    const SecretBytes prk = crypto::hkdf_extract(view(salt), view(ikm));
    CHECK(hex(prk) == str(c.at("prk")));
    CHECK(hex(must(crypto::hkdf_expand(prk.view(), view(info), length))) == str(c.at("okm")));
    CHECK(hex(must(crypto::hkdf_sha256(view(salt), view(ikm), view(info), length))) == str(c.at("okm")));
    ++kdf;
  }
  REQUIRE(kdf >= 5);
}

TEST_CASE("crypto vectors: AES-128-CTR", "[vectors]") {
  int ran = 0;
  for (const auto& c : crypto_doc().at("aes128_ctr")) {
    INFO("aes case " << ran);
    const Bytes key = unhex(c.at("key"));
    const auto iv = unhex_array<crypto::kAesBlockLen>(c.at("iv"));
    const Bytes pt = unhex(c.at("plaintext"));
    Bytes ct(pt.size());
    must(crypto::aes128_ctr(view(key), iv, view(pt), ct.data()));
    CHECK(hex(ct) == str(c.at("ciphertext")));
    // CTR is its own inverse, in place too.
    Bytes back = ct;
    must(crypto::aes128_ctr(view(key), iv, view(back), back.data()));
    CHECK(back == pt);
    ++ran;
  }
  REQUIRE(ran >= 6);
}
