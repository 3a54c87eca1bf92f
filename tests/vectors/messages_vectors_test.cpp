// SPDX-License-Identifier: MIT
// spec/vectors/messages.json: encode(fields) == bytes, decode(bytes) == fields, group MACs are
// HMAC(K_auth, MAC'd part), signatures verify over signed_digest(sid, signed part) and are
// reproduced from the written-out hedged nonce, and invalid encodings fail with the given code.
#include <set>
#include <variant>

#include "mpotr/codec/messages.h"
#include "mpotr/crypto/crypto.h"
#include "mpotr/engine/key_schedule.h"
#include "mpotr/rng.h"
#include "vectors/vectors.h"

using namespace mpotr;
using namespace mpotr::vectors;

namespace {

const Json& messages_doc() {
  static const Json doc = load("messages.json");
  return doc;
}

// --- fields → struct ---------------------------------------------------------------------

codec::Offer offer_from(const Json& f) {
  codec::Offer m;
  m.roster_digest = unhex32(f.at("roster_digest"));
  set_attempt(m, f);
  m.nick = str(f.at("nick"));
  m.nonce = unhex32(f.at("nonce"));
  m.identity_key = unhex_array<crypto::kPointLen>(f.at("identity_key"));
  m.dh_key = unhex_array<crypto::kPointLen>(f.at("dh_key"));
  m.signing_key = unhex_array<crypto::kPointLen>(f.at("signing_key"));
  return m;
}

codec::MemberSet member_set_from(const Json& j) {
  codec::MemberSet s;
  s.bits = unhex_array<codec::kMemberSetLen>(j);
  return s;
}

codec::KeyShare key_share_from(const Json& f) {
  codec::KeyShare m;
  m.session_id = unhex32(f.at("session_id"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.elgamal_r = unhex_array<crypto::kPointLen>(f.at("elgamal_r"));
  m.commit = unhex32(f.at("commit"));
  m.refused = member_set_from(f.at("refused"));
  for (const auto& s : f.at("shares")) {
    m.shares.push_back(codec::PairShare{unhex32(s.at("mac")), unhex32(s.at("secret_ct"))});
  }
  m.signature = unhex_array<crypto::kSignatureLen>(f.at("signature"));
  return m;
}

codec::Attest attest_from(const Json& f) {
  codec::Attest m;
  m.session_id = unhex32(f.at("session_id"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.transcript_hash = unhex32(f.at("transcript_hash"));
  m.key_confirm = unhex32(f.at("key_confirm"));
  m.signature = unhex_array<crypto::kSignatureLen>(f.at("signature"));
  return m;
}

codec::Accuse accuse_from(const Json& f) {
  codec::Accuse m;
  m.session_id = unhex32(f.at("session_id"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.accused = f.at("accused").get<std::uint8_t>();
  m.dh_private = unhex32(f.at("dh_private"));
  m.key_share = unhex(f.at("key_share"));
  m.signature = unhex_array<crypto::kSignatureLen>(f.at("signature"));
  return m;
}

codec::Data data_from(const Json& f, codec::MessageType type) {
  codec::Data m;
  m.type = type;
  m.session_tag = unhex_array<codec::kSessionTagLen>(f.at("session_tag"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.seq = f.at("seq").get<std::uint32_t>();
  m.acks = f.at("acks").get<std::vector<std::uint32_t>>();
  m.view_digest = unhex32(f.at("view_digest"));
  m.ciphertext = unhex(f.at("ciphertext"));
  m.mac = unhex32(f.at("mac"));
  m.signature = unhex_array<crypto::kSignatureLen>(f.at("signature"));
  return m;
}

codec::Shutdown shutdown_from(const Json& f) {
  codec::Shutdown m;
  m.session_tag = unhex_array<codec::kSessionTagLen>(f.at("session_tag"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.final_count = f.at("final_count").get<std::uint32_t>();
  m.mac = unhex32(f.at("mac"));
  m.signature = unhex_array<crypto::kSignatureLen>(f.at("signature"));
  return m;
}

codec::Digest digest_from(const Json& f) {
  codec::Digest m;
  m.session_tag = unhex_array<codec::kSessionTagLen>(f.at("session_tag"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.transcript_digest = unhex32(f.at("transcript_digest"));
  m.mac = unhex32(f.at("mac"));
  m.signature = unhex_array<crypto::kSignatureLen>(f.at("signature"));
  return m;
}

codec::End end_from(const Json& f) {
  codec::End m;
  m.session_tag = unhex_array<codec::kSessionTagLen>(f.at("session_tag"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.present = member_set_from(f.at("present"));
  m.digests_hash = unhex32(f.at("digests_hash"));
  m.mac = unhex32(f.at("mac"));
  m.signature = unhex_array<crypto::kSignatureLen>(f.at("signature"));
  return m;
}

codec::KeyReveal key_reveal_from(const Json& f) {
  codec::KeyReveal m;
  m.session_tag = unhex_array<codec::kSessionTagLen>(f.at("session_tag"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.private_key = unhex32(f.at("private_key"));
  return m;
}

codec::Quit quit_from(const Json& f) {
  codec::Quit m;
  m.session_tag = unhex_array<codec::kSessionTagLen>(f.at("session_tag"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.final_count = f.at("final_count").get<std::uint32_t>();
  m.mac = unhex32(f.at("mac"));
  m.signature = unhex_array<crypto::kSignatureLen>(f.at("signature"));
  return m;
}

// Encodes the struct the fields describe.
Bytes encode_fields(const std::string& type, const Json& f) {
  if (type == "offer") {
    return codec::encode(offer_from(f));
  }
  if (type == "key_share") {
    return codec::encode(key_share_from(f));
  }
  if (type == "attest") {
    return codec::encode(attest_from(f));
  }
  if (type == "accuse") {
    return codec::encode(accuse_from(f));
  }
  if (type == "data") {
    return codec::encode(data_from(f, codec::MessageType::Data));
  }
  if (type == "heartbeat") {
    return codec::encode(data_from(f, codec::MessageType::Heartbeat));
  }
  if (type == "shutdown") {
    return codec::encode(shutdown_from(f));
  }
  if (type == "digest") {
    return codec::encode(digest_from(f));
  }
  if (type == "end") {
    return codec::encode(end_from(f));
  }
  if (type == "key_reveal") {
    return codec::encode(key_reveal_from(f));
  }
  if (type == "quit") {
    return codec::encode(quit_from(f));
  }
  FAIL("unknown message type " << type);
  return {};
}

// --- struct → fields ---------------------------------------------------------------------

struct FieldsOf {
  Json operator()(const codec::Offer& m) const {
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
  Json operator()(const codec::KeyShare& m) const {
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
  Json operator()(const codec::Attest& m) const {
    return Json{{"session_id", hex(m.session_id)},
                {"sender", m.sender},
                {"transcript_hash", hex(m.transcript_hash)},
                {"key_confirm", hex(m.key_confirm)},
                {"signature", hex(m.signature)}};
  }
  Json operator()(const codec::Accuse& m) const {
    return Json{{"session_id", hex(m.session_id)},
                {"sender", m.sender},
                {"accused", m.accused},
                {"dh_private", hex(m.dh_private)},
                {"key_share", hex(m.key_share)},
                {"signature", hex(m.signature)}};
  }
  Json operator()(const codec::Data& m) const {
    return Json{{"session_tag", hex(m.session_tag)},
                {"sender", m.sender},
                {"seq", m.seq},
                {"acks", m.acks},
                {"view_digest", hex(m.view_digest)},
                {"ciphertext", hex(m.ciphertext)},
                {"mac", hex(m.mac)},
                {"signature", hex(m.signature)}};
  }
  Json operator()(const codec::Shutdown& m) const {
    return Json{{"session_tag", hex(m.session_tag)},
                {"sender", m.sender},
                {"final_count", m.final_count},
                {"mac", hex(m.mac)},
                {"signature", hex(m.signature)}};
  }
  Json operator()(const codec::Digest& m) const {
    return Json{{"session_tag", hex(m.session_tag)},
                {"sender", m.sender},
                {"transcript_digest", hex(m.transcript_digest)},
                {"mac", hex(m.mac)},
                {"signature", hex(m.signature)}};
  }
  Json operator()(const codec::End& m) const {
    return Json{{"session_tag", hex(m.session_tag)},
                {"sender", m.sender},
                {"present", hex(m.present.bits)},
                {"digests_hash", hex(m.digests_hash)},
                {"mac", hex(m.mac)},
                {"signature", hex(m.signature)}};
  }
  Json operator()(const codec::KeyReveal& m) const {
    return Json{{"session_tag", hex(m.session_tag)}, {"sender", m.sender}, {"private_key", hex(m.private_key)}};
  }
  Json operator()(const codec::Quit& m) const {
    return Json{{"session_tag", hex(m.session_tag)},
                {"sender", m.sender},
                {"final_count", m.final_count},
                {"mac", hex(m.mac)},
                {"signature", hex(m.signature)}};
  }
};

const codec::Signature* signature_of(const codec::Message& m) {
  return std::visit(
      [](const auto& msg) -> const codec::Signature* {
        if constexpr (requires { msg.signature; }) {
          return &msg.signature;
        } else {
          return nullptr;
        }
      },
      m);
}

const codec::Mac* mac_of(const codec::Message& m) {
  return std::visit(
      [](const auto& msg) -> const codec::Mac* {
        if constexpr (requires { msg.mac; }) {
          return &msg.mac;
        } else {
          return nullptr;
        }
      },
      m);
}

const Json* find_case(const std::string& name) {
  for (const auto& c : messages_doc().at("cases")) {
    if (str(c.at("name")) == name) {
      return &c;
    }
  }
  return nullptr;
}

}  // namespace

TEST_CASE("message vectors: encode and decode every message type exactly", "[vectors]") {
  std::set<std::string> types;
  int ran = 0;
  int signatures = 0;
  for (const auto& c : messages_doc().at("cases")) {
    const std::string name = str(c.at("name"));
    const std::string type = str(c.at("type"));
    INFO("case " << name);
    const Bytes encoding = unhex(c.at("encoding"));
    const Json& fields = c.at("fields");

    CHECK(hex(encode_fields(type, fields)) == hex(encoding));

    const auto peeked = must(codec::peek_type(view(encoding)));
    CHECK(std::string(codec::to_string(peeked)) == type);
    const codec::Decoded decoded = must(codec::decode(view(encoding)));
    CHECK(decoded.signed_len == c.at("signed_len").get<std::size_t>());
    CHECK(decoded.mac_len == c.at("mac_len").get<std::size_t>());
    const Json back = std::visit(FieldsOf{}, decoded.message);
    CHECK(back == fields);
    if (const auto* d = std::get_if<codec::Data>(&decoded.message)) {
      CHECK(std::string(codec::to_string(d->type)) == type);
    }

    const codec::Signature* sig = signature_of(decoded.message);
    if (c.contains("signature_check")) {
      REQUIRE(sig != nullptr);
      const Json& check = c.at("signature_check");
      const Hash32 sid = unhex32(check.at("session_id"));
      const Hash32 digest = ks::signed_digest(sid, ByteView(encoding).first(decoded.signed_len));
      CHECK(hex(digest) == str(check.at("signed_digest")));
      const auto pub = must(crypto::PublicKey::from_point(view(unhex(check.at("signer_public_key")))));
      CHECK(pub.verify_digest(digest, view(*sig)));
      // Session messages carry the first 8 bytes of the session id.
      if (fields.contains("session_tag")) {
        CHECK(str(fields.at("session_tag")) == hex(ks::session_tag(sid)));
      }
      ++signatures;
    } else {
      CHECK(sig == nullptr);
      CHECK(decoded.signed_len == encoding.size());
    }
    if (c.contains("key_check")) {
      const auto* reveal = std::get_if<codec::KeyReveal>(&decoded.message);
      REQUIRE(reveal != nullptr);
      const auto key = must(crypto::PrivateKey::from_scalar(view(reveal->private_key)));
      CHECK(to_hex(view(key.public_key().point())) == str(c.at("key_check").at("public_key")));
    }
    types.insert(type);
    ++ran;
  }
  REQUIRE(ran >= 27);
  REQUIRE(signatures >= 22);
  REQUIRE(types == std::set<std::string>{"offer", "key_share", "attest", "accuse", "data", "heartbeat", "shutdown",
                                         "digest", "end", "key_reveal", "quit"});
}

TEST_CASE("message vectors: group MACs are HMAC under K_auth of the bytes before them", "[vectors]") {
  int ran = 0;
  for (const auto& c : messages_doc().at("cases")) {
    INFO("case " << str(c.at("name")));
    const Bytes encoding = unhex(c.at("encoding"));
    const codec::Decoded decoded = must(codec::decode(view(encoding)));
    const codec::Mac* mac = mac_of(decoded.message);
    if (!c.contains("mac_check")) {
      CHECK(mac == nullptr);
      CHECK(decoded.mac_len == 0);
      continue;
    }
    REQUIRE(mac != nullptr);
    const Json& check = c.at("mac_check");
    const SecretBytes auth = must(ks::auth_key(unhex_secret(check.at("group_secret"))));
    CHECK(hex(auth) == str(check.at("auth_key")));
    const auto mac_len = c.at("mac_len").get<std::size_t>();
    // The MAC sits right before the signature, over everything before it.
    CHECK(mac_len + codec::kMacLen == decoded.signed_len);
    CHECK(hex(ks::message_mac(auth, ByteView(encoding).first(mac_len))) == hex(*mac));
    CHECK(str(c.at("fields").at("mac")) == hex(*mac));
    ++ran;
  }
  REQUIRE(ran >= 14);
}

TEST_CASE("message vectors: what decoding leaves to the engine", "[vectors]") {
  // Refused bits are not a decode error, even for the sender itself or beyond the roster: the
  // engine checks them against its roster (R-KS-5).
  const Json* refusing = find_case("key_share/refused-beyond-roster");
  REQUIRE(refusing != nullptr);
  const auto decoded = must(codec::decode(view(unhex(refusing->at("encoding")))));
  const auto& share = std::get<codec::KeyShare>(decoded.message);
  CHECK(share.refused.test(share.sender));
  CHECK(share.refused.bound() > share.shares.size() + 1);

  // An accusation embeds the accused's key share exactly, signature included.
  int accusations = 0;
  for (const auto& c : messages_doc().at("cases")) {
    if (str(c.at("type")) != "accuse") {
      continue;
    }
    INFO("case " << str(c.at("name")));
    const auto d = must(codec::decode(view(unhex(c.at("encoding")))));
    const auto& acc = std::get<codec::Accuse>(d.message);
    CHECK(acc.accused != acc.sender);
    const auto embedded = must(codec::decode(view(acc.key_share)));
    const auto* ks_msg = std::get_if<codec::KeyShare>(&embedded.message);
    REQUIRE(ks_msg != nullptr);
    CHECK(ks_msg->sender == acc.accused);
    CHECK(ks_msg->session_id == acc.session_id);
    const Json* original = find_case("key_share/" + std::to_string(ks_msg->shares.size() + 1) + "-members");
    REQUIRE(original != nullptr);
    CHECK(str(original->at("encoding")) == hex(acc.key_share));
    // dh_private is a valid scalar (the accuser's e of the failed attempt).
    CHECK(crypto::PrivateKey::from_scalar(view(acc.dh_private)).ok());
    ++accusations;
  }
  REQUIRE(accusations >= 2);
}

TEST_CASE("message vectors: signatures are reproduced from the signer key and rng seed", "[vectors]") {
  int ran = 0;
  std::set<std::string> seen;
  for (const auto& c : messages_doc().at("cases")) {
    if (!c.contains("signature_check")) {
      continue;
    }
    INFO("case " << str(c.at("name")));
    const Json& check = c.at("signature_check");
    const Bytes encoding = unhex(c.at("encoding"));
    const auto signed_len = c.at("signed_len").get<std::size_t>();
    const auto key = must(crypto::PrivateKey::from_scalar(view(unhex(check.at("signer_private_key")))));
    REQUIRE(to_hex(view(key.public_key().point())) == str(check.at("signer_public_key")));
    const Hash32 digest = ks::signed_digest(unhex32(check.at("session_id")), ByteView(encoding).first(signed_len));
    // The hedged nonce written out (spec §3.5): rnd32 is the rng's first draw, and
    // k = HMAC-SHA-256(d, rnd32 ‖ digest ‖ u32 counter) with r = x(k·G).
    DeterministicRng rnd_rng(check.at("rng_seed").get<std::uint64_t>());
    const auto rnd = rnd_rng.array<32>();
    CHECK(hex(rnd) == str(check.at("rnd32")));
    Bytes input(rnd.begin(), rnd.end());
    append(input, view(digest));
    const auto ctr = check.at("nonce_counter").get<std::uint32_t>();
    append(input, view(Bytes{static_cast<std::uint8_t>(ctr >> 24), static_cast<std::uint8_t>(ctr >> 16),
                             static_cast<std::uint8_t>(ctr >> 8), static_cast<std::uint8_t>(ctr)}));
    const Hash32 k = crypto::hmac_sha256(key.scalar().view(), view(input));
    CHECK(hex(k) == str(check.at("k")));
    const auto kg = must(crypto::PrivateKey::from_scalar(view(k))).public_key().point();
    CHECK(to_hex(ByteView(kg).subspan(1, 32)) == to_hex(ByteView(encoding).subspan(signed_len, 32)));
    DeterministicRng rng(check.at("rng_seed").get<std::uint64_t>());
    const auto sig = must(key.sign_digest(digest, rng));
    CHECK(hex(sig) == str(c.at("fields").at("signature")));
    CHECK(hex(sig) == to_hex(ByteView(encoding).subspan(signed_len)));
    CHECK(seen.insert(hex(sig)).second);  // hedged nonces: no two signatures share an r
    ++ran;
  }
  REQUIRE(ran >= 22);
}

TEST_CASE("message vectors: invalid encodings are rejected with the given code", "[vectors]") {
  int ran = 0;
  for (const auto& c : messages_doc().at("invalid")) {
    INFO("invalid case " << str(c.at("name")));
    auto r = codec::decode(view(unhex(c.at("encoding"))));
    REQUIRE_FALSE(r.ok());
    CHECK(std::string(to_string(r.error().code)) == str(c.at("error")));
    ++ran;
  }
  REQUIRE(ran >= 40);
}
