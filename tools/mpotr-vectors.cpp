// SPDX-License-Identifier: MIT
// mpotr-vectors: the known-answer vectors of mpOTR v1 (spec/vectors/).
//
//   mpotr-vectors --generate <dir>   write crypto.json, key_schedule.json, messages.json, session.json
//   mpotr-vectors --verify <dir>     regenerate in memory and compare with the files in <dir>
//
// Every value is a function of the fixed seeds below: inputs are drawn from DeterministicRng
// streams, signatures use the hedged nonce with a seeded rng, and the conversation runs on a
// manual clock through a FIFO room, so two runs give byte-identical files. Before writing, the
// generator cross-checks what it records (signatures verify, the nonce is the one crypto.h
// specifies, the conversation's payloads agree with the key schedule), so a vector never pins a
// value the library could not explain. Exit codes: 0 ok, 1 mismatch, 2 error.
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
#include "mpotr/identity.h"
#include "mpotr/rng.h"

namespace {

using namespace mpotr;
using Json = nlohmann::ordered_json;

constexpr int kFormatVersion = 1;
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
  DeterministicRng rnd_rng(rng_seed);
  const Bytes rnd = draw(rnd_rng, 32);
  const SecretBytes d = key.scalar();
  Hash32 k{};
  std::uint32_t ctr = 0;
  for (;; ++ctr) {
    if (ctr > 16) {
      return failure("ecdsa: no nonce candidate in range");
    }
    Bytes input = rnd;
    append(input, view(digest));
    append(input, view(u32_be(ctr)));
    k = crypto::hmac_sha256(d.view(), view(input));
    if (scalar_in_range(view(k))) {
      break;
    }
  }
  DeterministicRng sign_rng(rng_seed);
  MPOTR_TRY(crypto::Signature sig, key.sign_digest(digest, sign_rng));
  if (!key.public_key().verify_digest(digest, view(sig))) {
    return failure("ecdsa: signature does not verify");
  }
  MPOTR_TRY(crypto::PrivateKey k_key, crypto::PrivateKey::from_scalar(view(k)));
  const crypto::Point& kg = k_key.public_key().point();
  // r = x(k·G) mod n; x ≥ n happens with probability < 2^-128, so r must equal x.
  if (!std::equal(kg.begin() + 1, kg.begin() + 33, sig.begin())) {
    return failure("ecdsa: r is not x(k·G): the nonce derivation differs from crypto.h");
  }
  Json c;
  c["private"] = hex(d);
  c["public"] = hex(key.public_key().point());
  c["digest"] = hex(digest);
  c["rng_seed"] = rng_seed;
  c["rnd32"] = hex(rnd);
  c["nonce_counter"] = ctr;
  c["k"] = hex(k);
  c["signature"] = hex(sig);
  return c;
}

Result<Json> generate_crypto() {
  Json doc = header(
      "Primitive known answers of mpOTR v1 from fixed seeds: the test RNG (DeterministicRng), P-256 "
      "keys, ECDH, hedged ECDSA (k = HMAC-SHA-256(d, rnd32 || digest || u32 counter), first candidate "
      "in [1, n-1]; rnd32 is the first 32-byte draw of DeterministicRng(rng_seed); signature = r || s), "
      "SHA-256, HMAC-SHA-256, HKDF-SHA-256 and AES-128-CTR (the IV is the initial 128-bit big-endian "
      "counter block). Inputs were drawn from DeterministicRng(seed); standard external vectors live in "
      "tests/data/.",
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
    // The same key and digest under another rng seed: another nonce, another signature.
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

Result<Json> generate_key_schedule() {
  Json doc = header(
      "Known answers for every derivation in mpotr/engine/key_schedule.h, from fixed inputs. The "
      "cases share one 3-member setup (alice=0, bob=1, carol=2 in room@conference.localhost) whose "
      "scalars, nonces and secrets were drawn from DeterministicRng(seed); every input is given "
      "explicitly, so no case needs the RNG.",
      kKeyScheduleSeed);
  DeterministicRng rng(kKeyScheduleSeed);

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
  const std::size_t n = members.size();

  // roster_digest
  Json roster_cases = Json::array();
  const std::vector<std::pair<std::string, std::vector<std::string>>> rosters = {
      {std::string(kRoom), {"alice", "bob", "carol"}},
      {std::string(kRoom), {"alice", "bob"}},
      {"r@x", {std::string(64, 'a'), "zo\xc3\xab"}},
      {"", {"solo"}},
  };
  for (const auto& [room, nicks] : rosters) {
    roster_cases.push_back(Json{{"room", room}, {"nicks", nicks}, {"output", hex(ks::roster_digest(room, nicks))}});
  }
  doc["roster_digest"] = roster_cases;
  const Hash32 roster3 = ks::roster_digest(kRoom, {"alice", "bob", "carol"});

  // session_id
  std::vector<codec::Offer> offers;
  for (const auto& m : members) {
    offers.push_back(offer_of(m, roster3, 0));
  }
  const Hash32 sid = ks::session_id(kRoom, offers);
  Json sid_cases = Json::array();
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
    sid_cases.push_back(
        Json{{"room", kRoom}, {"offers", inputs}, {"output", hex(out)}, {"session_tag", hex(ks::session_tag(out))}});
  }
  doc["session_id"] = sid_cases;

  // pairwise_keys: per pair, the three DH values and both MAC keys; both sides must agree.
  Json pair_cases = Json::array();
  std::vector<std::vector<SecretBytes>> mac_key(n, std::vector<SecretBytes>(n));  // mac_key[from][to]
  for (std::size_t lo = 0; lo < n; ++lo) {
    for (std::size_t hi = lo + 1; hi < n; ++hi) {
      const KsMember& a = members[lo];
      const KsMember& b = members[hi];
      MPOTR_TRY(SecretBytes dh1, a.identity.ecdh(b.dh.public_key()));
      MPOTR_TRY(SecretBytes dh2, a.dh.ecdh(b.identity.public_key()));
      MPOTR_TRY(SecretBytes dh3, a.dh.ecdh(b.dh.public_key()));
      const auto l = static_cast<std::uint8_t>(lo);
      const auto h = static_cast<std::uint8_t>(hi);
      MPOTR_TRY(ks::PairwiseKeys keys, ks::pairwise_keys(sid, l, h, dh1, dh2, dh3));
      MPOTR_TRY(ks::PairwiseKeys from_low,
                ks::pairwise_keys_for(sid, l, h, a.identity, a.dh, b.identity.public_key(), b.dh.public_key()));
      MPOTR_TRY(ks::PairwiseKeys from_high,
                ks::pairwise_keys_for(sid, h, l, b.identity, b.dh, a.identity.public_key(), a.dh.public_key()));
      if (!(keys.mac_low_to_high == from_low.mac_low_to_high) || !(keys.mac_low_to_high == from_high.mac_low_to_high) ||
          !(keys.mac_high_to_low == from_low.mac_high_to_low) || !(keys.mac_high_to_low == from_high.mac_high_to_low)) {
        return failure("pairwise_keys_for: the two sides disagree");
      }
      mac_key[lo][hi] = keys.mac_low_to_high;
      mac_key[hi][lo] = keys.mac_high_to_low;
      pair_cases.push_back(Json{{"session_id", hex(sid)},
                                {"low", lo},
                                {"high", hi},
                                {"low_identity", key_pair(a.identity)},
                                {"low_dh", key_pair(a.dh)},
                                {"high_identity", key_pair(b.identity)},
                                {"high_dh", key_pair(b.dh)},
                                {"dh_a_low_e_high", hex(dh1)},
                                {"dh_e_low_a_high", hex(dh2)},
                                {"dh_e_low_e_high", hex(dh3)},
                                {"mac_low_to_high", hex(keys.mac_low_to_high)},
                                {"mac_high_to_low", hex(keys.mac_high_to_low)}});
    }
  }
  doc["pairwise_keys"] = pair_cases;

  // dake_mac and elgamal_pad for every ordered pair; the KeyShares they make.
  Json mac_cases = Json::array();
  Json pad_cases = Json::array();
  std::vector<codec::KeyShare> shares(n);
  for (std::size_t from = 0; from < n; ++from) {
    const KsMember& s = members[from];
    shares[from].session_id = sid;
    shares[from].sender = static_cast<std::uint8_t>(from);
    shares[from].elgamal_r = s.elgamal_r.public_key().point();
    for (std::size_t to = 0; to < n; ++to) {
      if (to == from) {
        continue;
      }
      const KsMember& r = members[to];
      const auto f8 = static_cast<std::uint8_t>(from);
      const auto t8 = static_cast<std::uint8_t>(to);
      const Hash32 mac = ks::dake_mac(mac_key[from][to], sid, f8, t8, s.signing.public_key().point(),
                                      s.dh.public_key().point(), s.elgamal_r.public_key().point());
      mac_cases.push_back(Json{{"mac_key", hex(mac_key[from][to])},
                               {"session_id", hex(sid)},
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
                ks::elgamal_pad(sid, f8, t8, shared, s.elgamal_r.public_key().point(), r.dh.public_key().point()));
      codec::PairShare share;
      share.mac = mac;
      for (std::size_t b = 0; b < 32; ++b) {
        share.secret_ct[b] = static_cast<std::uint8_t>(s.secret.data()[b] ^ pad.data()[b]);
      }
      shares[from].shares.push_back(share);
      pad_cases.push_back(Json{{"session_id", hex(sid)},
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
  doc["dake_mac"] = mac_cases;
  doc["elgamal_pad"] = pad_cases;

  // group_secret
  std::vector<SecretBytes> secrets;
  for (const auto& m : members) {
    secrets.push_back(m.secret);
  }
  const SecretBytes group = ks::group_secret(sid, secrets);
  Json group_cases = Json::array();
  {
    Json list = Json::array();
    for (const auto& s : secrets) {
      list.push_back(hex(s));
    }
    group_cases.push_back(Json{{"session_id", hex(sid)}, {"secrets", list}, {"output", hex(group)}});
    const Hash32 other_sid = rng.array<32>();
    const std::vector<SecretBytes> two = {rng.secret(32), rng.secret(32)};
    Json list2 = Json::array();
    for (const auto& s : two) {
      list2.push_back(hex(s));
    }
    group_cases.push_back(
        Json{{"session_id", hex(other_sid)}, {"secrets", list2}, {"output", hex(ks::group_secret(other_sid, two))}});
  }
  doc["group_secret"] = group_cases;

  // setup_transcript_hash over the real encoded offers and the signed parts of key shares.
  std::vector<Bytes> offer_bytes;
  std::vector<Bytes> share_bytes;
  for (std::size_t i = 0; i < n; ++i) {
    offer_bytes.push_back(codec::encode(offers[i]));
    const Bytes signed_part = codec::encode_signed_part(shares[i]);
    DeterministicRng sign_rng(kKeyScheduleSeed + 10 + i);
    MPOTR_TRY(shares[i].signature, members[i].signing.sign_digest(ks::signed_digest(sid, view(signed_part)), sign_rng));
    share_bytes.push_back(signed_part);
  }
  const Hash32 th = ks::setup_transcript_hash(offer_bytes, share_bytes);
  Json th_cases = Json::array();
  {
    Json o = Json::array();
    Json k = Json::array();
    for (std::size_t i = 0; i < n; ++i) {
      o.push_back(hex(offer_bytes[i]));
      k.push_back(hex(share_bytes[i]));
    }
    th_cases.push_back(Json{{"offers", o}, {"key_shares", k}, {"output", hex(th)}});
    const std::vector<Bytes> o2 = {draw(rng, 3), Bytes{}};
    const std::vector<Bytes> k2 = {draw(rng, 70), draw(rng, 1)};
    th_cases.push_back(Json{{"offers", Json{hex(o2[0]), hex(o2[1])}},
                            {"key_shares", Json{hex(k2[0]), hex(k2[1])}},
                            {"output", hex(ks::setup_transcript_hash(o2, k2))}});
  }
  doc["setup_transcript_hash"] = th_cases;

  // key_confirm
  Json kc_cases = Json::array();
  {
    MPOTR_TRY(Hash32 kc, ks::key_confirm(group, th));
    kc_cases.push_back(Json{{"group_secret", hex(group)}, {"transcript_hash", hex(th)}, {"output", hex(kc)}});
    const SecretBytes g2 = rng.secret(32);
    const Hash32 th2 = rng.array<32>();
    MPOTR_TRY(Hash32 kc2, ks::key_confirm(g2, th2));
    kc_cases.push_back(Json{{"group_secret", hex(g2)}, {"transcript_hash", hex(th2)}, {"output", hex(kc2)}});
  }
  doc["key_confirm"] = kc_cases;

  // sender_key and message_iv
  Json sk_cases = Json::array();
  for (std::size_t s = 0; s < n; ++s) {
    MPOTR_TRY(ks::SenderKey key, ks::sender_key(group, static_cast<std::uint8_t>(s)));
    Json ivs = Json::array();
    for (std::uint32_t seq : {1u, 2u, 255u, 256u, 65536u, 4294967295u}) {
      ivs.push_back(Json{{"seq", seq}, {"iv", hex(ks::message_iv(key, seq))}});
    }
    sk_cases.push_back(Json{{"group_secret", hex(group)},
                            {"sender", s},
                            {"key", hex(key.key)},
                            {"iv_prefix", hex(key.iv_prefix)},
                            {"message_ivs", ivs}});
  }
  doc["sender_key"] = sk_cases;

  // signed_digest
  Json sd_cases = Json::array();
  {
    const Bytes alice_part = codec::encode_signed_part(shares[0]);
    const Hash32 other_sid = rng.array<32>();
    const Bytes random_part = draw(rng, 100);
    const std::vector<std::pair<Hash32, Bytes>> inputs = {{sid, Bytes{}}, {sid, alice_part}, {other_sid, random_part}};
    for (const auto& [s, part] : inputs) {
      sd_cases.push_back(
          Json{{"session_id", hex(s)}, {"signed_part", hex(part)}, {"output", hex(ks::signed_digest(s, view(part)))}});
    }
  }
  doc["signed_digest"] = sd_cases;

  // chain_start / chain_next over three entries per sender.
  Json chain_cases = Json::array();
  std::vector<std::vector<Hash32>> chains(n);
  for (std::size_t s = 0; s < n; ++s) {
    chains[s].push_back(ks::chain_start(sid, static_cast<std::uint8_t>(s)));
    Json entries = Json::array();
    for (int e = 0; e < 3; ++e) {
      const Hash32 id = rng.array<32>();
      chains[s].push_back(ks::chain_next(chains[s].back(), id));
      entries.push_back(Json{{"message_id", hex(id)}, {"chain", hex(chains[s].back())}});
    }
    chain_cases.push_back(
        Json{{"session_id", hex(sid)}, {"sender", s}, {"start", hex(chains[s].front())}, {"entries", entries}});
  }
  doc["chain"] = chain_cases;

  // view_digest and transcript_digest over (count, chain) per member.
  Json view_cases = Json::array();
  Json transcript_cases = Json::array();
  const std::vector<std::vector<std::uint32_t>> count_sets = {{3, 3, 3}, {1, 0, 2}, {0, 0}};
  for (const auto& counts : count_sets) {
    std::vector<Hash32> at;
    for (std::size_t m = 0; m < counts.size(); ++m) {
      at.push_back(chains[m][counts[m]]);
    }
    view_cases.push_back(
        Json{{"counts", counts}, {"chains", hex_list(at)}, {"output", hex(ks::view_digest(counts, at))}});
    transcript_cases.push_back(
        Json{{"counts", counts}, {"chains", hex_list(at)}, {"output", hex(ks::transcript_digest(counts, at))}});
  }
  doc["view_digest"] = view_cases;
  doc["transcript_digest"] = transcript_cases;
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

Json data_fields(const codec::Data& m) {
  return Json{{"session_tag", hex(m.session_tag)},
              {"sender", m.sender},
              {"seq", m.seq},
              {"acks", m.acks},
              {"view_digest", hex(m.view_digest)},
              {"ciphertext", hex(m.ciphertext)},
              {"signature", hex(m.signature)}};
}

Json shutdown_fields(const codec::Shutdown& m) {
  return Json{{"session_tag", hex(m.session_tag)},
              {"sender", m.sender},
              {"final_count", m.final_count},
              {"signature", hex(m.signature)}};
}

Json digest_fields(const codec::Digest& m) {
  return Json{{"session_tag", hex(m.session_tag)},
              {"sender", m.sender},
              {"transcript_digest", hex(m.transcript_digest)},
              {"signature", hex(m.signature)}};
}

Json end_fields(const codec::End& m) {
  return Json{{"session_tag", hex(m.session_tag)},
              {"sender", m.sender},
              {"digests_hash", hex(m.digests_hash)},
              {"signature", hex(m.signature)}};
}

Json key_reveal_fields(const codec::KeyReveal& m) {
  return Json{{"session_tag", hex(m.session_tag)}, {"sender", m.sender}, {"private_key", hex(m.private_key)}};
}

// Signs a message in place and returns its case.
template <class M>
Result<Json> signed_case(std::string_view name, std::string_view type, M& m, const Hash32& sid,
                         const crypto::PrivateKey& signer, std::uint64_t rng_seed, Json (*fields)(const M&)) {
  const Bytes signed_part = codec::encode_signed_part(m);
  const Hash32 digest = ks::signed_digest(sid, view(signed_part));
  DeterministicRng sign_rng(rng_seed);
  MPOTR_TRY(m.signature, signer.sign_digest(digest, sign_rng));
  const Bytes encoding = codec::encode(m);
  MPOTR_TRY(codec::Decoded decoded, codec::decode(view(encoding)));
  if (decoded.signed_len != signed_part.size()) {
    return failure(std::string(name) + ": decoded signed length differs from the encoder's");
  }
  Json c;
  c["name"] = name;
  c["type"] = type;
  c["fields"] = fields(m);
  c["encoding"] = hex(encoding);
  c["signed_len"] = signed_part.size();
  c["signature_check"] = Json{{"session_id", hex(sid)},
                              {"signer_private_key", hex(signer.scalar())},
                              {"signer_public_key", hex(signer.public_key().point())},
                              {"signed_digest", hex(digest)},
                              {"rng_seed", rng_seed}};
  return c;
}

Result<Json> generate_messages() {
  Json doc = header(
      "Wire encodings of every mpOTR v1 message type (mpotr/codec/messages.h): the decoded fields and "
      "the exact bytes. encode(fields) == encoding and decode(encoding) == fields; signed messages "
      "carry signature_check: the signature verifies under signer_public_key over signed_digest = "
      "SHA-256(\"mpotr-v1 signed\" || session_id || encoding[0:signed_len]) and is reproduced by "
      "signing that digest with signer_private_key and DeterministicRng(rng_seed). invalid: encodings "
      "that decode must reject, with the error code. Keys and fields were drawn from "
      "DeterministicRng(seed).",
      kMessagesSeed);
  DeterministicRng rng(kMessagesSeed);
  MPOTR_TRY(crypto::PrivateKey identity, crypto::PrivateKey::generate(rng));
  MPOTR_TRY(crypto::PrivateKey dh, crypto::PrivateKey::generate(rng));
  MPOTR_TRY(crypto::PrivateKey signing, crypto::PrivateKey::generate(rng));
  MPOTR_TRY(crypto::PrivateKey elgamal_r, crypto::PrivateKey::generate(rng));
  const Hash32 sid = rng.array<32>();
  const codec::SessionTag tag = ks::session_tag(sid);
  std::uint64_t sig_seed = kMessagesSeed + 100;

  Json cases = Json::array();
  Json invalid = Json::array();
  auto add_invalid = [&invalid](std::string_view name, const Bytes& encoding) -> Result<void> {
    auto r = codec::decode(view(encoding));
    if (r.ok()) {
      return failure(std::string(name) + ": the invalid encoding decodes");
    }
    invalid.push_back(Json{{"name", name}, {"encoding", hex(encoding)}, {"error", to_string(r.error().code)}});
    return {};
  };

  // offer
  Bytes offer_basic;
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
    if (offer_basic.empty()) {
      offer_basic = enc;
    }
    const std::string name = nick == "alice"     ? "offer/basic"
                             : nick.size() == 64 ? "offer/64-byte-nick"
                                                 : "offer/utf8-nick";
    cases.push_back(Json{{"name", name},
                         {"type", "offer"},
                         {"fields", offer_fields(o)},
                         {"encoding", hex(enc)},
                         {"signed_len", enc.size()}});
  }

  // key_share for 2, 3 and 5 members
  Bytes key_share_3;
  for (std::size_t members : {std::size_t{2}, std::size_t{3}, std::size_t{5}}) {
    codec::KeyShare k;
    k.session_id = sid;
    k.sender = static_cast<std::uint8_t>(members - 1);
    k.elgamal_r = elgamal_r.public_key().point();
    for (std::size_t i = 0; i + 1 < members; ++i) {
      codec::PairShare s;
      s.mac = rng.array<32>();
      s.secret_ct = rng.array<32>();
      k.shares.push_back(s);
    }
    const std::string name = "key_share/" + std::to_string(members) + "-members";
    MPOTR_TRY(Json c, signed_case<codec::KeyShare>(name, "key_share", k, sid, signing, sig_seed++, &key_share_fields));
    if (members == 3) {
      key_share_3 = codec::encode(k);
    }
    cases.push_back(std::move(c));
  }

  // attest
  for (std::uint8_t sender : {std::uint8_t{0}, std::uint8_t{2}}) {
    codec::Attest a;
    a.session_id = sid;
    a.sender = sender;
    a.transcript_hash = rng.array<32>();
    a.key_confirm = rng.array<32>();
    MPOTR_TRY(Json c, signed_case<codec::Attest>("attest/sender-" + std::to_string(sender), "attest", a, sid, signing,
                                                 sig_seed++, &attest_fields));
    cases.push_back(std::move(c));
  }

  // data and heartbeat
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
      {"data/varint-acks", codec::MessageType::Data, 2, 300, {127, 128, 16383, 16384, 4294967295u}, 300},
      {"data/large-seq", codec::MessageType::Data, 1, 4294967295u, {1}, 1},
      {"heartbeat/3-members", codec::MessageType::Heartbeat, 1, 2, {1, 1}, 0},
      {"heartbeat/2-members", codec::MessageType::Heartbeat, 0, 7, {0}, 0},
  };
  Bytes data_basic;
  Bytes heartbeat_basic;
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
    MPOTR_TRY(Json c, signed_case<codec::Data>(spec.name, type, d, sid, signing, sig_seed++, &data_fields));
    if (spec.name == "data/3-members") {
      data_basic = codec::encode(d);
    }
    if (spec.name == "heartbeat/3-members") {
      heartbeat_basic = codec::encode(d);
    }
    cases.push_back(std::move(c));
  }

  // shutdown
  Bytes shutdown_basic;
  for (std::uint32_t final_count : {0u, 70000u}) {
    codec::Shutdown s;
    s.session_tag = tag;
    s.sender = 1;
    s.final_count = final_count;
    MPOTR_TRY(Json c, signed_case<codec::Shutdown>("shutdown/final-" + std::to_string(final_count), "shutdown", s, sid,
                                                   signing, sig_seed++, &shutdown_fields));
    if (shutdown_basic.empty()) {
      shutdown_basic = codec::encode(s);
    }
    cases.push_back(std::move(c));
  }

  // digest
  for (std::uint8_t sender : {std::uint8_t{0}, std::uint8_t{127}}) {
    codec::Digest dg;
    dg.session_tag = tag;
    dg.sender = sender;
    dg.transcript_digest = rng.array<32>();
    MPOTR_TRY(Json c, signed_case<codec::Digest>("digest/sender-" + std::to_string(sender), "digest", dg, sid, signing,
                                                 sig_seed++, &digest_fields));
    cases.push_back(std::move(c));
  }

  // end
  for (std::uint8_t sender : {std::uint8_t{0}, std::uint8_t{5}}) {
    codec::End en;
    en.session_tag = tag;
    en.sender = sender;
    en.digests_hash = rng.array<32>();
    MPOTR_TRY(Json c, signed_case<codec::End>("end/sender-" + std::to_string(sender), "end", en, sid, signing, sig_seed++,
                                              &end_fields));
    cases.push_back(std::move(c));
  }

  // key_reveal: unsigned; the scalar must match the signer's registered public key.
  Bytes reveal_basic;
  for (std::uint8_t sender : {std::uint8_t{1}, std::uint8_t{2}}) {
    codec::KeyReveal kr;
    kr.session_tag = tag;
    kr.sender = sender;
    const SecretBytes scalar = signing.scalar();
    std::copy_n(scalar.data(), kr.private_key.size(), kr.private_key.begin());
    const Bytes enc = codec::encode(kr);
    if (reveal_basic.empty()) {
      reveal_basic = enc;
    }
    cases.push_back(Json{{"name", "key_reveal/sender-" + std::to_string(sender)},
                         {"type", "key_reveal"},
                         {"fields", key_reveal_fields(kr)},
                         {"encoding", hex(enc)},
                         {"signed_len", enc.size()},
                         {"key_check", Json{{"public_key", hex(signing.public_key().point())}}}});
  }
  doc["cases"] = cases;

  // Invalid encodings, each a small mutation of a valid one.
  auto mutated = [](Bytes b, std::size_t pos, std::uint8_t value) {
    b.at(pos) = value;
    return b;
  };
  auto truncated = [](Bytes b, std::size_t drop) {
    b.resize(b.size() - drop);
    return b;
  };
  auto extended = [](Bytes b) {
    b.push_back(0x00);
    return b;
  };
  MPOTR_CHECK(add_invalid("empty", Bytes{}));
  MPOTR_CHECK(add_invalid("version-only", Bytes{0x01}));
  MPOTR_CHECK(add_invalid("version-2", mutated(offer_basic, 0, 0x02)));
  MPOTR_CHECK(add_invalid("version-0", mutated(data_basic, 0, 0x00)));
  MPOTR_CHECK(add_invalid("unknown-type-0x30", mutated(offer_basic, 1, 0x30)));
  MPOTR_CHECK(add_invalid("unknown-type-0x00", mutated(data_basic, 1, 0x00)));
  MPOTR_CHECK(add_invalid("offer/trailing-byte", extended(offer_basic)));
  MPOTR_CHECK(add_invalid("offer/truncated", truncated(offer_basic, 1)));
  {
    // Offsets from the end: nick "alice" (5 bytes), nonce and three points follow its length byte.
    const std::size_t identity_at = offer_basic.size() - 3 * crypto::kPointLen;
    const std::size_t nick_len_at = identity_at - 32 - 5 - 1;
    Bytes b = offer_basic;  // nick length 0: drop the nick and zero its length
    b[nick_len_at] = 0;
    b.erase(b.begin() + static_cast<std::ptrdiff_t>(nick_len_at + 1),
            b.begin() + static_cast<std::ptrdiff_t>(nick_len_at + 6));
    MPOTR_CHECK(add_invalid("offer/empty-nick", b));
    MPOTR_CHECK(add_invalid("offer/nick-length-65", mutated(offer_basic, nick_len_at, 65)));  // over kMaxNickLen
    MPOTR_CHECK(add_invalid("offer/compressed-point", mutated(offer_basic, identity_at, 0x02)));
  }
  MPOTR_CHECK(add_invalid("key_share/zero-shares", [&] {
    Bytes b(key_share_3.begin(), key_share_3.begin() + 2 + 32 + 1 + 65);
    b.push_back(0);
    append(b, ByteView(key_share_3).last(64));
    return b;
  }()));
  MPOTR_CHECK(add_invalid("key_share/truncated-signature", truncated(key_share_3, 1)));
  MPOTR_CHECK(add_invalid("data/seq-0", [&] {
    Bytes b = data_basic;
    std::fill(b.begin() + 2 + 8 + 1, b.begin() + 2 + 8 + 1 + 4, std::uint8_t{0});
    return b;
  }()));
  MPOTR_CHECK(add_invalid("data/non-minimal-varint", [&] {
    // ack_count is at offset 15; the first ack (0x00) becomes 0x80 0x00.
    Bytes b = data_basic;
    b[16] = 0x80;
    b.insert(b.begin() + 17, 0x00);
    return b;
  }()));
  MPOTR_CHECK(add_invalid("data/empty-ciphertext", [&] {
    Bytes b = data_basic;
    const std::size_t len_at = 2 + 8 + 1 + 4 + 1 + 2 + 32;
    b[len_at] = 0;
    b[len_at + 1] = 0;
    b.erase(b.begin() + static_cast<std::ptrdiff_t>(len_at + 2),
            b.begin() + static_cast<std::ptrdiff_t>(len_at + 2 + 5));
    return b;
  }()));
  MPOTR_CHECK(add_invalid("heartbeat/carries-text", [&] {
    Bytes b = data_basic;
    b[1] = static_cast<std::uint8_t>(codec::MessageType::Heartbeat);
    return b;
  }()));
  MPOTR_CHECK(add_invalid("heartbeat/trailing-byte", extended(heartbeat_basic)));
  MPOTR_CHECK(add_invalid("shutdown/truncated", truncated(shutdown_basic, 65)));
  MPOTR_CHECK(add_invalid("key_reveal/truncated", truncated(reveal_basic, 1)));
  MPOTR_CHECK(add_invalid("key_reveal/trailing-byte", extended(reveal_basic)));
  doc["invalid"] = invalid;
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

bool has_code(EventKind kind) {
  return kind == EventKind::SetupFailed || kind == EventKind::SetupTimeout || kind == EventKind::Rejected;
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

// Recomputes the setup and the transcript from the recorded payloads and the ephemeral values
// the engines drew, and returns the "derived" section. Fails if anything disagrees: then either
// the engine's draw order changed (Attempt::start: dh, signing, elgamal_r, secret, nonce) or the
// engine and the key schedule disagree.
Result<Json> derive_session(const Conversation& conv, std::vector<Party>& parties, const Json& script, Json& expected) {
  const std::size_t n = parties.size();
  std::vector<Ephemeral> eph(n);
  for (std::size_t i = 0; i < n; ++i) {
    DeterministicRng r(parties[i].rng_seed);  // the engine's rng; set_roster is its first use
    MPOTR_TRY(eph[i].dh, crypto::PrivateKey::generate(r));
    MPOTR_TRY(eph[i].signing, crypto::PrivateKey::generate(r));
    MPOTR_TRY(eph[i].elgamal_r, crypto::PrivateKey::generate(r));
    eph[i].secret = r.secret(32);
    eph[i].nonce = r.array<32>();
  }

  std::vector<codec::Offer> offers(n);
  std::vector<Bytes> offer_bytes(n);
  std::vector<codec::KeyShare> shares(n);
  std::vector<Bytes> share_bytes(n);
  std::vector<codec::Attest> attests(n);
  std::vector<std::optional<Hash32>> digests(n);
  std::vector<std::optional<std::uint32_t>> final_counts(n);
  auto index_of = [&parties](const std::string& nick) -> std::size_t {
    for (std::size_t i = 0; i < parties.size(); ++i) {
      if (parties[i].nick == nick) {
        return i;
      }
    }
    return parties.size();
  };

  // Setup messages.
  for (const auto& b : conv.log()) {
    const std::size_t i = index_of(b.from);
    MPOTR_TRY(codec::MessageType type, codec::peek_type(view(b.payload)));
    if (type == codec::MessageType::Offer) {
      MPOTR_TRY(offers[i], decode_as<codec::Offer>(b.payload));
      offer_bytes[i] = b.payload;
    } else if (type == codec::MessageType::KeyShare) {
      MPOTR_TRY(shares[i], decode_as<codec::KeyShare>(b.payload));
      share_bytes[i] = codec::encode_signed_part(shares[i]);  // the transcript covers signed parts
    } else if (type == codec::MessageType::Attest) {
      MPOTR_TRY(attests[i], decode_as<codec::Attest>(b.payload));
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (offer_bytes[i].empty() || share_bytes[i].empty()) {
      return failure(parties[i].nick + " sent no offer or no key share");
    }
    if (offers[i].nonce != eph[i].nonce || offers[i].dh_key != eph[i].dh.public_key().point() ||
        offers[i].signing_key != eph[i].signing.public_key().point() ||
        shares[i].elgamal_r != eph[i].elgamal_r.public_key().point() ||
        offers[i].identity_key != parties[i].identity.public_key().point()) {
      return failure(parties[i].nick +
                     ": the offer or key share does not match the ephemeral values replayed from "
                     "its rng (did Attempt::start change its draw order?)");
    }
  }
  const Hash32 sid = ks::session_id(kRoom, offers);
  std::vector<SecretBytes> secrets;
  for (std::size_t j = 0; j < n; ++j) {
    secrets.push_back(eph[j].secret);
    // Every recipient recovers j's secret, and j's MACs verify.
    std::size_t slot = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (i == j) {
        continue;
      }
      const auto j8 = static_cast<std::uint8_t>(j);
      const auto i8 = static_cast<std::uint8_t>(i);
      const codec::PairShare& share = shares[j].shares.at(slot++);
      MPOTR_TRY(SecretBytes shared, eph[i].dh.ecdh(eph[j].elgamal_r.public_key()));
      MPOTR_TRY(SecretBytes pad, ks::elgamal_pad(sid, j8, i8, shared, shares[j].elgamal_r, offers[i].dh_key));
      for (std::size_t b = 0; b < 32; ++b) {
        if (static_cast<std::uint8_t>(share.secret_ct[b] ^ pad.data()[b]) != eph[j].secret.data()[b]) {
          return failure("the secret of " + parties[j].nick + " does not decrypt for " + parties[i].nick);
        }
      }
      MPOTR_TRY(ks::PairwiseKeys keys, ks::pairwise_keys_for(sid, j8, i8, parties[j].identity, eph[j].dh,
                                                             parties[i].identity.public_key(), eph[i].dh.public_key()));
      const SecretBytes& mac_key = j < i ? keys.mac_low_to_high : keys.mac_high_to_low;
      if (ks::dake_mac(mac_key, sid, j8, i8, offers[j].signing_key, offers[j].dh_key, shares[j].elgamal_r) !=
          share.mac) {
        return failure("the MAC of " + parties[j].nick + " for " + parties[i].nick + " does not match");
      }
    }
  }
  const SecretBytes group = ks::group_secret(sid, secrets);
  const Hash32 th = ks::setup_transcript_hash(offer_bytes, share_bytes);
  MPOTR_TRY(Hash32 kc, ks::key_confirm(group, th));
  for (std::size_t i = 0; i < n; ++i) {
    if (attests[i].session_id != sid || attests[i].transcript_hash != th || attests[i].key_confirm != kc) {
      return failure("the attest of " + parties[i].nick + " differs from the recomputed setup");
    }
  }
  std::vector<ks::SenderKey> sender_keys;
  Json sender_json = Json::array();
  for (std::size_t s = 0; s < n; ++s) {
    MPOTR_TRY(ks::SenderKey k, ks::sender_key(group, static_cast<std::uint8_t>(s)));
    sender_json.push_back(Json{{"sender", s}, {"key", hex(k.key)}, {"iv_prefix", hex(k.iv_prefix)}});
    sender_keys.push_back(std::move(k));
  }

  // Transcript: decrypt chat entries, follow hash chains, check every view and final digest.
  std::vector<std::vector<Hash32>> chains(n);
  for (std::size_t s = 0; s < n; ++s) {
    chains[s].push_back(ks::chain_start(sid, static_cast<std::uint8_t>(s)));
  }
  Json texts = Json::array();
  for (const auto& b : conv.log()) {
    const std::size_t i = index_of(b.from);
    MPOTR_TRY(codec::Decoded decoded, codec::decode(view(b.payload)));
    if (const auto* d = std::get_if<codec::Data>(&decoded.message)) {
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
      if (d->type == codec::MessageType::Data) {
        Bytes plain(d->ciphertext.size());
        MPOTR_CHECK(crypto::aes128_ctr(sender_keys[i].key.view(), ks::message_iv(sender_keys[i], d->seq),
                                       view(d->ciphertext), plain.data()));
        texts.push_back(Json{{"from", b.from}, {"seq", d->seq}, {"text", std::string(plain.begin(), plain.end())}});
      }
    } else if (const auto* sd = std::get_if<codec::Shutdown>(&decoded.message)) {
      final_counts[i] = sd->final_count;
    } else if (const auto* dg = std::get_if<codec::Digest>(&decoded.message)) {
      digests[i] = dg->transcript_digest;
    } else if (const auto* en = std::get_if<codec::End>(&decoded.message)) {
      // An End comes after every digest and binds all of them.
      if (en->digests_hash != ks::end_digest(digests)) {
        return failure("the end of " + b.from + " does not bind the digests sent");
      }
    } else if (const auto* kr = std::get_if<codec::KeyReveal>(&decoded.message)) {
      if (!std::equal(kr->private_key.begin(), kr->private_key.end(), eph[i].signing.scalar().data())) {
        return failure(b.from + " revealed a key that is not its signing key");
      }
    }
  }
  // The texts decrypted from the wire are exactly the script's, in order.
  Json script_texts = Json::array();
  for (const auto& s : script) {
    if (s.at("op") == "send_text") {
      script_texts.push_back(s.at("text"));
    }
  }
  Json wire_texts = Json::array();
  for (const auto& t : texts) {
    wire_texts.push_back(t.at("text"));
  }
  if (wire_texts != script_texts) {
    return failure("the decrypted chat texts differ from the script's");
  }
  std::vector<std::uint32_t> counts;
  std::vector<Hash32> finals;
  for (std::size_t s = 0; s < n; ++s) {
    if (!final_counts[s] || *final_counts[s] + 1 != chains[s].size()) {
      return failure(parties[s].nick + "'s shutdown count differs from its entries");
    }
    counts.push_back(*final_counts[s]);
    finals.push_back(chains[s].back());
  }
  const Hash32 td = ks::transcript_digest(counts, finals);
  Json per_member = Json::object();
  for (std::size_t s = 0; s < n; ++s) {
    if (!digests[s] || *digests[s] != td) {
      return failure(parties[s].nick + "'s final transcript digest differs from the recomputed one");
    }
    per_member[parties[s].nick] = hex(*digests[s]);
  }

  expected["session_id"] = hex(sid);
  expected["roster_digest"] = hex(offers[0].roster_digest);
  expected["texts"] = texts;
  expected["final_counts"] = counts;
  expected["transcript_digest"] = hex(td);
  expected["final_transcript_digests"] = per_member;

  Json derived;
  derived["note"] =
      "Not visible through the public API: recomputed by the generator from each engine's rng "
      "(DeterministicRng(rng_seed) draws dh, signing, elgamal_r as P-256 scalars, then secret and "
      "nonce as 32 bytes each) and checked against the payloads. With these, an independent "
      "implementation can recompute every MAC, pad, key and ciphertext of the conversation.";
  Json ephemeral = Json::array();
  for (std::size_t i = 0; i < n; ++i) {
    ephemeral.push_back(Json{{"nick", parties[i].nick},
                             {"dh_private", hex(eph[i].dh.scalar())},
                             {"signing_private", hex(eph[i].signing.scalar())},
                             {"elgamal_r_private", hex(eph[i].elgamal_r.scalar())},
                             {"secret", hex(eph[i].secret)},
                             {"nonce", hex(eph[i].nonce)}});
  }
  derived["ephemeral"] = ephemeral;
  derived["group_secret"] = hex(group);
  derived["setup_transcript_hash"] = hex(th);
  derived["key_confirm"] = hex(kc);
  derived["sender_keys"] = sender_json;
  return derived;
}

Result<Json> generate_session() {
  Json doc = header(
      "A complete deterministic 3-member mpOTR v1 conversation: setup (3 offers, 3 key shares, 3 "
      "attests), chat messages, a heartbeat round, and a shutdown run started by alice leaving "
      "(shutdowns, digests, key reveals). Replay: build each member's engine with EngineConfig{room, "
      "nick, timeouts} and IdentityKey::generate(DeterministicRng(identity_seed)); every engine call "
      "uses that member's DeterministicRng(rng_seed) and the step's `at` as the time. Steps: "
      "set_roster calls set_roster(all members, jid = nick@localhost) on each member in member order; "
      "send_text and leave call the named member; tick calls tick() on each member in member order; "
      "run delivers the queued broadcasts first-in first-out, each to every member in member order "
      "(the sender included, as rooms reflect messages), until the queue is empty. Every call's "
      "broadcasts join the queue tail in order. broadcasts lists them in that order with the step and "
      "the delivered broadcast (trigger) that produced them; events lists each member's events with "
      "the same step/trigger and every set field except the free-text detail.",
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
