// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <cctype>
#include <initializer_list>
#include <string>
#include <vector>

#include "mpotr/trust.h"

using namespace mpotr;

namespace {

Fingerprint fp_of(std::uint8_t fill) {
  Fingerprint fp;
  fp.bytes.fill(fill);
  return fp;
}

const Fingerprint kFpA = fp_of(0xAA);
const Fingerprint kFpB = fp_of(0xBB);
const Fingerprint kFpC = fp_of(0xCC);
constexpr std::string_view kBob = "bob@example.org";
constexpr std::string_view kCarol = "carol@example.net";

std::string hex_of(const Fingerprint& fp) { return to_hex(view(fp.bytes)); }

// Asserts the call failed with `code` and left the store exactly as it was.
template <class F>
void check_fails_unchanged(TrustStore& store, ErrorCode code, F&& call) {
  const std::string before = store.to_json();
  const Result<void> r = call(store);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == code);
  CHECK_FALSE(r.error().detail.empty());
  CHECK(store.to_json() == before);
}

void check_storage_error(const std::string& json, const std::string& detail) {
  INFO("document: " << json.substr(0, 300));
  auto r = TrustStore::from_json(json);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::Storage);
  CHECK_THAT(r.error().detail, Catch::Contains(detail));
}

std::string doc_with_peer(const std::string& jid_json, const std::string& record_json) {
  return R"({"version":1,"peers":{)" + jid_json + ":" + record_json + "}}";
}

// A document with one TOFU peer (bob, key A) and the given "blocked_fingerprints" value.
std::string doc_with_blocked(const std::string& blocked_json) {
  return R"({"version":1,"peers":{"bob@example.org":{"fingerprint":")" + hex_of(kFpA) +
         R"(","level":"tofu"}},"blocked_fingerprints":)" + blocked_json + "}";
}

std::string quoted_hex(const Fingerprint& fp) { return "\"" + hex_of(fp) + "\""; }

std::vector<std::string> jids(std::initializer_list<std::string_view> list) {
  return std::vector<std::string>(list.begin(), list.end());
}

}  // namespace

TEST_CASE("trust levels have stable names", "[trust]") {
  CHECK(to_string(TrustLevel::Unknown) == "unknown");
  CHECK(to_string(TrustLevel::Tofu) == "tofu");
  CHECK(to_string(TrustLevel::Verified) == "verified");
  CHECK(to_string(TrustLevel::Blocked) == "blocked");
}

TEST_CASE("unknown JID is a new identity", "[trust]") {
  const TrustStore store;
  CHECK(store.check(kBob, kFpA) == TrustDecision::NewIdentity);
  CHECK(store.level(kBob) == TrustLevel::Unknown);
  CHECK(store.find(kBob) == nullptr);
  CHECK(store.records().empty());
}

TEST_CASE("unknown -> tofu -> verified, and a changed key", "[trust]") {
  TrustStore store;
  REQUIRE(store.record_first_use(kBob, kFpA).ok());
  CHECK(store.level(kBob) == TrustLevel::Tofu);
  CHECK(store.check(kBob, kFpA) == TrustDecision::Trusted);
  CHECK(store.check(kBob, kFpB) == TrustDecision::Changed);
  CHECK(store.check(kCarol, kFpA) == TrustDecision::NewIdentity);

  // A second first use is an invalid transition, whatever the key.
  check_fails_unchanged(store, ErrorCode::InvalidState, [](TrustStore& s) { return s.record_first_use(kBob, kFpA); });
  check_fails_unchanged(store, ErrorCode::InvalidState, [](TrustStore& s) { return s.record_first_use(kBob, kFpB); });

  REQUIRE(store.verify(kBob, kFpA).ok());
  CHECK(store.level(kBob) == TrustLevel::Verified);
  CHECK(store.check(kBob, kFpA) == TrustDecision::Trusted);
  CHECK(store.check(kBob, kFpB) == TrustDecision::Changed);

  // The user checked the new key: verify replaces the fingerprint.
  REQUIRE(store.verify(kBob, kFpB).ok());
  REQUIRE(store.find(kBob) != nullptr);
  CHECK(store.find(kBob)->fingerprint == kFpB);
  CHECK(store.check(kBob, kFpB) == TrustDecision::Trusted);
  CHECK(store.check(kBob, kFpA) == TrustDecision::Changed);
}

TEST_CASE("verify works on an unknown JID", "[trust]") {
  TrustStore store;
  REQUIRE(store.verify(kCarol, kFpA).ok());
  CHECK(store.level(kCarol) == TrustLevel::Verified);
  CHECK(store.check(kCarol, kFpA) == TrustDecision::Trusted);
}

TEST_CASE("untrust forgets a JID, untrusting an unknown JID is an error", "[trust]") {
  TrustStore store;
  REQUIRE(store.record_first_use(kBob, kFpA).ok());
  REQUIRE(store.untrust(kBob).ok());
  CHECK(store.level(kBob) == TrustLevel::Unknown);
  CHECK(store.check(kBob, kFpB) == TrustDecision::NewIdentity);
  check_fails_unchanged(store, ErrorCode::InvalidArgument, [](TrustStore& s) { return s.untrust(kBob); });
  REQUIRE(store.record_first_use(kCarol, kFpB).ok());
  check_fails_unchanged(store, ErrorCode::InvalidArgument, [](TrustStore& s) { return s.untrust(kBob); });
  // After forgetting, first use is allowed again.
  REQUIRE(store.record_first_use(kBob, kFpB).ok());
  CHECK(store.check(kBob, kFpB) == TrustDecision::Trusted);
}

TEST_CASE("block keeps the fingerprint and overrides every key", "[trust]") {
  TrustStore store;
  REQUIRE(store.record_first_use(kBob, kFpA).ok());
  REQUIRE(store.block(kBob).ok());
  CHECK(store.level(kBob) == TrustLevel::Blocked);
  CHECK(store.find(kBob)->fingerprint == kFpA);
  CHECK(store.check(kBob, kFpA) == TrustDecision::Blocked);
  CHECK(store.check(kBob, kFpB) == TrustDecision::Blocked);
  // Blocking twice is fine; a first use on a blocked JID is not.
  REQUIRE(store.block(kBob).ok());
  check_fails_unchanged(store, ErrorCode::InvalidState, [](TrustStore& s) { return s.record_first_use(kBob, kFpA); });

  // Blocking a JID never seen records the zero fingerprint.
  REQUIRE(store.block(kCarol).ok());
  CHECK(store.level(kCarol) == TrustLevel::Blocked);
  CHECK(store.find(kCarol)->fingerprint == Fingerprint{});
  CHECK(store.check(kCarol, kFpA) == TrustDecision::Blocked);

  // Verifying unblocks (the user checked the key); untrust forgets the block.
  REQUIRE(store.verify(kBob, kFpB).ok());
  CHECK(store.check(kBob, kFpB) == TrustDecision::Trusted);
  REQUIRE(store.untrust(kCarol).ok());
  CHECK(store.check(kCarol, kFpA) == TrustDecision::NewIdentity);
}

TEST_CASE("the zero fingerprint is refused as a key's fingerprint", "[trust]") {
  TrustStore store;
  REQUIRE(store.record_first_use(kCarol, kFpA).ok());
  check_fails_unchanged(store, ErrorCode::InvalidArgument,
                        [](TrustStore& s) { return s.record_first_use(kBob, Fingerprint{}); });
  check_fails_unchanged(store, ErrorCode::InvalidArgument, [](TrustStore& s) { return s.verify(kBob, Fingerprint{}); });
  check_fails_unchanged(store, ErrorCode::InvalidArgument,
                        [](TrustStore& s) { return s.verify(kCarol, Fingerprint{}); });
}

TEST_CASE("bad JIDs are rejected by every mutator and leave the store unchanged", "[trust]") {
  TrustStore store;
  REQUIRE(store.record_first_use(kBob, kFpA).ok());
  struct Case {
    std::string jid;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {"", "empty"},
      {" ", "whitespace"},
      {"bob @example.org", "whitespace"},
      {"bob@example.org ", "whitespace"},
      {"bob\t@example.org", "whitespace"},
      {"bob\n@example.org", "whitespace"},
      {"bob\xC2\xA0@example.org", "whitespace"},     // U+00A0 no-break space
      {"bob\xE3\x80\x80@example.org", "whitespace"},  // U+3000 ideographic space
      {std::string("bob\0x", 5), "control character"},
      {"bob\x01@example.org", "control character"},
      {"bob\x7F@example.org", "control character"},
      {"bob\xC2\x9B@example.org", "control character"},  // U+009B CSI
      {"bob\xFF@example.org", "UTF-8"},
      {"bob\xC0\xA0@example.org", "UTF-8"},          // overlong
      {"bob\xED\xA0\x80@example.org", "UTF-8"},      // surrogate
      {"bob\xE2\x82", "UTF-8"},                      // truncated
      {std::string(1024, 'a'), "1024 bytes"},
  };
  for (const auto& c : cases) {
    INFO("JID " << c.jid << " expecting " << c.detail);
    for (int op = 0; op < 4; ++op) {
      const std::string before = store.to_json();
      Result<void> r = op == 0   ? store.record_first_use(c.jid, kFpA)
                       : op == 1 ? store.verify(c.jid, kFpA)
                       : op == 2 ? store.untrust(c.jid)
                                 : store.block(c.jid);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code == ErrorCode::InvalidArgument);
      CHECK_THAT(r.error().detail, Catch::Contains("invalid JID") && Catch::Contains(c.detail));
      CHECK(store.to_json() == before);
    }
  }
}

TEST_CASE("JIDs up to 1023 bytes and non-ASCII JIDs are accepted", "[trust]") {
  TrustStore store;
  const std::string longest = std::string(1000, 'a') + "@" + std::string(22, 'b');
  REQUIRE(longest.size() == 1023);
  REQUIRE(store.record_first_use(longest, kFpA).ok());
  REQUIRE(store.record_first_use("jürgen@münchen.example", kFpB).ok());
  REQUIRE(store.record_first_use("room@muc.example/nick\"with\\quotes", kFpB).ok());
  auto back = TrustStore::from_json(store.to_json());
  REQUIRE(back.ok());
  CHECK(back->to_json() == store.to_json());
  CHECK(back->check(longest, kFpA) == TrustDecision::Trusted);
}

TEST_CASE("trust JSON round trip", "[trust]") {
  TrustStore store;
  REQUIRE(store.record_first_use("alice@example.org", kFpA).ok());
  REQUIRE(store.verify(kBob, kFpB).ok());
  REQUIRE(store.record_first_use(kCarol, kFpB).ok());
  REQUIRE(store.block(kCarol).ok());
  REQUIRE(store.block("mallory@evil.example").ok());

  const std::string json = store.to_json();
  CHECK_THAT(json, Catch::Contains("\"version\": 1"));
  CHECK_THAT(json, Catch::Contains("\"fingerprint\": \"" + hex_of(kFpA) + "\""));
  CHECK_THAT(json, Catch::Contains("\"level\": \"tofu\""));
  CHECK_THAT(json, Catch::Contains("\"level\": \"verified\""));
  CHECK_THAT(json, Catch::Contains("\"level\": \"blocked\""));
  CHECK_THAT(json, Catch::Contains(std::string(64, '0')));  // mallory, blocked without a key

  auto back = TrustStore::from_json(json);
  REQUIRE(back.ok());
  CHECK(back->to_json() == json);
  REQUIRE(back->records().size() == 4);
  for (const auto& [jid, rec] : store.records()) {
    INFO(jid);
    const TrustRecord* other = back->find(jid);
    REQUIRE(other != nullptr);
    CHECK(other->level == rec.level);
    CHECK(other->fingerprint == rec.fingerprint);
  }

  auto empty = TrustStore::from_json(TrustStore{}.to_json());
  REQUIRE(empty.ok());
  CHECK(empty->records().empty());

  // Compact, hand-written and upper-case hex are all fine.
  auto compact = TrustStore::from_json(
      doc_with_peer("\"bob@example.org\"", R"({"level":"tofu","fingerprint":")" + std::string(64, 'A') + "\"}"));
  REQUIRE(compact.ok());
  CHECK(compact->check(kBob, kFpA) == TrustDecision::Trusted);
}

TEST_CASE("from_json rejects malformed documents with a precise Storage error", "[trust]") {
  const std::string fp = "\"" + hex_of(kFpA) + "\"";
  const std::string good_record = R"({"fingerprint":)" + fp + R"(,"level":"tofu"})";
  const std::string bob = "\"bob@example.org\"";
  REQUIRE(TrustStore::from_json(doc_with_peer(bob, good_record)).ok());

  check_storage_error("", "not valid JSON");
  check_storage_error("not json", "not valid JSON");
  check_storage_error(R"({"version":1,"peers":{})", "not valid JSON");
  check_storage_error(R"({"version":1,"peers":{}} trailing)", "not valid JSON");
  check_storage_error("{\"version\":1,\"peers\":{\"bob\xFF\":{}}}", "not valid JSON");
  check_storage_error("[]", "top level must be a JSON object");
  check_storage_error("1", "top level must be a JSON object");
  check_storage_error(R"({"peers":{}})", "missing \"version\"");
  check_storage_error(R"({"version":"1","peers":{}})", "\"version\" must be an integer");
  check_storage_error(R"({"version":1.0,"peers":{}})", "\"version\" must be an integer");
  check_storage_error(R"({"version":2,"peers":{}})", "unsupported version 2");
  check_storage_error(R"({"version":-1,"peers":{}})", "unsupported version -1");
  check_storage_error(R"({"version":1})", "missing \"peers\"");
  check_storage_error(R"({"version":1,"peers":[]})", "\"peers\" must be a JSON object");
  check_storage_error(R"({"version":1,"peers":{},"extra":true})", "unknown top-level field \"extra\"");
  check_storage_error(R"({"version":1,"version":1,"peers":{}})", "duplicate key \"version\"");
  check_storage_error(R"({"version":1,"peers":{"bob@example.org":)" + good_record + R"(,"bob@example.org":)" +
                          good_record + "}}",
                      "duplicate key \"bob@example.org\"");
  check_storage_error(doc_with_peer(bob, R"({"fingerprint":[[1]],"level":"tofu"})"), "nested more than 3");
  check_storage_error(std::string(100000, '[') + std::string(100000, ']'), "nested more than 3");

  check_storage_error(doc_with_peer(bob, "\"tofu\""), "peer \"bob@example.org\": record must be a JSON object");
  check_storage_error(doc_with_peer(bob, R"({"level":"tofu"})"), "missing \"fingerprint\"");
  check_storage_error(doc_with_peer(bob, R"({"fingerprint":)" + fp + "}"), "missing \"level\"");
  check_storage_error(doc_with_peer(bob, R"({"fingerprint":42,"level":"tofu"})"), "\"fingerprint\" must be a string");
  check_storage_error(doc_with_peer(bob, R"({"fingerprint":)" + fp + R"(,"level":2})"), "\"level\" must be a string");
  check_storage_error(doc_with_peer(bob, R"({"fingerprint":)" + fp + R"(,"level":"tofu","note":"x"})"),
                      "unknown field \"note\"");
  check_storage_error(doc_with_peer(bob, R"({"fingerprint":")" + std::string(63, 'a') + R"(","level":"tofu"})"),
                      "\"fingerprint\" must be 64 hex digits");
  check_storage_error(doc_with_peer(bob, R"({"fingerprint":")" + std::string(65, 'a') + R"(","level":"tofu"})"),
                      "\"fingerprint\" must be 64 hex digits");
  check_storage_error(doc_with_peer(bob, R"({"fingerprint":")" + std::string(63, 'a') + R"(g","level":"tofu"})"),
                      "bad \"fingerprint\"");
  check_storage_error(doc_with_peer(bob, R"({"fingerprint":")" + Fingerprint{kFpA}.grouped() +
                                             R"(","level":"tofu"})"),
                      "\"fingerprint\" must be 64 hex digits");
  check_storage_error(doc_with_peer(bob, R"({"fingerprint":)" + fp + R"(,"level":"trusted"})"),
                      "unknown level \"trusted\"");
  check_storage_error(doc_with_peer(bob, R"({"fingerprint":)" + fp + R"(,"level":"unknown"})"),
                      "unknown level \"unknown\"");
  check_storage_error(doc_with_peer(bob, R"({"fingerprint":")" + std::string(64, '0') + R"(","level":"tofu"})"),
                      "all-zero \"fingerprint\"");
  check_storage_error(doc_with_peer("\"\"", good_record), "peer #0: JID is empty");
  check_storage_error(doc_with_peer("\"bob @example.org\"", good_record), "peer #0: JID contains whitespace");
  check_storage_error(doc_with_peer("\"bob\\u0001@example.org\"", good_record), "control character");
  check_storage_error(doc_with_peer("\"" + std::string(1024, 'a') + "\"", good_record), "1024 bytes");
  check_storage_error(R"({"version":1,"peers":{"a@x":)" + good_record + R"(,"b c":)" + good_record + "}}",
                      "peer #1: JID contains whitespace");

  // Oversize input is refused before parsing.
  std::string huge = R"({"version":1,"peers":{}})";
  huge.append(4u * 1024u * 1024u, ' ');
  check_storage_error(huge, "limit 4194304");

  // A blocked peer may carry the zero fingerprint.
  REQUIRE(TrustStore::from_json(doc_with_peer(bob, R"({"fingerprint":")" + std::string(64, '0') +
                                                       R"(","level":"blocked"})"))
              .ok());
}

TEST_CASE("a store never grows beyond what from_json accepts", "[trust]") {
  // Worst case per entry: a 1023-byte JID made of quotes, each escaped to two bytes.
  TrustStore store;
  Result<void> last;
  int added = 0;
  for (; added < 5000; ++added) {
    std::string suffix = "@" + std::to_string(added);
    std::string jid = std::string(1023 - suffix.size(), '"') + suffix;
    last = store.verify(jid, kFpA);
    if (!last.ok()) {
      break;
    }
  }
  REQUIRE_FALSE(last.ok());
  CHECK(last.error().code == ErrorCode::LimitExceeded);
  CHECK(added > 1000);
  const std::string json = store.to_json();
  CHECK(json.size() <= 4u * 1024u * 1024u);
  auto back = TrustStore::from_json(json);
  REQUIRE(back.ok());
  CHECK(back->records().size() == static_cast<std::size_t>(added));
  // Existing entries can still change when full.
  CHECK(store.block(store.records().begin()->first).ok());
}

// --- blocked fingerprints and one key under several JIDs -----------------------------------

TEST_CASE("a blocked fingerprint is blocked under every JID", "[trust]") {
  TrustStore store;
  REQUIRE(store.record_first_use(kBob, kFpA).ok());
  REQUIRE(store.verify(kCarol, kFpB).ok());
  CHECK_FALSE(store.fingerprint_blocked(kFpA));

  REQUIRE(store.block_fingerprint(kFpA).ok());
  CHECK(store.fingerprint_blocked(kFpA));
  CHECK_FALSE(store.fingerprint_blocked(kFpB));
  CHECK(store.check(kBob, kFpA) == TrustDecision::Blocked);
  // Under a JID that recorded another key (would be Changed) and under a JID never seen (would be
  // NewIdentity): a blocked person cannot come back through another account.
  CHECK(store.check(kCarol, kFpA) == TrustDecision::Blocked);
  CHECK(store.check("bob2@elsewhere.example", kFpA) == TrustDecision::Blocked);
  // Other keys are unaffected, and the JIDs' own records are kept.
  CHECK(store.check(kCarol, kFpB) == TrustDecision::Trusted);
  CHECK(store.check(kBob, kFpB) == TrustDecision::Changed);
  CHECK(store.level(kBob) == TrustLevel::Tofu);
  REQUIRE(store.find(kBob) != nullptr);
  CHECK(store.find(kBob)->fingerprint == kFpA);

  // Blocking again is fine and changes nothing.
  const std::string once = store.to_json();
  REQUIRE(store.block_fingerprint(kFpA).ok());
  CHECK(store.to_json() == once);
  REQUIRE(store.block_fingerprint(kFpC).ok());
  const auto blocked = store.blocked_fingerprints();
  REQUIRE(blocked.size() == 2);
  CHECK(blocked[0] == kFpA);  // byte order
  CHECK(blocked[1] == kFpC);

  // Unblocking restores what the records say.
  REQUIRE(store.unblock_fingerprint(kFpA).ok());
  CHECK_FALSE(store.fingerprint_blocked(kFpA));
  CHECK(store.check(kBob, kFpA) == TrustDecision::Trusted);
  CHECK(store.check(kCarol, kFpA) == TrustDecision::Changed);
  CHECK(store.check("bob2@elsewhere.example", kFpA) == TrustDecision::NewIdentity);
  // A JID block stays a JID block.
  REQUIRE(store.block(kBob).ok());
  CHECK(store.check(kBob, kFpA) == TrustDecision::Blocked);
}

TEST_CASE("blocked fingerprints: refused arguments and transitions leave the store unchanged", "[trust]") {
  TrustStore store;
  REQUIRE(store.record_first_use(kBob, kFpA).ok());
  REQUIRE(store.block_fingerprint(kFpB).ok());
  // The zero fingerprint stands for "no key": never blocked as one.
  check_fails_unchanged(store, ErrorCode::InvalidArgument,
                        [](TrustStore& s) { return s.block_fingerprint(Fingerprint{}); });
  // Unblocking what is not blocked is an error, as untrusting an unknown JID is.
  check_fails_unchanged(store, ErrorCode::InvalidArgument, [](TrustStore& s) { return s.unblock_fingerprint(kFpA); });
  check_fails_unchanged(store, ErrorCode::InvalidArgument,
                        [](TrustStore& s) { return s.unblock_fingerprint(Fingerprint{}); });
  // A blocked key is not trusted on first use nor verified under any JID until unblocked.
  check_fails_unchanged(store, ErrorCode::InvalidState, [](TrustStore& s) { return s.record_first_use(kCarol, kFpB); });
  check_fails_unchanged(store, ErrorCode::InvalidState, [](TrustStore& s) { return s.verify(kCarol, kFpB); });
  check_fails_unchanged(store, ErrorCode::InvalidState, [](TrustStore& s) { return s.verify(kBob, kFpB); });
  auto r = store.verify(kBob, kFpB);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().detail, Catch::Contains("is blocked") && Catch::Contains(kFpB.grouped()));
  REQUIRE(store.unblock_fingerprint(kFpB).ok());
  check_fails_unchanged(store, ErrorCode::InvalidArgument, [](TrustStore& s) { return s.unblock_fingerprint(kFpB); });
  REQUIRE(store.verify(kCarol, kFpB).ok());
  CHECK(store.check(kCarol, kFpB) == TrustDecision::Trusted);
}

TEST_CASE("jids_with lists every JID whose record holds a fingerprint", "[trust]") {
  TrustStore store;
  CHECK(store.jids_with(kFpA).empty());
  REQUIRE(store.record_first_use("alice@example.org", kFpA).ok());
  REQUIRE(store.verify(kBob, kFpA).ok());
  REQUIRE(store.record_first_use(kCarol, kFpB).ok());
  REQUIRE(store.block("mallory@evil.example").ok());  // blocked before any key: zero fingerprint
  CHECK(store.jids_with(kFpA) == jids({"alice@example.org", kBob}));
  CHECK(store.jids_with(kFpB) == jids({kCarol}));
  CHECK(store.jids_with(kFpC).empty());
  // The zero fingerprint is "no key", not a key shared by everyone blocked before one was seen.
  CHECK(store.jids_with(Fingerprint{}).empty());
  // Whatever the level, and whether or not the key is blocked.
  REQUIRE(store.block(kBob).ok());
  REQUIRE(store.block_fingerprint(kFpA).ok());
  CHECK(store.jids_with(kFpA) == jids({"alice@example.org", kBob}));
  REQUIRE(store.untrust("alice@example.org").ok());
  CHECK(store.jids_with(kFpA) == jids({kBob}));
  // A key changes hands when the user verifies another one.
  REQUIRE(store.verify(kCarol, kFpC).ok());
  CHECK(store.jids_with(kFpB).empty());
  CHECK(store.jids_with(kFpC) == jids({kCarol}));
}

TEST_CASE("blocked fingerprints round-trip through JSON, and documents without them still load", "[trust]") {
  TrustStore store;
  REQUIRE(store.record_first_use(kBob, kFpA).ok());
  const std::string without = store.to_json();
  // No blocked fingerprint: the document is the one older versions wrote and read.
  CHECK_THAT(without, !Catch::Contains("blocked_fingerprints"));
  auto old = TrustStore::from_json(doc_with_peer("\"bob@example.org\"", R"({"fingerprint":)" + quoted_hex(kFpA) +
                                                                             R"(,"level":"tofu"})"));
  REQUIRE(old.ok());
  CHECK(old->blocked_fingerprints().empty());
  CHECK(old->to_json() == without);

  REQUIRE(store.block_fingerprint(kFpC).ok());
  REQUIRE(store.block_fingerprint(kFpB).ok());
  const std::string json = store.to_json();
  CHECK_THAT(json, Catch::Contains("\"blocked_fingerprints\": [\n    \"" + hex_of(kFpB) + "\",\n    \"" +
                                   hex_of(kFpC) + "\"\n  ]"));
  auto back = TrustStore::from_json(json);
  REQUIRE(back.ok());
  CHECK(back->to_json() == json);
  CHECK(back->fingerprint_blocked(kFpB));
  CHECK(back->fingerprint_blocked(kFpC));
  CHECK_FALSE(back->fingerprint_blocked(kFpA));
  CHECK(back->check("anyone@example.org", kFpC) == TrustDecision::Blocked);

  // Hand-written: any order, upper-case hex, an empty list; written back sorted and lower-case.
  std::string upper_c = hex_of(kFpC);
  for (char& c : upper_c) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  auto hand = TrustStore::from_json(doc_with_blocked("[\"" + upper_c + "\"," + quoted_hex(kFpB) + "]"));
  REQUIRE(hand.ok());
  CHECK(hand->to_json() == json);
  auto empty_list = TrustStore::from_json(doc_with_blocked("[]"));
  REQUIRE(empty_list.ok());
  CHECK(empty_list->to_json() == without);
}

TEST_CASE("from_json rejects malformed blocked fingerprints with a precise Storage error", "[trust]") {
  const std::string a = quoted_hex(kFpA);
  REQUIRE(TrustStore::from_json(doc_with_blocked("[" + a + "]")).ok());

  check_storage_error(doc_with_blocked("{}"), "\"blocked_fingerprints\" must be a JSON array");
  check_storage_error(doc_with_blocked(a), "\"blocked_fingerprints\" must be a JSON array");
  check_storage_error(doc_with_blocked("null"), "\"blocked_fingerprints\" must be a JSON array");
  check_storage_error(doc_with_blocked("[42]"), "\"blocked_fingerprints\"[0] must be a string");
  check_storage_error(doc_with_blocked("[" + a + ",null]"), "\"blocked_fingerprints\"[1] must be a string");
  check_storage_error(doc_with_blocked("[" + a + ",[" + a + "]]"), "\"blocked_fingerprints\"[1] must be a string");
  check_storage_error(doc_with_blocked("[[[" + a + "]]]"), "nested more than 3");
  check_storage_error(doc_with_blocked("[\"" + std::string(63, 'a') + "\"]"),
                      "\"blocked_fingerprints\"[0] must be 64 hex digits");
  check_storage_error(doc_with_blocked("[\"" + std::string(65, 'a') + "\"]"),
                      "\"blocked_fingerprints\"[0] must be 64 hex digits");
  check_storage_error(doc_with_blocked("[\"" + kFpA.grouped() + "\"]"),
                      "\"blocked_fingerprints\"[0] must be 64 hex digits");
  check_storage_error(doc_with_blocked("[\"" + std::string(63, 'a') + "g\"]"), "bad \"blocked_fingerprints\"[0]");
  check_storage_error(doc_with_blocked("[\"" + std::string(64, '0') + "\"]"),
                      "\"blocked_fingerprints\"[0] is all zeros");
  check_storage_error(doc_with_blocked("[" + a + "," + quoted_hex(kFpB) + "," + a + "]"),
                      "\"blocked_fingerprints\"[2] repeats an earlier entry");
  std::string upper_a = hex_of(kFpA);
  for (char& c : upper_a) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  check_storage_error(doc_with_blocked("[" + a + ",\"" + upper_a + "\"]"),
                      "\"blocked_fingerprints\"[1] repeats an earlier entry");
  check_storage_error(R"({"version":1,"peers":{},"blocked_fingerprints":[],"blocked_fingerprints":[]})",
                      "duplicate key \"blocked_fingerprints\"");
  check_storage_error(R"({"version":1,"peers":{},"blocked_fingerprint":[]})",
                      "unknown top-level field \"blocked_fingerprint\"");
  // A bad record is still reported when the list is fine, and the other way round.
  check_storage_error(R"({"version":1,"peers":{"bob@example.org":{"level":"tofu"}},"blocked_fingerprints":[)" + a +
                          "]}",
                      "missing \"fingerprint\"");

  // More entries than a store may hold.
  std::string many = "[";
  for (int i = 0; i <= 10000; ++i) {
    Fingerprint fp;
    fp.bytes[0] = 1;
    fp.bytes[30] = static_cast<std::uint8_t>(i >> 8);
    fp.bytes[31] = static_cast<std::uint8_t>(i);
    many += (i == 0 ? "" : ",") + quoted_hex(fp);
  }
  many += "]";
  check_storage_error(doc_with_blocked(many), "10001 blocked fingerprints (limit 10000)");
}

TEST_CASE("blocked fingerprints are bounded like peers, and a full store still loads", "[trust]") {
  TrustStore store;
  Result<void> last;
  int added = 0;
  for (; added < 10001; ++added) {
    Fingerprint fp;
    fp.bytes[0] = 1;
    fp.bytes[30] = static_cast<std::uint8_t>(added >> 8);
    fp.bytes[31] = static_cast<std::uint8_t>(added);
    last = store.block_fingerprint(fp);
    if (!last.ok()) {
      break;
    }
  }
  REQUIRE_FALSE(last.ok());
  CHECK(last.error().code == ErrorCode::LimitExceeded);
  CHECK(added == 10000);
  // Peers with the longest JIDs fill the rest of the document bound.
  int peers = 0;
  for (; peers < 5000; ++peers) {
    std::string suffix = "@" + std::to_string(peers);
    last = store.verify(std::string(1023 - suffix.size(), '"') + suffix, kFpA);
    if (!last.ok()) {
      break;
    }
  }
  REQUIRE_FALSE(last.ok());
  CHECK(last.error().code == ErrorCode::LimitExceeded);
  CHECK(peers > 1000);
  const std::string json = store.to_json();
  CHECK(json.size() <= 4u * 1024u * 1024u);
  auto back = TrustStore::from_json(json);
  REQUIRE(back.ok());
  CHECK(back->blocked_fingerprints().size() == 10000);
  CHECK(back->records().size() == static_cast<std::size_t>(peers));

  // A store filled with peers has no room left for blocked fingerprints either, before the count limit.
  TrustStore peers_only;
  for (int i = 0; i < 5000; ++i) {
    std::string suffix = "@" + std::to_string(i);
    if (!peers_only.verify(std::string(1023 - suffix.size(), '"') + suffix, kFpA).ok()) {
      break;
    }
  }
  int blocked = 0;
  for (; blocked < 10000; ++blocked) {
    Fingerprint fp;
    fp.bytes[0] = 2;
    fp.bytes[31] = static_cast<std::uint8_t>(blocked);
    fp.bytes[30] = static_cast<std::uint8_t>(blocked >> 8);
    last = peers_only.block_fingerprint(fp);
    if (!last.ok()) {
      break;
    }
  }
  REQUIRE_FALSE(last.ok());
  CHECK(last.error().code == ErrorCode::LimitExceeded);
  CHECK(blocked < 10000);
  auto peers_back = TrustStore::from_json(peers_only.to_json());
  REQUIRE(peers_back.ok());
  CHECK(peers_back->blocked_fingerprints().size() == static_cast<std::size_t>(blocked));
}
