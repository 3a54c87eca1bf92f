// SPDX-License-Identifier: MIT
// Base types of the crypto module: byte helpers, hex, randomness, error names.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "mpotr/bytes.h"
#include "mpotr/result.h"
#include "mpotr/rng.h"

using namespace mpotr;

namespace {

Bytes unhex(std::string_view s) {
  Bytes out;
  REQUIRE(from_hex(s, out));
  return out;
}

}  // namespace

TEST_CASE("ct_equal compares contents and lengths", "[crypto]") {
  const Bytes a{1, 2, 3, 4};
  const Bytes b{1, 2, 3, 4};
  const Bytes last_differs{1, 2, 3, 5};
  const Bytes first_differs{0, 2, 3, 4};
  const Bytes shorter{1, 2, 3};
  CHECK(ct_equal(view(a), view(b)));
  CHECK_FALSE(ct_equal(view(a), view(last_differs)));
  CHECK_FALSE(ct_equal(view(a), view(first_differs)));
  CHECK_FALSE(ct_equal(view(a), view(shorter)));
  CHECK_FALSE(ct_equal(view(shorter), view(a)));
  CHECK(ct_equal(ByteView{}, ByteView{}));
  CHECK_FALSE(ct_equal(ByteView{}, view(a)));
}

TEST_CASE("secure_zero clears memory", "[crypto]") {
  std::array<std::uint8_t, 16> buf{};
  buf.fill(0xab);
  secure_zero(buf.data(), buf.size());
  for (auto b : buf) {
    CHECK(b == 0);
  }
  secure_zero(nullptr, 0);  // must be a harmless no-op
}

TEST_CASE("to_hex is lower-case and round-trips through from_hex", "[crypto]") {
  CHECK(to_hex(ByteView{}).empty());
  const Bytes data{0x00, 0x01, 0xab, 0xcd, 0xef, 0xff};
  CHECK(to_hex(view(data)) == "0001abcdefff");
  Bytes back;
  REQUIRE(from_hex(to_hex(view(data)), back));
  CHECK(back == data);
  // Upper case is still hex.
  REQUIRE(from_hex("ABCDEF", back));
  CHECK(back == Bytes{0xab, 0xcd, 0xef});
  REQUIRE(from_hex("", back));
  CHECK(back.empty());

  Bytes all(256);
  for (std::size_t i = 0; i < all.size(); ++i) {
    all[i] = static_cast<std::uint8_t>(i);
  }
  REQUIRE(from_hex(to_hex(view(all)), back));
  CHECK(back == all);
}

TEST_CASE("from_hex rejects malformed input and leaves the output alone", "[crypto]") {
  for (const char* bad : {"0", "abc", "zz", "0x12", " 12", "12 ", "1g", "12:34", "ab\n", "-1"}) {
    INFO("input: '" << bad << "'");
    Bytes out{9, 9};
    CHECK_FALSE(from_hex(bad, out));
    CHECK(out == Bytes{9, 9});
  }
  // An embedded NUL is not a hex digit either.
  Bytes out;
  CHECK_FALSE(from_hex(std::string_view("ab\0d", 4), out));
}

TEST_CASE("SecretBytes basics", "[crypto]") {
  SecretBytes s(ByteView(unhex("00112233")));
  CHECK(s.size() == 4);
  CHECK(s.expose_copy() == unhex("00112233"));
  SecretBytes copy = s;
  CHECK(copy == s);
  SecretBytes other(ByteView(unhex("00112234")));
  CHECK_FALSE(other == s);
  s.clear();
  CHECK(s.empty());
  CHECK(s.size() == 0);
  CHECK(copy.size() == 4);  // copies are independent
  SecretBytes moved_to;
  moved_to = std::move(copy);
  CHECK(moved_to.expose_copy() == unhex("00112233"));
}

TEST_CASE("to_string(ErrorCode) names every code", "[crypto]") {
  const ErrorCode all[] = {
      ErrorCode::Crypto,           ErrorCode::Storage,           ErrorCode::InvalidArgument,
      ErrorCode::InvalidState,     ErrorCode::NotReady,          ErrorCode::DecodeTruncated,
      ErrorCode::DecodeTrailingBytes, ErrorCode::DecodeBadVersion, ErrorCode::DecodeUnknownType,
      ErrorCode::DecodeOversize,   ErrorCode::DecodeBadValue,    ErrorCode::UnknownSession,
      ErrorCode::UnexpectedMessage, ErrorCode::NickMismatch,     ErrorCode::NotAMember,
      ErrorCode::RosterMismatch,   ErrorCode::BadSignature,      ErrorCode::BadMac,
      ErrorCode::SessionIdMismatch, ErrorCode::TranscriptMismatch, ErrorCode::GroupKeyMismatch,
      ErrorCode::Duplicate,        ErrorCode::Equivocation,      ErrorCode::KeyRevoked,
      ErrorCode::BadKeyReveal,     ErrorCode::SplitView,         ErrorCode::LimitExceeded,
      ErrorCode::IdentityBlocked,  ErrorCode::IdentityChanged,   ErrorCode::Replay,
      ErrorCode::Internal,
  };
  std::set<std::string_view> names;
  for (ErrorCode c : all) {
    INFO("code " << static_cast<int>(c));
    const std::string_view name = to_string(c);
    CHECK(name != "unknown");
    CHECK_FALSE(name.empty());
    names.insert(name);
  }
  CHECK(names.size() == std::size(all));  // distinct
  CHECK(to_string(ErrorCode::DecodeTruncated) == "decode_truncated");
  CHECK(to_string(static_cast<ErrorCode>(999)) == "unknown");
}

TEST_CASE("SystemRng produces fresh bytes", "[crypto]") {
  SystemRng rng;
  const auto a = rng.array<32>();
  const auto b = rng.array<32>();
  CHECK(a != b);
  CHECK(rng.secret(17).size() == 17);
  rng.fill(nullptr, 0);  // zero-length fill is a no-op
}

TEST_CASE("DeterministicRng is reproducible and seed-dependent", "[crypto]") {
  // Known answers from an independent model of the documented construction (Python:
  // key = SHA-256("mpotr-v1 test rng" ‖ seed), per call ChaCha20-IETF keyed by
  // SHA-256(key ‖ be64(counter)) with libsodium's nonce "LibsodiumDRG").
  DeterministicRng r42(42);
  CHECK(to_hex(view(r42.array<16>())) == "2145df55176888f31b571afd9a831285");
  CHECK(to_hex(view(r42.array<16>())) == "0c437d6a2a354c0aab588d7ab7eaf574");
  DeterministicRng abc(as_bytes("abc"));
  CHECK(to_hex(view(abc.array<32>())) == "b751b2d9284811688b8a8015f7c6217807e17a377e6fb4746ed719071140fb00");
  // Every call, even an empty one, advances the counter.
  DeterministicRng zero(0);
  zero.fill(nullptr, 0);
  CHECK(to_hex(view(zero.array<8>())) == "acb4989db1abe52f");

  // Same seed, same stream; different seeds, different streams.
  DeterministicRng a(7);
  DeterministicRng b(7);
  DeterministicRng c(8);
  const auto a1 = a.array<64>();
  CHECK(a1 == b.array<64>());
  CHECK(a1 != c.array<64>());
  CHECK(a.array<64>() != a1);  // successive calls differ

  // The u64 seed is its 8-byte big-endian encoding.
  DeterministicRng by_int(0x0102030405060708ULL);
  DeterministicRng by_bytes(ByteView(unhex("0102030405060708")));
  CHECK(by_int.array<32>() == by_bytes.array<32>());
}

TEST_CASE("base64 follows RFC 4648 and round-trips", "[crypto]") {
  // RFC 4648 §10 test vectors.
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    INFO("input: '" << plain << "'");
    CHECK(to_base64(as_bytes(plain)) == encoded);
    Bytes back{1};
    REQUIRE(from_base64(encoded, back));
    CHECK(std::string(back.begin(), back.end()) == plain);
  }
  Bytes all(256);
  for (std::size_t i = 0; i < all.size(); ++i) {
    all[i] = static_cast<std::uint8_t>(i);
  }
  Bytes back;
  REQUIRE(from_base64(to_base64(view(all)), back));
  CHECK(back == all);
}

TEST_CASE("from_base64 accepts only the canonical encoding and leaves the output alone", "[crypto]") {
  for (const char* bad : {"Zg", "Zg=", "Zh==", "Zm9=", "Z===", "Zm9v\n", " Zm9v", "Zm9v Yg==", "Zm-v", "Zm_v",
                          "Zg==Zg==", "====", "Zm9vYg", "Zg==="}) {
    INFO("input: '" << bad << "'");
    Bytes out{9, 9};
    CHECK_FALSE(from_base64(bad, out));
    CHECK(out == Bytes{9, 9});
  }
}
