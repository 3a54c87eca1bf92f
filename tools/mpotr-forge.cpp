// SPDX-License-Identifier: MIT
// The deniability demonstration: from nothing but what the server relayed (a relay log from
// mpotr-demo or a capture), take the signing key a member published when its session ended
// and produce a NEW chat entry in that member's name that verifies exactly like the real ones.
//
//   mpotr-forge --relay-log relay.json --as bob [--text "I never said that"]
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mpotr/codec/messages.h"
#include "mpotr/engine/forgery.h"
#include "mpotr/engine/key_schedule.h"

namespace {

using namespace mpotr;

struct Relayed {
  std::string from;
  Bytes payload;
  codec::Decoded decoded;
};

int fail(const std::string& why) {
  std::cerr << "mpotr-forge: " << why << "\n";
  return 1;
}

int run(int argc, char** argv) {
  std::string log_path, as, text = "I never said that.";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--relay-log") == 0) {
      log_path = argv[i + 1];
    } else if (std::strcmp(argv[i], "--as") == 0) {
      as = argv[i + 1];
    } else if (std::strcmp(argv[i], "--text") == 0) {
      text = argv[i + 1];
    } else {
      return fail(std::string("unknown option ") + argv[i]);
    }
  }
  if (log_path.empty() || as.empty() || text.empty()) {
    std::cerr << "usage: mpotr-forge --relay-log FILE --as NICK [--text TEXT]\n";
    return 2;
  }
  std::ifstream in(log_path);
  if (!in) {
    return fail("cannot read " + log_path);
  }
  const nlohmann::json log = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (log.is_discarded() || !log.contains("relayed") || !log["relayed"].is_array()) {
    return fail(log_path + " is not a relay log ({\"relayed\": [{\"from\", \"payload\"}]})");
  }
  std::vector<Relayed> relayed;
  for (const auto& item : log["relayed"]) {
    Bytes payload;
    if (!item.contains("from") || !item.contains("payload") || !item["from"].is_string() ||
        !item["payload"].is_string() || !from_hex(item["payload"].get<std::string>(), payload)) {
      return fail("malformed relay log entry");
    }
    auto decoded = codec::decode(view(payload));
    if (decoded.ok()) {  // the server may have relayed junk; skip it
      relayed.push_back(Relayed{item["from"].get<std::string>(), std::move(payload), std::move(decoded).value()});
    }
  }

  // 1. The published keys of that member: KeyReveals travel through the server, so they are
  // public. Take the latest session in which the member also wrote something.
  const codec::KeyReveal* reveal = nullptr;
  for (const auto& r : relayed) {
    const auto* kr = std::get_if<codec::KeyReveal>(&r.decoded.message);
    if (kr == nullptr || r.from != as) {
      continue;
    }
    for (const auto& e : relayed) {
      const auto* d = std::get_if<codec::Data>(&e.decoded.message);
      if (d != nullptr && e.from == as && d->type == codec::MessageType::Data && d->session_tag == kr->session_tag) {
        reveal = kr;
        break;
      }
    }
  }
  if (reveal == nullptr) {
    return fail(as + " never published the signing key of a session in which they wrote");
  }
  auto published = crypto::PrivateKey::from_scalar(view(reveal->private_key));
  if (!published.ok()) {
    return fail("published key is invalid: " + published.error().detail);
  }
  const crypto::PublicKey& signer = published->public_key();

  // 2. The session it belongs to: the key share whose session id starts with the reveal's tag.
  std::optional<Hash32> sid;
  for (const auto& r : relayed) {
    if (const auto* ks_msg = std::get_if<codec::KeyShare>(&r.decoded.message);
        ks_msg != nullptr && ks::session_tag(ks_msg->session_id) == reveal->session_tag) {
      sid = ks_msg->session_id;
    }
  }
  if (!sid) {
    return fail("the log does not contain the setup of that session");
  }

  // 3. The judge: every genuine entry of that member verifies under the published key's public half...
  const Relayed* template_entry = nullptr;
  std::uint32_t last_seq = 0;
  std::size_t genuine = 0;
  for (const auto& r : relayed) {
    const auto* d = std::get_if<codec::Data>(&r.decoded.message);
    if (d == nullptr || r.from != as || d->session_tag != reveal->session_tag) {
      continue;
    }
    auto ok = forgery::entry_signature_valid(*sid, signer, view(r.payload));
    std::cout << "genuine entry " << d->seq << " of " << as << ": signature " << (ok.ok() && *ok ? "valid" : "INVALID")
              << "\n";
    genuine += ok.ok() && *ok ? 1 : 0;
    template_entry = &r;
    last_seq = std::max(last_seq, d->seq);
  }

  // 4. ...and so does a brand-new one, written by us. Without the group key we cannot encrypt
  // meaningful text, but any member could: the ciphertext here is the text XOR a random pad.
  SystemRng rng;
  Bytes ciphertext(text.begin(), text.end());
  Bytes pad(ciphertext.size());
  rng.fill(pad.data(), pad.size());
  for (std::size_t i = 0; i < ciphertext.size(); ++i) {
    ciphertext[i] ^= pad[i];
  }
  auto forged = forgery::forge_entry(*sid, view(template_entry->payload), view(ciphertext), view(reveal->private_key),
                                     last_seq + 1, rng);
  if (!forged.ok()) {
    return fail("forging failed: " + forged.error().detail);
  }
  auto verdict = forgery::entry_signature_valid(*sid, signer, view(*forged));
  std::cout << "forged entry " << last_seq + 1 << " in " << as << "'s name: signature "
            << (verdict.ok() && *verdict ? "valid" : "INVALID") << "\n"
            << "payload: " << to_hex(view(*forged)) << "\n\n"
            << "A judge holding this log cannot tell the " << genuine << " genuine entries from the forged one: "
            << "after publication the signing key proves nothing about " << as << ".\n";
  return verdict.ok() && *verdict ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "mpotr-forge: " << e.what() << "\n";
    return 2;
  }
}
