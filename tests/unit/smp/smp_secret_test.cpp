// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "mpotr/crypto/crypto.h"
#include "plugin/smp/smp_secret.h"

using namespace mpotr;
using namespace mpotr::plugin;

namespace {

Fingerprint fp_range(std::uint8_t first) {
  Fingerprint fp;
  for (std::size_t i = 0; i < fp.bytes.size(); ++i) {
    fp.bytes[i] = static_cast<std::uint8_t>(first + i);
  }
  return fp;
}

// The formula written out as one literal concatenation, hashed in one call: independent of the
// incremental hashing and of the sorting in the implementation (the caller passes the order).
Bytes expected(const std::string& j1, const Fingerprint& f1, const std::string& j2, const Fingerprint& f2,
               const std::string& normalized_secret) {
  auto u32be = [](Bytes& out, std::size_t n) {
    out.push_back(static_cast<std::uint8_t>(n >> 24));
    out.push_back(static_cast<std::uint8_t>(n >> 16));
    out.push_back(static_cast<std::uint8_t>(n >> 8));
    out.push_back(static_cast<std::uint8_t>(n));
  };
  Bytes buf;
  append(buf, as_bytes("mpOTR-LTK-SMP/v1"));
  u32be(buf, j1.size());
  append(buf, as_bytes(j1));
  append(buf, view(f1.bytes));
  u32be(buf, j2.size());
  append(buf, as_bytes(j2));
  append(buf, view(f2.bytes));
  append(buf, view(crypto::sha256(as_bytes(normalized_secret))));
  const Hash32 h = crypto::sha256(view(buf));
  return Bytes(h.begin(), h.end());
}

Bytes bound(std::string_view me, const Fingerprint& my_fp, std::string_view peer, const Fingerprint& peer_fp,
            std::string_view secret) {
  auto r = bound_smp_secret(me, my_fp, peer, peer_fp, secret);
  REQUIRE(r.ok());
  REQUIRE(r->size() == kBoundSmpSecretLen);
  return r->expose_copy();
}

}  // namespace

TEST_CASE("bound SMP secret: known answer", "[smp][secret]") {
  const Fingerprint fa = fp_range(0);
  const Fingerprint fb = fp_range(32);
  // Python: hashlib.sha256(b"mpOTR-LTK-SMP/v1" + pack(">I",17) + b"alice@example.org" + bytes(range(32))
  //   + pack(">I",15) + b"bob@example.net" + bytes(range(32,64))
  //   + sha256(b"correct horse battery staple").digest()).hexdigest()
  const Bytes s = bound("alice@example.org", fa, "bob@example.net", fb, " \t correct horse battery staple \r\n");
  CHECK(to_hex(view(s)) == "b119973b3ca682a193920dd0497279182a398743615132cfd2973d53cf1aabbf");
  CHECK(s == expected("alice@example.org", fa, "bob@example.net", fb, "correct horse battery staple"));
}

TEST_CASE("bound SMP secret does not depend on who computes it", "[smp][secret]") {
  const Fingerprint fa = fp_range(1);
  const Fingerprint fb = fp_range(100);
  CHECK(bound("alice@x", fa, "bob@x", fb, "s3cret") == bound("bob@x", fb, "alice@x", fa, "s3cret"));
  // Sorted by unsigned bytes: 'Z' (0x5a) < 'a' (0x61) < 0xc3 (UTF-8 lead byte).
  CHECK(bound("alice@x", fa, "Zed@x", fb, "k") == expected("Zed@x", fb, "alice@x", fa, "k"));
  CHECK(bound("\xc3\xa9mile@x", fa, "bob@x", fb, "k") == expected("bob@x", fb, "\xc3\xa9mile@x", fa, "k"));
  // A prefix sorts first.
  CHECK(bound("bob@xy", fa, "bob@x", fb, "k") == expected("bob@x", fb, "bob@xy", fa, "k"));
}

TEST_CASE("bound SMP secret binds both fingerprints, both JIDs and the secret", "[smp][secret]") {
  const Fingerprint fa = fp_range(1);
  const Fingerprint fb = fp_range(100);
  const Bytes base = bound("alice@x", fa, "bob@x", fb, "s3cret");
  CHECK(bound("alice@x", fa, "bob@x", fp_range(101), "s3cret") != base);  // other key for bob
  CHECK(bound("alice@x", fp_range(2), "bob@x", fb, "s3cret") != base);    // other key for alice
  CHECK(bound("alice@x", fb, "bob@x", fa, "s3cret") != base);             // keys swapped
  CHECK(bound("alice@x", fa, "carol@x", fb, "s3cret") != base);
  CHECK(bound("alice@x", fa, "bob@x", fb, "s3creT") != base);
  // Length prefixes: moving a byte between JIDs changes the secret.
  CHECK(bound("a@xb", fa, "c@x", fb, "k") != bound("a@x", fa, "bc@x", fb, "k"));
}

TEST_CASE("SMP secret normalization trims ASCII whitespace only", "[smp][secret]") {
  CHECK(normalize_smp_secret(" \t\n\v\f\rword \t\n\v\f\r") == "word");
  CHECK(normalize_smp_secret("two  words") == "two  words");
  CHECK(normalize_smp_secret("\xc2\xa0nbsp\xc2\xa0") == "\xc2\xa0nbsp\xc2\xa0");  // U+00A0 kept
  const Fingerprint fa = fp_range(1);
  const Fingerprint fb = fp_range(100);
  CHECK(bound("a@x", fa, "b@x", fb, "  pass phrase\n") == bound("a@x", fa, "b@x", fb, "pass phrase"));
  CHECK(bound("a@x", fa, "b@x", fb, "pass  phrase") != bound("a@x", fa, "b@x", fb, "pass phrase"));
  // No Unicode normalization: precomposed é and e + combining acute differ.
  CHECK(bound("a@x", fa, "b@x", fb, "caf\xc3\xa9") != bound("a@x", fa, "b@x", fb, "cafe\xcc\x81"));
}

TEST_CASE("bound SMP secret rejects invalid input", "[smp][secret]") {
  const Fingerprint fa = fp_range(1);
  const Fingerprint fb = fp_range(100);
  auto code = [&](std::string_view me, std::string_view peer, std::string_view secret) {
    auto r = bound_smp_secret(me, fa, peer, fb, secret);
    REQUIRE_FALSE(r.ok());
    return r.error().code;
  };
  CHECK(code("a@x", "b@x", "") == ErrorCode::InvalidArgument);
  CHECK(code("a@x", "b@x", " \t\r\n ") == ErrorCode::InvalidArgument);
  CHECK(code("a@x", "b@x", std::string(kMaxSmpSecretLen + 1, 'k')) == ErrorCode::InvalidArgument);
  CHECK(code("a@x", "a@x", "k") == ErrorCode::InvalidArgument);
  CHECK(code("", "b@x", "k") == ErrorCode::InvalidArgument);
  CHECK(code("a@x", "", "k") == ErrorCode::InvalidArgument);
  CHECK(code(std::string(kMaxJidLen + 1, 'j'), "b@x", "k") == ErrorCode::InvalidArgument);
  // The limit applies after trimming.
  CHECK(bound_smp_secret("a@x", fa, "b@x", fb, "  " + std::string(kMaxSmpSecretLen, 'k') + "  ").ok());
  CHECK(bound_smp_secret(std::string(kMaxJidLen, 'j'), fa, "b@x", fb, "k").ok());
}
