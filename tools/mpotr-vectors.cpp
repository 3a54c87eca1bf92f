// SPDX-License-Identifier: MIT
// mpotr-vectors: the known-answer vectors of mpOTR v2 (spec/vectors/).
//
//   mpotr-vectors --generate <dir>   write crypto.json, key_schedule.json, messages.json, session.json
//   mpotr-vectors --verify <dir>     regenerate in memory and compare with the files in <dir>
//
// Every value is a function of the fixed seeds below: inputs are drawn from DeterministicRng
// streams, signatures use the hedged nonce with a seeded rng, and the conversation runs on a
// manual clock through a FIFO room, so two runs give byte-identical files. Before writing, the
// generator cross-checks what it records (signatures verify, the nonce is the one crypto.h
// specifies, both sides of every DAKE key agree, written-out hash inputs hash to the outputs,
// closing chains match the engine's MemberTranscript, the conversation's payloads agree with the
// key schedule: every commitment, MAC and digest), so a vector never pins a value the library
// could not explain. Exit codes: 0 ok, 1 mismatch, 2 error.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "mpotr/codec/messages.h"
#include "mpotr/crypto/crypto.h"
#include "mpotr/engine.h"
#include "mpotr/engine/key_schedule.h"
#include "mpotr/engine/transcript.h"
#include "mpotr/identity.h"
#include "mpotr/rng.h"

namespace {

using namespace mpotr;
using Json = nlohmann::ordered_json;

// The mpOTR version the files pin (the wire version byte). The tests refuse a file of another
// version, so vectors of version 1 cannot pass for version 2 ones.
constexpr int kFormatVersion = kProtocolVersion;
constexpr const char* kGenerator = "tools/mpotr-vectors";
constexpr std::string_view kRoom = "room@conference.localhost";
// Order n of the P-256 group, big-endian.
constexpr std::string_view kOrderHex = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

constexpr std::uint64_t kCryptoSeed = 1001;
constexpr std::uint64_t kKeyScheduleSeed = 2001;
constexpr std::uint64_t kMessagesSeed = 3001;
constexpr std::uint64_t kSessionSeed = 4001;

// --- small helpers ---------------------------------------------------------------------------

Error failure(std::string detail) { return make_error(ErrorCode::Internal, std::move(detail)); }

std::string hex(const Bytes& b) { return to_hex(view(b)); }
std::string hex(const SecretBytes& s) { return to_hex(s.view()); }
template <std::size_t N>
std::string hex(const std::array<std::uint8_t, N>& a) {
  return to_hex(view(a));
}

Result<Bytes> unhex(std::string_view s) {
  Bytes out;
  if (!from_hex(s, out)) {
    return failure("bad hex constant '" + std::string(s) + "'");
  }
  return out;
}

Bytes draw(Rng& rng, std::size_t n) {
  Bytes b(n);
  if (n != 0) {
    rng.fill(b.data(), n);
  }
  return b;
}

Bytes u32_be(std::uint32_t v) {
  return Bytes{static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
               static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

// 0 < k < n, comparing big-endian bytes.
bool scalar_in_range(ByteView k) {
  Bytes n;
  (void)from_hex(kOrderHex, n);
  const bool nonzero = std::any_of(k.begin(), k.end(), [](std::uint8_t b) { return b != 0; });
  return k.size() == n.size() && nonzero && std::lexicographical_compare(k.begin(), k.end(), n.begin(), n.end());
}

Json header(std::string_view description, std::uint64_t seed) {
  Json j = Json::object();
  j["description"] = description;
  j["version"] = kFormatVersion;
  j["generator"] = kGenerator;
  j["seed"] = seed;
  return j;
}

Json hex_list(const std::vector<Hash32>& v) {
  Json out = Json::array();
  for (const auto& h : v) {
    out.push_back(hex(h));
  }
  return out;
}

// The hedged nonce of a signature with DeterministicRng(rng_seed) (spec §3.5), recomputed from the
// spec rather than taken from the library: rnd32 is the rng's first 32-byte draw, and k =
// HMAC-SHA-256(d, rnd32 ‖ digest ‖ u32 counter) for the first counter that gives k in [1, n−1].
struct HedgedNonce {
  Bytes rnd32;
  std::uint32_t counter = 0;
  Hash32 k{};
};

Result<HedgedNonce> hedged_nonce(const crypto::PrivateKey& key, const Hash32& digest, std::uint64_t rng_seed) {
  DeterministicRng rnd_rng(rng_seed);
  HedgedNonce nonce;
  nonce.rnd32 = draw(rnd_rng, 32);
  const SecretBytes d = key.scalar();
  for (;; ++nonce.counter) {
    if (nonce.counter > 16) {
      return failure("ecdsa: no nonce candidate in range");
    }
    Bytes input = nonce.rnd32;
    append(input, view(digest));
    append(input, view(u32_be(nonce.counter)));
    nonce.k = crypto::hmac_sha256(d.view(), view(input));
    if (scalar_in_range(view(nonce.k))) {
      return nonce;
    }
  }
}

// Signs with DeterministicRng(rng_seed), as every signature in the vectors is made, and checks
// the result against the spec: it verifies, and r = x(k·G) for the nonce above. A vector then
// never pins a signature whose nonce an implementation could not reproduce.
Result<crypto::Signature> sign_checked(const crypto::PrivateKey& key, const Hash32& digest, std::uint64_t rng_seed,
                                       HedgedNonce* nonce_out) {
  MPOTR_TRY(HedgedNonce nonce, hedged_nonce(key, digest, rng_seed));
  DeterministicRng sign_rng(rng_seed);
  MPOTR_TRY(crypto::Signature sig, key.sign_digest(digest, sign_rng));
  if (!key.public_key().verify_digest(digest, view(sig))) {
    return failure("ecdsa: signature does not verify");
  }
  MPOTR_TRY(crypto::PrivateKey k_key, crypto::PrivateKey::from_scalar(view(nonce.k)));
  const crypto::Point& kg = k_key.public_key().point();
  // r = x(k·G) mod n; x ≥ n happens with probability < 2^-128, so r must equal x.
  if (!std::equal(kg.begin() + 1, kg.begin() + 33, sig.begin())) {
    return failure("ecdsa: r is not x(k·G): the nonce derivation differs from crypto.h");
  }
  if (nonce_out != nullptr) {
    *nonce_out = std::move(nonce);
  }
  return sig;
}

// Offer.attempt (the attempt number for a roster) is bound into the session id. Templates keep
// this file compiling whether or not the codec has the field.
template <class O>
void set_attempt(O& o, std::uint32_t value) {
  if constexpr (requires { o.attempt; }) {
    o.attempt = value;
  } else {
    (void)o;
    (void)value;
  }
}

template <class O>
void put_attempt(Json& j, const O& o) {
  if constexpr (requires { o.attempt; }) {
    j["attempt"] = o.attempt;
  } else {
    (void)j;
    (void)o;
  }
}

// ============================================================================================
// crypto.json
// ============================================================================================

Result<Json> ecdsa_case(const crypto::PrivateKey& key, const Hash32& digest, std::uint64_t rng_seed) {
  HedgedNonce nonce;
  MPOTR_TRY(crypto::Signature sig, sign_checked(key, digest, rng_seed, &nonce));
  Json c;
  c["private"] = hex(key.scalar());
  c["public"] = hex(key.public_key().point());
  c["digest"] = hex(digest);
  c["rng_seed"] = rng_seed;
  c["rnd32"] = hex(nonce.rnd32);
  c["nonce_counter"] = nonce.counter;
  c["k"] = hex(nonce.k);
  c["signature"] = hex(sig);
  return c;
}

Result<Json> generate_crypto() {
  Json doc = header(
      "Primitive known answers of mpOTR v2 (unchanged from v1) from fixed seeds: the test RNG "
      "(DeterministicRng), P-256 keys, ECDH, hedged ECDSA (k = HMAC-SHA-256(d, rnd32 || digest || u32 "
      "counter), first candidate in [1, q-1] where q is the group order; rnd32 is the first 32-byte draw of "
      "DeterministicRng(rng_seed); signature = r || s), SHA-256, HMAC-SHA-256, HKDF-SHA-256 and "
      "AES-128-CTR (the IV is the initial 128-bit big-endian counter block). Inputs were drawn from "
      "DeterministicRng(seed); standard external vectors live in tests/data/.",
      kCryptoSeed);
  DeterministicRng rng(kCryptoSeed);

  // DeterministicRng: each fill() call keys its own ChaCha20 stream, so the segmentation matters.
  Json rng_cases = Json::array();
  for (std::uint64_t seed : {std::uint64_t{0}, std::uint64_t{1}, kCryptoSeed}) {
    DeterministicRng r(seed);
    Json draws = Json::array();
    for (std::size_t len : {32, 16, 0, 64}) {
      Bytes out(len);
      r.fill(out.data(), len);
      draws.push_back(Json{{"length", len}, {"output", hex(out)}});
    }
    rng_cases.push_back(Json{{"seed", seed}, {"draws", draws}});
  }
  doc["deterministic_rng"] = rng_cases;

  // P-256 keys: generated from a seeded rng, plus edge scalars.
  Json keys = Json::array();
  std::vector<crypto::PrivateKey> generated;
  for (std::uint64_t seed = kCryptoSeed + 1; seed <= kCryptoSeed + 4; ++seed) {
    DeterministicRng r(seed);
    MPOTR_TRY(crypto::PrivateKey k, crypto::PrivateKey::generate(r));
    keys.push_back(Json{{"rng_seed", seed}, {"private", hex(k.scalar())}, {"public", hex(k.public_key().point())}});
    generated.push_back(std::move(k));
  }
  MPOTR_TRY(Bytes order, unhex(kOrderHex));
  Bytes one(32, 0);
  one[31] = 1;
  Bytes two(32, 0);
  two[31] = 2;
  Bytes order_minus_one = order;
  order_minus_one[31] = static_cast<std::uint8_t>(order_minus_one[31] - 1);
  std::vector<crypto::PrivateKey> edges;
  for (const Bytes* s : {&one, &two, &order_minus_one}) {
    MPOTR_TRY(crypto::PrivateKey k, crypto::PrivateKey::from_scalar(view(*s)));
    keys.push_back(Json{{"private", hex(*s)}, {"public", hex(k.public_key().point())}});
    edges.push_back(std::move(k));
  }
  doc["p256_keys"] = keys;

  Json invalid = Json::array();
  Bytes all_ff(32, 0xff);
  Bytes zero(32, 0);
  Bytes short_scalar(31, 0x01);
  for (const Bytes* s : {&zero, &order, &all_ff, &short_scalar}) {
    auto r = crypto::PrivateKey::from_scalar(view(*s));
    if (r.ok()) {
      return failure("p256: an invalid scalar was accepted");
    }
    invalid.push_back(Json{{"private", hex(*s)}, {"error", to_string(r.error().code)}});
  }
  doc["p256_invalid_scalars"] = invalid;

  // ECDH both ways for two pairs, and d = 1 (the shared secret is the peer's x-coordinate).
  Json ecdh = Json::array();
  const std::pair<std::size_t, std::size_t> pairs[] = {{0, 1}, {1, 0}, {2, 3}, {3, 2}};
  for (const auto& [a, b] : pairs) {
    MPOTR_TRY(SecretBytes shared, generated[a].ecdh(generated[b].public_key()));
    ecdh.push_back(Json{{"private", hex(generated[a].scalar())},
                        {"peer_public", hex(generated[b].public_key().point())},
                        {"shared", hex(shared)}});
  }
  MPOTR_TRY(SecretBytes shared_one, edges[0].ecdh(generated[0].public_key()));
  ecdh.push_back(Json{{"private", hex(edges[0].scalar())},
                      {"peer_public", hex(generated[0].public_key().point())},
                      {"shared", hex(shared_one)}});
  doc["ecdh"] = ecdh;

  // Hedged ECDSA.
  Json ecdsa = Json::array();
  for (std::size_t i = 0; i < generated.size(); ++i) {
    const Hash32 digest = crypto::sha256(view(draw(rng, 20 + 40 * i)));
    MPOTR_TRY(Json c, ecdsa_case(generated[i], digest, kCryptoSeed + 100 + i));
    ecdsa.push_back(std::move(c));
  }
  {
    // The same key and digest under another rng seed: another nonce, another signature. The
    // message is arbitrary (not a label); it stays as it was so the primitives' answers do not
    // change with the protocol version.
    const Hash32 digest = crypto::sha256(as_bytes("mpotr-v1 vectors"));
    MPOTR_TRY(Json c1, ecdsa_case(generated[0], digest, kCryptoSeed + 200));
    MPOTR_TRY(Json c2, ecdsa_case(generated[0], digest, kCryptoSeed + 201));
    ecdsa.push_back(std::move(c1));
    ecdsa.push_back(std::move(c2));
  }
  doc["ecdsa"] = ecdsa;

  Json sha = Json::array();
  for (std::size_t len : {0, 1, 55, 56, 64, 200}) {
    const Bytes in = draw(rng, len);
    sha.push_back(Json{{"input", hex(in)}, {"output", hex(crypto::sha256(view(in)))}});
  }
  doc["sha256"] = sha;

  Json hmac = Json::array();
  const std::pair<std::size_t, std::size_t> hmac_sizes[] = {{0, 10}, {16, 0}, {32, 50}, {64, 64}, {65, 100}, {131, 33}};
  for (const auto& [key_len, data_len] : hmac_sizes) {
    const Bytes key = draw(rng, key_len);
    const Bytes data = draw(rng, data_len);
    hmac.push_back(
        Json{{"key", hex(key)}, {"data", hex(data)}, {"output", hex(crypto::hmac_sha256(view(key), view(data)))}});
  }
  doc["hmac_sha256"] = hmac;

  Json hkdf = Json::array();
  struct HkdfSize {
    std::size_t salt, ikm, info, length;
  };
  const HkdfSize hkdf_sizes[] = {{32, 32, 0, 32}, {0, 22, 10, 42}, {13, 96, 26, 64}, {32, 32, 40, 100}, {80, 1, 1, 1}};
  for (const auto& s : hkdf_sizes) {
    const Bytes salt = draw(rng, s.salt);
    const Bytes ikm = draw(rng, s.ikm);
    const Bytes info = draw(rng, s.info);
    const SecretBytes prk = crypto::hkdf_extract(view(salt), view(ikm));
    MPOTR_TRY(SecretBytes okm, crypto::hkdf_expand(prk.view(), view(info), s.length));
    MPOTR_TRY(SecretBytes okm2, crypto::hkdf_sha256(view(salt), view(ikm), view(info), s.length));
    if (!(okm == okm2)) {
      return failure("hkdf: extract+expand differs from hkdf_sha256");
    }
    hkdf.push_back(Json{{"salt", hex(salt)},
                        {"ikm", hex(ikm)},
                        {"info", hex(info)},
                        {"length", s.length},
                        {"prk", hex(prk)},
                        {"okm", hex(okm)}});
  }
  doc["hkdf_sha256"] = hkdf;

  // AES-128-CTR, including counters that carry across the 64-bit half and wrap at 2^128.
  Json aes = Json::array();
  struct AesCase {
    std::size_t len;
    int iv_kind;  // 0 random, 1 low 64 bits all ones, 2 all ones
  };
  const AesCase aes_cases[] = {{1, 0}, {16, 0}, {33, 0}, {100, 0}, {48, 1}, {40, 2}};
  for (const auto& ac : aes_cases) {
    const Bytes key = draw(rng, 16);
    crypto::AesIv iv = rng.array<16>();
    if (ac.iv_kind >= 1) {
      std::fill(iv.begin() + 8, iv.end(), std::uint8_t{0xff});
    }
    if (ac.iv_kind == 2) {
      std::fill(iv.begin(), iv.end(), std::uint8_t{0xff});
    }
    const Bytes pt = draw(rng, ac.len);
    Bytes ct(pt.size());
    MPOTR_CHECK(crypto::aes128_ctr(view(key), iv, view(pt), ct.data()));
    aes.push_back(Json{{"key", hex(key)}, {"iv", hex(iv)}, {"plaintext", hex(pt)}, {"ciphertext", hex(ct)}});
  }
  doc["aes128_ctr"] = aes;
  return doc;
}

// ============================================================================================
// key_schedule.json
// ============================================================================================

struct KsMember {
  std::string nick;
  crypto::PrivateKey identity, dh, signing, elgamal_r;
  Hash32 nonce{};
  SecretBytes secret;
};

Json key_pair(const crypto::PrivateKey& k) {
  return Json{{"private", hex(k.scalar())}, {"public", hex(k.public_key().point())}};
}

codec::Offer offer_of(const KsMember& m, const Hash32& roster_digest, std::uint32_t attempt) {
  codec::Offer o;
  o.roster_digest = roster_digest;
  set_attempt(o, attempt);
  o.nick = m.nick;
  o.nonce = m.nonce;
  o.identity_key = m.identity.public_key().point();
  o.dh_key = m.dh.public_key().point();
  o.signing_key = m.signing.public_key().point();
  return o;
}

Json offer_inputs(const codec::Offer& o) {
  Json j;
  put_attempt(j, o);
  j["nick"] = o.nick;
  j["nonce"] = hex(o.nonce);
  j["identity_key"] = hex(o.identity_key);
  j["dh_key"] = hex(o.dh_key);
  j["signing_key"] = hex(o.signing_key);
  return j;
}

// The 3-member setup every key_schedule case derives from, and what the cases derive in turn
// (later sections use earlier results, as an implementation would).
struct KsSetup {
  std::vector<KsMember> members;
  std::vector<codec::Offer> offers;
  Hash32 sid{};
  std::vector<std::vector<SecretBytes>> dake_keys;  // [from][to]
  std::vector<codec::KeyShare> shares;
  SecretBytes group;
  SecretBytes auth;
  std::vector<std::vector<Hash32>> ids;     // ids[m][s−1]: message ids of member m's entries
  std::vector<std::vector<Hash32>> chains;  // chains[m][c] = c_{m,c}
  std::vector<std::pair<std::string, Hash32>> transcript_digests;  // by case name
};

Result<std::vector<KsMember>> draw_members(Rng& rng) {
  std::vector<KsMember> members;
  for (const char* nick : {"alice", "bob", "carol"}) {
    KsMember m;
    m.nick = nick;
    MPOTR_TRY(m.identity, crypto::PrivateKey::generate(rng));
    MPOTR_TRY(m.dh, crypto::PrivateKey::generate(rng));
    MPOTR_TRY(m.signing, crypto::PrivateKey::generate(rng));
    MPOTR_TRY(m.elgamal_r, crypto::PrivateKey::generate(rng));
    m.nonce = rng.array<32>();
    m.secret = rng.secret(32);
    members.push_back(std::move(m));
  }
  return members;
}

Json roster_digest_cases() {
  Json cases = Json::array();
  const std::vector<std::pair<std::string, std::vector<std::string>>> rosters = {
      {std::string(kRoom), {"alice", "bob", "carol"}},
      {std::string(kRoom), {"alice", "bob"}},
      {"r@x", {std::string(64, 'a'), "zo\xc3\xab"}},
      // The longest room address (kMaxRoomLen = 255 bytes, §5.1) and a roster of one.
      {std::string(kMaxRoomLen - 17, 'r') + "@conference.local", {"solo"}},
  };
  for (const auto& [room, nicks] : rosters) {
    cases.push_back(Json{{"room", room}, {"nicks", nicks}, {"output", hex(ks::roster_digest(room, nicks))}});
  }
  return cases;
}

Json session_id_cases(const std::vector<codec::Offer>& offers) {
  Json cases = Json::array();
  for (std::size_t count : {std::size_t{3}, std::size_t{2}}) {
    std::vector<codec::Offer> subset(offers.begin(), offers.begin() + static_cast<std::ptrdiff_t>(count));
    for (auto& o : subset) {
      set_attempt(o, count == 3 ? 0 : 3);  // a restarted attempt for the 2-member roster
    }
    Json inputs = Json::array();
    for (const auto& o : subset) {
      inputs.push_back(offer_inputs(o));
    }
    const Hash32 out = ks::session_id(kRoom, subset);
    cases.push_back(
        Json{{"room", kRoom}, {"offers", inputs}, {"output", hex(out)}, {"session_tag", hex(ks::session_tag(out))}});
  }
  return cases;
}

// One DAKE key K_{from→to} (§5.3) with every intermediate: the two DH values, the HKDF IKM,
// info and PRK. The sender computes it with a_from and e_from, the receiver with e_to alone;
// all three library entry points must give the same key.
Result<Json> dake_key_case(const Hash32& sid, std::size_t from, std::size_t to, const KsMember& s, const KsMember& r,
                           SecretBytes& key_out) {
  const auto f8 = static_cast<std::uint8_t>(from);
  const auto t8 = static_cast<std::uint8_t>(to);
  MPOTR_TRY(SecretBytes dh_a, s.identity.ecdh(r.dh.public_key()));  // a_from · E_to
  MPOTR_TRY(SecretBytes dh_e, s.dh.ecdh(r.dh.public_key()));        // e_from · E_to
  MPOTR_TRY(SecretBytes dh_a_back, r.dh.ecdh(s.identity.public_key()));
  MPOTR_TRY(SecretBytes dh_e_back, r.dh.ecdh(s.dh.public_key()));
  if (!(dh_a == dh_a_back) || !(dh_e == dh_e_back)) {
    return failure("dake_key: e_to·A_from or e_to·E_from differs from the sender's DH values");
  }
  MPOTR_TRY(SecretBytes key, ks::dake_key(sid, f8, t8, dh_a, dh_e));
  MPOTR_TRY(SecretBytes sender_side, ks::dake_key_to(sid, f8, t8, s.identity, s.dh, r.dh.public_key()));
  MPOTR_TRY(SecretBytes receiver_side,
            ks::dake_key_from(sid, f8, t8, r.dh, s.identity.public_key(), s.dh.public_key()));
  if (!(key == sender_side) || !(key == receiver_side)) {
    return failure("dake_key: the sender's and the receiver's computations disagree");
  }
  // The HKDF steps written out, recomputed from the spec text.
  Bytes ikm(dh_a.data(), dh_a.data() + dh_a.size());
  append(ikm, dh_e.view());
  Bytes info(ks::kLabelDakeKey.begin(), ks::kLabelDakeKey.end());
  info.push_back(f8);
  info.push_back(t8);
  const SecretBytes prk = crypto::hkdf_extract(view(sid), view(ikm));
  MPOTR_TRY(SecretBytes okm, crypto::hkdf_expand(prk.view(), view(info), 32));
  if (!(okm == key)) {
    return failure("dake_key: HKDF(salt = sid, IKM = DH ‖ DH, info) differs from ks::dake_key");
  }
  key_out = key;
  return Json{{"session_id", hex(sid)},
              {"from", from},
              {"to", to},
              {"from_identity", key_pair(s.identity)},
              {"from_dh", key_pair(s.dh)},
              {"to_dh", key_pair(r.dh)},
              {"dh_a_from_e_to", hex(dh_a)},
              {"dh_e_from_e_to", hex(dh_e)},
              {"ikm", hex(ikm)},
              {"info", hex(info)},
              {"prk", hex(prk)},
              {"key", hex(key)}};
}

Result<Json> dake_key_cases(KsSetup& st) {
  const std::size_t n = st.members.size();
  st.dake_keys.assign(n, std::vector<SecretBytes>(n));
  Json cases = Json::array();
  for (std::size_t from = 0; from < n; ++from) {
    for (std::size_t to = 0; to < n; ++to) {
      if (to == from) {
        continue;
      }
      MPOTR_TRY(Json c, dake_key_case(st.sid, from, to, st.members[from], st.members[to], st.dake_keys[from][to]));
      cases.push_back(std::move(c));
    }
  }
  // One-way keys: K_{i→j} and K_{j→i} are different keys (version 1 had one per pair).
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      if (st.dake_keys[i][j] == st.dake_keys[j][i]) {
        return failure("dake_key: the two directions of a pair share a key");
      }
    }
  }
  return cases;
}

// dake_mac and elgamal_pad for every ordered pair, and the key shares they make.
Result<void> key_share_cases(KsSetup& st, Json& mac_cases, Json& pad_cases) {
  const std::size_t n = st.members.size();
  st.shares.assign(n, codec::KeyShare{});
  for (std::size_t from = 0; from < n; ++from) {
    const KsMember& s = st.members[from];
    codec::KeyShare& share_msg = st.shares[from];
    share_msg.session_id = st.sid;
    share_msg.sender = static_cast<std::uint8_t>(from);
    share_msg.elgamal_r = s.elgamal_r.public_key().point();
    share_msg.commit = ks::commit(st.sid, share_msg.sender, s.secret);
    for (std::size_t to = 0; to < n; ++to) {
      if (to == from) {
        continue;
      }
      const KsMember& r = st.members[to];
      const auto f8 = static_cast<std::uint8_t>(from);
      const auto t8 = static_cast<std::uint8_t>(to);
      const Hash32 mac = ks::dake_mac(st.dake_keys[from][to], st.sid, f8, t8, s.signing.public_key().point(),
                                      s.dh.public_key().point(), s.elgamal_r.public_key().point());
      mac_cases.push_back(Json{{"mac_key", hex(st.dake_keys[from][to])},
                               {"session_id", hex(st.sid)},
                               {"from", from},
                               {"to", to},
                               {"signing_key", hex(s.signing.public_key().point())},
                               {"dh_key", hex(s.dh.public_key().point())},
                               {"elgamal_r", hex(s.elgamal_r.public_key().point())},
                               {"output", hex(mac)}});
      MPOTR_TRY(SecretBytes shared, s.elgamal_r.ecdh(r.dh.public_key()));
      MPOTR_TRY(SecretBytes shared_back, r.dh.ecdh(s.elgamal_r.public_key()));
      if (!(shared == shared_back)) {
        return failure("elgamal: r·E differs from e·R");
      }
      MPOTR_TRY(SecretBytes pad,
                ks::elgamal_pad(st.sid, f8, t8, shared, s.elgamal_r.public_key().point(), r.dh.public_key().point()));
      codec::PairShare share;
      share.mac = mac;
      for (std::size_t b = 0; b < 32; ++b) {
        share.secret_ct[b] = static_cast<std::uint8_t>(s.secret.data()[b] ^ pad.data()[b]);
      }
      share_msg.shares.push_back(share);
      pad_cases.push_back(Json{{"session_id", hex(st.sid)},
                               {"from", from},
                               {"to", to},
                               {"elgamal_r", key_pair(s.elgamal_r)},
                               {"recipient_dh", key_pair(r.dh)},
                               {"shared", hex(shared)},
                               {"pad", hex(pad)},
                               {"secret", hex(s.secret)},
                               {"secret_ct", hex(share.secret_ct)}});
    }
  }
  return {};
}

// The commitments of the setup's members (the ones in their key shares) and one more.
Json commit_cases(const KsSetup& st, Rng& rng) {
  Json cases = Json::array();
  for (std::size_t i = 0; i < st.members.size(); ++i) {
    cases.push_back(Json{{"session_id", hex(st.sid)},
                         {"sender", i},
                         {"secret", hex(st.members[i].secret)},
                         {"output", hex(st.shares[i].commit)}});
  }
  const Hash32 other_sid = rng.array<32>();
  const SecretBytes x = rng.secret(32);
  cases.push_back(Json{{"session_id", hex(other_sid)},
                       {"sender", 127},
                       {"secret", hex(x)},
                       {"output", hex(ks::commit(other_sid, 127, x))}});
  return cases;
}

Json secret_list(const std::vector<SecretBytes>& secrets) {
  Json list = Json::array();
  for (const auto& s : secrets) {
    list.push_back(hex(s));
  }
  return list;
}

Json group_secret_cases(KsSetup& st, Rng& rng) {
  std::vector<SecretBytes> secrets;
  for (const auto& m : st.members) {
    secrets.push_back(m.secret);
  }
  st.group = ks::group_secret(st.sid, secrets);
  Json cases = Json::array();
  cases.push_back(Json{{"session_id", hex(st.sid)}, {"secrets", secret_list(secrets)}, {"output", hex(st.group)}});
  const Hash32 other_sid = rng.array<32>();
  const std::vector<SecretBytes> two = {rng.secret(32), rng.secret(32)};
  cases.push_back(
      Json{{"session_id", hex(other_sid)}, {"secrets", secret_list(two)},
           {"output", hex(ks::group_secret(other_sid, two))}});
  return cases;
}

// setup_transcript_hash over the real encoded offers and the signed parts of the key shares,
// which are signed here (the transcript leaves the signatures out, §5.7).
Result<Json> transcript_hash_cases(KsSetup& st, Rng& rng, Hash32& th_out) {
  const std::size_t n = st.members.size();
  std::vector<Bytes> offer_bytes;
  std::vector<Bytes> share_bytes;
  for (std::size_t i = 0; i < n; ++i) {
    offer_bytes.push_back(codec::encode(st.offers[i]));
    const Bytes signed_part = codec::encode_signed_part(st.shares[i]);
    MPOTR_TRY(st.shares[i].signature, sign_checked(st.members[i].signing, ks::signed_digest(st.sid, view(signed_part)),
                                                   kKeyScheduleSeed + 10 + i, nullptr));
    share_bytes.push_back(signed_part);
  }
  th_out = ks::setup_transcript_hash(offer_bytes, share_bytes);
  Json cases = Json::array();
  Json o = Json::array();
  Json k = Json::array();
  for (std::size_t i = 0; i < n; ++i) {
    o.push_back(hex(offer_bytes[i]));
    k.push_back(hex(share_bytes[i]));
  }
  cases.push_back(Json{{"offers", o}, {"key_shares", k}, {"output", hex(th_out)}});
  const std::vector<Bytes> o2 = {draw(rng, 3), Bytes{}};
  const std::vector<Bytes> k2 = {draw(rng, 70), draw(rng, 1)};
  cases.push_back(Json{{"offers", Json{hex(o2[0]), hex(o2[1])}},
                       {"key_shares", Json{hex(k2[0]), hex(k2[1])}},
                       {"output", hex(ks::setup_transcript_hash(o2, k2))}});
  return cases;
}

Result<Json> key_confirm_cases(const KsSetup& st, const Hash32& th, Rng& rng) {
  Json cases = Json::array();
  MPOTR_TRY(Hash32 kc, ks::key_confirm(st.group, th));
  cases.push_back(Json{{"group_secret", hex(st.group)}, {"transcript_hash", hex(th)}, {"output", hex(kc)}});
  const SecretBytes g2 = rng.secret(32);
  const Hash32 th2 = rng.array<32>();
  MPOTR_TRY(Hash32 kc2, ks::key_confirm(g2, th2));
  cases.push_back(Json{{"group_secret", hex(g2)}, {"transcript_hash", hex(th2)}, {"output", hex(kc2)}});
  return cases;
}

// K_auth = HKDF-Expand(G, "mpotr-v2 auth", 32) (§5.16), for the setup's group secret and another.
Result<Json> auth_key_cases(KsSetup& st, Rng& rng) {
  Json cases = Json::array();
  MPOTR_TRY(st.auth, ks::auth_key(st.group));
  cases.push_back(Json{{"group_secret", hex(st.group)}, {"output", hex(st.auth)}});
  const SecretBytes g2 = rng.secret(32);
  MPOTR_TRY(SecretBytes auth2, ks::auth_key(g2));
  cases.push_back(Json{{"group_secret", hex(g2)}, {"output", hex(auth2)}});
  for (const SecretBytes* g : {static_cast<const SecretBytes*>(&st.group), &g2}) {
    // Distinct from the other HKDF-Expand outputs of G (key confirmation, sender keys).
    MPOTR_TRY(SecretBytes confirm, crypto::hkdf_expand(g->view(), as_bytes(ks::kLabelConfirm), 32));
    MPOTR_TRY(SecretBytes auth, ks::auth_key(*g));
    if (confirm == auth) {
      return failure("auth_key: equals the confirmation key");
    }
  }
  return cases;
}

Result<Json> sender_key_cases(const KsSetup& st) {
  Json cases = Json::array();
  for (std::size_t s = 0; s < st.members.size(); ++s) {
    MPOTR_TRY(ks::SenderKey key, ks::sender_key(st.group, static_cast<std::uint8_t>(s)));
    Json ivs = Json::array();
    for (std::uint32_t seq : {1u, 2u, 255u, 256u, 65536u, kMaxMessagesPerSession, 4294967295u}) {
      ivs.push_back(Json{{"seq", seq}, {"iv", hex(ks::message_iv(key, seq))}});
    }
    cases.push_back(Json{{"group_secret", hex(st.group)},
                         {"sender", s},
                         {"key", hex(key.key)},
                         {"iv_prefix", hex(key.iv_prefix)},
                         {"message_ivs", ivs}});
  }
  return cases;
}

Json signed_digest_cases(const KsSetup& st, Rng& rng) {
  Json cases = Json::array();
  const Bytes alice_part = codec::encode_signed_part(st.shares[0]);
  const Hash32 other_sid = rng.array<32>();
  const Bytes random_part = draw(rng, 100);
  const std::vector<std::pair<Hash32, Bytes>> inputs = {
      {st.sid, Bytes{}}, {st.sid, alice_part}, {other_sid, random_part}};
  for (const auto& [s, part] : inputs) {
    cases.push_back(
        Json{{"session_id", hex(s)}, {"signed_part", hex(part)}, {"output", hex(ks::signed_digest(s, view(part)))}});
  }
  return cases;
}

// chain_start / chain_next over kChainEntries random message ids per sender.
constexpr std::size_t kChainEntries = 6;

Json chain_cases(KsSetup& st, Rng& rng) {
  const std::size_t n = st.members.size();
  st.ids.assign(n, {});
  st.chains.assign(n, {});
  Json cases = Json::array();
  for (std::size_t s = 0; s < n; ++s) {
    st.chains[s].push_back(ks::chain_start(st.sid, static_cast<std::uint8_t>(s)));
    Json entries = Json::array();
    for (std::size_t e = 0; e < kChainEntries; ++e) {
      st.ids[s].push_back(rng.array<32>());
      st.chains[s].push_back(ks::chain_next(st.chains[s].back(), st.ids[s].back()));
      entries.push_back(
          Json{{"seq", e + 1}, {"message_id", hex(st.ids[s].back())}, {"chain", hex(st.chains[s].back())}});
    }
    cases.push_back(
        Json{{"session_id", hex(st.sid)}, {"sender", s}, {"start", hex(st.chains[s].front())}, {"entries", entries}});
  }
  return cases;
}

// chain_lost(previous, first, last) = H(previous ‖ "mpotr-v2 lost" ‖ u32 first ‖ u32 last), with
// its 53-byte input written out.
Result<Json> chain_lost_cases(const KsSetup& st, Rng& rng) {
  struct LostCase {
    Hash32 previous;
    std::uint32_t first, last;
  };
  const std::vector<LostCase> inputs = {
      {st.chains[0][1], 2, 2},
      {st.chains[1][0], 1, 3},
      {st.chains[2][2], 3, kMaxMessagesPerSession},
      {rng.array<32>(), 4294967295u, 4294967295u},
  };
  Json cases = Json::array();
  for (const auto& c : inputs) {
    Bytes input(c.previous.begin(), c.previous.end());
    append(input, as_bytes(ks::kLabelLost));
    append(input, view(u32_be(c.first)));
    append(input, view(u32_be(c.last)));
    const Hash32 out = ks::chain_lost(c.previous, c.first, c.last);
    if (input.size() != 53 || crypto::sha256(view(input)) != out) {
      return failure("chain_lost: differs from H(previous ‖ label ‖ u32 first ‖ u32 last) of 53 bytes");
    }
    cases.push_back(Json{{"previous", hex(c.previous)},
                         {"first", c.first},
                         {"last", c.last},
                         {"input", hex(input)},
                         {"output", hex(out)}});
  }
  return cases;
}

Json view_digest_cases(const KsSetup& st) {
  Json cases = Json::array();
  const std::vector<std::vector<std::uint32_t>> count_sets = {{3, 3, 3}, {1, 0, 2}, {0, 0}};
  for (const auto& counts : count_sets) {
    std::vector<Hash32> at;
    for (std::size_t m = 0; m < counts.size(); ++m) {
      at.push_back(st.chains[m][counts[m]]);
    }
    cases.push_back(Json{{"counts", counts}, {"chains", hex_list(at)}, {"output", hex(ks::view_digest(counts, at))}});
  }
  return cases;
}

// How a receiver holds member m's entries when it computes its transcript digest (§5.13): m's
// final count, the maximal runs it never received, and the entries it declared lost (R-DATA-8)
// that arrived later, which it holds.
struct HeldEntries {
  std::uint32_t final_count = 0;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> lost;  // maximal runs first..last, ascending
  std::vector<std::uint32_t> late;
};

struct TranscriptShape {
  std::string name;
  std::string note;
  std::vector<HeldEntries> members;
};

std::vector<TranscriptShape> transcript_shapes() {
  // Each shape is one receiver's view at the end of a session whose final counts (from the
  // Shutdowns) are alice 6, bob 4, carol 5, except the last; they differ in what it holds. A
  // receiver always holds its own entries, so no shape has losses in all three members.
  return {
      {"intact", "every entry held: each closing chain is c_{m,final_m}", {{6, {}, {}}, {4, {}, {}}, {5, {}, {}}}},
      {"one-run", "bob's entries 2..3 never arrived: one lost step", {{6, {}, {}}, {4, {{2, 3}}, {}}, {5, {}, {}}}},
      {"two-runs",
       "alice's entries 2 and 4..5 never arrived: two lost steps, with entry 3 between them",
       {{6, {{2, 2}, {4, 5}}, {}}, {4, {}, {}}, {5, {}, {}}}},
      {"run-at-end",
       "carol's entries 3..5 never arrived (carol excused at the shutdown deadline): the chain ends in a lost step",
       {{6, {}, {}}, {4, {}, {}}, {5, {{3, 5}}, {}}}},
      {"runs-everywhere",
       "bob's view: alice's entries 1 and 6 and carol's entries 1..2 and 4..5 never arrived: lost steps at the "
       "start, at the end and in between",
       {{6, {{1, 1}, {6, 6}}, {}}, {4, {}, {}}, {5, {{1, 2}, {4, 5}}, {}}}},
      {"late-arrival",
       "alice's entry 2 was declared lost (R-DATA-8) and arrived later: it is held, so the digest equals 'intact'",
       {{6, {}, {2}}, {4, {}, {}}, {5, {}, {}}}},
      {"nothing-received",
       "alice wrote nothing (final count 0: the chain start), bob intact, and none of carol's 2^20 entries "
       "arrived: one lost step 1..1048576, one hash however long the run",
       {{0, {}, {}}, {4, {}, {}}, {kMaxMessagesPerSession, {{1, kMaxMessagesPerSession}}, {}}}},
  };
}

// The closing chain t_m of §5.13 computed from the spec text, step by step, and checked against
// the engine's own MemberTranscript fed the same arrivals and losses.
Result<Json> closing_chain_case(const KsSetup& st, std::size_t m, const HeldEntries& held, Hash32& t_out) {
  const Hash32 start = ks::chain_start(st.sid, static_cast<std::uint8_t>(m));
  Hash32 t = start;
  detail::MemberTranscript engine_view(start);
  Json steps = Json::array();
  std::size_t run = 0;
  for (std::uint32_t s = 1; s <= held.final_count; ++s) {
    if (run < held.lost.size() && held.lost[run].first == s) {
      const auto [first, last] = held.lost[run++];
      t = ks::chain_lost(t, first, last);
      engine_view.skip_to(last);
      steps.push_back(Json{{"lost_first", first}, {"lost_last", last}, {"chain", hex(t)}});
      s = last;
      continue;
    }
    if (s > st.ids[m].size()) {
      return failure("transcript shape: entry " + std::to_string(s) + " has no message id");
    }
    const Hash32& id = st.ids[m][s - 1];
    t = ks::chain_next(t, id);
    Json step{{"seq", s}, {"message_id", hex(id)}, {"chain", hex(t)}};
    if (std::find(held.late.begin(), held.late.end(), s) != held.late.end()) {
      engine_view.skip_to(s);  // declared lost first…
      step["late"] = true;
    } else {
      engine_view.append(id);
    }
    steps.push_back(std::move(step));
  }
  for (std::uint32_t s : held.late) {
    if (!engine_view.fill(s, st.ids[m][s - 1])) {  // …then it arrived
      return failure("transcript shape: late entry " + std::to_string(s) + " was not lost");
    }
  }
  if (engine_view.closing_chain(held.final_count) != t) {
    return failure("closing chain of member " + std::to_string(m) + ": MemberTranscript differs from §5.13");
  }
  if (held.lost.empty() && t != st.chains[m].at(held.final_count)) {
    return failure("closing chain of member " + std::to_string(m) + ": an intact chain is not c_{m,final}");
  }
  t_out = t;
  return Json{{"member", m}, {"final_count", held.final_count}, {"start", hex(start)}, {"steps", steps},
              {"closing_chain", hex(t)}};
}

// Receivers with the same final counts and the same losses agree; any difference in what they
// lost (or in the counts) gives another digest. A late arrival is held like any other entry.
Result<void> check_shapes_distinct(const std::vector<TranscriptShape>& shapes, const std::vector<Hash32>& outputs) {
  auto signature = [](const TranscriptShape& s) {
    std::vector<std::pair<std::uint32_t, std::vector<std::pair<std::uint32_t, std::uint32_t>>>> sig;
    for (const auto& h : s.members) {
      sig.emplace_back(h.final_count, h.lost);
    }
    return sig;
  };
  for (std::size_t a = 0; a < shapes.size(); ++a) {
    for (std::size_t b = a + 1; b < shapes.size(); ++b) {
      if ((outputs[a] == outputs[b]) != (signature(shapes[a]) == signature(shapes[b]))) {
        return failure("transcript_digest: cases '" + shapes[a].name + "' and '" + shapes[b].name +
                       "' should be " + (outputs[a] == outputs[b] ? "different" : "equal"));
      }
    }
  }
  return {};
}

Result<Json> transcript_digest_cases(KsSetup& st) {
  const std::vector<TranscriptShape> shapes = transcript_shapes();
  Json cases = Json::array();
  std::vector<Hash32> outputs;
  for (const auto& shape : shapes) {
    Json members = Json::array();
    std::vector<std::uint32_t> counts;
    std::vector<Hash32> chains;
    for (std::size_t m = 0; m < shape.members.size(); ++m) {
      Hash32 t{};
      MPOTR_TRY(Json c, closing_chain_case(st, m, shape.members[m], t));
      members.push_back(std::move(c));
      counts.push_back(shape.members[m].final_count);
      chains.push_back(t);
    }
    const Hash32 out = ks::transcript_digest(counts, chains);
    if (out == ks::view_digest(counts, chains)) {
      return failure("transcript_digest: equals the view digest of the same counts");
    }
    outputs.push_back(out);
    st.transcript_digests.emplace_back(shape.name, out);
    cases.push_back(Json{{"name", shape.name},
                         {"note", shape.note},
                         {"session_id", hex(st.sid)},
                         {"members", members},
                         {"counts", counts},
                         {"chains", hex_list(chains)},
                         {"output", hex(out)}});
  }
  MPOTR_CHECK(check_shapes_distinct(shapes, outputs));
  return cases;
}

Result<Hash32> transcript_digest_named(const KsSetup& st, std::string_view name) {
  for (const auto& [n, d] : st.transcript_digests) {
    if (n == name) {
      return d;
    }
  }
  return failure("no transcript_digest case '" + std::string(name) + "'");
}

// end_digest over the digests an End's sender holds (§5.14): each named by the transcript_digest
// case it comes from, or absent (excused at the deadline).
Result<Json> end_digest_cases(const KsSetup& st) {
  struct EndCase {
    std::string name;
    std::string note;
    std::vector<std::optional<std::string>> digests;  // transcript_digest case per member
  };
  const std::vector<EndCase> inputs = {
      {"all-present", "every member's Digest held and equal: a consistent shutdown", {"intact", "intact", "intact"}},
      {"excused-member", "carol excused at the deadline without a Digest: present = {0, 1}",
       {"intact", "intact", std::nullopt}},
      {"excused-member-broken-chain",
       "carol excused; alice and bob both lost carol's entries 3..5 (case run-at-end): their digests agree, "
       "and both step over that run",
       {"run-at-end", "run-at-end", std::nullopt}},
      {"different-losses",
       "carol excused; alice and bob lost different entries (alice's digest is case run-at-end, bob's "
       "runs-everywhere), so their digests differ",
       {"run-at-end", "runs-everywhere", std::nullopt}},
      {"own-only", "bob excused both others: only its own digest", {std::nullopt, "intact", std::nullopt}},
  };
  Json cases = Json::array();
  for (const auto& c : inputs) {
    std::vector<std::optional<Hash32>> digests;
    codec::MemberSet present;
    Json list = Json::array();
    Bytes input(ks::kLabelEnd.begin(), ks::kLabelEnd.end());
    for (std::size_t m = 0; m < c.digests.size(); ++m) {
      Json entry{{"member", m}, {"present", c.digests[m].has_value()}};
      if (c.digests[m]) {
        MPOTR_TRY(Hash32 d, transcript_digest_named(st, *c.digests[m]));
        digests.emplace_back(d);
        present.set(m);
        entry["digest"] = hex(d);
        entry["transcript_case"] = *c.digests[m];
      } else {
        digests.emplace_back(std::nullopt);
        entry["digest"] = nullptr;
      }
      input.push_back(c.digests[m] ? 1 : 0);
      append(input, view(digests.back().value_or(Hash32{})));
      list.push_back(std::move(entry));
    }
    const Hash32 out = ks::end_digest(digests);
    if (crypto::sha256(view(input)) != out) {
      return failure("end_digest: differs from H(label ‖ for m: u8 present ‖ digest)");
    }
    cases.push_back(Json{{"name", c.name},
                         {"note", c.note},
                         {"digests", list},
                         {"present", hex(present.bits)},
                         {"input", hex(input)},
                         {"output", hex(out)}});
  }
  return cases;
}

// --- message_mac over real encoded messages of the setup's session ----------------------------

// Fills in the group MAC and the signature of a session message (MAC first: it is part of the
// signed bytes), then checks what the decoder sees.
template <class M>
Result<Bytes> seal_message(M& m, const KsSetup& st, std::size_t sender, std::uint64_t rng_seed) {
  m.mac = ks::message_mac(st.auth, view(codec::encode_mac_part(m)));
  const Bytes signed_part = codec::encode_signed_part(m);
  MPOTR_TRY(m.signature,
            sign_checked(st.members[sender].signing, ks::signed_digest(st.sid, view(signed_part)), rng_seed, nullptr));
  Bytes encoding = codec::encode(m);
  MPOTR_TRY(codec::Decoded d, codec::decode(view(encoding)));
  if (d.mac_len != codec::encode_mac_part(m).size() || d.signed_len != signed_part.size()) {
    return failure("message_mac: the decoder's mac_len or signed_len differs from the encoder's");
  }
  return encoding;
}

Json mac_case(std::string_view name, const KsSetup& st, std::size_t sender, const Bytes& encoding) {
  const codec::Decoded d = codec::decode(view(encoding)).value();
  const ByteView mac_part = ByteView(encoding).first(d.mac_len);
  return Json{{"name", name},
              {"type", codec::to_string(codec::peek_type(view(encoding)).value())},
              {"sender", sender},
              {"signer_public_key", hex(st.members[sender].signing.public_key().point())},
              {"auth_key", hex(st.auth)},
              {"message", hex(encoding)},
              {"mac_len", d.mac_len},
              {"mac", hex(ks::message_mac(st.auth, mac_part))},
              {"signed_len", d.signed_len},
              {"signed_digest", hex(ks::signed_digest(st.sid, ByteView(encoding).first(d.signed_len)))}};
}

// A short real session: alice's first chat entry, bob's heartbeat acknowledging it, alice's
// Shutdown, carol's Quit, bob's Digest and alice's End (carol, who quit, is excused). Every
// field is what an engine would put there, so the cases double as a worked example.
Result<Json> message_mac_cases(const KsSetup& st) {
  const codec::SessionTag tag = ks::session_tag(st.sid);
  std::vector<Hash32> chain = {ks::chain_start(st.sid, 0), ks::chain_start(st.sid, 1), ks::chain_start(st.sid, 2)};
  std::uint64_t seed = kKeyScheduleSeed + 20;
  Json cases = Json::array();

  const std::string text = "hello from alice";
  MPOTR_TRY(ks::SenderKey alice_key, ks::sender_key(st.group, 0));
  codec::Data data;
  data.session_tag = tag;
  data.sender = 0;
  data.seq = 1;
  data.acks = {0, 0};
  data.view_digest = ks::view_digest({0, 0, 0}, chain);
  data.ciphertext.resize(text.size());
  MPOTR_CHECK(
      crypto::aes128_ctr(alice_key.key.view(), ks::message_iv(alice_key, 1), as_bytes(text), data.ciphertext.data()));
  MPOTR_TRY(const Bytes data_bytes, seal_message(data, st, 0, seed++));
  Json data_case = mac_case("data", st, 0, data_bytes);
  data_case["text"] = text;
  data_case["iv"] = hex(ks::message_iv(alice_key, 1));
  data_case["view_counts"] = std::vector<std::uint32_t>{0, 0, 0};
  cases.push_back(std::move(data_case));
  chain[0] = ks::chain_next(chain[0], ks::signed_digest(st.sid, view(codec::encode_signed_part(data))));

  codec::Data heartbeat;
  heartbeat.type = codec::MessageType::Heartbeat;
  heartbeat.session_tag = tag;
  heartbeat.sender = 1;
  heartbeat.seq = 1;
  heartbeat.acks = {1, 0};
  heartbeat.view_digest = ks::view_digest({1, 0, 0}, chain);
  MPOTR_TRY(const Bytes heartbeat_bytes, seal_message(heartbeat, st, 1, seed++));
  Json heartbeat_case = mac_case("heartbeat", st, 1, heartbeat_bytes);
  heartbeat_case["view_counts"] = std::vector<std::uint32_t>{1, 0, 0};
  cases.push_back(std::move(heartbeat_case));
  chain[1] = ks::chain_next(chain[1], ks::signed_digest(st.sid, view(codec::encode_signed_part(heartbeat))));

  codec::Shutdown shutdown;
  shutdown.session_tag = tag;
  shutdown.sender = 0;
  shutdown.final_count = 1;
  MPOTR_TRY(const Bytes shutdown_bytes, seal_message(shutdown, st, 0, seed++));
  cases.push_back(mac_case("shutdown", st, 0, shutdown_bytes));

  codec::Quit quit;
  quit.session_tag = tag;
  quit.sender = 2;
  quit.final_count = 0;
  MPOTR_TRY(const Bytes quit_bytes, seal_message(quit, st, 2, seed++));
  cases.push_back(mac_case("quit", st, 2, quit_bytes));

  codec::Digest digest;
  digest.session_tag = tag;
  digest.sender = 1;
  digest.transcript_digest = ks::transcript_digest({1, 1, 0}, chain);
  MPOTR_TRY(const Bytes digest_bytes, seal_message(digest, st, 1, seed++));
  cases.push_back(mac_case("digest", st, 1, digest_bytes));

  codec::End end;
  end.session_tag = tag;
  end.sender = 0;
  end.present.set(0);
  end.present.set(1);
  end.digests_hash = ks::end_digest({digest.transcript_digest, digest.transcript_digest, std::nullopt});
  MPOTR_TRY(const Bytes end_bytes, seal_message(end, st, 0, seed++));
  cases.push_back(mac_case("end", st, 0, end_bytes));
  return cases;
}

Result<Json> generate_key_schedule() {
  Json doc = header(
      "Known answers for every derivation of spec/mpotr.md section 5, from "
      "fixed inputs. The cases share one 3-member setup (alice=0, bob=1, carol=2 in "
      "room@conference.localhost, attempt 0) whose scalars, nonces and secrets were drawn from "
      "DeterministicRng(seed); every input is given explicitly, so no case needs the RNG. dake_keys: "
      "K_{from->to} = HKDF(salt = sid, IKM = DH(A_from, E_to) || DH(E_from, E_to), info = \"mpotr-v2 "
      "pairwise\" || u8 from || u8 to, 32); the sender computes the DH values as a_from*E_to and "
      "e_from*E_to, the receiver (or anyone shown e_to) as e_to*A_from and e_to*E_from, and both get "
      "`key`. transcript_digest: each member's closing chain over its final count, step by step "
      "(entries held step H(t || id), maximal lost runs H(t || \"mpotr-v2 lost\" || u32 first || u32 "
      "last)). end_digest: `input` is the exact hashed byte string. message_mac: real encoded messages "
      "of the setup's session; mac = HMAC(auth_key, message[0:mac_len]) and equals the 32 bytes at "
      "message[mac_len:mac_len+32].",
      kKeyScheduleSeed);
  DeterministicRng rng(kKeyScheduleSeed);

  KsSetup st;
  MPOTR_TRY(st.members, draw_members(rng));
  doc["roster_digest"] = roster_digest_cases();
  const Hash32 roster3 = ks::roster_digest(kRoom, {"alice", "bob", "carol"});
  for (const auto& m : st.members) {
    st.offers.push_back(offer_of(m, roster3, 0));
  }
  st.sid = ks::session_id(kRoom, st.offers);
  doc["session_id"] = session_id_cases(st.offers);
  MPOTR_TRY(doc["dake_keys"], dake_key_cases(st));
  Json mac_cases = Json::array();
  Json pad_cases = Json::array();
  MPOTR_CHECK(key_share_cases(st, mac_cases, pad_cases));
  doc["dake_mac"] = mac_cases;
  doc["elgamal_pad"] = pad_cases;
  doc["commit"] = commit_cases(st, rng);
  doc["group_secret"] = group_secret_cases(st, rng);
  Hash32 th{};
  MPOTR_TRY(doc["setup_transcript_hash"], transcript_hash_cases(st, rng, th));
  MPOTR_TRY(doc["key_confirm"], key_confirm_cases(st, th, rng));
  MPOTR_TRY(doc["auth_key"], auth_key_cases(st, rng));
  MPOTR_TRY(doc["sender_key"], sender_key_cases(st));
  doc["signed_digest"] = signed_digest_cases(st, rng);
  doc["chain"] = chain_cases(st, rng);
  MPOTR_TRY(doc["chain_lost"], chain_lost_cases(st, rng));
  doc["view_digest"] = view_digest_cases(st);
  MPOTR_TRY(doc["transcript_digest"], transcript_digest_cases(st));
  MPOTR_TRY(doc["end_digest"], end_digest_cases(st));
  MPOTR_TRY(doc["message_mac"], message_mac_cases(st));
  return doc;
}

// ============================================================================================
// messages.json
// ============================================================================================

Json offer_fields(const codec::Offer& m) {
  Json j;
  j["roster_digest"] = hex(m.roster_digest);
  put_attempt(j, m);
  j["nick"] = m.nick;
  j["nonce"] = hex(m.nonce);
  j["identity_key"] = hex(m.identity_key);
  j["dh_key"] = hex(m.dh_key);
  j["signing_key"] = hex(m.signing_key);
  return j;
}

Json key_share_fields(const codec::KeyShare& m) {
  Json shares = Json::array();
  for (const auto& s : m.shares) {
    shares.push_back(Json{{"mac", hex(s.mac)}, {"secret_ct", hex(s.secret_ct)}});
  }
  return Json{{"session_id", hex(m.session_id)},
              {"sender", m.sender},
              {"elgamal_r", hex(m.elgamal_r)},
              {"commit", hex(m.commit)},
              {"refused", hex(m.refused.bits)},
              {"shares", shares},
              {"signature", hex(m.signature)}};
}

Json attest_fields(const codec::Attest& m) {
  return Json{{"session_id", hex(m.session_id)},
              {"sender", m.sender},
              {"transcript_hash", hex(m.transcript_hash)},
              {"key_confirm", hex(m.key_confirm)},
              {"signature", hex(m.signature)}};
}

Json accuse_fields(const codec::Accuse& m) {
  return Json{{"session_id", hex(m.session_id)},
              {"sender", m.sender},
              {"accused", m.accused},
              {"dh_private", hex(m.dh_private)},
              {"key_share", hex(m.key_share)},
              {"signature", hex(m.signature)}};
}

Json data_fields(const codec::Data& m) {
  return Json{{"session_tag", hex(m.session_tag)},
              {"sender", m.sender},
              {"seq", m.seq},
              {"acks", m.acks},
              {"view_digest", hex(m.view_digest)},
              {"ciphertext", hex(m.ciphertext)},
              {"mac", hex(m.mac)},
              {"signature", hex(m.signature)}};
}

Json shutdown_fields(const codec::Shutdown& m) {
  return Json{{"session_tag", hex(m.session_tag)},
              {"sender", m.sender},
              {"final_count", m.final_count},
              {"mac", hex(m.mac)},
              {"signature", hex(m.signature)}};
}

Json digest_fields(const codec::Digest& m) {
  return Json{{"session_tag", hex(m.session_tag)},
              {"sender", m.sender},
              {"transcript_digest", hex(m.transcript_digest)},
              {"mac", hex(m.mac)},
              {"signature", hex(m.signature)}};
}

Json end_fields(const codec::End& m) {
  return Json{{"session_tag", hex(m.session_tag)},
              {"sender", m.sender},
              {"present", hex(m.present.bits)},
              {"digests_hash", hex(m.digests_hash)},
              {"mac", hex(m.mac)},
              {"signature", hex(m.signature)}};
}

Json key_reveal_fields(const codec::KeyReveal& m) {
  return Json{{"session_tag", hex(m.session_tag)}, {"sender", m.sender}, {"private_key", hex(m.private_key)}};
}

Json quit_fields(const codec::Quit& m) {
  return Json{{"session_tag", hex(m.session_tag)},
              {"sender", m.sender},
              {"final_count", m.final_count},
              {"mac", hex(m.mac)},
              {"signature", hex(m.signature)}};
}

// What signs and MACs the messages of messages.json: one session id, one signing key and the
// group authentication key of one (random) group secret.
struct MessageKeys {
  Hash32 sid{};
  crypto::PrivateKey signing;
  SecretBytes group;
  SecretBytes auth;
};

// Fills in the group MAC (messages that carry one), then the signature, in place, and returns
// the case: fields, exact encoding, the lengths the decoder reports, and how to check and
// reproduce the MAC and the signature.
template <class M>
Result<Json> signed_case(std::string_view name, std::string_view type, M& m, const MessageKeys& keys,
                         std::uint64_t rng_seed, Json (*fields)(const M&)) {
  constexpr bool authed = requires { m.mac; };
  std::size_t mac_len = 0;
  if constexpr (authed) {
    const Bytes mac_part = codec::encode_mac_part(m);
    m.mac = ks::message_mac(keys.auth, view(mac_part));
    mac_len = mac_part.size();
  }
  const Bytes signed_part = codec::encode_signed_part(m);
  const Hash32 digest = ks::signed_digest(keys.sid, view(signed_part));
  HedgedNonce nonce;
  MPOTR_TRY(m.signature, sign_checked(keys.signing, digest, rng_seed, &nonce));
  const Bytes encoding = codec::encode(m);
  MPOTR_TRY(codec::Decoded decoded, codec::decode(view(encoding)));
  if (decoded.signed_len != signed_part.size() || decoded.mac_len != mac_len) {
    return failure(std::string(name) + ": decoded signed or MAC'd length differs from the encoder's");
  }
  Json c;
  c["name"] = name;
  c["type"] = type;
  c["fields"] = fields(m);
  c["encoding"] = hex(encoding);
  c["signed_len"] = signed_part.size();
  c["mac_len"] = mac_len;
  c["signature_check"] = Json{{"session_id", hex(keys.sid)},
                              {"signer_private_key", hex(keys.signing.scalar())},
                              {"signer_public_key", hex(keys.signing.public_key().point())},
                              {"signed_digest", hex(digest)},
                              {"rng_seed", rng_seed},
                              {"rnd32", hex(nonce.rnd32)},
                              {"nonce_counter", nonce.counter},
                              {"k", hex(nonce.k)}};
  if constexpr (authed) {
    c["mac_check"] = Json{{"group_secret", hex(keys.group)}, {"auth_key", hex(keys.auth)}};
  }
  return c;
}

Json unsigned_case(std::string_view name, std::string_view type, const Json& fields, const Bytes& encoding) {
  return Json{{"name", name},
              {"type", type},
              {"fields", fields},
              {"encoding", hex(encoding)},
              {"signed_len", encoding.size()},
              {"mac_len", 0}};
}

codec::MemberSet member_set(std::initializer_list<std::size_t> members) {
  codec::MemberSet s;
  for (std::size_t m : members) {
    s.set(m);
  }
  return s;
}

// The valid encodings later cases mutate into invalid ones.
struct MessageSamples {
  Bytes offer, key_share_2, key_share_3, accuse, data, heartbeat, shutdown, digest, end, key_reveal, quit;
};

Result<Json> offer_cases(Rng& rng, const crypto::PrivateKey& identity, const crypto::PrivateKey& dh,
                         const crypto::PrivateKey& signing, MessageSamples& samples) {
  Json cases = Json::array();
  std::uint32_t attempt = 0;
  for (const std::string& nick : {std::string("alice"), std::string("zo\xc3\xab \xe2\x98\x83"), std::string(64, 'n')}) {
    codec::Offer o;
    o.roster_digest = rng.array<32>();
    set_attempt(o, attempt);
    attempt = attempt == 0 ? 1 : 0xfffffffeu;
    o.nick = nick;
    o.nonce = rng.array<32>();
    o.identity_key = identity.public_key().point();
    o.dh_key = dh.public_key().point();
    o.signing_key = signing.public_key().point();
    const Bytes enc = codec::encode(o);
    if (samples.offer.empty()) {
      samples.offer = enc;
    }
    const std::string name = nick == "alice"     ? "offer/basic"
                             : nick.size() == 64 ? "offer/64-byte-nick"
                                                 : "offer/utf8-nick";
    cases.push_back(unsigned_case(name, "offer", offer_fields(o), enc));
  }
  return cases;
}

Result<void> setup_cases(Rng& rng, const MessageKeys& keys, const crypto::PrivateKey& dh,
                         const crypto::PrivateKey& elgamal_r, std::uint64_t& sig_seed, MessageSamples& samples,
                         Json& cases) {
  struct ShareSpec {
    std::string name;
    std::size_t members;
    codec::MemberSet refused;
    std::string note;
  };
  const std::vector<ShareSpec> specs = {
      {"key_share/2-members", 2, {}, ""},
      {"key_share/3-members", 3, {}, ""},
      {"key_share/5-members-refusing", 5, member_set({0, 3}),
       "the sender (4) refuses members 0 and 3 (R-ADM-1): refused = bits 0 and 3 of byte 0"},
      {"key_share/refused-beyond-roster", 3, member_set({2, 127}),
       "refused names the sender itself (2) and member 127 of a 3-member roster: decoding accepts it "
       "(it never checks a MemberSet against the roster, section 4.9); the engine rejects it with "
       "DecodeBadValue (R-KS-5)"},
  };
  for (const auto& spec : specs) {
    codec::KeyShare k;
    k.session_id = keys.sid;
    k.sender = static_cast<std::uint8_t>(spec.members - 1);
    k.elgamal_r = elgamal_r.public_key().point();
    k.commit = rng.array<32>();
    k.refused = spec.refused;
    for (std::size_t i = 0; i + 1 < spec.members; ++i) {
      codec::PairShare s;
      s.mac = rng.array<32>();
      s.secret_ct = rng.array<32>();
      k.shares.push_back(s);
    }
    MPOTR_TRY(Json c, signed_case<codec::KeyShare>(spec.name, "key_share", k, keys, sig_seed++, &key_share_fields));
    if (!spec.note.empty()) {
      c["note"] = spec.note;
    }
    if (spec.name == "key_share/2-members") {
      samples.key_share_2 = codec::encode(k);
    }
    if (spec.name == "key_share/3-members") {
      samples.key_share_3 = codec::encode(k);
    }
    cases.push_back(std::move(c));
  }

  for (std::uint8_t sender : {std::uint8_t{0}, std::uint8_t{2}}) {
    codec::Attest a;
    a.session_id = keys.sid;
    a.sender = sender;
    a.transcript_hash = rng.array<32>();
    a.key_confirm = rng.array<32>();
    MPOTR_TRY(Json c, signed_case<codec::Attest>("attest/sender-" + std::to_string(sender), "attest", a, keys,
                                                 sig_seed++, &attest_fields));
    cases.push_back(std::move(c));
  }

  // Accusations embed the accused's key share whole, signature included (R-KS-13).
  const SecretBytes e = dh.scalar();
  for (const Bytes* embedded : {&samples.key_share_3, &samples.key_share_2}) {
    codec::Accuse acc;
    acc.session_id = keys.sid;
    acc.sender = 0;
    acc.accused = embedded == &samples.key_share_3 ? 2 : 1;
    std::copy_n(e.data(), acc.dh_private.size(), acc.dh_private.begin());
    acc.key_share = *embedded;
    const std::string name = "accuse/" + std::string(embedded == &samples.key_share_3 ? "3" : "2") + "-members";
    MPOTR_TRY(Json c, signed_case<codec::Accuse>(name, "accuse", acc, keys, sig_seed++, &accuse_fields));
    c["note"] = "key_share is the encoding of case key_share/" +
                std::string(embedded == &samples.key_share_3 ? "3" : "2") +
                "-members; dh_private is the accuser's ephemeral DH scalar (its public point: " +
                hex(dh.public_key().point()) + ")";
    if (samples.accuse.empty()) {
      samples.accuse = codec::encode(acc);
    }
    cases.push_back(std::move(c));
  }
  return {};
}

Result<void> entry_cases(Rng& rng, const MessageKeys& keys, std::uint64_t& sig_seed, MessageSamples& samples,
                         Json& cases) {
  struct DataSpec {
    std::string name;
    codec::MessageType type;
    std::uint8_t sender;
    std::uint32_t seq;
    std::vector<std::uint32_t> acks;
    std::size_t text_len;
  };
  const std::vector<DataSpec> data_specs = {
      {"data/3-members", codec::MessageType::Data, 0, 1, {0, 0}, 5},
      {"data/varint-acks", codec::MessageType::Data, 2, 300, {127, 128, 16383, 16384, kMaxMessagesPerSession}, 300},
      {"data/max-seq", codec::MessageType::Data, 1, kMaxMessagesPerSession, {kMaxMessagesPerSession}, 1},
      {"heartbeat/3-members", codec::MessageType::Heartbeat, 1, 2, {1, 1}, 0},
      {"heartbeat/2-members", codec::MessageType::Heartbeat, 0, 7, {0}, 0},
  };
  const codec::SessionTag tag = ks::session_tag(keys.sid);
  for (const auto& spec : data_specs) {
    codec::Data d;
    d.type = spec.type;
    d.session_tag = tag;
    d.sender = spec.sender;
    d.seq = spec.seq;
    d.acks = spec.acks;
    d.view_digest = rng.array<32>();
    d.ciphertext = draw(rng, spec.text_len);
    const std::string type(codec::to_string(spec.type));
    MPOTR_TRY(Json c, signed_case<codec::Data>(spec.name, type, d, keys, sig_seed++, &data_fields));
    if (spec.name == "data/3-members") {
      samples.data = codec::encode(d);
    }
    if (spec.name == "heartbeat/3-members") {
      samples.heartbeat = codec::encode(d);
    }
    cases.push_back(std::move(c));
  }
  return {};
}

Result<void> shutdown_cases(Rng& rng, const MessageKeys& keys, std::uint64_t& sig_seed, MessageSamples& samples,
                            Json& cases) {
  const codec::SessionTag tag = ks::session_tag(keys.sid);
  for (std::uint32_t final_count : {0u, 70000u, kMaxMessagesPerSession}) {
    codec::Shutdown s;
    s.session_tag = tag;
    s.sender = 1;
    s.final_count = final_count;
    MPOTR_TRY(Json c, signed_case<codec::Shutdown>("shutdown/final-" + std::to_string(final_count), "shutdown", s, keys,
                                                   sig_seed++, &shutdown_fields));
    if (samples.shutdown.empty()) {
      samples.shutdown = codec::encode(s);
    }
    cases.push_back(std::move(c));
  }

  for (std::uint8_t sender : {std::uint8_t{0}, std::uint8_t{127}}) {
    codec::Digest dg;
    dg.session_tag = tag;
    dg.sender = sender;
    dg.transcript_digest = rng.array<32>();
    MPOTR_TRY(Json c, signed_case<codec::Digest>("digest/sender-" + std::to_string(sender), "digest", dg, keys,
                                                 sig_seed++, &digest_fields));
    if (samples.digest.empty()) {
      samples.digest = codec::encode(dg);
    }
    cases.push_back(std::move(c));
  }

  struct EndSpec {
    std::uint8_t sender;
    codec::MemberSet present;
    std::string note;
  };
  const std::vector<EndSpec> ends = {
      {0, member_set({0, 1, 2}), "3 members, every digest held: present = bits 0..2"},
      {5, member_set({0, 1, 2, 4, 5, 9}), "10 members, 3 and 6..8 excused: present spans two bytes"},
  };
  for (const auto& spec : ends) {
    codec::End en;
    en.session_tag = tag;
    en.sender = spec.sender;
    en.present = spec.present;
    en.digests_hash = rng.array<32>();
    MPOTR_TRY(Json c, signed_case<codec::End>("end/sender-" + std::to_string(spec.sender), "end", en, keys, sig_seed++,
                                              &end_fields));
    c["note"] = spec.note;
    if (samples.end.empty()) {
      samples.end = codec::encode(en);
    }
    cases.push_back(std::move(c));
  }

  // key_reveal: unsigned; the scalar must match the signer's registered public key.
  for (std::uint8_t sender : {std::uint8_t{1}, std::uint8_t{2}}) {
    codec::KeyReveal kr;
    kr.session_tag = tag;
    kr.sender = sender;
    const SecretBytes scalar = keys.signing.scalar();
    std::copy_n(scalar.data(), kr.private_key.size(), kr.private_key.begin());
    const Bytes enc = codec::encode(kr);
    if (samples.key_reveal.empty()) {
      samples.key_reveal = enc;
    }
    Json c = unsigned_case("key_reveal/sender-" + std::to_string(sender), "key_reveal", key_reveal_fields(kr), enc);
    c["key_check"] = Json{{"public_key", hex(keys.signing.public_key().point())}};
    cases.push_back(std::move(c));
  }

  const std::pair<std::uint8_t, std::uint32_t> quits[] = {{2, 0}, {0, 12}};
  for (const auto& [sender, final_count] : quits) {
    codec::Quit q;
    q.session_tag = tag;
    q.sender = sender;
    q.final_count = final_count;
    MPOTR_TRY(Json c, signed_case<codec::Quit>("quit/final-" + std::to_string(final_count), "quit", q, keys, sig_seed++,
                                               &quit_fields));
    if (samples.quit.empty()) {
      samples.quit = codec::encode(q);
    }
    cases.push_back(std::move(c));
  }
  return {};
}

Bytes mutated(Bytes b, std::size_t pos, std::uint8_t value) {
  b.at(pos) = value;
  return b;
}

Bytes truncated(Bytes b, std::size_t drop) {
  b.resize(b.size() - drop);
  return b;
}

Bytes extended(Bytes b) {
  b.push_back(0x00);
  return b;
}

// A u32 field rewritten in place (seq, final_count): decoding never checks the MAC or signature.
Bytes with_u32(Bytes b, std::size_t at, std::uint32_t value) {
  const Bytes v = u32_be(value);
  std::copy(v.begin(), v.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
  return b;
}

// The data sample with its first ack (the 1-byte varint 0x00 at offset 16) replaced by `varint`.
Bytes with_first_ack(const Bytes& data, const Bytes& varint) {
  constexpr std::size_t kFirstAck = 2 + 8 + 1 + 4 + 1;
  Bytes b(data.begin(), data.begin() + kFirstAck);
  append(b, view(varint));
  b.insert(b.end(), data.begin() + kFirstAck + 1, data.end());
  return b;
}

// Offsets in the samples (all fixed-size prefixes): header 2, tag 8, sender 1.
constexpr std::size_t kSeqAt = 2 + 8 + 1;
constexpr std::size_t kFinalCountAt = 2 + 8 + 1;
constexpr std::size_t kAccusedAt = 2 + 32 + 1;

Result<Json> invalid_cases(const MessageSamples& s) {
  Json invalid = Json::array();
  auto add = [&invalid](std::string_view name, const Bytes& encoding) -> Result<void> {
    auto r = codec::decode(view(encoding));
    if (r.ok()) {
      return failure(std::string(name) + ": the invalid encoding decodes");
    }
    invalid.push_back(Json{{"name", name}, {"encoding", hex(encoding)}, {"error", to_string(r.error().code)}});
    return {};
  };
  MPOTR_CHECK(add("empty", Bytes{}));
  MPOTR_CHECK(add("version-only-1", Bytes{0x01}));
  MPOTR_CHECK(add("version-only-2", Bytes{0x02}));  // the right version, then no type
  MPOTR_CHECK(add("version-1", mutated(s.offer, 0, 0x01)));  // a version 1 offer
  MPOTR_CHECK(add("version-0", mutated(s.data, 0, 0x00)));
  MPOTR_CHECK(add("version-3", mutated(s.quit, 0, 0x03)));
  MPOTR_CHECK(add("unknown-type-0x30", mutated(s.offer, 1, 0x30)));
  MPOTR_CHECK(add("unknown-type-0x00", mutated(s.data, 1, 0x00)));
  MPOTR_CHECK(add("unknown-type-0x05", mutated(s.accuse, 1, 0x05)));
  MPOTR_CHECK(add("unknown-type-0x25", mutated(s.quit, 1, 0x25)));
  MPOTR_CHECK(add("offer/trailing-byte", extended(s.offer)));
  MPOTR_CHECK(add("offer/truncated", truncated(s.offer, 1)));
  {
    // Offsets from the end: nick "alice" (5 bytes), nonce and three points follow its length byte.
    const std::size_t identity_at = s.offer.size() - 3 * crypto::kPointLen;
    const std::size_t nick_len_at = identity_at - 32 - 5 - 1;
    Bytes b = s.offer;  // nick length 0: drop the nick and zero its length
    b[nick_len_at] = 0;
    b.erase(b.begin() + static_cast<std::ptrdiff_t>(nick_len_at + 1),
            b.begin() + static_cast<std::ptrdiff_t>(nick_len_at + 6));
    MPOTR_CHECK(add("offer/empty-nick", b));
    MPOTR_CHECK(add("offer/nick-length-65", mutated(s.offer, nick_len_at, 65)));  // over kMaxNickLen
    MPOTR_CHECK(add("offer/compressed-point", mutated(s.offer, identity_at, 0x02)));
  }
  {
    constexpr std::size_t kCountAt = 2 + 32 + 1 + 65 + 32 + codec::kMemberSetLen;
    Bytes b(s.key_share_3.begin(), s.key_share_3.begin() + kCountAt);
    b.push_back(0);
    append(b, ByteView(s.key_share_3).last(64));
    MPOTR_CHECK(add("key_share/zero-shares", b));
    MPOTR_CHECK(add("key_share/128-shares", mutated(s.key_share_3, kCountAt, 128)));
  }
  MPOTR_CHECK(add("key_share/truncated-signature", truncated(s.key_share_3, 1)));
  MPOTR_CHECK(add("accuse/accused-is-sender", mutated(s.accuse, kAccusedAt, s.accuse.at(kAccusedAt - 1))));
  {
    constexpr std::size_t kKeyShareAt = kAccusedAt + 1 + 32;  // its u16 length
    Bytes empty(s.accuse.begin(), s.accuse.begin() + kKeyShareAt);
    empty.push_back(0);
    empty.push_back(0);
    append(empty, ByteView(s.accuse).last(64));
    MPOTR_CHECK(add("accuse/empty-key-share", empty));
    MPOTR_CHECK(add("accuse/key-share-past-end", mutated(s.accuse, kKeyShareAt, 0xff)));
  }
  MPOTR_CHECK(add("data/seq-0", with_u32(s.data, kSeqAt, 0)));
  MPOTR_CHECK(add("data/seq-above-2^20", with_u32(s.data, kSeqAt, kMaxMessagesPerSession + 1)));
  MPOTR_CHECK(add("data/seq-2^32-1", with_u32(s.data, kSeqAt, 0xffffffffu)));
  MPOTR_CHECK(add("data/ack-above-2^20", with_first_ack(s.data, Bytes{0x81, 0x80, 0x40})));  // 2^20 + 1
  MPOTR_CHECK(add("data/non-minimal-varint", with_first_ack(s.data, Bytes{0x80, 0x00})));
  MPOTR_CHECK(add("data/varint-2^32", with_first_ack(s.data, Bytes{0x80, 0x80, 0x80, 0x80, 0x10})));
  MPOTR_CHECK(add("data/varint-6-bytes", with_first_ack(s.data, Bytes{0x80, 0x80, 0x80, 0x80, 0x80, 0x00})));
  MPOTR_CHECK(add("data/empty-ciphertext", [&] {
    Bytes b = s.data;
    const std::size_t len_at = 2 + 8 + 1 + 4 + 1 + 2 + 32;
    b[len_at] = 0;
    b[len_at + 1] = 0;
    b.erase(b.begin() + static_cast<std::ptrdiff_t>(len_at + 2),
            b.begin() + static_cast<std::ptrdiff_t>(len_at + 2 + 5));
    return b;
  }()));
  MPOTR_CHECK(add("data/truncated-mac", truncated(s.data, 64 + 1)));
  MPOTR_CHECK(
      add("heartbeat/carries-text", mutated(s.data, 1, static_cast<std::uint8_t>(codec::MessageType::Heartbeat))));
  MPOTR_CHECK(add("heartbeat/trailing-byte", extended(s.heartbeat)));
  MPOTR_CHECK(add("shutdown/truncated", truncated(s.shutdown, 65)));
  MPOTR_CHECK(add("shutdown/final-count-above-2^20", with_u32(s.shutdown, kFinalCountAt, kMaxMessagesPerSession + 1)));
  MPOTR_CHECK(add("digest/trailing-byte", extended(s.digest)));
  MPOTR_CHECK(add("end/truncated", truncated(s.end, 1)));
  MPOTR_CHECK(add("key_reveal/truncated", truncated(s.key_reveal, 1)));
  MPOTR_CHECK(add("key_reveal/trailing-byte", extended(s.key_reveal)));
  MPOTR_CHECK(add("quit/final-count-above-2^20", with_u32(s.quit, kFinalCountAt, kMaxMessagesPerSession + 1)));
  MPOTR_CHECK(add("quit/final-count-2^32-1", with_u32(s.quit, kFinalCountAt, 0xffffffffu)));
  MPOTR_CHECK(add("quit/truncated-signature", truncated(s.quit, 1)));
  return invalid;
}

Result<Json> generate_messages() {
  Json doc = header(
      "Wire encodings of every mpOTR v2 message type (spec/mpotr.md section 4): "
      "the decoded fields and the exact bytes. encode(fields) == encoding and decode(encoding) == "
      "fields; signed_len and mac_len are the lengths the decoder reports (signed_len = the whole "
      "payload for the unsigned offer and key_reveal, mac_len = 0 for messages without a MAC). Signed "
      "cases carry signature_check: the signature verifies under signer_public_key over "
      "signed_digest = SHA-256(\"mpotr-v2 signed\" || session_id || encoding[0:signed_len]) and is "
      "reproduced by the hedged nonce k = HMAC-SHA-256(signer_private_key, rnd32 || signed_digest || "
      "u32 nonce_counter), where rnd32 is the first 32-byte draw of DeterministicRng(rng_seed). Cases "
      "with a MAC carry mac_check: mac = HMAC-SHA-256(auth_key, encoding[0:mac_len]), auth_key = "
      "HKDF-Expand(group_secret, \"mpotr-v2 auth\", 32). MemberSet fields (refused, present) are 16 "
      "bytes, member i is bit (i mod 8) of byte floor(i/8). invalid: encodings that decode must "
      "reject, with the error code. Keys and fields were drawn from DeterministicRng(seed).",
      kMessagesSeed);
  DeterministicRng rng(kMessagesSeed);
  MPOTR_TRY(crypto::PrivateKey identity, crypto::PrivateKey::generate(rng));
  MPOTR_TRY(crypto::PrivateKey dh, crypto::PrivateKey::generate(rng));
  MessageKeys keys;
  MPOTR_TRY(keys.signing, crypto::PrivateKey::generate(rng));
  MPOTR_TRY(crypto::PrivateKey elgamal_r, crypto::PrivateKey::generate(rng));
  keys.sid = rng.array<32>();
  keys.group = rng.secret(32);
  MPOTR_TRY(keys.auth, ks::auth_key(keys.group));
  std::uint64_t sig_seed = kMessagesSeed + 100;

  MessageSamples samples;
  MPOTR_TRY(Json cases, offer_cases(rng, identity, dh, keys.signing, samples));
  MPOTR_CHECK(setup_cases(rng, keys, dh, elgamal_r, sig_seed, samples, cases));
  MPOTR_CHECK(entry_cases(rng, keys, sig_seed, samples, cases));
  MPOTR_CHECK(shutdown_cases(rng, keys, sig_seed, samples, cases));
  doc["cases"] = cases;
  MPOTR_TRY(doc["invalid"], invalid_cases(samples));
  return doc;
}

// ============================================================================================
// session.json
// ============================================================================================

struct Party {
  std::string nick;
  std::uint64_t identity_seed = 0;
  std::uint64_t rng_seed = 0;
  std::unique_ptr<DeterministicRng> rng;
  std::unique_ptr<Engine> engine;
  crypto::PrivateKey identity;
  Json events = Json::array();
};

struct Broadcast {
  std::size_t step = 0;
  std::optional<std::size_t> trigger;  // the broadcast whose delivery produced it
  std::string from;
  Bytes payload;
};

// Events whose code means something (events.h, spec Appendix B).
bool has_code(EventKind kind) {
  return kind == EventKind::SetupFailed || kind == EventKind::SetupTimeout || kind == EventKind::Rejected ||
         kind == EventKind::Refusing || kind == EventKind::MemberExcluded;
}

// The comparable form of an event: every field that is set, except the human-readable detail.
Json event_json(const Event& e, std::size_t step, std::optional<std::size_t> trigger) {
  Json j;
  j["step"] = step;
  j["trigger"] = trigger ? Json(*trigger) : Json(nullptr);
  j["kind"] = to_string(e.kind);
  if (has_code(e.kind)) {
    j["code"] = to_string(e.code);
  }
  if (!e.nick.empty()) {
    j["nick"] = e.nick;
  }
  if (!e.by.empty()) {
    j["by"] = e.by;
  }
  if (!e.nicks.empty()) {
    j["nicks"] = e.nicks;
  }
  if (e.seq != 0) {
    j["seq"] = e.seq;
  }
  if (e.seq_end != 0) {
    j["seq_end"] = e.seq_end;
  }
  if (!e.text.empty()) {
    j["text"] = e.text;
  }
  if (e.late) {
    j["late"] = true;
  }
  if (e.session_id != Hash32{}) {
    j["session_id"] = hex(e.session_id);
  }
  if (!e.data.empty()) {
    j["data"] = hex(e.data);
  }
  return j;
}

// The room: one FIFO of broadcasts, each delivered to every member in member order, the sender
// included (rooms reflect messages).
class Conversation {
 public:
  Result<void> add(std::string nick, std::uint64_t identity_seed, std::uint64_t rng_seed, const Timeouts& timeouts) {
    Party p;
    p.nick = std::move(nick);
    p.identity_seed = identity_seed;
    p.rng_seed = rng_seed;
    DeterministicRng id_rng(identity_seed);
    MPOTR_TRY(IdentityKey identity, IdentityKey::generate(id_rng));
    p.identity = identity.private_key();
    p.rng = std::make_unique<DeterministicRng>(rng_seed);
    p.engine = std::make_unique<Engine>(EngineConfig{std::string(kRoom), p.nick, timeouts}, std::move(identity));
    m_parties.push_back(std::move(p));
    return {};
  }

  std::vector<Party>& parties() { return m_parties; }
  const std::vector<Broadcast>& log() const { return m_log; }

  std::vector<Member> roster() const {
    std::vector<Member> r;
    for (const auto& p : m_parties) {
      r.push_back(Member{p.nick, p.nick + "@localhost"});
    }
    return r;
  }

  Result<void> step(std::size_t index, const Json& s) {
    const std::string op = s.at("op").get<std::string>();
    const TimeMs at = s.at("at").get<TimeMs>();
    if (op == "set_roster") {
      const auto r = roster();
      for (auto& p : m_parties) {
        MPOTR_CHECK(absorb(p, index, std::nullopt, p.engine->set_roster(r, at, *p.rng)));
      }
      return {};
    }
    if (op == "send_text") {
      MPOTR_TRY(Party * p, party(s.at("nick").get<std::string>()));
      return absorb(*p, index, std::nullopt, p->engine->send_text(s.at("text").get<std::string>(), at, *p->rng));
    }
    if (op == "leave") {
      MPOTR_TRY(Party * p, party(s.at("nick").get<std::string>()));
      return absorb(*p, index, std::nullopt, p->engine->leave(at, *p->rng));
    }
    if (op == "tick") {
      for (auto& p : m_parties) {
        MPOTR_CHECK(absorb(p, index, std::nullopt, p.engine->tick(at, *p.rng)));
      }
      return {};
    }
    if (op == "run") {
      std::size_t budget = 10000;
      while (m_next < m_log.size()) {
        if (budget-- == 0) {
          return failure("the conversation does not settle");
        }
        const std::size_t k = m_next++;
        const std::string from = m_log[k].from;
        const Bytes payload = m_log[k].payload;  // absorb() may grow m_log
        for (auto& p : m_parties) {
          MPOTR_CHECK(absorb(p, index, k, p.engine->receive(from, view(payload), at, *p.rng)));
        }
      }
      return {};
    }
    return failure("unknown script op '" + op + "'");
  }

 private:
  Result<Party*> party(const std::string& nick) {
    for (auto& p : m_parties) {
      if (p.nick == nick) {
        return &p;
      }
    }
    return failure("no member '" + nick + "'");
  }

  Result<void> absorb(Party& p, std::size_t step, std::optional<std::size_t> trigger, Result<Output> r) {
    if (!r.ok()) {
      return failure("step " + std::to_string(step) + ": " + p.nick + " returned " +
                     std::string(to_string(r.error().code)) + ": " + r.error().detail);
    }
    for (auto& b : r->broadcasts) {
      m_log.push_back(Broadcast{step, trigger, p.nick, std::move(b)});
    }
    for (const auto& e : r->events) {
      if (e.kind == EventKind::Rejected) {
        return failure("step " + std::to_string(step) + ": " + p.nick + " rejected a message: " + e.detail);
      }
      p.events.push_back(event_json(e, step, trigger));
    }
    return {};
  }

  std::vector<Party> m_parties;
  std::vector<Broadcast> m_log;
  std::size_t m_next = 0;
};

Json session_script() {
  Json s = Json::array();
  auto add = [&s](std::string op, TimeMs at, std::string nick = {}, std::string text = {}) {
    Json step;
    step["op"] = op;
    step["at"] = at;
    if (!nick.empty()) {
      step["nick"] = nick;
    }
    if (!text.empty()) {
      step["text"] = text;
    }
    s.push_back(std::move(step));
  };
  add("set_roster", 1000);  // offers
  add("run", 1000);         // key shares, attests: established
  add("send_text", 2000, "alice", "Hello from alice");
  add("send_text", 2000, "bob", "hi alice, bob here");
  add("run", 2000);
  add("send_text", 2500, "carol", "carol says h\xc3\xa9llo \xe2\x98\x83");
  add("run", 2500);
  add("tick", 7000);  // heartbeat interval after the first chat deliveries
  add("run", 7000);
  add("send_text", 8000, "bob", "second message from bob");
  add("run", 8000);
  add("leave", 9000, "alice");  // shutdown: shutdowns, digests, key reveals
  add("run", 9000);
  add("tick", 40000);  // long after: no timer left to fire
  add("run", 40000);
  return s;
}

struct Ephemeral {
  crypto::PrivateKey dh, signing, elgamal_r;
  SecretBytes secret;
  Hash32 nonce{};
};

template <class M>
Result<M> decode_as(const Bytes& payload, codec::Decoded* decoded_out = nullptr) {
  MPOTR_TRY(codec::Decoded d, codec::decode(view(payload)));
  const M* m = std::get_if<M>(&d.message);
  if (m == nullptr) {
    return failure("unexpected message type");
  }
  M out = *m;
  if (decoded_out != nullptr) {
    *decoded_out = std::move(d);
  }
  return out;
}

// The setup as the relay log shows it, per member.
struct SetupWire {
  std::vector<codec::Offer> offers;
  std::vector<Bytes> offer_bytes;
  std::vector<codec::KeyShare> shares;
  std::vector<Bytes> share_signed;  // the transcript covers signed parts
  std::vector<codec::Attest> attests;
};

std::size_t index_of(const std::vector<Party>& parties, const std::string& nick) {
  for (std::size_t i = 0; i < parties.size(); ++i) {
    if (parties[i].nick == nick) {
      return i;
    }
  }
  return parties.size();
}

// Each engine's ephemeral values, replayed from its rng: set_roster is its first use, and
// Attempt::start draws dh, signing, elgamal_r, then the secret and the offer nonce.
Result<std::vector<Ephemeral>> replay_ephemerals(const std::vector<Party>& parties) {
  std::vector<Ephemeral> eph(parties.size());
  for (std::size_t i = 0; i < parties.size(); ++i) {
    DeterministicRng r(parties[i].rng_seed);
    MPOTR_TRY(eph[i].dh, crypto::PrivateKey::generate(r));
    MPOTR_TRY(eph[i].signing, crypto::PrivateKey::generate(r));
    MPOTR_TRY(eph[i].elgamal_r, crypto::PrivateKey::generate(r));
    eph[i].secret = r.secret(32);
    eph[i].nonce = r.array<32>();
  }
  return eph;
}

Result<SetupWire> parse_setup(const Conversation& conv, const std::vector<Party>& parties,
                              const std::vector<Ephemeral>& eph) {
  const std::size_t n = parties.size();
  SetupWire w;
  w.offers.resize(n);
  w.offer_bytes.resize(n);
  w.shares.resize(n);
  w.share_signed.resize(n);
  w.attests.resize(n);
  for (const auto& b : conv.log()) {
    const std::size_t i = index_of(parties, b.from);
    MPOTR_TRY(codec::MessageType type, codec::peek_type(view(b.payload)));
    if (type == codec::MessageType::Offer) {
      MPOTR_TRY(w.offers[i], decode_as<codec::Offer>(b.payload));
      w.offer_bytes[i] = b.payload;
    } else if (type == codec::MessageType::KeyShare) {
      MPOTR_TRY(w.shares[i], decode_as<codec::KeyShare>(b.payload));
      w.share_signed[i] = codec::encode_signed_part(w.shares[i]);
    } else if (type == codec::MessageType::Attest) {
      MPOTR_TRY(w.attests[i], decode_as<codec::Attest>(b.payload));
    } else if (type == codec::MessageType::Accuse) {
      return failure("the conversation has an accusation: the setup failed");
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (w.offer_bytes[i].empty() || w.share_signed[i].empty()) {
      return failure(parties[i].nick + " sent no offer or no key share");
    }
    if (w.offers[i].nonce != eph[i].nonce || w.offers[i].dh_key != eph[i].dh.public_key().point() ||
        w.offers[i].signing_key != eph[i].signing.public_key().point() ||
        w.shares[i].elgamal_r != eph[i].elgamal_r.public_key().point() ||
        w.offers[i].identity_key != parties[i].identity.public_key().point()) {
      return failure(parties[i].nick +
                     ": the offer or key share does not match the ephemeral values replayed from "
                     "its rng (did Attempt::start change its draw order?)");
    }
  }
  return w;
}

// Member j's share for member i (§5.3–§5.5), recomputed from both ends: the DAKE key as j made it
// (a_j, e_j) and as i checks it (e_i alone), the MAC j sent, and the secret i recovers, which
// must open j's commitment. Returns the pair's intermediate values.
Result<Json> check_pair(const Hash32& sid, const SetupWire& w, const std::vector<Party>& parties,
                        const std::vector<Ephemeral>& eph, std::size_t j, std::size_t i) {
  const auto j8 = static_cast<std::uint8_t>(j);
  const auto i8 = static_cast<std::uint8_t>(i);
  const std::string what = parties[j].nick + " to " + parties[i].nick;
  const codec::PairShare& share = w.shares[j].shares.at(i < j ? i : i - 1);
  MPOTR_TRY(SecretBytes dh_a, parties[j].identity.ecdh(eph[i].dh.public_key()));
  MPOTR_TRY(SecretBytes dh_e, eph[j].dh.ecdh(eph[i].dh.public_key()));
  MPOTR_TRY(SecretBytes key, ks::dake_key(sid, j8, i8, dh_a, dh_e));
  MPOTR_TRY(SecretBytes key_to, ks::dake_key_to(sid, j8, i8, parties[j].identity, eph[j].dh, eph[i].dh.public_key()));
  MPOTR_TRY(SecretBytes key_from, ks::dake_key_from(sid, j8, i8, eph[i].dh, parties[j].identity.public_key(),
                                                    eph[j].dh.public_key()));
  if (!(key == key_to) || !(key == key_from)) {
    return failure("the DAKE key from " + what + " differs between the two sides");
  }
  const Hash32 mac = ks::dake_mac(key, sid, j8, i8, w.offers[j].signing_key, w.offers[j].dh_key, w.shares[j].elgamal_r);
  if (mac != share.mac) {
    return failure("the DAKE MAC from " + what + " does not match");
  }
  MPOTR_TRY(SecretBytes shared, eph[i].dh.ecdh(eph[j].elgamal_r.public_key()));
  MPOTR_TRY(SecretBytes pad, ks::elgamal_pad(sid, j8, i8, shared, w.shares[j].elgamal_r, w.offers[i].dh_key));
  SecretBytes recovered(32);
  for (std::size_t b = 0; b < 32; ++b) {
    recovered.data()[b] = static_cast<std::uint8_t>(share.secret_ct[b] ^ pad.data()[b]);
  }
  if (!(recovered == eph[j].secret) || ks::commit(sid, j8, recovered) != w.shares[j].commit) {
    return failure("the secret from " + what + " does not decrypt to " + parties[j].nick + "'s committed secret");
  }
  return Json{{"from", parties[j].nick},
              {"to", parties[i].nick},
              {"dh_a_from_e_to", hex(dh_a)},
              {"dh_e_from_e_to", hex(dh_e)},
              {"dake_key", hex(key)},
              {"dake_mac", hex(mac)},
              {"elgamal_shared", hex(shared)},
              {"pad", hex(pad)}};
}

// What the generator recomputes of the session phase, for `derived` and `expected`.
struct SessionRecord {
  Json texts = Json::array();
  Json entries = Json::array();
  std::vector<std::uint32_t> final_counts;
  std::vector<Hash32> closing_chains;
  Hash32 transcript_digest{};
  Json per_member_digests = Json::object();
  codec::MemberSet end_present;
  Hash32 end_digest{};
};

// The group MAC of every message that has one (§5.16): HMAC(K_auth, bytes before the MAC).
template <class M>
Result<void> check_group_mac(const M& m, const Bytes& payload, const codec::Decoded& d, const SecretBytes& auth,
                             const std::string& what) {
  if (ks::message_mac(auth, ByteView(payload).first(d.mac_len)) != m.mac ||
      !std::equal(m.mac.begin(), m.mac.end(), payload.begin() + static_cast<std::ptrdiff_t>(d.mac_len))) {
    return failure("the group MAC of " + what + " does not match K_auth");
  }
  return {};
}

// Follows the session's messages in relay order: decrypts chat entries, follows the hash chains,
// checks every group MAC, view digest, final digest, End and key reveal against the key schedule.
Result<SessionRecord> follow_session(const Conversation& conv, const std::vector<Party>& parties,
                                     const std::vector<Ephemeral>& eph, const Hash32& sid, const SecretBytes& group,
                                     const SecretBytes& auth) {
  const std::size_t n = parties.size();
  std::vector<ks::SenderKey> sender_keys;
  std::vector<std::vector<Hash32>> chains(n);
  for (std::size_t s = 0; s < n; ++s) {
    MPOTR_TRY(ks::SenderKey k, ks::sender_key(group, static_cast<std::uint8_t>(s)));
    sender_keys.push_back(std::move(k));
    chains[s].push_back(ks::chain_start(sid, static_cast<std::uint8_t>(s)));
  }
  std::vector<std::optional<Hash32>> digests(n);
  std::vector<std::optional<std::uint32_t>> final_counts(n);
  std::size_t ends = 0;
  SessionRecord rec;
  for (std::size_t k = 0; k < conv.log().size(); ++k) {
    const Broadcast& b = conv.log()[k];
    const std::size_t i = index_of(parties, b.from);
    const std::string what = b.from + "'s broadcast " + std::to_string(k);
    MPOTR_TRY(codec::Decoded decoded, codec::decode(view(b.payload)));
    if (const auto* d = std::get_if<codec::Data>(&decoded.message)) {
      MPOTR_CHECK(check_group_mac(*d, b.payload, decoded, auth, what));
      const Hash32 id = ks::signed_digest(sid, ByteView(b.payload).first(decoded.signed_len));
      if (!eph[i].signing.public_key().verify_digest(id, view(d->signature)) || d->seq != chains[i].size()) {
        return failure("entry of " + b.from + " does not verify or is out of order");
      }
      std::vector<std::uint32_t> counts;
      std::vector<Hash32> at;
      std::size_t a = 0;
      for (std::size_t m = 0; m < n; ++m) {
        counts.push_back(m == i ? d->seq - 1 : d->acks.at(a++));
        at.push_back(chains[m].at(counts.back()));
      }
      if (ks::view_digest(counts, at) != d->view_digest) {
        return failure("view digest of " + b.from + "'s entry " + std::to_string(d->seq) + " does not match");
      }
      chains[i].push_back(ks::chain_next(chains[i].back(), id));
      Json entry{{"broadcast", k},        {"from", b.from},           {"type", codec::to_string(d->type)},
                 {"seq", d->seq},         {"view_counts", counts},    {"message_id", hex(id)},
                 {"chain", hex(chains[i].back())}};
      if (d->type == codec::MessageType::Data) {
        const crypto::AesIv iv = ks::message_iv(sender_keys[i], d->seq);
        Bytes plain(d->ciphertext.size());
        MPOTR_CHECK(crypto::aes128_ctr(sender_keys[i].key.view(), iv, view(d->ciphertext), plain.data()));
        entry["iv"] = hex(iv);
        rec.texts.push_back(Json{{"from", b.from}, {"seq", d->seq}, {"text", std::string(plain.begin(), plain.end())}});
      }
      rec.entries.push_back(std::move(entry));
    } else if (const auto* sd = std::get_if<codec::Shutdown>(&decoded.message)) {
      MPOTR_CHECK(check_group_mac(*sd, b.payload, decoded, auth, what));
      final_counts[i] = sd->final_count;
    } else if (const auto* q = std::get_if<codec::Quit>(&decoded.message)) {
      MPOTR_CHECK(check_group_mac(*q, b.payload, decoded, auth, what));
      final_counts[i] = q->final_count;
    } else if (const auto* dg = std::get_if<codec::Digest>(&decoded.message)) {
      MPOTR_CHECK(check_group_mac(*dg, b.payload, decoded, auth, what));
      digests[i] = dg->transcript_digest;
    } else if (const auto* en = std::get_if<codec::End>(&decoded.message)) {
      MPOTR_CHECK(check_group_mac(*en, b.payload, decoded, auth, what));
      // An End binds the digests its sender held (its `present` set), which came before it.
      std::vector<std::optional<Hash32>> held(n);
      for (std::size_t m = 0; m < n; ++m) {
        if (en->present.test(m)) {
          if (!digests[m]) {
            return failure("the end of " + b.from + " names a digest not sent before it");
          }
          held[m] = digests[m];
        }
      }
      if (en->present.bound() > n || en->digests_hash != ks::end_digest(held)) {
        return failure("the end of " + b.from + " does not bind the digests sent");
      }
      if (ends++ > 0 && (en->present != rec.end_present || en->digests_hash != rec.end_digest)) {
        return failure("the ends differ in a consistent session");
      }
      rec.end_present = en->present;
      rec.end_digest = en->digests_hash;
    } else if (const auto* kr = std::get_if<codec::KeyReveal>(&decoded.message)) {
      if (!std::equal(kr->private_key.begin(), kr->private_key.end(), eph[i].signing.scalar().data())) {
        return failure(b.from + " revealed a key that is not its signing key");
      }
    }
  }
  for (std::size_t s = 0; s < n; ++s) {
    if (!final_counts[s] || *final_counts[s] + 1 != chains[s].size()) {
      return failure(parties[s].nick + "'s shutdown count differs from its entries");
    }
    rec.final_counts.push_back(*final_counts[s]);
    rec.closing_chains.push_back(chains[s].back());  // intact: nothing was lost
  }
  rec.transcript_digest = ks::transcript_digest(rec.final_counts, rec.closing_chains);
  for (std::size_t s = 0; s < n; ++s) {
    if (!digests[s] || *digests[s] != rec.transcript_digest) {
      return failure(parties[s].nick + "'s final transcript digest differs from the recomputed one");
    }
    rec.per_member_digests[parties[s].nick] = hex(*digests[s]);
  }
  if (ends != n) {
    return failure("not every member sent its end");
  }
  return rec;
}

// Recomputes the setup and the transcript from the recorded payloads and the ephemeral values
// the engines drew, and returns the "derived" section. Fails if anything disagrees: then either
// the engine's draw order changed or the engine and the key schedule disagree.
Result<Json> derive_session(const Conversation& conv, std::vector<Party>& parties, const Json& script, Json& expected) {
  const std::size_t n = parties.size();
  MPOTR_TRY(const std::vector<Ephemeral> eph, replay_ephemerals(parties));
  MPOTR_TRY(const SetupWire w, parse_setup(conv, parties, eph));
  const Hash32 sid = ks::session_id(kRoom, w.offers);

  Json pairs = Json::array();
  std::vector<SecretBytes> secrets;
  for (std::size_t j = 0; j < n; ++j) {
    secrets.push_back(eph[j].secret);
    if (w.shares[j].commit != ks::commit(sid, static_cast<std::uint8_t>(j), eph[j].secret)) {
      return failure(parties[j].nick + "'s key share does not commit to its secret");
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (i != j) {
        MPOTR_TRY(Json pair, check_pair(sid, w, parties, eph, j, i));
        pairs.push_back(std::move(pair));
      }
    }
  }
  const SecretBytes group = ks::group_secret(sid, secrets);
  const Hash32 th = ks::setup_transcript_hash(w.offer_bytes, w.share_signed);
  MPOTR_TRY(Hash32 kc, ks::key_confirm(group, th));
  for (std::size_t i = 0; i < n; ++i) {
    if (w.attests[i].session_id != sid || w.attests[i].transcript_hash != th || w.attests[i].key_confirm != kc) {
      return failure("the attest of " + parties[i].nick + " differs from the recomputed setup");
    }
  }
  MPOTR_TRY(SecretBytes auth, ks::auth_key(group));
  MPOTR_TRY(SessionRecord rec, follow_session(conv, parties, eph, sid, group, auth));

  // The texts decrypted from the wire are exactly the script's, in order.
  Json script_texts = Json::array();
  for (const auto& s : script) {
    if (s.at("op") == "send_text") {
      script_texts.push_back(s.at("text"));
    }
  }
  Json wire_texts = Json::array();
  for (const auto& t : rec.texts) {
    wire_texts.push_back(t.at("text"));
  }
  if (wire_texts != script_texts) {
    return failure("the decrypted chat texts differ from the script's");
  }

  expected["session_id"] = hex(sid);
  expected["roster_digest"] = hex(w.offers[0].roster_digest);
  expected["texts"] = rec.texts;
  expected["final_counts"] = rec.final_counts;
  expected["transcript_digest"] = hex(rec.transcript_digest);
  expected["final_transcript_digests"] = rec.per_member_digests;
  expected["end_present"] = hex(rec.end_present.bits);
  expected["end_digest"] = hex(rec.end_digest);

  Json derived;
  derived["note"] =
      "Not visible through the public API: recomputed by the generator from each engine's rng "
      "(DeterministicRng(rng_seed) draws dh, signing, elgamal_r as P-256 scalars, then secret and "
      "nonce as 32 bytes each) and checked against the payloads: every commitment, DAKE key (from "
      "both sides), DAKE MAC, pad, attest, group MAC, view digest, transcript digest and end digest. "
      "pairs lists, per ordered pair, what `from` sent `to` in its key share; entries lists every "
      "data and heartbeat entry in relay order with its message id and the sender's chain value after it.";
  Json ephemeral = Json::array();
  for (std::size_t i = 0; i < n; ++i) {
    ephemeral.push_back(Json{{"nick", parties[i].nick},
                             {"dh_private", hex(eph[i].dh.scalar())},
                             {"signing_private", hex(eph[i].signing.scalar())},
                             {"elgamal_r_private", hex(eph[i].elgamal_r.scalar())},
                             {"secret", hex(eph[i].secret)},
                             {"commit", hex(w.shares[i].commit)},
                             {"nonce", hex(eph[i].nonce)}});
  }
  derived["ephemeral"] = ephemeral;
  derived["pairs"] = pairs;
  derived["group_secret"] = hex(group);
  derived["setup_transcript_hash"] = hex(th);
  derived["key_confirm"] = hex(kc);
  derived["auth_key"] = hex(auth);
  Json sender_json = Json::array();
  for (std::size_t s = 0; s < n; ++s) {
    MPOTR_TRY(ks::SenderKey k, ks::sender_key(group, static_cast<std::uint8_t>(s)));
    sender_json.push_back(Json{{"sender", s}, {"key", hex(k.key)}, {"iv_prefix", hex(k.iv_prefix)}});
  }
  derived["sender_keys"] = sender_json;
  derived["entries"] = rec.entries;
  derived["closing_chains"] = hex_list(rec.closing_chains);
  return derived;
}

Result<Json> generate_session() {
  Json doc = header(
      "A complete deterministic 3-member mpOTR v2 conversation: setup (3 offers, 3 key shares with "
      "commitments, 3 attests), chat messages, a heartbeat round, and a shutdown run started by alice "
      "leaving (shutdowns, digests, ends, then key reveals once every member's End is in); every entry "
      "and shutdown message carries the group MAC under derived.auth_key. Replay, in the calls of "
      "spec/mpotr.md section 6.4: each member (in `members` order: alice, bob, carol) has one engine "
      "for `room`, with its nick, the `timeouts` (ms), no trust store and the default admission policy "
      "(every identity trusted on first use), and the identity key pair that is the one private-key "
      "draw of DeterministicRng(identity_seed) (section 12; = identity_private). Every call of a "
      "member's engine draws from that member's DeterministicRng(rng_seed), one stream for the whole "
      "conversation, and takes the step's `at` as now. Steps, in `script` order: set_roster - each "
      "member, in member order, calls set_roster with every member as (nick, jid = nick@localhost); "
      "send_text - the named member calls send_text(text); leave - the named member calls leave(); "
      "tick - each member, in member order, calls tick(); run - the queued broadcasts are delivered "
      "first-in first-out, each to every member in member order, the sender included (rooms reflect "
      "messages), as receive(from_nick = its sender, payload), until the queue is empty (the "
      "broadcasts that deliveries produce join the queue meanwhile). Every call's broadcasts join the "
      "queue tail in their order. No call fails and no event is `rejected`. broadcasts lists every "
      "broadcast in queue order with the step and the delivered broadcast (trigger, null for a "
      "step's own calls) that produced it; events lists each member's events in the order its calls "
      "returned them, with the same step/trigger, written as spec/mpotr.md Appendix B says "
      "(snake_case kind, every set field except the free-text detail).",
      kSessionSeed);
  const Timeouts timeouts{};
  doc["room"] = kRoom;
  doc["timeouts"] = Json{{"setup", timeouts.setup},
                         {"heartbeat", timeouts.heartbeat},
                         {"gap", timeouts.gap},
                         {"confirm", timeouts.confirm},
                         {"shutdown", timeouts.shutdown}};

  Conversation conv;
  const char* nicks[] = {"alice", "bob", "carol"};
  for (std::uint64_t i = 0; i < 3; ++i) {
    MPOTR_CHECK(conv.add(nicks[i], kSessionSeed * 10 + i, kSessionSeed * 10 + 100 + i, timeouts));
  }
  Json members = Json::array();
  for (const auto& p : conv.parties()) {
    members.push_back(Json{{"nick", p.nick},
                           {"jid", p.nick + "@localhost"},
                           {"identity_seed", p.identity_seed},
                           {"rng_seed", p.rng_seed},
                           {"identity_private", hex(p.identity.scalar())},
                           {"identity_public", hex(p.identity.public_key().point())},
                           {"fingerprint", hex(fingerprint_of(p.identity.public_key()).bytes)}});
  }
  doc["members"] = members;

  const Json script = session_script();
  doc["script"] = script;
  for (std::size_t i = 0; i < script.size(); ++i) {
    MPOTR_CHECK(conv.step(i, script[i]));
  }

  Json broadcasts = Json::array();
  for (std::size_t k = 0; k < conv.log().size(); ++k) {
    const Broadcast& b = conv.log()[k];
    MPOTR_TRY(codec::MessageType type, codec::peek_type(view(b.payload)));
    broadcasts.push_back(Json{{"index", k},
                              {"step", b.step},
                              {"trigger", b.trigger ? Json(*b.trigger) : Json(nullptr)},
                              {"from", b.from},
                              {"type", codec::to_string(type)},
                              {"payload", hex(b.payload)}});
  }
  doc["broadcasts"] = broadcasts;

  Json events = Json::object();
  for (const auto& p : conv.parties()) {
    events[p.nick] = p.events;
  }
  doc["events"] = events;

  Json expected = Json::object();
  MPOTR_TRY(Json derived, derive_session(conv, conv.parties(), script, expected));
  // Cross-check the public view: every member established the recomputed session.
  for (const auto& p : conv.parties()) {
    bool established = false;
    bool consistent = false;
    for (const auto& e : p.events) {
      established =
          established || (e.at("kind") == "session_established" && e.at("session_id") == expected.at("session_id"));
      consistent = consistent || e.at("kind") == "transcript_consistent";
    }
    if (!established || !consistent) {
      return failure(p.nick + " did not establish the session or did not find the transcript consistent");
    }
  }
  Json phases = Json::object();
  for (const auto& p : conv.parties()) {
    phases[p.nick] = std::string(to_string(p.engine->phase()));
  }
  expected["final_phases"] = phases;
  doc["expected"] = expected;
  doc["derived"] = derived;
  return doc;
}

// ============================================================================================
// driver
// ============================================================================================

struct VectorFile {
  const char* name;
  Result<Json> (*generate)();
};

constexpr VectorFile kFiles[] = {
    {"crypto.json", &generate_crypto},
    {"key_schedule.json", &generate_key_schedule},
    {"messages.json", &generate_messages},
    {"session.json", &generate_session},
};

std::string render(const Json& doc) { return doc.dump(2) + "\n"; }

std::string shorten(const std::string& s) {
  constexpr std::size_t kMax = 48;
  return s.size() <= kMax ? s : s.substr(0, kMax) + "…";
}

// "file has X, generator gives Y"; for long strings, the neighbourhood of the first difference.
std::string describe_change(const nlohmann::json& have, const nlohmann::json& want) {
  if (have.is_string() && want.is_string()) {
    const std::string& a = have.get_ref<const std::string&>();
    const std::string& b = want.get_ref<const std::string&>();
    const auto diff = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
    const auto at = static_cast<std::size_t>(diff.first - a.begin());
    if (at > 40) {
      const std::size_t from = at - 16;
      return "differs at character " + std::to_string(at) + ": file has …" + shorten(a.substr(from)) +
             ", generator gives …" + shorten(b.substr(from)) + " (lengths " + std::to_string(a.size()) + " and " +
             std::to_string(b.size()) + ")";
    }
  }
  return "file has " + shorten(have.dump()) + ", generator gives " + shorten(want.dump());
}

int generate(const std::filesystem::path& dir) {
  // Every file is generated (and self-checked) before any is written: a failed check leaves the
  // directory as it was, never half regenerated.
  std::vector<std::string> rendered;
  for (const auto& f : kFiles) {
    auto doc = f.generate();
    if (!doc.ok()) {
      std::cerr << "mpotr-vectors: " << f.name << ": " << to_string(doc.error().code) << ": " << doc.error().detail
                << "\n";
      return 2;
    }
    rendered.push_back(render(*doc));
  }
  std::filesystem::create_directories(dir);
  for (std::size_t i = 0; i < rendered.size(); ++i) {
    const std::filesystem::path path = dir / kFiles[i].name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << rendered[i];
    out.close();
    if (!out) {
      std::cerr << "mpotr-vectors: cannot write " << path << "\n";
      return 2;
    }
    std::cout << "wrote " << path.string() << "\n";
  }
  return 0;
}

int verify(const std::filesystem::path& dir) {
  int mismatches = 0;
  for (const auto& f : kFiles) {
    auto doc = f.generate();
    if (!doc.ok()) {
      std::cerr << "mpotr-vectors: " << f.name << ": " << to_string(doc.error().code) << ": " << doc.error().detail
                << "\n";
      return 2;
    }
    const std::filesystem::path path = dir / f.name;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::cout << "MISMATCH " << f.name << ": file missing (" << path.string() << ")\n";
      ++mismatches;
      continue;
    }
    std::stringstream text;
    text << in.rdbuf();
    const std::string expected = render(*doc);
    if (text.str() == expected) {
      std::cout << "ok " << f.name << "\n";
      continue;
    }
    ++mismatches;
    const nlohmann::json want = nlohmann::json::parse(expected);
    const nlohmann::json have = nlohmann::json::parse(text.str(), nullptr, false);
    if (have.is_discarded()) {
      std::cout << "MISMATCH " << f.name << ": not valid JSON\n";
      continue;
    }
    const nlohmann::json patch = nlohmann::json::diff(have, want);
    if (patch.empty()) {
      std::cout << "MISMATCH " << f.name << ": same values, different formatting (regenerate)\n";
      continue;
    }
    std::size_t shown = 0;
    for (const auto& op : patch) {
      if (++shown > 40) {
        std::cout << "MISMATCH " << f.name << ": … and " << patch.size() - 40 << " more differences\n";
        break;
      }
      const std::string where = op.at("path").get<std::string>();
      const nlohmann::json::json_pointer ptr(where);
      std::cout << "MISMATCH " << f.name << " " << where << ": ";
      const std::string kind = op.at("op").get<std::string>();
      if (kind == "replace") {
        std::cout << describe_change(have.at(ptr), want.at(ptr));
      } else if (kind == "add") {
        std::cout << "missing from the file: " << shorten(want.at(ptr).dump());
      } else {
        std::cout << "not produced by the generator";
      }
      std::cout << "\n";
    }
  }
  if (mismatches != 0) {
    std::cout << mismatches << " file(s) differ; regenerate with: mpotr-vectors --generate spec/vectors\n";
    return 1;
  }
  return 0;
}

int usage() {
  std::cerr << "usage: mpotr-vectors --generate <dir> | --verify <dir>\n"
               "  default dir: " MPOTR_SOURCE_DIR "/spec/vectors\n";
  return 2;
}

int run(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    return usage();
  }
  const std::string mode = argv[1];
  const std::filesystem::path dir =
      argc == 3 ? std::filesystem::path(argv[2]) : std::filesystem::path(MPOTR_SOURCE_DIR) / "spec" / "vectors";
  if (mode == "--generate") {
    return generate(dir);
  }
  if (mode == "--verify") {
    return verify(dir);
  }
  return usage();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "mpotr-vectors: " << e.what() << "\n";
    return 2;
  } catch (...) {
    std::cerr << "mpotr-vectors: unknown failure\n";
    return 2;
  }
}
