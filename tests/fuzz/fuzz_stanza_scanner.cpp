// SPDX-License-Identifier: MIT
// What a hostile server can put on the wire before libstrophe parses it: arbitrary bytes through
// the StanzaScanner (transport/xmpp/stanza_scanner.cpp), in arbitrary chunks, under the real
// limits or small ones the fuzzer can cross (first input byte). Properties:
//   * memory is bounded: the scanner never holds more than the larger of its limits;
//   * every passed stanza is within the depth and size limits and well-formed at the top level
//     (checked here independently: one root element, matching tags, nothing around it);
//   * headers, declarations, stream ends and whitespace are what they claim, and within theirs;
//   * the scanner only passes bytes it was given, in order, and the chunking changes nothing;
//   * after a protocol error nothing more passes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "mpotr/transport/stanza_scanner.h"

using namespace mpotr::transport;

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// An element's name after "<" or "</": up to whitespace, '/' or '>'.
std::string_view name_at(std::string_view s, std::size_t i) {
  std::size_t end = i;
  while (end < s.size() && !is_space(s[end]) && s[end] != '/' && s[end] != '>') ++end;
  return s.substr(i, end - i);
}

// One complete element and nothing else, nested at most `max_depth` levels, with every end
// tag matching its start tag. Attribute values may hold anything but their quote; CDATA may
// hold anything but "]]>"; comments and processing instructions are not allowed.
bool well_formed_stanza(std::string_view s, std::size_t max_depth) {
  if (s.empty() || s.front() != '<' || s.back() != '>') return false;
  std::vector<std::string_view> open;
  std::size_t i = 0;
  bool root_closed = false;
  while (i < s.size()) {
    if (root_closed) return false;  // bytes after the root element
    if (s[i] != '<') {
      if (open.empty()) return false;  // text outside the root
      ++i;
      continue;
    }
    if (s.substr(i, 9) == "<![CDATA[") {
      if (open.empty()) return false;
      const std::size_t end = s.find("]]>", i + 9);
      if (end == std::string_view::npos) return false;
      i = end + 3;
      continue;
    }
    if (i + 1 >= s.size() || s[i + 1] == '!' || s[i + 1] == '?') return false;
    const bool closing = s[i + 1] == '/';
    const std::string_view name = name_at(s, i + (closing ? 2 : 1));
    if (name.empty()) return false;
    std::size_t j = i + (closing ? 2 : 1) + name.size();
    char quote = 0;
    char prev = 0;
    while (j < s.size() && (quote != 0 || s[j] != '>')) {
      if (quote != 0) {
        if (s[j] == quote) quote = 0;
      } else if (s[j] == '\'' || s[j] == '"') {
        quote = s[j];
      }
      prev = s[j];
      ++j;
    }
    if (j >= s.size()) return false;
    if (closing) {
      if (open.empty() || open.back() != name) return false;
      open.pop_back();
      root_closed = open.empty();
    } else if (prev == '/') {
      if (open.size() + 1 > max_depth) return false;
      root_closed = open.empty();
    } else {
      open.push_back(name);
      if (open.size() > max_depth) return false;
    }
    i = j + 1;
  }
  return root_closed;
}

struct Run {
  std::string passed;
  std::vector<std::pair<ScanKind, std::size_t>> events;  // whitespace left out (split per feed)
};

Run scan(std::string_view input, std::size_t chunk, const ScanLimits& limits) {
  StanzaScanner scanner(limits);
  Run run;
  ScanResult r;
  bool failed = false;
  for (std::size_t at = 0; at < input.size(); at += chunk) {
    r.clear();
    scanner.feed(input.substr(at, chunk), r);
    FUZZ_CHECK(scanner.held() <= std::max(limits.stanza_bytes, limits.header_bytes));
    FUZZ_CHECK(!failed || (r.pass.empty() && r.events.empty()));
    std::size_t covered = 0;
    for (const ScanEvent& e : r.events) {
      const std::string_view bytes = r.bytes(e);
      switch (e.kind) {
        case ScanKind::Stanza:
          FUZZ_CHECK_MSG(e.size <= limits.stanza_bytes, "stanza of %zu bytes", e.size);
          FUZZ_CHECK(well_formed_stanza(bytes, limits.depth));
          break;
        case ScanKind::StreamHeader:
          FUZZ_CHECK(e.size <= limits.header_bytes);
          FUZZ_CHECK(bytes.starts_with("<stream:stream") && bytes.ends_with(">") && !bytes.ends_with("/>"));
          break;
        case ScanKind::Declaration:
          FUZZ_CHECK(e.size <= limits.header_bytes);
          FUZZ_CHECK(bytes.starts_with("<?xml") && bytes.ends_with("?>"));
          break;
        case ScanKind::StreamEnd:
          FUZZ_CHECK(e.size <= limits.header_bytes);
          FUZZ_CHECK(bytes.starts_with("</stream:stream") && bytes.ends_with(">"));
          break;
        case ScanKind::Whitespace:
          for (char c : bytes) FUZZ_CHECK(is_space(c));
          break;
        case ScanKind::Dropped:
          FUZZ_CHECK(e.limit != StanzaLimit::None);
          FUZZ_CHECK(e.size > (e.limit == StanzaLimit::Size ? limits.stanza_bytes : 0));
          break;
        case ScanKind::ProtocolError:
          FUZZ_CHECK(!e.error.empty());
          failed = true;
          break;
      }
      if (e.kind != ScanKind::Dropped && e.kind != ScanKind::ProtocolError) {
        FUZZ_CHECK(e.offset == covered);
        covered += e.size;
      }
      if (e.kind != ScanKind::Whitespace) run.events.emplace_back(e.kind, e.size);
    }
    FUZZ_CHECK(covered == r.pass.size());
    FUZZ_CHECK(failed == scanner.failed());
    run.passed += r.pass;
  }
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // Byte 0: bit 0 small limits (depth 1..4, 8..135 bytes: every path is reachable in short
  // inputs), bits 1..7 the chunk size of the second run.
  const std::uint8_t control = data[0];
  ScanLimits limits;
  if ((control & 1) != 0) {
    limits.depth = 1 + (control >> 1) % 4;
    limits.stanza_bytes = 8 + (control >> 3);
    limits.header_bytes = 8 + (control >> 2);
  }
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const Run whole = scan(input, input.size() + 1, limits);
  const Run chunked = scan(input, 1 + (control >> 1) % 7, limits);
  FUZZ_CHECK(whole.passed == chunked.passed);
  FUZZ_CHECK(whole.events == chunked.events);
  // Only given bytes, in order: the passed bytes are a subsequence of the input.
  std::size_t at = 0;
  for (char c : whole.passed) {
    at = input.find(c, at);
    FUZZ_CHECK(at != std::string_view::npos);
    ++at;
  }
  return 0;
}
