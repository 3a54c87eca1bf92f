// SPDX-License-Identifier: MIT
// The bounded stanza scanner in front of libstrophe (spec/mpotr.md §13.4, §13.5): what it
// passes on, what it drops and what it refuses, fed whole and in every small chunking.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "mpotr/transport/stanza_scanner.h"

using namespace mpotr::transport;

namespace {

char letter(ScanKind kind) {
  switch (kind) {
    case ScanKind::Declaration: return 'D';
    case ScanKind::StreamHeader: return 'H';
    case ScanKind::Stanza: return 'S';
    case ScanKind::Whitespace: return 'W';
    case ScanKind::StreamEnd: return 'E';
    case ScanKind::Dropped: return 'X';
    case ScanKind::ProtocolError: return '!';
  }
  return '?';
}

// Feeds `input` in chunks of `chunk` bytes and renders the events: passed pieces as "S[bytes]",
// drops as "X[depth 123]" / "X[size 123]", errors as "![why]". Adjacent whitespace pieces from
// different feeds are merged, so the rendering does not depend on the chunking.
std::string scan(std::string_view input, std::size_t chunk, StanzaScanner* keep = nullptr) {
  StanzaScanner local;
  StanzaScanner& scanner = keep != nullptr ? *keep : local;
  std::string rendered;
  std::string passed;
  char last = 0;
  for (std::size_t i = 0; i < input.size(); i += chunk) {
    const ScanResult r = scanner.feed(input.substr(i, chunk));
    std::size_t covered = 0;
    for (const ScanEvent& e : r.events) {
      std::string item;
      if (e.kind == ScanKind::Dropped) {
        item = std::string("X[") + (e.limit == StanzaLimit::Depth ? "depth " : "size ") + std::to_string(e.size) + "]";
      } else if (e.kind == ScanKind::ProtocolError) {
        item = "![" + e.error + "]";
      } else {
        REQUIRE(e.offset == covered);  // pieces are contiguous and in order
        covered += e.size;
        if (e.kind == ScanKind::Whitespace && last == 'W') {
          rendered.insert(rendered.size() - 1, r.bytes(e));
          last = 'W';
          continue;
        }
        item = std::string(1, letter(e.kind)) + "[" + std::string(r.bytes(e)) + "]";
      }
      rendered += (rendered.empty() ? "" : " ") + item;
      last = letter(e.kind);
    }
    REQUIRE(covered == r.pass.size());
    passed += r.pass;
    CHECK(scanner.held() <= kMaxStanzaBytes);
  }
  return rendered;
}

// The rendering of `input` fed whole, after checking that chunk sizes 1..7 give the same.
std::string scan_checked(std::string_view input) {
  const std::string whole = scan(input, input.size());
  for (std::size_t chunk = 1; chunk <= 7; ++chunk) {
    INFO("chunk size " << chunk);
    REQUIRE(scan(input, chunk) == whole);
  }
  return whole;
}

const std::string kOpen = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

std::string nested(std::size_t depth, std::string_view inner = "") {
  std::string s;
  for (std::size_t i = 0; i < depth; ++i) s += "<a>";
  s += inner;
  for (std::size_t i = 0; i < depth; ++i) s += "</a>";
  return s;
}

}  // namespace

TEST_CASE("scanner: declaration, header, stanzas, keepalives, restart and stream end", "[transport][scanner]") {
  const std::string features =
      "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
      "</mechanisms></stream:features>";
  const std::string input = "<?xml version='1.0'?>\n" + kOpen + features + " \n " + "<iq type='get' id='1'/><presence/>\t" +
                            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" + "<?xml version='1.0'?>" + kOpen +
                            "<message><body>a</body></message>\n</stream:stream>";
  CHECK(scan_checked(input) ==
        "D[<?xml version='1.0'?>] W[\n] H[" + kOpen + "] S[" + features + "] W[ \n ] S[<iq type='get' id='1'/>] " +
            "S[<presence/>] W[\t] S[<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>] D[<?xml version='1.0'?>] H[" +
            kOpen + "] S[<message><body>a</body></message>] W[\n] E[</stream:stream>]");
}

TEST_CASE("scanner: quoted '>', '<' and '/' in attribute values, CDATA, self-closing tags", "[transport][scanner]") {
  const std::string quoted = "<message to=\"a>b/c\" note='\"/>' id = 'x' ><body x='<y>'>a &gt; b / c</body></message>";
  const std::string cdata = "<message><body><![CDATA[<x> ]] ]> </body> ]]]></body></message>";
  const std::string empty = "<a b='/'/>";
  const std::string same_names = "<x><x><x/></x><x>t</x></x>";
  CHECK(scan_checked(kOpen + quoted + cdata + empty + same_names) ==
        "H[" + kOpen + "] S[" + quoted + "] S[" + cdata + "] S[" + empty + "] S[" + same_names + "]");
}

TEST_CASE("scanner: a stanza at the depth limit passes, one level more is dropped", "[transport][scanner]") {
  const std::string at_limit = nested(kMaxStanzaDepth);
  const std::string empty_at_limit = nested(kMaxStanzaDepth - 1, "<b/>");
  const std::string over = nested(kMaxStanzaDepth + 1);
  const std::string empty_over = nested(kMaxStanzaDepth, "<b/>");
  CHECK(scan_checked(kOpen + at_limit + empty_at_limit + over + empty_over + "<iq/>") ==
        "H[" + kOpen + "] S[" + at_limit + "] S[" + empty_at_limit + "] X[depth " + std::to_string(over.size()) +
            "] X[depth " + std::to_string(empty_over.size()) + "] S[<iq/>]");
}

TEST_CASE("scanner: a stanza at the size limit passes, one byte more is dropped", "[transport][scanner]") {
  const std::string head = "<message><body>";
  const std::string tail = "</body></message>";
  const std::string at_limit = head + std::string(kMaxStanzaBytes - head.size() - tail.size(), 'x') + tail;
  const std::string over = head + std::string(kMaxStanzaBytes + 1 - head.size() - tail.size(), 'x') + tail;
  REQUIRE(at_limit.size() == kMaxStanzaBytes);
  const std::string input = kOpen + at_limit + over + "<iq/>";
  const std::string expected =
      "H[" + kOpen + "] S[" + at_limit + "] X[size " + std::to_string(over.size()) + "] S[<iq/>]";
  CHECK(scan(input, input.size()) == expected);
  CHECK(scan(input, 4096) == expected);
  CHECK(scan(input, 1) == expected);
  // Over the limit in an attribute value, and in a tag name, of a self-closing stanza.
  const std::string attribute = "<presence a='" + std::string(kMaxStanzaBytes, '>') + "'/>";
  const std::string name = "<" + std::string(kMaxStanzaBytes, 'n') + "/>";
  CHECK(scan(kOpen + attribute + name + "<iq/>", 1000) == "H[" + kOpen + "] X[size " + std::to_string(attribute.size()) +
                                                            "] X[size " + std::to_string(name.size()) + "] S[<iq/>]");
}

TEST_CASE("scanner: a million levels and ten megabytes are skipped in bounded memory", "[transport][scanner]") {
  StanzaScanner scanner;
  ScanResult r = scanner.feed(kOpen);
  REQUIRE(r.events.size() == 1);
  constexpr std::size_t kDepth = 1'000'000;
  std::uint64_t fed = 0;
  const std::string start = "<message from='room@conference.localhost/mallory' type='groupchat'>";
  r = scanner.feed(start);
  fed += start.size();
  std::string open_run;
  std::string close_run;
  for (int i = 0; i < 10'000; ++i) {
    open_run += "<a>";
    close_run += "</a>";
  }
  for (std::size_t i = 0; i < kDepth / 10'000; ++i) {
    r = scanner.feed(open_run);
    fed += open_run.size();
    CHECK(r.events.empty());
    CHECK(r.pass.empty());
    CHECK(scanner.held() <= kMaxStanzaBytes);
  }
  for (std::size_t i = 0; i < kDepth / 10'000; ++i) {
    r = scanner.feed(close_run);
    fed += close_run.size();
    CHECK(r.events.empty());
  }
  r = scanner.feed("</message><iq/>");
  fed += 10;
  REQUIRE(r.events.size() == 2);
  CHECK(r.events[0].kind == ScanKind::Dropped);
  CHECK(r.events[0].limit == StanzaLimit::Depth);
  CHECK(r.events[0].size == fed);
  CHECK(r.events[1].kind == ScanKind::Stanza);
  CHECK(r.pass == "<iq/>");

  const std::string chunk(64 * 1024, 'y');
  r = scanner.feed("<message><body>");
  for (int i = 0; i < 160; ++i) {
    r = scanner.feed(chunk);
    CHECK(r.events.empty());
    CHECK(scanner.held() <= kMaxStanzaBytes);
  }
  CHECK(scanner.skipping());
  r = scanner.feed("</body></message>");
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].kind == ScanKind::Dropped);
  CHECK(r.events[0].limit == StanzaLimit::Size);
  CHECK(r.events[0].size == 15 + 160 * chunk.size() + 17);
  CHECK(scanner.held() == 0);
}

TEST_CASE("scanner: what RFC 6120 forbids, and what is not XML, stops the stream", "[transport][scanner]") {
  struct Case {
    std::string input;
    std::string expected;
  };
  const std::string h = "H[" + kOpen + "] ";
  const std::vector<Case> cases = {
      {kOpen + "<iq/><message><!-- a > b --></message>", h + "S[<iq/>] ![comment or document type declaration (RFC 6120 §11.1)]"},
      {kOpen + "<!-- c --><iq/>", h + "![comment or document type declaration (RFC 6120 §11.1)]"},
      {"<!DOCTYPE x [<!ENTITY a 'b'>]>" + kOpen, "![comment or document type declaration (RFC 6120 §11.1)]"},
      {kOpen + "<message><?pi x?></message>", h + "![processing instruction inside a stanza (RFC 6120 §11.1)]"},
      {kOpen + "<?pi x?><iq/>", h + "![processing instruction (RFC 6120 §11.1)]"},
      {kOpen + " junk<iq/>", h + "W[ ] ![text between stanzas]"},
      {"<iq/>" + kOpen, "![a stanza outside the stream]"},
      {kOpen + "</stream:stream></x>", h + "E[</stream:stream>] ![data after the end of the stream]"},
      {kOpen + "<a><b></a></b>", h + "![mismatched end tag]"},
      {kOpen + "</iq>", h + "![end tag outside any element]"},
      {kOpen + "<a></a x='1'>", h + "![malformed end tag]"},
      {kOpen + "< a/>", h + "![malformed tag]"},
      {kOpen + "<a<b/>", h + "![malformed tag name]"},
      {kOpen + "<a b<c/>", h + "![\'<\' inside a tag]"},
      {"<stream:stream/>", "![an empty stream header]"},
      {"<stream:stream a='" + std::string(kMaxStreamHeaderBytes, 'x') + "'>",
       "![stream header longer than " + std::to_string(kMaxStreamHeaderBytes) + " bytes]"},
  };
  for (const Case& c : cases) {
    INFO(c.input.substr(0, 200));
    CHECK(scan_checked(c.input) == c.expected);
  }
  // Nothing passes after an error.
  StanzaScanner scanner;
  scan(kOpen + "<!--", 3, &scanner);
  CHECK(scanner.failed());
  const ScanResult after = scanner.feed("--><iq/>");
  CHECK(after.pass.empty());
  CHECK(after.events.empty());
}

TEST_CASE("scanner: a stanza over the size limit before its name ends is still judged by its name",
          "[transport][scanner]") {
  // A long name before the stream opened is an error, not a dropped stanza.
  CHECK(scan("<" + std::string(kMaxStanzaBytes + 10, 'n') + ">", 4096) == "![a stanza outside the stream]");
  CHECK(scan(kOpen + "<" + std::string(kMaxStanzaBytes + 10, 'n') + "></" + std::string(kMaxStanzaBytes + 10, 'n') + ">",
             4096) == "H[" + kOpen + "] X[size " + std::to_string(2 * kMaxStanzaBytes + 25) + "]");
}

TEST_CASE("scanner: smaller limits for one scanner", "[transport][scanner]") {
  StanzaScanner scanner(ScanLimits{2, 32, 20});
  const ScanResult r = scanner.feed("<stream:stream><a><b/></a><a><b><c/></b></a><m>" + std::string(40, 'x') + "</m><iq/>");
  std::vector<std::string> seen;
  for (const ScanEvent& e : r.events) {
    seen.push_back(std::string(to_string(e.kind)) + (e.kind == ScanKind::Dropped ? std::to_string(e.size) : ""));
  }
  CHECK(seen == std::vector<std::string>{"stream_header", "stanza", "dropped18", "dropped47", "stanza"});
  CHECK(StanzaScanner(ScanLimits{2, 32, 10}).feed("<stream:stream>").events.back().kind == ScanKind::ProtocolError);
  // A header is judged by the header limit alone, however small the stanza limit, in any chunking.
  const std::string header = "<stream:stream a='x'>";
  CHECK(scan(header + "<iq/>", header.size() + 5) == "H[" + header + "] S[<iq/>]");
  StanzaScanner small(ScanLimits{2, 8, 32});
  std::string kinds;
  for (char c : header + "<iq/><message/>") {
    for (const ScanEvent& e : small.feed(std::string_view(&c, 1)).events) kinds += std::string(to_string(e.kind)) + " ";
  }
  CHECK(kinds == "stream_header stanza dropped ");
}
