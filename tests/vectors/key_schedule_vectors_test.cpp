// SPDX-License-Identifier: MIT
// spec/vectors/key_schedule.json: every derivation of mpotr/engine/key_schedule.h recomputed
// from the inputs in the file.
#include "mpotr/crypto/crypto.h"
#include "mpotr/engine/key_schedule.h"
#include "vectors/vectors.h"

using namespace mpotr;
using namespace mpotr::vectors;

namespace {

const Json& ks_doc() {
  static const Json doc = load("key_schedule.json");
  return doc;
}

crypto::PrivateKey private_key(const Json& pair) {
  auto key = must(crypto::PrivateKey::from_scalar(view(unhex(pair.at("private")))));
  REQUIRE(to_hex(view(key.public_key().point())) == str(pair.at("public")));
  return key;
}

crypto::Point point(const Json& j) { return unhex_array<crypto::kPointLen>(j); }

std::vector<std::uint32_t> counts_of(const Json& j) { return j.get<std::vector<std::uint32_t>>(); }

std::vector<Hash32> hashes_of(const Json& j) {
  std::vector<Hash32> out;
  for (const auto& h : j) {
    out.push_back(unhex32(h));
  }
  return out;
}

}  // namespace

TEST_CASE("key schedule vectors: roster digest, session id, session tag", "[vectors]") {
  int rosters = 0;
  for (const auto& c : ks_doc().at("roster_digest")) {
    const auto nicks = c.at("nicks").get<std::vector<std::string>>();
    INFO("roster case " << rosters);
    CHECK(hex(ks::roster_digest(str(c.at("room")), nicks)) == str(c.at("output")));
    ++rosters;
  }
  REQUIRE(rosters >= 4);

  int sids = 0;
  for (const auto& c : ks_doc().at("session_id")) {
    std::vector<codec::Offer> offers;
    for (const auto& o : c.at("offers")) {
      codec::Offer offer;
      set_attempt(offer, o);
      offer.nick = str(o.at("nick"));
      offer.nonce = unhex32(o.at("nonce"));
      offer.identity_key = point(o.at("identity_key"));
      offer.dh_key = point(o.at("dh_key"));
      offer.signing_key = point(o.at("signing_key"));
      offers.push_back(offer);
    }
    INFO("session id case " << sids);
    const Hash32 sid = ks::session_id(str(c.at("room")), offers);
    CHECK(hex(sid) == str(c.at("output")));
    CHECK(hex(ks::session_tag(sid)) == str(c.at("session_tag")));
    ++sids;
  }
  REQUIRE(sids >= 2);
}

TEST_CASE("key schedule vectors: pairwise keys agree from both sides", "[vectors]") {
  int ran = 0;
  for (const auto& c : ks_doc().at("pairwise_keys")) {
    INFO("pair case " << ran);
    const Hash32 sid = unhex32(c.at("session_id"));
    const auto low = c.at("low").get<std::uint8_t>();
    const auto high = c.at("high").get<std::uint8_t>();
    const auto a_low = private_key(c.at("low_identity"));
    const auto e_low = private_key(c.at("low_dh"));
    const auto a_high = private_key(c.at("high_identity"));
    const auto e_high = private_key(c.at("high_dh"));

    const SecretBytes dh1 = must(a_low.ecdh(e_high.public_key()));
    const SecretBytes dh2 = must(e_low.ecdh(a_high.public_key()));
    const SecretBytes dh3 = must(e_low.ecdh(e_high.public_key()));
    CHECK(hex(dh1) == str(c.at("dh_a_low_e_high")));
    CHECK(hex(dh2) == str(c.at("dh_e_low_a_high")));
    CHECK(hex(dh3) == str(c.at("dh_e_low_e_high")));
    // The high side computes the same three values with the roles swapped.
    CHECK(must(e_high.ecdh(a_low.public_key())) == dh1);
    CHECK(must(a_high.ecdh(e_low.public_key())) == dh2);
    CHECK(must(e_high.ecdh(e_low.public_key())) == dh3);

    const auto direct =
        must(ks::pairwise_keys(sid, low, high, unhex_secret(c.at("dh_a_low_e_high")),
                               unhex_secret(c.at("dh_e_low_a_high")), unhex_secret(c.at("dh_e_low_e_high"))));
    const auto from_low =
        must(ks::pairwise_keys_for(sid, low, high, a_low, e_low, a_high.public_key(), e_high.public_key()));
    const auto from_high =
        must(ks::pairwise_keys_for(sid, high, low, a_high, e_high, a_low.public_key(), e_low.public_key()));
    for (const auto* keys : {&direct, &from_low, &from_high}) {
      CHECK(hex(keys->mac_low_to_high) == str(c.at("mac_low_to_high")));
      CHECK(hex(keys->mac_high_to_low) == str(c.at("mac_high_to_low")));
    }
    ++ran;
  }
  REQUIRE(ran >= 3);
}

TEST_CASE("key schedule vectors: DAKE MAC and El Gamal pad", "[vectors]") {
  int macs = 0;
  for (const auto& c : ks_doc().at("dake_mac")) {
    INFO("dake case " << macs);
    const Hash32 mac = ks::dake_mac(unhex_secret(c.at("mac_key")), unhex32(c.at("session_id")),
                                    c.at("from").get<std::uint8_t>(), c.at("to").get<std::uint8_t>(),
                                    point(c.at("signing_key")), point(c.at("dh_key")), point(c.at("elgamal_r")));
    CHECK(hex(mac) == str(c.at("output")));
    ++macs;
  }
  REQUIRE(macs >= 6);

  int pads = 0;
  for (const auto& c : ks_doc().at("elgamal_pad")) {
    INFO("elgamal case " << pads);
    const auto r = private_key(c.at("elgamal_r"));
    const auto e_to = private_key(c.at("recipient_dh"));
    const SecretBytes shared = must(r.ecdh(e_to.public_key()));
    CHECK(hex(shared) == str(c.at("shared")));
    CHECK(must(e_to.ecdh(r.public_key())) == shared);  // what the recipient computes
    const SecretBytes pad = must(ks::elgamal_pad(unhex32(c.at("session_id")), c.at("from").get<std::uint8_t>(),
                                                 c.at("to").get<std::uint8_t>(), shared, r.public_key().point(),
                                                 e_to.public_key().point()));
    CHECK(hex(pad) == str(c.at("pad")));
    const Bytes secret = unhex(c.at("secret"));
    Bytes ct(32);
    for (std::size_t b = 0; b < 32; ++b) {
      ct[b] = static_cast<std::uint8_t>(secret[b] ^ pad.data()[b]);
    }
    CHECK(hex(ct) == str(c.at("secret_ct")));
    ++pads;
  }
  REQUIRE(pads >= 6);
}

TEST_CASE("key schedule vectors: group secret, setup transcript, key confirmation", "[vectors]") {
  int groups = 0;
  for (const auto& c : ks_doc().at("group_secret")) {
    std::vector<SecretBytes> secrets;
    for (const auto& s : c.at("secrets")) {
      secrets.push_back(unhex_secret(s));
    }
    CHECK(hex(ks::group_secret(unhex32(c.at("session_id")), secrets)) == str(c.at("output")));
    ++groups;
  }
  REQUIRE(groups >= 2);

  int transcripts = 0;
  for (const auto& c : ks_doc().at("setup_transcript_hash")) {
    std::vector<Bytes> offers;
    std::vector<Bytes> shares;
    for (const auto& o : c.at("offers")) {
      offers.push_back(unhex(o));
    }
    for (const auto& k : c.at("key_shares")) {
      shares.push_back(unhex(k));
    }
    CHECK(hex(ks::setup_transcript_hash(offers, shares)) == str(c.at("output")));
    ++transcripts;
  }
  REQUIRE(transcripts >= 2);

  int confirms = 0;
  for (const auto& c : ks_doc().at("key_confirm")) {
    CHECK(hex(must(ks::key_confirm(unhex_secret(c.at("group_secret")), unhex32(c.at("transcript_hash"))))) ==
          str(c.at("output")));
    ++confirms;
  }
  REQUIRE(confirms >= 2);
}

TEST_CASE("key schedule vectors: sender keys and message IVs", "[vectors]") {
  int keys = 0;
  int ivs = 0;
  for (const auto& c : ks_doc().at("sender_key")) {
    INFO("sender " << c.at("sender"));
    const auto key = must(ks::sender_key(unhex_secret(c.at("group_secret")), c.at("sender").get<std::uint8_t>()));
    CHECK(hex(key.key) == str(c.at("key")));
    CHECK(hex(key.iv_prefix) == str(c.at("iv_prefix")));
    for (const auto& iv : c.at("message_ivs")) {
      CHECK(hex(ks::message_iv(key, iv.at("seq").get<std::uint32_t>())) == str(iv.at("iv")));
      ++ivs;
    }
    ++keys;
  }
  REQUIRE(keys >= 3);
  REQUIRE(ivs >= 18);
}

TEST_CASE("key schedule vectors: signed digest, hash chains, view and transcript digests", "[vectors]") {
  int signed_digests = 0;
  for (const auto& c : ks_doc().at("signed_digest")) {
    CHECK(hex(ks::signed_digest(unhex32(c.at("session_id")), view(unhex(c.at("signed_part"))))) == str(c.at("output")));
    ++signed_digests;
  }
  REQUIRE(signed_digests >= 3);

  int entries = 0;
  for (const auto& c : ks_doc().at("chain")) {
    INFO("chain of sender " << c.at("sender"));
    Hash32 chain = ks::chain_start(unhex32(c.at("session_id")), c.at("sender").get<std::uint8_t>());
    CHECK(hex(chain) == str(c.at("start")));
    for (const auto& e : c.at("entries")) {
      chain = ks::chain_next(chain, unhex32(e.at("message_id")));
      CHECK(hex(chain) == str(e.at("chain")));
      ++entries;
    }
  }
  REQUIRE(entries >= 9);

  int views = 0;
  for (const auto& c : ks_doc().at("view_digest")) {
    CHECK(hex(ks::view_digest(counts_of(c.at("counts")), hashes_of(c.at("chains")))) == str(c.at("output")));
    ++views;
  }
  REQUIRE(views >= 3);

  int finals = 0;
  for (const auto& c : ks_doc().at("transcript_digest")) {
    const auto counts = counts_of(c.at("counts"));
    const auto chains = hashes_of(c.at("chains"));
    CHECK(hex(ks::transcript_digest(counts, chains)) == str(c.at("output")));
    CHECK(ks::transcript_digest(counts, chains) != ks::view_digest(counts, chains));  // distinct labels
    ++finals;
  }
  REQUIRE(finals >= 3);
}
