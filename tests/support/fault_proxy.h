// SPDX-License-Identifier: MIT
//
// A fault-injecting TCP proxy for XMPP integration tests. It sits between one client
// (plaintext, loopback) and the test server, splits both directions into top-level stanzas
// and can drop, delay, duplicate, corrupt or rewrite the stanzas a rule selects, inject stanzas
// of its own (a hostile server: forged presence, ten-megabyte or million-deep stanzas, streamed
// in chunks), record every byte on the wire, cut the connection (RST) or hang it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mpotr::test {

enum class Direction { ToServer = 0, ToClient = 1 };  // client->server, server->client

constexpr std::size_t index(Direction d) { return static_cast<std::size_t>(d); }

// Splits one direction of an XMPP stream into pieces, each passed on whole. Pure: no I/O.
// Depth 0 is outside any stream, 1 between stanzas, >= 2 inside a stanza. A stanza is a
// complete element at depth 1. Any <stream:stream> start tag resets the depth to 1, which
// covers the stream restart after SASL success (with or without a new XML declaration).
//
// Everything after a protocol error (<! or <? inside a stanza, a PI other than the XML
// declaration, text other than whitespace between stanzas) and everything after a
// <starttls/> or <proceed/> stanza (the bytes that follow are TLS) comes out as Raw: the
// splitter fails open and never stalls the stream.
class StanzaSplitter {
 public:
  enum class Kind { Declaration, StreamHeader, Stanza, Whitespace, StreamEnd, Raw };
  struct Piece {
    Kind kind;
    std::string bytes;
  };
  enum class RawReason { None, Starttls, ParseError };

  // Returns the pieces completed by these bytes, in order; whitespace between stanzas is
  // returned at once rather than held for the next tag. Concatenating every piece ever
  // returned, then take_pending(), gives back exactly the bytes fed.
  std::vector<Piece> feed(std::string_view bytes);
  // The bytes of an unfinished piece (the peer closed mid-stanza), removed from the splitter.
  std::string take_pending();
  RawReason raw_reason() const { return m_raw; }

 private:
  void scan_tag(char c, std::vector<Piece>& out);
  void on_tag_end(std::vector<Piece>& out);
  void finish_stanza(std::vector<Piece>& out);
  void emit(Kind kind, std::vector<Piece>& out);
  void fail(std::vector<Piece>& out);

  RawReason m_raw = RawReason::None;
  int m_depth = 0;
  bool m_in_tag = false;
  char m_quote = 0;             // the quote of the attribute value being read, or 0
  std::size_t m_tag_start = 0;  // offset in m_buf of the '<' of the tag being read
  std::string m_buf;            // bytes of the piece under construction
};

// Changes one character of the longest text node of `stanza` (the most characters between a
// '>' and the next '<'; the first one on a tie) to a different character of [A-Za-z0-9+/],
// so the stanza stays well-formed and base64 stays base64. Characters of entity references
// (&amp;) are never chosen. Position and replacement come from `rng`. Returns false, leaving
// the stanza unchanged, when that node has no such character.
bool corrupt_longest_text(std::string& stanza, std::mt19937_64& rng);

enum class FaultAction { Drop, Delay, Duplicate, Corrupt, Rewrite };

// Applies `action` to stanzas going in `direction` whose text contains `match` (an empty
// match selects every stanza). Exactly one trigger must be set; it counts the stanzas this
// rule matched since it was added, over all connections:
//   every_nth = N: the Nth, 2Nth, ... match;  once_at = K: only the Kth match;
//   probability = p in (0, 1]: each match independently, from the proxy's seeded generator.
// Every rule that matches a stanza counts it (matching looks at the stanza as it arrived); the
// actions of all rules that fire combine: Drop wins; otherwise the Rewrites run in the order
// the rules were added, each on the previous one's result (an empty result drops the stanza);
// then Corrupt, Duplicate, and Delay by the longest delay_ms apply to what they returned.
struct FaultRule {
  Direction direction = Direction::ToClient;
  std::string match;
  FaultAction action = FaultAction::Drop;
  std::uint32_t delay_ms = 0;  // Delay: held this long; later stanzas overtake it
  std::uint32_t every_nth = 0;
  double probability = 0;
  std::uint32_t once_at = 0;
  // Rewrite: the stanza is replaced by what this returns ("" drops it), e.g. a presence
  // without its mpOTR marker, or with a forged attribute. Runs on the proxy thread with the
  // proxy's lock held: it must not call the proxy.
  std::function<std::string(std::string_view stanza)> rewrite = nullptr;
};

// Stanza counts are indexed by index(Direction).
struct ProxyStats {
  std::uint64_t forwarded[2]{};  // stanza copies passed on (a duplicated stanza counts twice)
  std::uint64_t dropped[2]{};
  std::uint64_t delayed[2]{};
  std::uint64_t duplicated[2]{};
  std::uint64_t corrupted[2]{};
  std::uint64_t rewritten[2]{};    // Rewrite fired (a stanza rewritten to "" also counts as dropped)
  std::uint64_t injections[2]{};   // inject()/inject_stream() calls completed, per connection
  std::uint64_t injected_bytes[2]{};
  std::uint64_t connections = 0;  // client connections accepted
  bool raw_passthrough = false;   // some direction of some connection went raw (see splitter)
  std::uint64_t parse_errors = 0;
  std::string last_error;  // proxy-side failure (upstream connect, socket, exception), or ""
};

class FaultProxy {
 public:
  // Listens on 127.0.0.1 on an ephemeral port; every accepted connection gets its own
  // connection to target_host:target_port. `seed` makes probability and corruption
  // reproducible. Throws std::runtime_error when the target does not resolve or the listener
  // cannot be set up.
  FaultProxy(std::string target_host, std::uint16_t target_port, std::uint64_t seed = 1);
  // Stops the proxy thread and closes every socket.
  ~FaultProxy();

  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;
  FaultProxy(FaultProxy&&) = delete;
  FaultProxy& operator=(FaultProxy&&) = delete;

  std::uint16_t port() const;

  // Throws std::invalid_argument unless exactly one trigger is set and probability <= 1, and a
  // Rewrite rule has its function.
  void add_rule(FaultRule rule);
  // Stanzas already held by a Delay are still delivered.
  void clear_rules();

  // Resets every current connection on both sides (SO_LINGER 0), as a dropped network would;
  // returns once they are closed. Delayed stanzas for them are discarded.
  void cut();
  // While on, nothing is read or written on any connection, which stays open (a hung link).
  // Returns once the proxy thread follows the new setting.
  void set_blackhole(bool on);

  // Delivers `bytes` to every current connection in direction `d` as if its peer had sent
  // them (not subject to rules; recorded like other traffic, when they are sent, so in the
  // recording they may fall inside a stanza the peer was sending): at the next stanza boundary once
  // that direction's stream is open (a <stream:stream> header has passed), before anything the
  // peer sends from then on. Returns once the proxy thread has queued it. A direction that went
  // raw (STARTTLS, parse error) gets nothing.
  void inject(Direction d, std::string bytes);
  // The same for a payload produced in chunks until next_chunk() returns "": each chunk is
  // pulled only when the receiver has taken most of the previous ones, so a ten-megabyte
  // stanza is never held whole, and the peer's own traffic on that connection waits behind it
  // (it is one stream) and is not read beyond the usual queue bound meanwhile. Each current
  // connection gets its own copy of next_chunk (copy the callable's state, e.g. a mutable
  // lambda capturing its counters by value); it runs on the proxy thread.
  void inject_stream(Direction d, std::function<std::string()> next_chunk);

  ProxyStats stats() const;
  // Waits until `pred(stats())` holds; false on timeout.
  bool wait_for(const std::function<bool(const ProxyStats&)>& pred,
                std::chrono::milliseconds timeout) const;

  // Every byte the sender put on the wire in direction `d` so far, over all connections,
  // before any fault was applied (dropped stanzas included).
  std::string recorded(Direction d) const;
  void clear_recording();

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace mpotr::test
