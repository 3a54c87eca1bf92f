// SPDX-License-Identifier: MIT
// A bounded streaming scanner for the server-to-client direction of an XMPP stream
// (spec/mpotr.md §13.4, §13.5). It sits in front of libstrophe, which builds every stanza as
// a tree and renders and frees it recursively: a stanza nested a million levels deep crashes it,
// and a huge one stalls it. The scanner passes on the stream header and every top-level stanza
// whole, but only stanzas within kMaxStanzaDepth and kMaxStanzaBytes; a stanza over either
// limit is skipped as it streams (never buffered beyond the limit) and reported.
//
// Pure: no I/O and no libstrophe. Memory is bounded by kMaxStanzaBytes plus the caller's input;
// time is linear in the bytes fed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mpotr::transport {

// Element levels of one stanza, the stanza element itself being level 1. Real stanzas stay
// far below (a MUC presence is 3 levels, a data form 5, a PubSub Atom item about 8); every
// level is a recursive call in libstrophe's renderer and destructor, so this bounds their stack.
inline constexpr std::size_t kMaxStanzaDepth = 64;
// Bytes of one stanza, from its '<' to its last '>'. The largest stanza we expect is an mpOTR
// payload: at most kMaxWireMessageLen = 64 KiB binary, 87,384 characters of base64, plus a few
// hundred bytes of XML and addresses. 256 KiB leaves three times that, room for presence with
// large capabilities or vCard hashes, and is the c2s max_stanza_size of ejabberd's shipped
// configuration, so a server set up that way never relays more.
inline constexpr std::size_t kMaxStanzaBytes = 256 * 1024;
// The XML declaration, the <stream:stream> header and </stream:stream> (a few hundred bytes
// in practice). Unlike a stanza, a header cannot be skipped: a longer one is a protocol error.
inline constexpr std::size_t kMaxStreamHeaderBytes = 4096;

// The limits a scanner applies: the constants above, smaller ones for tests and fuzzing.
struct ScanLimits {
  std::size_t depth = kMaxStanzaDepth;
  std::size_t stanza_bytes = kMaxStanzaBytes;
  std::size_t header_bytes = kMaxStreamHeaderBytes;
};

enum class ScanKind : std::uint8_t {
  Declaration,    // <?xml …?>
  StreamHeader,   // <stream:stream …> (also a restart after STARTTLS or SASL)
  Stanza,         // a complete top-level element within the limits
  Whitespace,     // between stanzas (keepalives)
  StreamEnd,      // </stream:stream>
  Dropped,        // a stanza over a limit: skipped, nothing of it passed on
  ProtocolError,  // not XMPP (RFC 6120 §11.1): nothing more is passed on
};
std::string_view to_string(ScanKind kind) noexcept;

enum class StanzaLimit : std::uint8_t { None, Depth, Size };

struct ScanEvent {
  ScanKind kind{};
  std::size_t offset = 0;  // passed kinds: where its bytes start in ScanResult::pass
  std::size_t size = 0;    // passed kinds: its bytes; Dropped: the bytes skipped
  StanzaLimit limit = StanzaLimit::None;  // Dropped: the limit it crossed first
  std::string error;       // ProtocolError: what was wrong
};

struct ScanResult {
  std::string pass;               // the bytes to pass on: whole pieces only, in order
  std::vector<ScanEvent> events;  // one per piece, dropped stanza or error, in stream order

  void clear() {
    pass.clear();
    events.clear();
  }
  std::string_view bytes(const ScanEvent& e) const { return std::string_view(pass).substr(e.offset, e.size); }
};

class StanzaScanner {
 public:
  explicit StanzaScanner(ScanLimits limits = {}) : m_limits(limits) {}

  // Appends to `out` what these bytes complete. Feeding a stream in any chunking gives the
  // same pieces and events (whitespace comes out per feed, so runs of it may be split).
  void feed(std::string_view bytes, ScanResult& out);
  ScanResult feed(std::string_view bytes) {
    ScanResult out;
    feed(bytes, out);
    return out;
  }

  bool failed() const noexcept { return m_where == Where::Failed; }
  bool stream_open() const noexcept { return m_stream == Stream::Open; }
  // Bytes of the unfinished piece held now: never more than the larger of the stanza and
  // header limits (with the defaults, kMaxStanzaBytes).
  std::size_t held() const noexcept { return m_buf.size(); }
  // True while a stanza over a limit is being skipped.
  bool skipping() const noexcept { return m_skip != StanzaLimit::None; }

 private:
  enum class Where : std::uint8_t {
    Text,     // outside markup
    Lt,       // just read '<'
    Name,     // reading a start or end tag's name
    Tag,      // after the name, up to '>' (attributes, quotes)
    Pi,       // <? … ?>
    Bang,     // <! expecting [CDATA[
    CData,    // inside <![CDATA[ … ]]>
    Failed,
  };
  enum class Stream : std::uint8_t { NotOpen, Open, Ended };
  enum class Piece : std::uint8_t { None, Declaration, Header, EndOfStream, Stanza };

  std::size_t text(std::string_view in, std::size_t i, ScanResult& out);
  std::size_t cdata(std::string_view in, std::size_t i, ScanResult& out);
  void markup(char c, ScanResult& out);
  void name_done(ScanResult& out);
  void tag_done(ScanResult& out);
  void start_tag_done(bool empty, ScanResult& out);
  void end_tag_done(ScanResult& out);
  void stanza_done(ScanResult& out);
  void take(std::string_view bytes, ScanResult& out);
  void skip_from_here(StanzaLimit limit);
  void emit(ScanKind kind, ScanResult& out);
  void fail(std::string why, ScanResult& out);
  std::string_view tag_name() const;

  ScanLimits m_limits;
  Where m_where = Where::Text;
  Stream m_stream = Stream::NotOpen;
  Piece m_piece = Piece::None;     // what the bytes in m_buf are becoming
  std::size_t m_level = 0;         // open elements of the current stanza (0: between stanzas)
  StanzaLimit m_skip = StanzaLimit::None;
  std::uint64_t m_size = 0;        // bytes of the current piece so far, skipped ones included
  std::string m_buf;               // bytes of the current piece (empty while skipping)
  // The tag being read.
  bool m_end_tag = false;          // </…>
  char m_quote = 0;                // the quote of the attribute value being read, or 0
  char m_prev = 0;                 // the previous character inside the tag (for "/>" and "?>")
  std::size_t m_name_start = 0;    // offset of the name in m_buf
  std::size_t m_name_len = 0;
  bool m_name_is_stream = true;    // so far the name equals "stream:stream" (or its prefix)
  std::size_t m_bang = 0;          // characters of "[CDATA[" matched after "<!"
  std::size_t m_brackets = 0;      // consecutive ']' inside CDATA
  // Open element names of the current stanza as (offset, length) in m_buf; at most the depth
  // limit's entries, cleared while skipping (names are checked only when passed on).
  std::vector<std::pair<std::size_t, std::size_t>> m_names;
};

}  // namespace mpotr::transport
