// SPDX-License-Identifier: MIT
// Writes the fuzz targets' seed corpora: tests/fuzz/corpus/<target>/<name>. Not run by the
// tests; run it by hand when a format changes and commit the output:
//   build-fuzz/tests/fuzz/mpotr-fuzz-make-seeds tests/fuzz/corpus
// Everything is deterministic (fixed field values, DeterministicRng), so reruns give the same files.
#include <sys/stat.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "conversation_script.h"
#include "mpotr/codec/messages.h"
#include "mpotr/identity.h"
#include "mpotr/rng.h"
#include "mpotr/store/keyfile.h"
#include "mpotr/trust.h"

using namespace mpotr;
using mpotr::fuzz::Op;

namespace {

std::string g_root;
int g_written = 0;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "make_seeds: %s\n", what.c_str());
  std::exit(1);
}

std::string target_dir(const std::string& target) {
  const std::string dir = g_root + "/" + target;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) fail("cannot create " + dir);
  return dir;
}

void write(const std::string& target, const std::string& name, ByteView bytes) {
  const std::string path = target_dir(target) + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) fail("cannot write " + path);
  ++g_written;
}

void write(const std::string& target, const std::string& name, std::string_view text) {
  write(target, name, as_bytes(text));
}

// Structurally valid field values: points are 0x04 followed by 64 pattern bytes.
template <std::size_t N>
std::array<std::uint8_t, N> pattern(std::uint8_t start) {
  std::array<std::uint8_t, N> a{};
  for (std::size_t i = 0; i < N; ++i) a[i] = static_cast<std::uint8_t>(start + i);
  return a;
}

codec::Point point(std::uint8_t start) {
  codec::Point p = pattern<crypto::kPointLen>(start);
  p[0] = 0x04;
  return p;
}

void message_seeds() {
  const std::string t = "fuzz_message_decode";
  codec::Offer offer;
  offer.roster_digest = pattern<32>(0x10);
  offer.nick = "alice";
  offer.nonce = pattern<32>(0x30);
  offer.identity_key = point(0x40);
  offer.dh_key = point(0x50);
  offer.signing_key = point(0x60);
  write(t, "offer", view(codec::encode(offer)));

  codec::KeyShare share;
  share.session_id = pattern<32>(0x70);
  share.sender = 1;
  share.elgamal_r = point(0x80);
  share.commit = pattern<32>(0x81);
  share.refused.set(2);
  share.shares = {codec::PairShare{pattern<32>(0x90), pattern<32>(0xa0)},
                  codec::PairShare{pattern<32>(0xb0), pattern<32>(0xc0)}};
  share.signature = pattern<64>(0xd0);
  write(t, "key_share", view(codec::encode(share)));

  codec::Attest attest;
  attest.session_id = pattern<32>(0x70);
  attest.sender = 2;
  attest.transcript_hash = pattern<32>(0x11);
  attest.key_confirm = pattern<32>(0x22);
  attest.signature = pattern<64>(0x33);
  write(t, "attest", view(codec::encode(attest)));

  codec::Data data;
  data.type = codec::MessageType::Data;
  data.session_tag = pattern<codec::kSessionTagLen>(0x70);
  data.sender = 0;
  data.seq = 7;
  data.acks = {0, 127, 128, 300000};  // 1-, 1-, 2- and 3-byte varints
  data.view_digest = pattern<32>(0x44);
  data.ciphertext = Bytes{'h', 'e', 'l', 'l', 'o'};
  data.mac = pattern<32>(0x45);
  data.signature = pattern<64>(0x55);
  write(t, "data", view(codec::encode(data)));

  codec::Data heartbeat = data;
  heartbeat.type = codec::MessageType::Heartbeat;
  heartbeat.seq = 8;
  heartbeat.acks = {3, kMaxMessagesPerSession};  // the largest count a receiver accepts
  heartbeat.ciphertext.clear();
  write(t, "heartbeat", view(codec::encode(heartbeat)));

  codec::Shutdown shutdown;
  shutdown.session_tag = pattern<codec::kSessionTagLen>(0x70);
  shutdown.sender = 1;
  shutdown.final_count = 42;
  shutdown.mac = pattern<32>(0x67);
  shutdown.signature = pattern<64>(0x66);
  write(t, "shutdown", view(codec::encode(shutdown)));

  codec::Digest digest;
  digest.session_tag = pattern<codec::kSessionTagLen>(0x70);
  digest.sender = 2;
  digest.transcript_digest = pattern<32>(0x77);
  digest.mac = pattern<32>(0x78);
  digest.signature = pattern<64>(0x88);
  write(t, "digest", view(codec::encode(digest)));

  codec::End end;
  end.session_tag = pattern<codec::kSessionTagLen>(0x70);
  end.sender = 1;
  end.present.set(0);
  end.present.set(2);
  end.digests_hash = pattern<32>(0x7a);
  end.mac = pattern<32>(0x7b);
  end.signature = pattern<64>(0x8a);
  write(t, "end", view(codec::encode(end)));

  codec::Quit quit;
  quit.session_tag = pattern<codec::kSessionTagLen>(0x70);
  quit.sender = 2;
  quit.final_count = 3;
  quit.mac = pattern<32>(0x7c);
  quit.signature = pattern<64>(0x8c);
  write(t, "quit", view(codec::encode(quit)));

  codec::Accuse accuse;
  accuse.session_id = pattern<32>(0x70);
  accuse.sender = 0;
  accuse.accused = 1;
  accuse.dh_private = pattern<32>(0x9c);
  accuse.key_share = codec::encode(share);
  accuse.signature = pattern<64>(0xac);
  write(t, "accuse", view(codec::encode(accuse)));

  codec::KeyReveal reveal;
  reveal.session_tag = pattern<codec::kSessionTagLen>(0x70);
  reveal.sender = 0;
  reveal.private_key = pattern<32>(0x99);
  write(t, "key_reveal", view(codec::encode(reveal)));

  // Check the seeds are what the decoder accepts.
  for (const Bytes& b : {codec::encode(offer), codec::encode(share), codec::encode(attest), codec::encode(data),
                         codec::encode(heartbeat), codec::encode(shutdown), codec::encode(digest),
                         codec::encode(end), codec::encode(reveal)}) {
    if (!codec::decode(view(b)).ok()) fail("a message seed does not decode: " + codec::decode(view(b)).error().detail);
  }
}

void varint_seeds() {
  const std::string t = "fuzz_varint";
  write(t, "zero", view(Bytes{0x00}));
  write(t, "one_byte_max", view(Bytes{0x7f}));
  write(t, "two_bytes", view(Bytes{0x80, 0x01}));
  write(t, "u32_max", view(Bytes{0xff, 0xff, 0xff, 0xff, 0x0f}));
  write(t, "sequence", view(Bytes{0x01, 0xac, 0x02, 0xe5, 0x8e, 0x26, 0x80, 0x80, 0x80, 0x80, 0x01}));
}

std::vector<Fingerprint> fingerprints() {
  std::vector<Fingerprint> out;
  for (std::uint64_t seed : {1000, 1001, 1002}) {
    DeterministicRng rng(seed);
    auto key = IdentityKey::generate(rng);
    if (!key.ok()) fail("identity generation failed");
    out.push_back(key->fingerprint());
  }
  return out;
}

void fingerprint_seeds() {
  const std::string t = "fuzz_fingerprint_parse";
  const auto fps = fingerprints();
  write(t, "grouped", fps[0].grouped());
  write(t, "plain_lower", to_hex(view(fps[1].bytes)));
  std::string upper = to_hex(view(fps[2].bytes));
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  write(t, "plain_upper", upper);
}

void trust_seeds() {
  const std::string t = "fuzz_trust_json";
  const auto fps = fingerprints();
  write(t, "empty", TrustStore{}.to_json());
  TrustStore store;
  if (!store.record_first_use("bob@localhost", fps[1]).ok() || !store.verify("carol@localhost", fps[2]).ok() ||
      !store.block("mallory@localhost").ok() || !store.record_first_use("dave@example.org/é", fps[0]).ok()) {
    fail("trust store seed");
  }
  write(t, "three_levels", store.to_json());
  // One key blocked under every JID (and also held by a recorded peer).
  if (!store.block_fingerprint(fps[1]).ok() || !store.block_fingerprint(fps[2]).ok()) {
    fail("trust store seed");
  }
  write(t, "blocked_fingerprints", store.to_json());
  // Compact form, as another program might write it.
  write(t, "compact", "{\"version\":1,\"peers\":{\"alice@localhost\":{\"fingerprint\":\"" + to_hex(view(fps[0].bytes)) +
                          "\",\"level\":\"tofu\"}}}");
}

void keyfile_seeds() {
  const std::string t = "fuzz_keyfile";
  for (std::uint64_t seed : {1000, 1001}) {
    DeterministicRng rng(seed);
    auto key = IdentityKey::generate(rng);
    if (!key.ok()) fail("identity generation failed");
    const std::string path = target_dir(t) + "/identity-" + std::to_string(seed) + ".json";
    auto saved = store::save_identity(path, *key);
    if (!saved.ok()) fail("save_identity: " + saved.error().detail);
    ::chmod(path.c_str(), 0644);  // the committed copy; the fuzzer writes its own 0600 file
    ++g_written;
  }
}

// Conversation scripts (conversation_script.h).
struct ScriptWriter {
  Bytes bytes;
  ScriptWriter(std::uint64_t seed, fuzz::TrustSetup trust) {
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<std::uint8_t>(seed >> (8 * i)));
    bytes.push_back(static_cast<std::uint8_t>(trust));
  }
  ScriptWriter& op(Op o, std::initializer_list<std::uint8_t> operands = {}) {
    bytes.push_back(static_cast<std::uint8_t>(o));
    bytes.insert(bytes.end(), operands.begin(), operands.end());
    return *this;
  }
  ScriptWriter& repeat(int n, Op o, std::initializer_list<std::uint8_t> operands = {}) {
    for (int i = 0; i < n; ++i) op(o, operands);
    return *this;
  }
};

void conversation_seeds() {
  const std::string t = "fuzz_conversation";
  using fuzz::TrustSetup;
  {
    ScriptWriter s(1, TrustSetup::None);
    s.repeat(6, Op::DeliverAll);
    write(t, "setup", view(s.bytes));
  }
  {
    ScriptWriter s(2, TrustSetup::AllTofu);
    s.repeat(6, Op::DeliverAll)
        .op(Op::SendText, {0, 12})
        .op(Op::DeliverAll)
        .op(Op::SendText, {1, 5})
        .op(Op::SendText, {2, 200})
        .repeat(2, Op::DeliverAll)
        .op(Op::AdvanceTime, {40})
        .repeat(2, Op::DeliverAll)
        .op(Op::WakeUp)
        .op(Op::DeliverAll);
    write(t, "chat", view(s.bytes));
  }
  {
    ScriptWriter s(3, TrustSetup::None);
    s.repeat(6, Op::DeliverAll)
        .op(Op::SendText, {2, 30})
        .op(Op::DeliverAll)
        .op(Op::Leave, {1})
        .repeat(4, Op::DeliverAll)
        .op(Op::AdvanceTime, {255})
        .op(Op::DeliverAll)
        .op(Op::AdvanceTime, {255})
        .repeat(4, Op::DeliverAll)
        .op(Op::SendText, {0, 3})
        .op(Op::DeliverAll);
    write(t, "leave", view(s.bytes));
  }
  {
    ScriptWriter s(4, TrustSetup::AllTofu);
    s.repeat(6, Op::DeliverAll)
        .op(Op::Roster, {3})  // carol leaves the room
        .repeat(6, Op::DeliverAll)
        .op(Op::SendText, {0, 9})
        .op(Op::DeliverAll)
        .op(Op::Roster, {7})  // carol is back
        .repeat(6, Op::DeliverAll)
        .op(Op::SendText, {2, 9})
        .repeat(2, Op::DeliverAll);
    write(t, "roster_change", view(s.bytes));
  }
  {
    ScriptWriter s(5, TrustSetup::ChangedKey);
    s.op(Op::DeliverNext)
        .op(Op::Duplicate)
        .op(Op::Swap, {0, 2})
        .op(Op::FlipBit, {0, 40, 3})
        .op(Op::DeliverSome, {4})
        .op(Op::Replay, {0})
        .op(Op::Delay)
        .repeat(4, Op::DeliverAll)
        .op(Op::Inject, {3, 4, kProtocolVersion, 0x01, 0x00, 0x00})
        .op(Op::AdvanceTime, {200})
        .repeat(2, Op::DeliverAll)
        .op(Op::Restart, {0})
        .repeat(4, Op::DeliverAll);
    write(t, "hostile", view(s.bytes));
  }
  {
    ScriptWriter s(6, TrustSetup::Blocked);
    s.repeat(4, Op::DeliverAll)
        .repeat(3, Op::AdvanceTime, {255})
        .op(Op::Restart, {1})
        .repeat(4, Op::DeliverAll)
        .op(Op::WakeUp)
        .op(Op::DeliverAll);
    write(t, "blocked", view(s.bytes));
  }
  {
    // Established, then messages lost, duplicated and reordered, gaps and heartbeats.
    ScriptWriter s(7, TrustSetup::None);
    s.repeat(6, Op::DeliverAll)
        .op(Op::SendText, {0, 4})
        .op(Op::SendText, {0, 5})
        .op(Op::SendText, {1, 6})
        .op(Op::Swap, {0, 1})
        .op(Op::Drop)
        .op(Op::Duplicate)
        .op(Op::DeliverSome, {6})
        .repeat(3, Op::DeliverAll)
        .op(Op::AdvanceTime, {60})
        .op(Op::DeliverAll)
        .op(Op::WakeUp)
        .repeat(2, Op::DeliverAll)
        .op(Op::AdvanceTime, {120})
        .repeat(2, Op::DeliverAll);
    write(t, "loss", view(s.bytes));
  }
}

// Streams for the stanza scanner: byte 0 chooses the limits and chunking (fuzz_stanza_scanner.cpp).
void scanner_seeds() {
  const std::string t = "fuzz_stanza_scanner";
  const std::string open =
      "<?xml version='1.0'?><stream:stream from='localhost' id='s1' xmlns='jabber:client' "
      "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
  const std::string features =
      "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>"
      "</mechanisms></stream:features>";
  const std::string payload =
      "<message from='room@conference.localhost/alice' type='groupchat' id='m1'><mpotr xmlns='urn:mpotr:1'>QUJD"
      "</mpotr><encryption xmlns='urn:xmpp:eme:0' namespace='urn:mpotr:1' name='mpOTR'/><body>x &gt; y</body>"
      "</message>";
  std::string deep = "<message>";
  for (int i = 0; i < 70; ++i) deep += "<a>";
  for (int i = 0; i < 70; ++i) deep += "</a>";
  deep += "</message>";
  // Real limits, whole stream with a SASL restart and the stream's end.
  write(t, "session", std::string(1, '\x00') + open + features + " \n<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" +
                          open + payload + "<presence from='room@conference.localhost/bob'><x/></presence>" +
                          "</stream:stream>");
  write(t, "quotes_cdata", std::string(1, '\x0e') + open + "<message to=\"a>b\" note='<\"/>'><body><![CDATA[<x>]]]]>" +
                               "</body></message>");
  write(t, "too_deep", std::string(1, '\x02') + open + deep + payload);
  // Small limits (odd first byte): depth 1..4, a few dozen bytes.
  write(t, "small_limits", std::string(1, '\x47') + "<stream:stream><a><b/></a><a><b><c><d/></c></b></a>" +
                               "<m>" + std::string(200, 'x') + "</m><iq/>");
  write(t, "comment", std::string(1, '\x00') + open + "<iq/><!-- c --><iq/>");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus_dir>   (normally tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  if (::mkdir(g_root.c_str(), 0755) != 0 && errno != EEXIST) fail("cannot create " + g_root);
  message_seeds();
  varint_seeds();
  fingerprint_seeds();
  trust_seeds();
  keyfile_seeds();
  conversation_seeds();
  scanner_seeds();
  std::printf("make_seeds: wrote %d files under %s\n", g_written, g_root.c_str());
  return 0;
}
