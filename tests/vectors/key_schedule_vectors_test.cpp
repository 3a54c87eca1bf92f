// SPDX-License-Identifier: MIT
// spec/vectors/key_schedule.json: every derivation of mpotr/engine/key_schedule.h recomputed
// from the inputs in the file.
#include <map>
#include <optional>
#include <set>
#include <variant>

#include "mpotr/codec/messages.h"
#include "mpotr/crypto/crypto.h"
#include "mpotr/engine/key_schedule.h"
#include "mpotr/engine/transcript.h"
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

TEST_CASE("key schedule vectors: DAKE keys, one per ordered pair, agree from both sides", "[vectors]") {
  int ran = 0;
  std::set<std::pair<int, int>> pairs;
  std::map<std::pair<int, int>, std::string> keys;
  for (const auto& c : ks_doc().at("dake_keys")) {
    const auto from = c.at("from").get<std::uint8_t>();
    const auto to = c.at("to").get<std::uint8_t>();
    INFO("dake key " << int{from} << " -> " << int{to});
    const Hash32 sid = unhex32(c.at("session_id"));
    const auto a_from = private_key(c.at("from_identity"));
    const auto e_from = private_key(c.at("from_dh"));
    const auto e_to = private_key(c.at("to_dh"));

    // The sender's DH values: a_from·E_to and e_from·E_to; the receiver's: e_to·A_from, e_to·E_from.
    const SecretBytes dh_a = must(a_from.ecdh(e_to.public_key()));
    const SecretBytes dh_e = must(e_from.ecdh(e_to.public_key()));
    CHECK(hex(dh_a) == str(c.at("dh_a_from_e_to")));
    CHECK(hex(dh_e) == str(c.at("dh_e_from_e_to")));
    CHECK(must(e_to.ecdh(a_from.public_key())) == dh_a);
    CHECK(must(e_to.ecdh(e_from.public_key())) == dh_e);

    // HKDF written out: IKM = DH(A_from, E_to) ‖ DH(E_from, E_to), info = label ‖ u8 from ‖ u8 to.
    Bytes ikm = dh_a.expose_copy();
    append(ikm, dh_e.view());
    CHECK(hex(ikm) == str(c.at("ikm")));
    Bytes info(ks::kLabelDakeKey.begin(), ks::kLabelDakeKey.end());
    info.push_back(from);
    info.push_back(to);
    CHECK(hex(info) == str(c.at("info")));
    const SecretBytes prk = crypto::hkdf_extract(view(sid), view(ikm));
    CHECK(hex(prk) == str(c.at("prk")));
    CHECK(hex(must(crypto::hkdf_expand(prk.view(), view(info), 32))) == str(c.at("key")));

    const auto direct = must(ks::dake_key(sid, from, to, unhex_secret(c.at("dh_a_from_e_to")),
                                          unhex_secret(c.at("dh_e_from_e_to"))));
    const auto sender_side = must(ks::dake_key_to(sid, from, to, a_from, e_from, e_to.public_key()));
    const auto receiver_side = must(ks::dake_key_from(sid, from, to, e_to, a_from.public_key(), e_from.public_key()));
    CHECK(hex(direct) == str(c.at("key")));
    CHECK(hex(sender_side) == str(c.at("key")));
    CHECK(hex(receiver_side) == str(c.at("key")));
    CHECK(pairs.insert({from, to}).second);
    keys[{from, to}] = str(c.at("key"));
    ++ran;
  }
  REQUIRE(ran >= 6);
  // One key per direction: K_{i→j} ≠ K_{j→i}.
  for (const auto& [pair, key] : keys) {
    const auto back = keys.find({pair.second, pair.first});
    REQUIRE(back != keys.end());
    CHECK(back->second != key);
  }
}

TEST_CASE("key schedule vectors: DAKE MAC and El Gamal pad", "[vectors]") {
  std::map<std::pair<int, int>, std::string> dake_keys;
  for (const auto& c : ks_doc().at("dake_keys")) {
    dake_keys[{c.at("from").get<int>(), c.at("to").get<int>()}] = str(c.at("key"));
  }
  int macs = 0;
  for (const auto& c : ks_doc().at("dake_mac")) {
    INFO("dake case " << macs);
    // The MAC i sends j is keyed with K_{i→j} of dake_keys.
    CHECK(str(c.at("mac_key")) == dake_keys.at({c.at("from").get<int>(), c.at("to").get<int>()}));
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

TEST_CASE("key schedule vectors: commitments and the group authentication key", "[vectors]") {
  int commits = 0;
  for (const auto& c : ks_doc().at("commit")) {
    INFO("commit case " << commits);
    const Hash32 sid = unhex32(c.at("session_id"));
    const auto sender = c.at("sender").get<std::uint8_t>();
    const SecretBytes x = unhex_secret(c.at("secret"));
    CHECK(hex(ks::commit(sid, sender, x)) == str(c.at("output")));
    // H("mpotr-v2 commit" ‖ sid ‖ u8 sender ‖ x), written out.
    crypto::Sha256 h;
    h.update(ks::kLabelCommit).update(view(sid)).update_u8(sender).update(x.view());
    CHECK(hex(h.finish()) == str(c.at("output")));
    ++commits;
  }
  REQUIRE(commits >= 4);

  // The setup's secrets are the ones its El Gamal pads carry.
  std::set<std::string> secrets;
  for (const auto& c : ks_doc().at("elgamal_pad")) {
    secrets.insert(str(c.at("secret")));
  }
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(secrets.count(str(ks_doc().at("commit")[i].at("secret"))) == 1);
  }

  int auths = 0;
  for (const auto& c : ks_doc().at("auth_key")) {
    const SecretBytes g = unhex_secret(c.at("group_secret"));
    const SecretBytes auth = must(ks::auth_key(g));
    CHECK(hex(auth) == str(c.at("output")));
    CHECK(hex(must(crypto::hkdf_expand(g.view(), as_bytes("mpotr-v2 auth"), 32))) == str(c.at("output")));
    ++auths;
  }
  REQUIRE(auths >= 2);
  // K_auth of the setup is derived from its group secret.
  CHECK(str(ks_doc().at("auth_key")[0].at("group_secret")) == str(ks_doc().at("group_secret")[0].at("output")));
}

TEST_CASE("key schedule vectors: group MAC over real encoded messages", "[vectors]") {
  std::set<std::string> types;
  int ran = 0;
  const std::string setup_auth = str(ks_doc().at("auth_key")[0].at("output"));
  for (const auto& c : ks_doc().at("message_mac")) {
    INFO("message_mac case " << str(c.at("name")));
    CHECK(str(c.at("auth_key")) == setup_auth);
    const Bytes message = unhex(c.at("message"));
    const codec::Decoded d = must(codec::decode(view(message)));
    REQUIRE(d.mac_len == c.at("mac_len").get<std::size_t>());
    REQUIRE(d.signed_len == c.at("signed_len").get<std::size_t>());
    REQUIRE(d.signed_len == d.mac_len + codec::kMacLen);
    REQUIRE(d.signed_len + crypto::kSignatureLen == message.size());
    CHECK(std::string(codec::to_string(must(codec::peek_type(view(message))))) == str(c.at("type")));

    // mac = HMAC(K_auth, message[0:mac_len]), and the message carries it right after.
    const SecretBytes auth = unhex_secret(c.at("auth_key"));
    const Hash32 mac = ks::message_mac(auth, ByteView(message).first(d.mac_len));
    CHECK(hex(mac) == str(c.at("mac")));
    CHECK(to_hex(ByteView(message).subspan(d.mac_len, codec::kMacLen)) == str(c.at("mac")));
    const Hash32 mac_field = std::visit(
        [](const auto& m) -> Hash32 {
          if constexpr (requires { m.mac; }) {
            return m.mac;
          } else {
            return Hash32{};
          }
        },
        d.message);
    CHECK(mac_field == mac);
    // Re-encoding the MAC'd part gives the same bytes (encode_mac_part).
    const Bytes mac_part = std::visit(
        [](const auto& m) -> Bytes {
          if constexpr (requires { m.mac; }) {
            return codec::encode_mac_part(m);
          } else {
            return Bytes{};
          }
        },
        d.message);
    CHECK(hex(mac_part) == to_hex(ByteView(message).first(d.mac_len)));

    // The signature covers the MAC.
    const Hash32 digest = ks::signed_digest(unhex32(ks_doc().at("session_id")[0].at("output")),
                                            ByteView(message).first(d.signed_len));
    CHECK(hex(digest) == str(c.at("signed_digest")));
    const auto signer = must(crypto::PublicKey::from_point(view(unhex(c.at("signer_public_key")))));
    CHECK(signer.verify_digest(digest, ByteView(message).last(crypto::kSignatureLen)));
    if (c.contains("text")) {
      const auto* entry = std::get_if<codec::Data>(&d.message);
      REQUIRE(entry != nullptr);
      const auto key = must(ks::sender_key(unhex_secret(ks_doc().at("group_secret")[0].at("output")), entry->sender));
      CHECK(hex(ks::message_iv(key, entry->seq)) == str(c.at("iv")));
      Bytes plain(entry->ciphertext.size());
      must(crypto::aes128_ctr(key.key.view(), ks::message_iv(key, entry->seq), view(entry->ciphertext), plain.data()));
      CHECK(std::string(plain.begin(), plain.end()) == str(c.at("text")));
    }
    types.insert(str(c.at("type")));
    ++ran;
  }
  REQUIRE(ran >= 6);
  REQUIRE(types == std::set<std::string>{"data", "heartbeat", "shutdown", "digest", "end", "quit"});
}

TEST_CASE("key schedule vectors: signed digest, hash chains, lost runs, view digests", "[vectors]") {
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
  REQUIRE(entries >= 18);

  int lost = 0;
  for (const auto& c : ks_doc().at("chain_lost")) {
    INFO("chain_lost case " << lost);
    const Hash32 previous = unhex32(c.at("previous"));
    const auto first = c.at("first").get<std::uint32_t>();
    const auto last = c.at("last").get<std::uint32_t>();
    const Hash32 out = ks::chain_lost(previous, first, last);
    CHECK(hex(out) == str(c.at("output")));
    // previous ‖ "mpotr-v2 lost" ‖ u32 first ‖ u32 last: 53 bytes, never the 64 of an entry step.
    const Bytes input = unhex(c.at("input"));
    CHECK(input.size() == 53);
    CHECK(hex(crypto::sha256(view(input))) == str(c.at("output")));
    CHECK(to_hex(ByteView(input).first(32)) == str(c.at("previous")));
    ++lost;
  }
  REQUIRE(lost >= 3);

  int views = 0;
  for (const auto& c : ks_doc().at("view_digest")) {
    CHECK(hex(ks::view_digest(counts_of(c.at("counts")), hashes_of(c.at("chains")))) == str(c.at("output")));
    ++views;
  }
  REQUIRE(views >= 3);
}

namespace {

// Replays one member's closing chain (§5.13) step by step with ks::chain_next / chain_lost, and
// through the engine's MemberTranscript fed the same arrivals, losses and late arrivals.
Hash32 closing_chain_of(const Hash32& sid, const Json& m) {
  const auto member = m.at("member").get<std::uint8_t>();
  const auto final_count = m.at("final_count").get<std::uint32_t>();
  Hash32 t = ks::chain_start(sid, member);
  CHECK(hex(t) == str(m.at("start")));
  detail::MemberTranscript engine_view(t);
  std::vector<std::pair<std::uint32_t, Hash32>> late;
  std::uint32_t next = 1;  // every entry 1..final_count is stepped over exactly once
  for (const auto& step : m.at("steps")) {
    if (step.contains("lost_first")) {
      const auto first = step.at("lost_first").get<std::uint32_t>();
      const auto last = step.at("lost_last").get<std::uint32_t>();
      CHECK(first == next);
      REQUIRE(first <= last);
      t = ks::chain_lost(t, first, last);
      engine_view.skip_to(last);
      next = last + 1;
    } else {
      const auto seq = step.at("seq").get<std::uint32_t>();
      CHECK(seq == next);
      const Hash32 id = unhex32(step.at("message_id"));
      t = ks::chain_next(t, id);
      if (step.value("late", false)) {
        engine_view.skip_to(seq);  // declared lost (R-DATA-8), arrives after later entries
        late.emplace_back(seq, id);
      } else {
        engine_view.append(id);
      }
      next = seq + 1;
    }
    CHECK(hex(t) == str(step.at("chain")));
  }
  CHECK(next == final_count + 1);
  for (const auto& [seq, id] : late) {
    CHECK(engine_view.fill(seq, id));
  }
  CHECK(engine_view.closing_chain(final_count) == t);
  CHECK(hex(t) == str(m.at("closing_chain")));
  return t;
}

}  // namespace

TEST_CASE("key schedule vectors: transcript digests over closing chains with lost runs", "[vectors]") {
  std::map<std::string, std::string> outputs;
  std::map<std::string, bool> has_loss;
  int ran = 0;
  int runs = 0;
  for (const auto& c : ks_doc().at("transcript_digest")) {
    const std::string name = str(c.at("name"));
    INFO("transcript case " << name);
    const Hash32 sid = unhex32(c.at("session_id"));
    std::vector<std::uint32_t> counts;
    std::vector<Hash32> chains;
    bool lost = false;
    for (const auto& m : c.at("members")) {
      INFO("member " << m.at("member"));
      CHECK(m.at("member").get<std::size_t>() == chains.size());
      counts.push_back(m.at("final_count").get<std::uint32_t>());
      chains.push_back(closing_chain_of(sid, m));
      for (const auto& step : m.at("steps")) {
        const bool run = step.contains("lost_first");
        lost = lost || run;
        runs += run ? 1 : 0;
      }
    }
    CHECK(counts == counts_of(c.at("counts")));
    CHECK(chains == hashes_of(c.at("chains")));
    const Hash32 out = ks::transcript_digest(counts, chains);
    CHECK(hex(out) == str(c.at("output")));
    CHECK(out != ks::view_digest(counts, chains));  // distinct labels
    outputs[name] = hex(out);
    has_loss[name] = lost;
    ++ran;
  }
  REQUIRE(ran >= 5);
  REQUIRE(runs >= 6);
  // The shapes the file promises: a late arrival is held like any entry; losses change the digest.
  REQUIRE(outputs.count("intact") == 1);
  REQUIRE(outputs.count("late-arrival") == 1);
  CHECK(outputs.at("late-arrival") == outputs.at("intact"));
  for (const auto& [name, out] : outputs) {
    if (has_loss.at(name)) {
      CHECK(out != outputs.at("intact"));
    }
  }
}

TEST_CASE("key schedule vectors: end digests over present and excused members", "[vectors]") {
  std::map<std::string, std::string> transcripts;
  for (const auto& c : ks_doc().at("transcript_digest")) {
    transcripts[str(c.at("name"))] = str(c.at("output"));
  }
  int ran = 0;
  int excused = 0;
  for (const auto& c : ks_doc().at("end_digest")) {
    INFO("end case " << str(c.at("name")));
    std::vector<std::optional<Hash32>> digests;
    codec::MemberSet present;
    Bytes input(ks::kLabelEnd.begin(), ks::kLabelEnd.end());
    for (const auto& d : c.at("digests")) {
      CHECK(d.at("member").get<std::size_t>() == digests.size());
      if (d.at("present").get<bool>()) {
        const Hash32 digest = unhex32(d.at("digest"));
        CHECK(hex(digest) == transcripts.at(str(d.at("transcript_case"))));
        digests.emplace_back(digest);
        present.set(digests.size() - 1);
      } else {
        CHECK(d.at("digest").is_null());
        digests.emplace_back(std::nullopt);
        ++excused;
      }
      // u8 present ‖ digest, 32 zero bytes for a member whose digest is absent.
      input.push_back(digests.back() ? 1 : 0);
      append(input, view(digests.back().value_or(Hash32{})));
    }
    CHECK(hex(present.bits) == str(c.at("present")));
    CHECK(hex(input) == str(c.at("input")));
    CHECK(hex(crypto::sha256(view(input))) == str(c.at("output")));
    CHECK(hex(ks::end_digest(digests)) == str(c.at("output")));
    ++ran;
  }
  REQUIRE(ran >= 4);
  REQUIRE(excused >= 3);
}
