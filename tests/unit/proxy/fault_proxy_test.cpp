// SPDX-License-Identifier: MIT
// The stanza splitter on its own, then the proxy between two loopback sockets the test drives
// itself: `client` talks to the proxy, `server` is the connection the proxy opened to a
// listener standing in for ejabberd. Every wait is bounded by poll() with a generous timeout.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "mpotr/store/unique_fd.h"
#include "support/fault_proxy.h"
#include "proxy_rig.h"

using namespace mpotr::test;
using namespace mpotr::test::rig;
using namespace std::chrono_literals;
using mpotr::store::UniqueFd;
using Kind = StanzaSplitter::Kind;
using Piece = StanzaSplitter::Piece;

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// ---- Splitter helpers ----------------------------------------------------------------------

char letter(Kind kind) {
  switch (kind) {
    case Kind::Declaration:
      return 'D';
    case Kind::StreamHeader:
      return 'H';
    case Kind::Stanza:
      return 'S';
    case Kind::Whitespace:
      return 'W';
    case Kind::StreamEnd:
      return 'E';
    case Kind::Raw:
      return 'R';
  }
  return '?';
}

// Feeds `input` in chunks of `chunk` bytes and renders the pieces as "H[...] S[...] ...", with
// the unfinished rest as "P[...]". Whitespace and Raw pieces come out per feed, so adjacent
// ones are merged: the rendering is then the same for every chunk size.
std::string split(std::string_view input, std::size_t chunk,
                  StanzaSplitter::RawReason* reason = nullptr) {
  StanzaSplitter splitter;
  std::vector<Piece> pieces;
  for (std::size_t i = 0; i < input.size(); i += chunk) {
    for (Piece& p : splitter.feed(input.substr(i, chunk))) {
      if (!pieces.empty() && pieces.back().kind == p.kind &&
          (p.kind == Kind::Whitespace || p.kind == Kind::Raw)) {
        pieces.back().bytes += p.bytes;
      } else {
        pieces.push_back(std::move(p));
      }
    }
  }
  if (reason != nullptr) *reason = splitter.raw_reason();
  std::string rendered;
  std::string joined;
  for (const Piece& p : pieces) {
    REQUIRE_FALSE(p.bytes.empty());
    rendered += std::string(rendered.empty() ? "" : " ") + letter(p.kind) + "[" + p.bytes + "]";
    joined += p.bytes;
  }
  const std::string pending = splitter.take_pending();
  if (!pending.empty()) rendered += (rendered.empty() ? "P[" : " P[") + pending + "]";
  REQUIRE(joined + pending == input);
  return rendered;
}

// The rendering of `input` fed whole, after checking that byte-by-byte and other chunk sizes
// give exactly the same pieces.
std::string split_checked(std::string_view input, StanzaSplitter::RawReason* reason = nullptr) {
  const std::string whole = split(input, input.size(), reason);
  for (std::size_t chunk = 1; chunk <= 7; ++chunk) {
    INFO("chunk size " << chunk);
    StanzaSplitter::RawReason chunked_reason{};
    REQUIRE(split(input, chunk, &chunked_reason) == whole);
    if (reason != nullptr) REQUIRE(chunked_reason == *reason);
  }
  return whole;
}

constexpr std::string_view kOpen = "<stream:stream xmlns='jabber:client' version='1.0'>";


}  // namespace

// ---- Splitter ------------------------------------------------------------------------------

TEST_CASE("proxy splitter: declaration, header, stanzas, whitespace keepalives, stream end",
          "[proxy][splitter]") {
  const std::string input =
      "<?xml version='1.0'?>\n"
      "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
      "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
      "<mechanism>PLAIN</mechanism></mechanisms></stream:features> \n "
      "<iq type='get' id='1'/><presence/>\t<message><body>a</body></message>\n"
      "</stream:stream>";
  CHECK(split_checked(input) ==
        "D[<?xml version='1.0'?>] W[\n] "
        "H[<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>] "
        "S[<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
        "<mechanism>PLAIN</mechanism></mechanisms></stream:features>] W[ \n ] "
        "S[<iq type='get' id='1'/>] S[<presence/>] W[\t] S[<message><body>a</body></message>] "
        "W[\n] E[</stream:stream>]");
}

TEST_CASE("proxy splitter: '>' and '/' inside quoted attribute values", "[proxy][splitter]") {
  const std::string stanza =
      "<message to=\"a>b/c\" note='\"/>' id = 'x' ><body x='<y>'>a &gt; b / c</body></message>";
  CHECK(split_checked(std::string(kOpen) + stanza + "<a b='/'/>") ==
        "H[" + std::string(kOpen) + "] S[" + stanza + "] S[<a b='/'/>]");
}

TEST_CASE("proxy splitter: nested and self-closing elements, same names at several depths",
          "[proxy][splitter]") {
  const std::string a = "<x><x><x/></x><x>t</x></x>";
  const std::string b =
      "<iq><query xmlns='q'><item/><item name='n'><group>g</group></item>"
      "</query></iq>";
  CHECK(split_checked(std::string(kOpen) + a + b) ==
        "H[" + std::string(kOpen) + "] S[" + a + "] S[" + b + "]");
}

TEST_CASE("proxy splitter: a stream restart after SASL success, with or without declaration",
          "[proxy][splitter]") {
  const std::string success = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
  const std::string input = std::string(kOpen) + success +
                            "<?xml version='1.0'?><stream:stream id='2'><iq id='a'/>"
                            "<stream:stream id='3'><iq id='b'/>";
  CHECK(split_checked(input) == "H[" + std::string(kOpen) + "] S[" + success +
                                    "] D[<?xml version='1.0'?>] H[<stream:stream id='2'>] "
                                    "S[<iq id='a'/>] H[<stream:stream id='3'>] S[<iq id='b'/>]");
}

TEST_CASE("proxy splitter: an unfinished stanza stays pending", "[proxy][splitter]") {
  CHECK(split_checked(std::string(kOpen) + "<iq/><message><body>par") ==
        "H[" + std::string(kOpen) + "] S[<iq/>] P[<message><body>par]");
  CHECK(split_checked("<stream:str") == "P[<stream:str]");
}

TEST_CASE("proxy splitter: protocol errors fall back to raw bytes", "[proxy][splitter]") {
  using Reason = StanzaSplitter::RawReason;
  const std::string open(kOpen);
  struct Case {
    std::string input;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {open + "<iq/><message><!-- a > b --></message><iq/>",
       "H[" + open + "] S[<iq/>] R[<message><!-- a > b --></message><iq/>]"},
      {open + "<message><![CDATA[<x>]]></message>",
       "H[" + open + "] R[<message><![CDATA[<x>]]></message>]"},
      {open + "<message><?pi x?></message>", "H[" + open + "] R[<message><?pi x?></message>]"},
      {open + "<?pi x?><iq/>", "H[" + open + "] R[<?pi x?><iq/>]"},
      {open + "<!-- c --><iq/>", "H[" + open + "] R[<!-- c --><iq/>]"},
      {open + " junk<iq/>", "H[" + open + "] W[ ] R[junk<iq/>]"},
      {"<iq/>" + open, "R[<iq/>" + open + "]"},
      {open + "</stream:stream></x>", "H[" + open + "] E[</stream:stream>] R[</x>]"},
  };
  for (const Case& c : cases) {
    INFO(c.input);
    Reason reason{};
    CHECK(split_checked(c.input, &reason) == c.expected);
    CHECK(reason == Reason::ParseError);
  }
}

TEST_CASE("proxy splitter: <starttls/> and <proceed/> switch to raw, nested starttls does not",
          "[proxy][splitter]") {
  using Reason = StanzaSplitter::RawReason;
  const std::string open(kOpen);
  const std::string features =
      "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
      "</starttls></stream:features>";
  const std::string tls_bytes("\x16\x03\x01\x00<iq/>\0>", 11);

  Reason reason{};
  CHECK(split_checked(open + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + tls_bytes,
                      &reason) ==
        "H[" + open + "] S[<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>] R[" + tls_bytes +
            "]");
  CHECK(reason == Reason::Starttls);

  CHECK(split_checked(
            open + features + "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + tls_bytes,
            &reason) == "H[" + open + "] S[" + features +
                            "] S[<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>] R[" +
                            tls_bytes + "]");
  CHECK(reason == Reason::Starttls);

  CHECK(split_checked(open + features, &reason) == "H[" + open + "] S[" + features + "]");
  CHECK(reason == Reason::None);
}

TEST_CASE("proxy corrupt_longest_text: changes one base64 character of the longest text node",
          "[proxy][corrupt]") {
  const std::string payload = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo+/w==";
  const std::string stanza =
      "<message to='a@b' note='a long attribute value > text'>"
      "<body>short text</body><mpotr xmlns='urn:mpotr:2'>" +
      payload + "</mpotr><x>tail</x></message>";
  const std::size_t begin = stanza.find(payload);
  std::vector<std::size_t> positions;
  for (std::uint64_t seed = 1; seed <= 64; ++seed) {
    std::mt19937_64 rng(seed);
    std::string corrupted = stanza;
    REQUIRE(corrupt_longest_text(corrupted, rng));
    REQUIRE(corrupted.size() == stanza.size());
    std::vector<std::size_t> diffs;
    for (std::size_t i = 0; i < stanza.size(); ++i) {
      if (corrupted[i] != stanza[i]) diffs.push_back(i);
    }
    REQUIRE(diffs.size() == 1);
    const std::size_t at = diffs[0];
    REQUIRE(at >= begin);
    REQUIRE(at < begin + payload.size());
    CHECK(kAlphabet.find(stanza[at]) != std::string_view::npos);
    CHECK(kAlphabet.find(corrupted[at]) != std::string_view::npos);
    positions.push_back(at);

    std::mt19937_64 again(seed);
    std::string repeat = stanza;
    corrupt_longest_text(repeat, again);
    CHECK(repeat == corrupted);
  }
  // The position is random, not fixed.
  CHECK(std::count(positions.begin(), positions.end(), positions[0]) < 64);
}

TEST_CASE("proxy corrupt_longest_text: spares entity references and needs a text character",
          "[proxy][corrupt]") {
  std::mt19937_64 rng(3);
  const std::string entities = "<m><b>&amp;&lt;&gt;&quot;&apos;&#65;Z..</b><c>abc</c></m>";
  for (int i = 0; i < 16; ++i) {
    std::string s = entities;
    REQUIRE(corrupt_longest_text(s, rng));
    CHECK(s.substr(0, 36) == entities.substr(0, 36));  // everything but the 'Z'
    CHECK(s[36] != 'Z');
    CHECK(s.substr(37) == entities.substr(37));
  }
  for (std::string s : {"<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>", "<a>x</a><b>  =  </b>",
                        "<presence/>"}) {
    const std::string before = s;
    CHECK_FALSE(corrupt_longest_text(s, rng));
    CHECK(s == before);
  }
}

// ---- Proxy ---------------------------------------------------------------------------------

TEST_CASE("proxy: passthrough is byte-exact both ways and every byte is recorded", "[proxy]") {
  Rig rig;
  rig.open_streams();

  const std::string up = message(1) + " " + message(2, false) + "\n<presence/>" +
                         "<iq to=\"x>y\" id='q'><query xmlns='jabber:iq:roster'/></iq>";
  for (const char c : up) send_all(rig.client.get(), std::string_view(&c, 1));  // byte by byte
  CHECK(read_bytes(rig.server.get(), up.size()) == up);

  const std::string down = message(3) + message(4, false) + " \n" + kSentinel;
  send_all(rig.server.get(), down);
  CHECK(read_bytes(rig.client.get(), down.size()) == down);

  // The client ends its stream and closes; the server sees it and closes too.
  send_all(rig.client.get(), "</stream:stream>");
  REQUIRE(::shutdown(rig.client.get(), SHUT_WR) == 0);
  CHECK(read_bytes(rig.server.get(), 16) == "</stream:stream>");
  CHECK(closed_within(rig.server.get()));
  rig.server.reset();
  CHECK(closed_within(rig.client.get()));

  CHECK(rig.proxy.recorded(Direction::ToServer) == kClientHeader + up + "</stream:stream>");
  CHECK(rig.proxy.recorded(Direction::ToClient) == kServerHeader + down);
  const ProxyStats stats = rig.proxy.stats();
  CHECK(stats.forwarded[kUp] == 4);
  CHECK(stats.forwarded[kDown] == 3);
  CHECK(stats.connections == 1);
  CHECK_FALSE(stats.raw_passthrough);
  CHECK(stats.parse_errors == 0);
  CHECK(stats.last_error.empty());

  rig.proxy.clear_recording();
  CHECK(rig.proxy.recorded(Direction::ToServer).empty());
  CHECK(rig.proxy.recorded(Direction::ToClient).empty());
}

TEST_CASE("proxy: Drop every 2nd matching stanza, others untouched", "[proxy]") {
  Rig rig;
  rig.open_streams();
  rig.proxy.add_rule({.direction = Direction::ToServer,
                      .match = "urn:mpotr:",
                      .action = FaultAction::Drop,
                      .every_nth = 2});
  send_all(rig.client.get(), message(1) + message(10, false) + message(2) + message(3) +
                                 message(11, false) + message(4) + kSentinel);
  const std::string expected =
      message(1) + message(10, false) + message(3) + message(11, false) + kSentinel;
  CHECK(read_bytes(rig.server.get(), expected.size()) == expected);
  // Rules are per direction: the same stanzas towards the client pass.
  send_all(rig.server.get(), message(1) + message(2));
  CHECK(read_bytes(rig.client.get(), 2 * message(1).size()) == message(1) + message(2));

  const ProxyStats stats = rig.proxy.stats();
  CHECK(stats.dropped[kUp] == 2);
  CHECK(stats.forwarded[kUp] == 5);
  CHECK(stats.dropped[kDown] == 0);
  // Dropped stanzas were still on the client's wire.
  CHECK(rig.proxy.recorded(Direction::ToServer).find(message(2)) != std::string::npos);
}

TEST_CASE("proxy: Delay holds one stanza, the next overtakes it, FIN waits for it", "[proxy]") {
  Rig rig;
  rig.open_streams();
  rig.proxy.add_rule({.direction = Direction::ToClient,
                      .match = "urn:mpotr:",
                      .action = FaultAction::Delay,
                      .delay_ms = 150,
                      .once_at = 1});
  const auto start = std::chrono::steady_clock::now();
  send_all(rig.server.get(), message(1) + message(2));
  REQUIRE(::shutdown(rig.server.get(), SHUT_WR) == 0);
  const std::string expected = message(2) + message(1);
  CHECK(read_bytes(rig.client.get(), expected.size()) == expected);
  CHECK(std::chrono::steady_clock::now() - start >= 150ms);
  CHECK(closed_within(rig.client.get()));

  const ProxyStats stats = rig.proxy.stats();
  CHECK(stats.delayed[kDown] == 1);
  CHECK(stats.forwarded[kDown] == 2);
}

TEST_CASE("proxy: Duplicate once_at the 2nd matching stanza", "[proxy]") {
  Rig rig;
  rig.open_streams();
  rig.proxy.add_rule({.direction = Direction::ToServer,
                      .match = "urn:mpotr:",
                      .action = FaultAction::Duplicate,
                      .once_at = 2});
  send_all(rig.client.get(), message(1) + message(2) + message(3) + message(4) + kSentinel);
  const std::string expected =
      message(1) + message(2) + message(2) + message(3) + message(4) + kSentinel;
  CHECK(read_bytes(rig.server.get(), expected.size()) == expected);
  const ProxyStats stats = rig.proxy.stats();
  CHECK(stats.duplicated[kUp] == 1);
  CHECK(stats.forwarded[kUp] == 6);
}

TEST_CASE("proxy: Corrupt changes exactly one payload character, plain stanzas untouched",
          "[proxy]") {
  Rig rig(42);
  rig.open_streams();
  rig.proxy.add_rule({.direction = Direction::ToClient,
                      .match = "urn:mpotr:",
                      .action = FaultAction::Corrupt,
                      .every_nth = 1});
  const std::string original = message(7);
  send_all(rig.server.get(), message(8, false) + original + kSentinel);
  const std::string got =
      read_bytes(rig.client.get(), message(8, false).size() + original.size() + kSentinel.size());
  REQUIRE(got.size() == message(8, false).size() + original.size() + kSentinel.size());
  CHECK(got.substr(0, message(8, false).size()) == message(8, false));
  CHECK(got.substr(got.size() - kSentinel.size()) == kSentinel);

  const std::string corrupted = got.substr(message(8, false).size(), original.size());
  const std::size_t payload = original.find("QUJD");
  const std::size_t payload_end = original.find("</mpotr>");
  std::vector<std::size_t> diffs;
  for (std::size_t i = 0; i < original.size(); ++i) {
    if (corrupted[i] != original[i]) diffs.push_back(i);
  }
  REQUIRE(diffs.size() == 1);
  CHECK(diffs[0] >= payload);
  CHECK(diffs[0] < payload_end);
  CHECK(kAlphabet.find(corrupted[diffs[0]]) != std::string_view::npos);
  CHECK(rig.proxy.stats().corrupted[kDown] == 1);
}

TEST_CASE("proxy: probability triggers are reproducible from the seed", "[proxy]") {
  static constexpr std::uint64_t kStanzas = 40;
  const auto run = [](std::uint64_t seed) {
    Rig rig(seed);
    rig.open_streams();
    rig.proxy.add_rule({.direction = Direction::ToServer,
                        .match = "urn:mpotr:",
                        .action = FaultAction::Drop,
                        .probability = 0.5});
    std::string sent;
    for (std::uint64_t i = 0; i < kStanzas; ++i) sent += message(static_cast<int>(i));
    send_all(rig.client.get(), sent + kSentinel);
    const std::string got = read_through(rig.server.get(), kSentinel);
    REQUIRE(got.ends_with(kSentinel));
    const ProxyStats stats = rig.proxy.stats();
    CHECK(stats.dropped[kUp] + stats.forwarded[kUp] == kStanzas + 1);
    CHECK(stats.dropped[kUp] > 0);
    CHECK(stats.dropped[kUp] < kStanzas);
    return got;
  };
  const std::string first = run(7);
  CHECK(run(7) == first);
  CHECK(run(8) != first);
}

TEST_CASE("proxy: cut resets both sides, the next connection works", "[proxy]") {
  Rig rig;
  rig.open_streams();
  rig.proxy.cut();
  CHECK(closed_within(rig.client.get()));
  CHECK(closed_within(rig.server.get()));

  rig.client = connect_loopback(rig.proxy.port());
  rig.server = accept_within(rig.listener.get());
  rig.open_streams();
  CHECK(rig.proxy.stats().connections == 2);
}

TEST_CASE("proxy: blackhole holds traffic on an open connection", "[proxy]") {
  Rig rig;
  rig.open_streams();
  rig.proxy.set_blackhole(true);
  send_all(rig.client.get(), message(1));
  send_all(rig.server.get(), message(2));
  CHECK(silent_for(rig.server.get(), 100ms));
  CHECK(silent_for(rig.client.get(), 0ms));
  rig.proxy.set_blackhole(false);
  CHECK(read_bytes(rig.server.get(), message(1).size()) == message(1));
  CHECK(read_bytes(rig.client.get(), message(2).size()) == message(2));
}

TEST_CASE("proxy: after STARTTLS both directions pass raw, whatever the rules", "[proxy]") {
  Rig rig;
  rig.open_streams();
  const std::string features =
      "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
      "<required/></starttls></stream:features>";
  const std::string starttls = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
  const std::string proceed = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
  send_all(rig.server.get(), features);
  CHECK(read_bytes(rig.client.get(), features.size()) == features);
  send_all(rig.client.get(), starttls);
  CHECK(read_bytes(rig.server.get(), starttls.size()) == starttls);
  send_all(rig.server.get(), proceed);
  CHECK(read_bytes(rig.client.get(), proceed.size()) == proceed);

  for (const Direction d : {Direction::ToServer, Direction::ToClient}) {
    rig.proxy.add_rule({.direction = d, .match = "", .action = FaultAction::Drop, .every_nth = 1});
  }
  const std::string tls_like = std::string("\x16\x03\x01\x02\x00", 5) + message(1) + "<!--";
  send_all(rig.client.get(), tls_like);
  CHECK(read_bytes(rig.server.get(), tls_like.size()) == tls_like);
  send_all(rig.server.get(), tls_like);
  CHECK(read_bytes(rig.client.get(), tls_like.size()) == tls_like);

  const ProxyStats stats = rig.proxy.stats();
  CHECK(stats.raw_passthrough);
  CHECK(stats.parse_errors == 0);
  CHECK(stats.dropped[kUp] + stats.dropped[kDown] == 0);
}

TEST_CASE("proxy: a protocol error is counted and the rest passes raw", "[proxy]") {
  Rig rig;
  rig.open_streams();
  rig.proxy.add_rule({.direction = Direction::ToServer,
                      .match = "urn:mpotr:",
                      .action = FaultAction::Drop,
                      .every_nth = 1});
  const std::string bytes = "<message><!-- comment --></message>" + message(1) + message(2);
  send_all(rig.client.get(), bytes);
  CHECK(read_bytes(rig.server.get(), bytes.size()) == bytes);
  const ProxyStats stats = rig.proxy.stats();
  CHECK(stats.parse_errors == 1);
  CHECK(stats.raw_passthrough);
  CHECK(stats.dropped[kUp] == 0);
}

TEST_CASE("proxy: an unreachable target resets the client and reports why", "[proxy]") {
  std::uint16_t port = 0;
  listen_loopback(port);  // closed again at once: nothing listens on `port` any more
  FaultProxy proxy("127.0.0.1", port);
  const UniqueFd client = connect_loopback(proxy.port());
  CHECK(closed_within(client.get()));
  CHECK(proxy.wait_for([](const ProxyStats& s) { return !s.last_error.empty(); }, kTimeout));
  CHECK(proxy.stats().last_error.find("connect to target") != std::string::npos);
}

TEST_CASE("proxy: add_rule rejects rules without exactly one valid trigger", "[proxy]") {
  FaultProxy proxy("127.0.0.1", 9);
  const FaultRule base{.direction = Direction::ToServer, .match = "x", .action = FaultAction::Drop};
  FaultRule none = base;
  FaultRule two = base;
  two.every_nth = 2;
  two.once_at = 1;
  FaultRule too_likely = base;
  too_likely.probability = 1.5;
  FaultRule negative = base;
  negative.probability = -0.5;
  for (const FaultRule& r : {none, two, too_likely, negative}) {
    CHECK_THROWS_AS(proxy.add_rule(r), std::invalid_argument);
  }
  FaultRule ok = base;
  ok.probability = 1;
  CHECK_NOTHROW(proxy.add_rule(ok));
}
