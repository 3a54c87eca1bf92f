// SPDX-License-Identifier: MIT
// spec/vectors/messages.json: encode(fields) == bytes, decode(bytes) == fields, signatures
// verify over signed_digest(sid, signed part), and invalid encodings fail with the given code.
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

codec::KeyShare key_share_from(const Json& f) {
  codec::KeyShare m;
  m.session_id = unhex32(f.at("session_id"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.elgamal_r = unhex_array<crypto::kPointLen>(f.at("elgamal_r"));
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

codec::Data data_from(const Json& f, codec::MessageType type) {
  codec::Data m;
  m.type = type;
  m.session_tag = unhex_array<codec::kSessionTagLen>(f.at("session_tag"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.seq = f.at("seq").get<std::uint32_t>();
  m.acks = f.at("acks").get<std::vector<std::uint32_t>>();
  m.view_digest = unhex32(f.at("view_digest"));
  m.ciphertext = unhex(f.at("ciphertext"));
  m.signature = unhex_array<crypto::kSignatureLen>(f.at("signature"));
  return m;
}

codec::Shutdown shutdown_from(const Json& f) {
  codec::Shutdown m;
  m.session_tag = unhex_array<codec::kSessionTagLen>(f.at("session_tag"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.final_count = f.at("final_count").get<std::uint32_t>();
  m.signature = unhex_array<crypto::kSignatureLen>(f.at("signature"));
  return m;
}

codec::Digest digest_from(const Json& f) {
  codec::Digest m;
  m.session_tag = unhex_array<codec::kSessionTagLen>(f.at("session_tag"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.transcript_digest = unhex32(f.at("transcript_digest"));
  m.signature = unhex_array<crypto::kSignatureLen>(f.at("signature"));
  return m;
}

codec::End end_from(const Json& f) {
  codec::End m;
  m.session_tag = unhex_array<codec::kSessionTagLen>(f.at("session_tag"));
  m.sender = f.at("sender").get<std::uint8_t>();
  m.digests_hash = unhex32(f.at("digests_hash"));
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
  Json operator()(const codec::Data& m) const {
    return Json{{"session_tag", hex(m.session_tag)},
                {"sender", m.sender},
                {"seq", m.seq},
                {"acks", m.acks},
                {"view_digest", hex(m.view_digest)},
                {"ciphertext", hex(m.ciphertext)},
                {"signature", hex(m.signature)}};
  }
  Json operator()(const codec::Shutdown& m) const {
    return Json{{"session_tag", hex(m.session_tag)},
                {"sender", m.sender},
                {"final_count", m.final_count},
                {"signature", hex(m.signature)}};
  }
  Json operator()(const codec::Digest& m) const {
    return Json{{"session_tag", hex(m.session_tag)},
                {"sender", m.sender},
                {"transcript_digest", hex(m.transcript_digest)},
                {"signature", hex(m.signature)}};
  }
  Json operator()(const codec::End& m) const {
    return Json{{"session_tag", hex(m.session_tag)},
                {"sender", m.sender},
                {"digests_hash", hex(m.digests_hash)},
                {"signature", hex(m.signature)}};
  }
  Json operator()(const codec::KeyReveal& m) const {
    return Json{{"session_tag", hex(m.session_tag)}, {"sender", m.sender}, {"private_key", hex(m.private_key)}};
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
  REQUIRE(ran >= 19);
  REQUIRE(signatures >= 14);
  REQUIRE(types == std::set<std::string>{"offer", "key_share", "attest", "data", "heartbeat", "shutdown", "digest",
                                         "end", "key_reveal"});
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
    DeterministicRng rng(check.at("rng_seed").get<std::uint64_t>());
    const auto sig = must(key.sign_digest(digest, rng));
    CHECK(hex(sig) == str(c.at("fields").at("signature")));
    CHECK(hex(sig) == to_hex(ByteView(encoding).subspan(signed_len)));
    CHECK(seen.insert(hex(sig)).second);  // hedged nonces: no two signatures share an r
    ++ran;
  }
  REQUIRE(ran >= 14);
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
  REQUIRE(ran >= 20);
}
