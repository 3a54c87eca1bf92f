// SPDX-License-Identifier: MIT
// P-256 keys, ECDSA (production through OpenSSL; the hedged deterministic nonce with a
// reproducible rng) and ECDH.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "mpotr/crypto/crypto.h"

using namespace mpotr;
using namespace mpotr::crypto;

namespace {

Bytes unhex(std::string_view s) {
  Bytes out;
  REQUIRE(from_hex(s, out));
  return out;
}

constexpr std::string_view kOrderHex = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
constexpr std::string_view kOrderPlus1Hex = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632552";
constexpr std::string_view kOrderMinus1Hex = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550";
constexpr std::string_view kFieldPrimeHex = "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff";
constexpr std::string_view kGeneratorHex =
    "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

// An rng that always returns 00 01 02 …: stands in for a stuck or broken rng in the
// reproducible (vector) signing mode, which it opts into.
class CountingRng final : public Rng {
 public:
  void fill(std::uint8_t* out, std::size_t len) override {
    for (std::size_t i = 0; i < len; ++i) {
      out[i] = static_cast<std::uint8_t>(i);
    }
  }
  bool reproducible() const noexcept override { return true; }
};

// A host-like (not reproducible) rng that is completely broken: every byte is zero. It counts
// what is asked of it, so a test can tell whether signing drew from it at all.
class ZeroRng final : public Rng {
 public:
  void fill(std::uint8_t* out, std::size_t len) override {
    ++calls;
    std::fill_n(out, len, std::uint8_t{0});
  }
  int calls = 0;
};

// The CountingRng stream without the reproducible() opt-in: what a host's rng would be if it
// were stuck on the same output.
class StuckHostRng final : public Rng {
 public:
  void fill(std::uint8_t* out, std::size_t len) override {
    ++calls;
    for (std::size_t i = 0; i < len; ++i) {
      out[i] = static_cast<std::uint8_t>(i);
    }
  }
  int calls = 0;
};

Signature sign_ok(const PrivateKey& key, const Hash32& digest, Rng& rng) {
  auto sig = key.sign_digest(digest, rng);
  REQUIRE(sig.ok());
  return *sig;
}

PrivateKey key_from_hex(std::string_view hex) {
  const Bytes d = unhex(hex);
  auto key = PrivateKey::from_scalar(view(d));
  REQUIRE(key.ok());
  return *key;
}

Bytes with_r_s(ByteView r, ByteView s) {
  Bytes out(r.begin(), r.end());
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

}  // namespace

TEST_CASE("sign then verify", "[crypto]") {
  SystemRng rng;
  auto key = PrivateKey::generate(rng);
  REQUIRE(key.ok());
  const Hash32 digest = sha256(as_bytes("hello"));
  const Signature sig = sign_ok(*key, digest, rng);
  const PublicKey& pub = key->public_key();
  CHECK(pub.verify_digest(digest, view(sig)));

  // A copy shares the handle and verifies too; so does a key re-parsed from its point.
  const PublicKey copy = pub;  // NOLINT(performance-unnecessary-copy-initialization)
  CHECK(copy.verify_digest(digest, view(sig)));
  auto reparsed = PublicKey::from_point(view(pub.point()));
  REQUIRE(reparsed.ok());
  CHECK(*reparsed == pub);
  CHECK(reparsed->verify_digest(digest, view(sig)));

  // Another key does not verify it.
  auto other = PrivateKey::generate(rng);
  REQUIRE(other.ok());
  CHECK_FALSE(other->public_key().verify_digest(digest, view(sig)));
}

TEST_CASE("verify rejects tampered and malformed signatures", "[crypto]") {
  DeterministicRng rng(1);
  auto key = PrivateKey::generate(rng);
  REQUIRE(key.ok());
  const PublicKey& pub = key->public_key();
  const Hash32 digest = sha256(as_bytes("message"));
  const Signature sig = sign_ok(*key, digest, rng);
  REQUIRE(pub.verify_digest(digest, view(sig)));

  for (std::size_t bit : {0u, 7u, 100u, 255u}) {
    Hash32 d = digest;
    d[bit / 8] ^= static_cast<std::uint8_t>(1U << (bit % 8));
    CHECK_FALSE(pub.verify_digest(d, view(sig)));
  }
  for (std::size_t bit : {0u, 9u, 255u, 256u, 300u, 511u}) {
    Signature s = sig;
    s[bit / 8] ^= static_cast<std::uint8_t>(1U << (bit % 8));
    INFO("flipped signature bit " << bit);
    CHECK_FALSE(pub.verify_digest(digest, view(s)));
  }

  const ByteView r(sig.data(), 32);
  const ByteView s(sig.data() + 32, 32);
  const Bytes zero(32, 0);
  const Bytes n = unhex(kOrderHex);
  const Bytes n_plus_1 = unhex(kOrderPlus1Hex);
  const Bytes all_ff(32, 0xff);
  CHECK_FALSE(pub.verify_digest(digest, view(with_r_s(view(zero), s))));
  CHECK_FALSE(pub.verify_digest(digest, view(with_r_s(r, view(zero)))));
  CHECK_FALSE(pub.verify_digest(digest, view(with_r_s(view(zero), view(zero)))));
  CHECK_FALSE(pub.verify_digest(digest, view(with_r_s(view(n), s))));
  CHECK_FALSE(pub.verify_digest(digest, view(with_r_s(r, view(n)))));
  CHECK_FALSE(pub.verify_digest(digest, view(with_r_s(view(n_plus_1), s))));
  CHECK_FALSE(pub.verify_digest(digest, view(with_r_s(r, view(all_ff)))));

  // Wrong lengths, including the right bytes with one extra or one missing.
  CHECK_FALSE(pub.verify_digest(digest, ByteView{}));
  CHECK_FALSE(pub.verify_digest(digest, ByteView(sig).first(63)));
  Bytes longer(sig.begin(), sig.end());
  longer.push_back(0);
  CHECK_FALSE(pub.verify_digest(digest, view(longer)));

  // A default-constructed key verifies nothing.
  CHECK_FALSE(PublicKey{}.verify_digest(digest, view(sig)));
}

TEST_CASE("seeded rng: reproducible keys and signatures", "[crypto]") {
  // Known answers from an independent Python model of the header contract (DeterministicRng
  // stream, rejection-sampled d, k = HMAC-SHA-256(d, rnd32 ‖ digest ‖ be32(ctr))).
  const Hash32 digest = sha256(as_bytes("mpotr"));
  REQUIRE(to_hex(view(digest)) == "21336b526162f2bd3ae6f8937f1536c8130fc5edc601c57dd4063eef69f74413");

  DeterministicRng rng_a(7);
  DeterministicRng rng_b(7);
  auto a = PrivateKey::generate(rng_a);
  auto b = PrivateKey::generate(rng_b);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(to_hex(a->scalar().view()) == "1f12d2c819a76c2ca3d23757e487d63a88cb509ecafab58e7398d563fcdc08cd");
  CHECK(to_hex(view(a->public_key().point())) ==
        "04692250170b1162b03a233d55e3906c8607b74238307eb37493d1765a43f901cb"
        "2fdd98d18e988e859da128e997e6f8fb9b2167c3908fffc840576fec9a793c23");
  CHECK(a->public_key() == b->public_key());

  const Signature sa = sign_ok(*a, digest, rng_a);
  const Signature sb = sign_ok(*b, digest, rng_b);
  CHECK(sa == sb);
  CHECK(to_hex(view(sa)) ==
        "1379100b457893fb5db6ca15fc6371be0ad266bdb03f27b3b9b6863af42b0e6a"
        "40f409a39caac7d8e6a2256d4be96c93ef4c50d4763801aa8debcf7ba7a33ba2");
  CHECK(a->public_key().verify_digest(digest, view(sa)));

  // The rng has moved on: a second signature uses different rnd32, hence a different k.
  const Signature sa2 = sign_ok(*a, digest, rng_a);
  CHECK(sa2 != sa);
  CHECK(a->public_key().verify_digest(digest, view(sa2)));

  // Different seeds give different keys.
  DeterministicRng rng_c(8);
  auto c = PrivateKey::generate(rng_c);
  REQUIRE(c.ok());
  CHECK_FALSE(c->public_key() == a->public_key());
}

TEST_CASE("hedged nonce with a stuck rng", "[crypto]") {
  // d = SHA-256("mpotr test key"); rnd32 = 00 01 … 1f. Known answer from the Python model.
  const PrivateKey key = key_from_hex("c7a071e8de39c5749eec43d6852646d139020cf53c108f4bbba64e3c2d119cab");
  CHECK(to_hex(view(key.public_key().point())) ==
        "04431acd71dbafcd3310fd800cdef55a739560f4747acb02d997924e769f7e44f2"
        "ee31dd1c50d32f009a4a1786fda2886fcc4ae604f49886a44a05e166b2e489b4");
  CountingRng stuck;
  const Hash32 d1 = sha256(as_bytes("mpotr"));
  const Signature s1 = sign_ok(key, d1, stuck);
  CHECK(to_hex(view(s1)) ==
        "950d7a33645e8ffe195c940ce136fb2d87415075dd456ea25850a7a1df847396"
        "9fa450ff4ba1c2cdff56917a3e3272efbae08b31263ee90bc417321ef3f837d9");
  // Same rnd, same digest: same signature. Same rnd, another digest: another r (so another k),
  // which is what keeps a broken rng from leaking d.
  CHECK(sign_ok(key, d1, stuck) == s1);
  const Hash32 d2 = sha256(as_bytes("mpotr!"));
  const Signature s2 = sign_ok(key, d2, stuck);
  CHECK_FALSE(std::equal(s1.begin(), s1.begin() + 32, s2.begin()));
  CHECK(key.public_key().verify_digest(d2, view(s2)));
}

TEST_CASE("only reproducible rngs select the deterministic signer", "[crypto]") {
  CHECK_FALSE(SystemRng{}.reproducible());
  CHECK(DeterministicRng(1).reproducible());
  CHECK_FALSE(ZeroRng{}.reproducible());  // the default of class Rng
}

TEST_CASE("production signatures: randomised, valid, tamper-evident", "[crypto]") {
  SystemRng rng;
  auto key = PrivateKey::generate(rng);
  REQUIRE(key.ok());
  const PublicKey& pub = key->public_key();
  const Hash32 digest = sha256(as_bytes("production"));
  const Signature a = sign_ok(*key, digest, rng);
  const Signature b = sign_ok(*key, digest, rng);
  CHECK(pub.verify_digest(digest, view(a)));
  CHECK(pub.verify_digest(digest, view(b)));
  // A fresh nonce per signature: one digest, two different r (so two different k).
  CHECK_FALSE(std::equal(a.begin(), a.begin() + 32, b.begin()));
  // Verifies under its own public key only, also as re-imported from the point.
  auto reparsed = PublicKey::from_point(view(pub.point()));
  REQUIRE(reparsed.ok());
  CHECK(reparsed->verify_digest(digest, view(a)));
  auto other = PrivateKey::generate(rng);
  REQUIRE(other.ok());
  CHECK_FALSE(other->public_key().verify_digest(digest, view(a)));
  // Any flipped bit of the digest or of r ‖ s is rejected.
  for (std::size_t bit : {0u, 31u, 128u, 255u}) {
    Hash32 d = digest;
    d[bit / 8] ^= static_cast<std::uint8_t>(1U << (bit % 8));
    CHECK_FALSE(pub.verify_digest(d, view(a)));
  }
  for (std::size_t bit : {0u, 100u, 255u, 256u, 400u, 511u}) {
    Signature t = a;
    t[bit / 8] ^= static_cast<std::uint8_t>(1U << (bit % 8));
    INFO("flipped signature bit " << bit);
    CHECK_FALSE(pub.verify_digest(digest, view(t)));
  }
}

TEST_CASE("production signing never takes the deterministic path", "[crypto]") {
  // The deterministic signer would give one fixed signature for a fixed (key, digest, rng
  // stream), and it draws 32 bytes per signature. With a host rng (reproducible() false) neither
  // may happen, however broken the rng: OpenSSL makes the nonce, and the rng is not touched.
  const PrivateKey key = key_from_hex("c7a071e8de39c5749eec43d6852646d139020cf53c108f4bbba64e3c2d119cab");
  const Hash32 digest = sha256(as_bytes("mpotr"));

  ZeroRng zeros;
  const Signature z1 = sign_ok(key, digest, zeros);
  const Signature z2 = sign_ok(key, digest, zeros);
  CHECK(zeros.calls == 0);
  CHECK(z1 != z2);
  CHECK(key.public_key().verify_digest(digest, view(z1)));
  CHECK(key.public_key().verify_digest(digest, view(z2)));

  // The same stream as the known answer of "hedged nonce with a stuck rng", without the opt-in:
  // not that signature, and nothing drawn.
  StuckHostRng stuck;
  const Signature s = sign_ok(key, digest, stuck);
  CHECK(stuck.calls == 0);
  CHECK(to_hex(view(s)) !=
        "950d7a33645e8ffe195c940ce136fb2d87415075dd456ea25850a7a1df847396"
        "9fa450ff4ba1c2cdff56917a3e3272efbae08b31263ee90bc417321ef3f837d9");
  CHECK(key.public_key().verify_digest(digest, view(s)));

  // And the opt-in does select it: one 32-byte draw per signature, the known answer.
  CountingRng reproducible;
  CHECK(to_hex(view(sign_ok(key, digest, reproducible))) ==
        "950d7a33645e8ffe195c940ce136fb2d87415075dd456ea25850a7a1df847396"
        "9fa450ff4ba1c2cdff56917a3e3272efbae08b31263ee90bc417321ef3f837d9");
}

TEST_CASE("signatures are pinned across many keys and digests", "[crypto]") {
  // sign_digest computes k⁻¹ and the affine x of k·G through blinded inversions; whatever the
  // route, (r, s) is fixed by d, the digest and the rng stream. The expected hash is of the
  // signatures made by the previous implementation (Fermat inverse of k, OpenSSL's own affine
  // conversion), so this pins bit-identical output on top of the two known answers above.
  // 18 keys (seeded, and the extremes 1 and n−1) × 16 digests (hashes, all-zero, all-ones,
  // which is ≥ n, and n itself), signed in turn from one seeded rng stream.
  std::vector<PrivateKey> keys;
  for (std::uint64_t seed = 0; seed < 16; ++seed) {
    DeterministicRng key_rng(1000 + seed);
    auto key = PrivateKey::generate(key_rng);
    REQUIRE(key.ok());
    keys.push_back(*key);
  }
  keys.push_back(key_from_hex("0000000000000000000000000000000000000000000000000000000000000001"));
  keys.push_back(key_from_hex(kOrderMinus1Hex));
  std::vector<Hash32> digests;
  for (int i = 0; i < 13; ++i) {
    digests.push_back(sha256(as_bytes("mpotr sign " + std::to_string(i))));
  }
  digests.push_back(Hash32{});
  Hash32 ones{};
  ones.fill(0xff);
  digests.push_back(ones);
  Hash32 order{};
  const Bytes order_bytes = unhex(kOrderHex);
  std::copy(order_bytes.begin(), order_bytes.end(), order.begin());
  digests.push_back(order);

  Sha256 all;
  DeterministicRng rng(2024);
  for (const PrivateKey& key : keys) {
    for (const Hash32& digest : digests) {
      const Signature sig = sign_ok(key, digest, rng);
      CHECK(key.public_key().verify_digest(digest, view(sig)));
      all.update(view(sig));
    }
  }
  CHECK(to_hex(view(all.finish())) == "e26774856cea14ea723dc2fd71e8f107de261d60eb1755f9821ced872811dbc9");
}

TEST_CASE("from_scalar range and length checks", "[crypto]") {
  for (std::string_view bad : {std::string_view("0000000000000000000000000000000000000000000000000000000000000000"),
                               kOrderHex, kOrderPlus1Hex,
                               std::string_view("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")}) {
    INFO("scalar " << bad);
    const Bytes d = unhex(bad);
    auto key = PrivateKey::from_scalar(view(d));
    REQUIRE_FALSE(key.ok());
    CHECK(key.error().code == ErrorCode::DecodeBadValue);
  }
  for (std::size_t len : {0u, 31u, 33u, 64u}) {
    INFO("length " << len);
    const Bytes d(len, 0x01);
    auto key = PrivateKey::from_scalar(view(d));
    REQUIRE_FALSE(key.ok());
    CHECK(key.error().code == ErrorCode::DecodeBadValue);
  }

  // 1 and n−1 are the extremes of the valid range: G and −G.
  const PrivateKey one = key_from_hex("0000000000000000000000000000000000000000000000000000000000000001");
  CHECK(to_hex(view(one.public_key().point())) == kGeneratorHex);
  const PrivateKey minus_one = key_from_hex(kOrderMinus1Hex);
  CHECK(to_hex(view(minus_one.public_key().point())) ==
        "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
        "b01cbd1c01e58065711814b583f061e9d431cca994cea1313449bf97c840ae0a");
  // scalar() round-trips.
  CHECK(to_hex(minus_one.scalar().view()) == kOrderMinus1Hex);
  SystemRng rng;
  const Hash32 digest = sha256(as_bytes("edge"));
  CHECK(minus_one.public_key().verify_digest(digest, view(sign_ok(minus_one, digest, rng))));
}

TEST_CASE("from_point accepts only valid uncompressed points", "[crypto]") {
  const Bytes g = unhex(kGeneratorHex);
  auto ok = PublicKey::from_point(view(g));
  REQUIRE(ok.ok());
  CHECK(to_hex(view(ok->point())) == kGeneratorHex);

  auto expect_bad = [](const Bytes& encoded) {
    auto pk = PublicKey::from_point(view(encoded));
    REQUIRE_FALSE(pk.ok());
    CHECK(pk.error().code == ErrorCode::DecodeBadValue);
  };
  // Compressed forms of G (0x02: even y; G's y is odd, so 0x03 is the right one) and both
  // prefixes on a 65-byte buffer.
  expect_bad(unhex("026b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"));
  expect_bad(unhex("036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"));
  Bytes wrong_prefix = g;
  wrong_prefix[0] = 0x02;
  expect_bad(wrong_prefix);
  wrong_prefix[0] = 0x06;  // "hybrid" encoding
  expect_bad(wrong_prefix);
  // Infinity.
  expect_bad(Bytes{0x00});
  expect_bad(Bytes(65, 0x00));
  Bytes inf_04(65, 0x00);
  inf_04[0] = 0x04;
  expect_bad(inf_04);
  // Off the curve: y + 1.
  Bytes off = g;
  off[64] ^= 0x01;
  expect_bad(off);
  // x = p (not reduced).
  Bytes big_x = unhex(std::string("04") + std::string(kFieldPrimeHex) + std::string(kFieldPrimeHex));
  expect_bad(big_x);
  // Wrong lengths.
  expect_bad(Bytes{});
  expect_bad(Bytes(g.begin(), g.end() - 1));
  Bytes longer = g;
  longer.push_back(0);
  expect_bad(longer);
}

TEST_CASE("ECDH is symmetric and key-dependent", "[crypto]") {
  SystemRng rng;
  auto a = PrivateKey::generate(rng);
  auto b = PrivateKey::generate(rng);
  auto c = PrivateKey::generate(rng);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  auto ab = a->ecdh(b->public_key());
  auto ba = b->ecdh(a->public_key());
  auto ac = a->ecdh(c->public_key());
  REQUIRE(ab.ok());
  REQUIRE(ba.ok());
  REQUIRE(ac.ok());
  CHECK(ab->size() == kSharedSecretLen);
  CHECK(*ab == *ba);
  CHECK_FALSE(*ab == *ac);

  // 1·Q is Q's x-coordinate.
  const PrivateKey one = key_from_hex("0000000000000000000000000000000000000000000000000000000000000001");
  auto x = one.ecdh(b->public_key());
  REQUIRE(x.ok());
  CHECK(ct_equal(x->view(), ByteView(b->public_key().point()).subspan(1, 32)));

  // Misuse is an error, not a crash.
  auto no_peer = a->ecdh(PublicKey{});
  REQUIRE_FALSE(no_peer.ok());
  CHECK(no_peer.error().code == ErrorCode::InvalidArgument);
  auto no_key = PrivateKey{}.ecdh(b->public_key());
  REQUIRE_FALSE(no_key.ok());
  CHECK(no_key.error().code == ErrorCode::InvalidState);
  auto no_sig = PrivateKey{}.sign_digest(Hash32{}, rng);
  REQUIRE_FALSE(no_sig.ok());
  CHECK(no_sig.error().code == ErrorCode::InvalidState);
  CHECK(PrivateKey{}.scalar().empty());
}

TEST_CASE("key objects are safe to share across threads", "[crypto]") {
  DeterministicRng seed_rng(99);
  auto key = PrivateKey::generate(seed_rng);
  REQUIRE(key.ok());
  auto peer = PrivateKey::generate(seed_rng);
  REQUIRE(peer.ok());
  auto expected_shared = key->ecdh(peer->public_key());
  REQUIRE(expected_shared.ok());
  const PrivateKey shared_key = *key;
  const PublicKey shared_pub = key->public_key();
  const PublicKey peer_pub = peer->public_key();
  const SecretBytes expected = *expected_shared;

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      DeterministicRng rng(static_cast<std::uint64_t>(t));
      for (int i = 0; i < 25; ++i) {
        const Hash32 digest = sha256(as_bytes(std::to_string(t * 1000 + i)));
        auto sig = shared_key.sign_digest(digest, rng);
        auto secret = shared_key.ecdh(peer_pub);
        if (!sig.ok() || !shared_pub.verify_digest(digest, view(*sig)) || !secret.ok() || !(*secret == expected)) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  CHECK(failures.load() == 0);
}

TEST_CASE("production signing, verification and ECDH from many threads on one key", "[crypto]") {
  // One key object, its cached OpenSSL contexts contended: a thread that finds a cached context
  // lent out works on a fresh one, and every result stays right.
  SystemRng seed_rng;
  auto key = PrivateKey::generate(seed_rng);
  REQUIRE(key.ok());
  auto peer = PrivateKey::generate(seed_rng);
  REQUIRE(peer.ok());
  auto expected_shared = peer->ecdh(key->public_key());
  REQUIRE(expected_shared.ok());
  const SecretBytes expected = *expected_shared;
  const PrivateKey shared_key = *key;
  const PublicKey shared_pub = key->public_key();
  const PublicKey peer_pub = peer->public_key();

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      SystemRng rng;
      for (int i = 0; i < 25; ++i) {
        const Hash32 digest = sha256(as_bytes(std::to_string(t * 1000 + i)));
        auto sig = shared_key.sign_digest(digest, rng);
        auto secret = shared_key.ecdh(peer_pub);
        Hash32 other = digest;
        other[0] ^= 1;
        if (!sig.ok() || !shared_pub.verify_digest(digest, view(*sig)) ||
            shared_pub.verify_digest(other, view(*sig)) || !secret.ok() || !(*secret == expected)) {
          failures.fetch_add(1);
        }
        // Key imports copy process-wide OpenSSL objects: do them concurrently too.
        auto fresh = PrivateKey::generate(rng);
        auto reimported = PublicKey::from_point(view(shared_pub.point()));
        if (!fresh.ok() || !reimported.ok() || !reimported->verify_digest(digest, view(*sig)) ||
            !fresh->ecdh(peer_pub).ok()) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  CHECK(failures.load() == 0);
}
