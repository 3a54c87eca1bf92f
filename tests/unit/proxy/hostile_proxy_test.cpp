// SPDX-License-Identifier: MIT
// The fault proxy as a hostile server: injected bytes and streams, Rewrite rules, and the
// stanzas of hostile_stanzas.h, between two loopback sockets the test drives itself.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proxy_rig.h"
#include "support/fault_proxy.h"
#include "support/hostile_stanzas.h"

using namespace mpotr::test;
using namespace mpotr::test::rig;
namespace hostile = mpotr::test::hostile;
using Kind = StanzaSplitter::Kind;

namespace {

const std::string kRoom = "room@conference.localhost";

// The pieces a splitter makes of `text` after an open stream.
std::vector<StanzaSplitter::Piece> pieces(const std::string& text) {
  StanzaSplitter splitter;
  splitter.feed("<stream:stream>");
  auto out = splitter.feed(text);
  CHECK(splitter.take_pending().empty());
  CHECK(splitter.raw_reason() == StanzaSplitter::RawReason::None);
  return out;
}

bool one_stanza(const std::string& text) {
  const auto p = pieces(text);
  return p.size() == 1 && p[0].kind == Kind::Stanza && p[0].bytes == text;
}

std::size_t count(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

}  // namespace

// ---- inject ----------------------------------------------------------------------------------

TEST_CASE("proxy inject: bytes reach the receiver at the next stanza boundary, recorded", "[proxy][inject]") {
  Rig rig;
  rig.open_streams();
  const std::string forged = hostile::unavailable_presence(kRoom, "bob", "bob@localhost");
  const std::string real = message(1);
  // Half a stanza from the server is in flight when the injection comes: it goes after it.
  send_all(rig.server.get(), real.substr(0, 20));
  CHECK(silent_for(rig.client.get(), 50ms));
  rig.proxy.inject(Direction::ToClient, forged);
  send_all(rig.server.get(), real.substr(20));
  CHECK(read_bytes(rig.client.get(), forged.size() + real.size()) == forged + real);
  rig.proxy.inject(Direction::ToServer, kSentinel);
  CHECK(read_bytes(rig.server.get(), kSentinel.size()) == kSentinel);

  // Recorded when sent: in the recording the injection falls inside the stanza that was
  // arriving meanwhile, as the proxy saw them, while the receiver got it at a boundary.
  CHECK(rig.proxy.recorded(Direction::ToClient) == kServerHeader + real.substr(0, 20) + forged + real.substr(20));
  CHECK(rig.proxy.recorded(Direction::ToServer) == kClientHeader + kSentinel);
  const ProxyStats stats = rig.proxy.stats();
  CHECK(stats.injections[kDown] == 1);
  CHECK(stats.injected_bytes[kDown] == forged.size());
  CHECK(stats.injections[kUp] == 1);
  CHECK(stats.forwarded[kDown] == 1);  // injected bytes are not forwarded stanzas
}

TEST_CASE("proxy inject: waits until the receiver's stream is open", "[proxy][inject]") {
  Rig rig;
  send_all(rig.client.get(), kClientHeader);
  REQUIRE(read_bytes(rig.server.get(), kClientHeader.size()) == kClientHeader);
  rig.proxy.inject(Direction::ToClient, message(7));
  CHECK(silent_for(rig.client.get(), 100ms));
  send_all(rig.server.get(), kServerHeader);
  CHECK(read_bytes(rig.client.get(), kServerHeader.size() + message(7).size()) == kServerHeader + message(7));
}

TEST_CASE("proxy inject_stream: the peer's traffic waits behind a million-deep stanza", "[proxy][inject]") {
  Rig rig;
  rig.open_streams();
  constexpr std::size_t kDepth = 1'000'000;
  const std::size_t total = hostile::drain(hostile::nested_stanza(10, kRoom, "mallory")).size() + (kDepth - 10) * 7;
  rig.proxy.inject_stream(Direction::ToClient, hostile::nested_stanza(kDepth, kRoom, "mallory"));
  send_all(rig.server.get(), message(5));
  // Counted as it comes, never kept: the stream ends with the stanza, then the server's message.
  std::size_t received = 0;
  std::string tail;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (received < total + message(5).size() && std::chrono::steady_clock::now() < deadline) {
    pollfd p{rig.client.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[65536];
    const ssize_t n = ::recv(rig.client.get(), buf, sizeof buf, 0);
    REQUIRE(n > 0);
    received += static_cast<std::size_t>(n);
    tail = (tail + std::string(buf, static_cast<std::size_t>(n)));
    if (tail.size() > 4096) tail.erase(0, tail.size() - 4096);
  }
  CHECK(received == total + message(5).size());
  CHECK(tail.ends_with("</a></a></message>" + message(5)));
  const ProxyStats stats = rig.proxy.stats();
  CHECK(stats.injected_bytes[kDown] == total);
  CHECK(stats.injections[kDown] == 1);
  CHECK(stats.forwarded[kDown] == 1);
}

TEST_CASE("proxy inject_stream: chunks are pulled only as the receiver reads", "[proxy][inject]") {
  Rig rig;
  rig.open_streams();
  constexpr std::size_t kTotal = 32u << 20;
  auto generated = std::make_shared<std::atomic<std::size_t>>(0);
  rig.proxy.inject_stream(Direction::ToClient, [generated, inner = hostile::sized_stanza(kTotal, kRoom, "mallory")]() mutable {
    std::string chunk = inner();
    *generated += chunk.size();
    return chunk;
  });
  // Nobody reads: the proxy stops pulling once the socket buffers and its own low-water mark
  // are full (loopback buffers hold a few MB), far below the whole stanza.
  std::this_thread::sleep_for(300ms);
  const std::size_t plateau = generated->load();
  CHECK(plateau > 0);
  CHECK(plateau < kTotal / 2);
  std::this_thread::sleep_for(100ms);
  CHECK(generated->load() == plateau);
  std::size_t received = 0;
  char buf[65536];
  while (received < kTotal) {
    pollfd p{rig.client.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);
    const ssize_t n = ::recv(rig.client.get(), buf, sizeof buf, 0);
    REQUIRE(n > 0);
    received += static_cast<std::size_t>(n);
  }
  CHECK(received == kTotal);
  CHECK(generated->load() == kTotal);
}

// ---- Rewrite ---------------------------------------------------------------------------------

TEST_CASE("proxy Rewrite: strips the mpOTR marker, forges attributes, drops on empty", "[proxy][rewrite]") {
  Rig rig;
  rig.open_streams();
  rig.proxy.add_rule({.direction = Direction::ToClient,
                      .match = "<presence",
                      .action = FaultAction::Rewrite,
                      .every_nth = 1,
                      .rewrite = [](std::string_view s) { return hostile::strip_marker(s); }});
  rig.proxy.add_rule({.direction = Direction::ToClient,
                      .match = "id='m2'",
                      .action = FaultAction::Rewrite,
                      .once_at = 1,
                      .rewrite = [](std::string_view s) {
                        std::string out(s);
                        out.replace(out.find("id='m2'"), 7, "id='forged'");
                        return out;
                      }});
  rig.proxy.add_rule({.direction = Direction::ToClient,
                      .match = "id='m3'",
                      .action = FaultAction::Rewrite,
                      .once_at = 1,
                      .rewrite = [](std::string_view) { return std::string(); }});
  const std::string presence = "<presence from='" + kRoom + "/alice'><mpotr xmlns='urn:mpotr:2'/><x/></presence>";
  send_all(rig.server.get(), presence + message(2) + message(3) + kSentinel);
  std::string forged = message(2);
  forged.replace(forged.find("id='m2'"), 7, "id='forged'");
  const std::string expected = "<presence from='" + kRoom + "/alice'><x/></presence>" + forged + kSentinel;
  CHECK(read_bytes(rig.client.get(), expected.size()) == expected);
  const ProxyStats stats = rig.proxy.stats();
  CHECK(stats.rewritten[kDown] == 3);
  CHECK(stats.dropped[kDown] == 1);
  CHECK(stats.forwarded[kDown] == 3);

  const FaultRule no_function{.direction = Direction::ToClient, .match = "", .action = FaultAction::Rewrite, .every_nth = 1};
  CHECK_THROWS_AS(rig.proxy.add_rule(no_function), std::invalid_argument);
}

// ---- hostile stanzas -------------------------------------------------------------------------

TEST_CASE("hostile stanzas: presence and payload shapes", "[proxy][hostile]") {
  const std::string gone = hostile::unavailable_presence(kRoom, "bob", "bob@localhost/res");
  CHECK(one_stanza(gone));
  CHECK(gone == "<presence from='room@conference.localhost/bob' type='unavailable'><x "
                "xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none' "
                "jid='bob@localhost/res'/></x></presence>");
  CHECK(hostile::unavailable_presence(kRoom, "o'hara").find("from='room@conference.localhost/o&apos;hara'") !=
        std::string::npos);
  CHECK(hostile::unavailable_presence(kRoom, "bob").find("jid=") == std::string::npos);

  const std::string outsider = hostile::presence_without_marker(kRoom, "eve", "eve@localhost");
  CHECK(one_stanza(outsider));
  CHECK(outsider.find("urn:mpotr:2") == std::string::npos);
  CHECK(outsider.find("type=") == std::string::npos);

  const std::string payload = hostile::payload_message(kRoom, "alice", "QUJD", "p1");
  CHECK(one_stanza(payload));
  CHECK(payload.starts_with("<message from='room@conference.localhost/alice' type='groupchat' id='p1'>"
                            "<mpotr xmlns='urn:mpotr:2'>QUJD</mpotr>"
                            "<encryption xmlns='urn:xmpp:eme:0' namespace='urn:mpotr:2' name='mpOTR'/>"));
  CHECK(payload.find("<no-copy xmlns='urn:xmpp:hints'/><body>[This message is encrypted with mpOTR") != std::string::npos);

  CHECK(hostile::strip_marker("<presence><mpotr xmlns='urn:mpotr:2'/><x/><mpotr xmlns=\"urn:mpotr:2\"/></presence>") ==
        "<presence><x/></presence>");
  CHECK(hostile::strip_marker("<presence><mpotr status='out' xmlns='urn:mpotr:2'/><x/></presence>") ==
        "<presence><x/></presence>");
  // A payload element is not a marker, nor is another namespace's.
  CHECK(hostile::strip_marker(payload) == payload);
  CHECK(hostile::strip_marker("<presence><mpotrx xmlns='urn:mpotr:2'/><mpotr xmlns='urn:other'/></presence>") ==
        "<presence><mpotrx xmlns='urn:mpotr:2'/><mpotr xmlns='urn:other'/></presence>");
}

TEST_CASE("hostile stanzas: deep and large stanzas come in bounded chunks", "[proxy][hostile]") {
  const std::string small = hostile::drain(hostile::nested_stanza(1000, kRoom, "mallory", 100));
  CHECK(one_stanza(small));
  CHECK(count(small, "<a>") == 1000);
  CHECK(count(small, "</a>") == 1000);

  const std::size_t markup = hostile::drain(hostile::nested_stanza(0, kRoom, "mallory")).size();
  auto deep = hostile::nested_stanza(1'000'000, kRoom, "mallory");
  auto copy = deep;
  std::size_t total = 0;
  std::size_t chunks = 0;
  for (std::string c = deep(); !c.empty(); c = deep()) {
    CHECK(c.size() <= hostile::kChunkBytes + markup);
    total += c.size();
    ++chunks;
  }
  CHECK(total == markup + 7'000'000);
  CHECK(chunks > 100);
  CHECK(copy().starts_with("<message from='room@conference.localhost/mallory'"));  // a copy starts over

  constexpr std::size_t kTenMb = 10u << 20;
  auto big = hostile::sized_stanza(kTenMb, kRoom, "mallory");
  total = 0;
  std::string first;
  std::string last;
  for (std::string c = big(); !c.empty(); c = big()) {
    CHECK(c.size() <= hostile::kChunkBytes + 100);
    if (first.empty()) first = c.substr(0, 100);
    last = c;
    total += c.size();
  }
  CHECK(total == kTenMb);
  CHECK(first.starts_with("<message from='room@conference.localhost/mallory' type='groupchat'"));
  CHECK(last.ends_with("xxx</body></message>"));
  CHECK(one_stanza(hostile::drain(hostile::sized_stanza(200, kRoom, "m"))));
  CHECK(hostile::drain(hostile::sized_stanza(200, kRoom, "m")).size() == 200);
  CHECK_THROWS_AS(hostile::sized_stanza(10, kRoom, "m"), std::invalid_argument);
}
