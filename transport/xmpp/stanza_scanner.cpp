// SPDX-License-Identifier: MIT
#include "mpotr/transport/stanza_scanner.h"

#include <algorithm>

namespace mpotr::transport {

std::string_view to_string(ScanKind kind) noexcept {
  switch (kind) {
    case ScanKind::Declaration: return "declaration";
    case ScanKind::StreamHeader: return "stream_header";
    case ScanKind::Stanza: return "stanza";
    case ScanKind::Whitespace: return "whitespace";
    case ScanKind::StreamEnd: return "stream_end";
    case ScanKind::Dropped: return "dropped";
    case ScanKind::ProtocolError: return "protocol_error";
  }
  return "?";
}

namespace {

constexpr std::string_view kStreamName = "stream:stream";
constexpr std::string_view kCData = "[CDATA[";
// A buffer that grew for a large stanza is given back once that stanza is passed on, so an idle
// connection holds little.
constexpr std::size_t kKeptCapacity = 16 * 1024;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

void StanzaScanner::feed(std::string_view in, ScanResult& out) {
  std::size_t i = 0;
  while (i < in.size() && m_where != Where::Failed) {
    if (m_where == Where::Text) {
      i = text(in, i, out);
      continue;
    }
    if (m_where == Where::CData) {
      i = cdata(in, i, out);
      continue;
    }
    if (m_where == Where::Tag && m_quote != 0) {
      // An attribute value: everything up to its closing quote, '<' and '>' included.
      const std::size_t end = in.find(m_quote, i);
      const std::size_t stop = end == std::string_view::npos ? in.size() : end + 1;
      take(in.substr(i, stop - i), out);
      if (end != std::string_view::npos) {
        m_quote = 0;
        m_prev = in[end];
      }
      i = stop;
      continue;
    }
    take(in.substr(i, 1), out);
    if (m_where != Where::Failed) {
      markup(in[i], out);
    }
    ++i;
  }
}

// Outside markup. Between stanzas only whitespace may come (passed on at once: keepalives must
// not wait for the next stanza); inside a stanza, character data up to the next '<'.
std::size_t StanzaScanner::text(std::string_view in, std::size_t i, ScanResult& out) {
  if (m_level > 0) {
    const std::size_t lt = in.find('<', i);
    const std::size_t stop = lt == std::string_view::npos ? in.size() : lt + 1;
    take(in.substr(i, stop - i), out);
    if (lt != std::string_view::npos && m_where != Where::Failed) {
      m_where = Where::Lt;
    }
    return stop;
  }
  std::size_t j = i;
  while (j < in.size() && is_space(in[j])) {
    ++j;
  }
  if (j > i) {
    if (!out.events.empty() && out.events.back().kind == ScanKind::Whitespace &&
        out.events.back().offset + out.events.back().size == out.pass.size()) {
      out.events.back().size += j - i;
    } else {
      out.events.push_back(ScanEvent{ScanKind::Whitespace, out.pass.size(), j - i, StanzaLimit::None, {}});
    }
    out.pass.append(in.substr(i, j - i));
  }
  if (j == in.size()) {
    return j;
  }
  if (in[j] != '<') {
    fail(m_stream == Stream::Ended ? "data after the end of the stream" : "text between stanzas", out);
    return j + 1;
  }
  if (m_stream == Stream::Ended) {
    fail("data after the end of the stream", out);
    return j + 1;
  }
  m_piece = Piece::None;
  m_size = 0;
  m_buf.clear();
  take(in.substr(j, 1), out);
  m_where = Where::Lt;
  return j + 1;
}

// Character data that may hold '<' and '>', up to the first "]]>" (the brackets may have come
// in an earlier feed).
std::size_t StanzaScanner::cdata(std::string_view in, std::size_t i, ScanResult& out) {
  std::size_t j = i;
  bool closed = false;
  while (j < in.size()) {
    const char c = in[j++];
    if (c == '>' && m_brackets >= 2) {
      closed = true;
      break;
    }
    if (c == ']') {
      ++m_brackets;
      continue;
    }
    m_brackets = 0;
    const std::size_t bracket = in.find(']', j);
    j = bracket == std::string_view::npos ? in.size() : bracket;
  }
  take(in.substr(i, j - i), out);
  if (closed && m_where != Where::Failed) {
    m_where = Where::Text;
  }
  return j;
}

void StanzaScanner::markup(char c, ScanResult& out) {
  switch (m_where) {
    case Where::Lt:
      m_name_len = 0;
      m_name_is_stream = true;
      m_quote = 0;
      m_prev = 0;
      if (c == '/') {
        m_end_tag = true;
        m_name_start = m_buf.size();
        m_where = Where::Name;
      } else if (c == '?') {
        if (m_level > 0) {
          fail("processing instruction inside a stanza (RFC 6120 §11.1)", out);
          return;
        }
        m_piece = Piece::Declaration;
        m_where = Where::Pi;
      } else if (c == '!') {
        if (m_level == 0) {
          fail("comment or document type declaration (RFC 6120 §11.1)", out);
          return;
        }
        m_bang = 0;
        m_where = Where::Bang;
      } else if (is_space(c) || c == '>' || c == '<') {
        fail("malformed tag", out);
      } else {
        m_end_tag = false;
        m_name_start = m_buf.empty() ? 0 : m_buf.size() - 1;  // the character just taken
        m_where = Where::Name;
        markup(c, out);
      }
      return;
    case Where::Name:
      if (is_space(c) || c == '/' || c == '>') {
        name_done(out);
        if (m_where == Where::Failed) {
          return;
        }
        m_where = Where::Tag;
        markup(c, out);
        return;
      }
      if (c == '<' || c == '"' || c == '\'' || c == '=') {
        fail("malformed tag name", out);
        return;
      }
      if (m_name_len >= kStreamName.size() || kStreamName[m_name_len] != c) {
        m_name_is_stream = false;
      }
      ++m_name_len;
      return;
    case Where::Tag:
      if (c == '>') {
        m_where = Where::Text;
        tag_done(out);
        return;
      }
      if (c == '<') {
        fail("'<' inside a tag", out);
        return;
      }
      if (m_end_tag && !is_space(c)) {
        fail("malformed end tag", out);
        return;
      }
      if (c == '"' || c == '\'') {
        m_quote = c;
      }
      m_prev = c;
      return;
    case Where::Pi:
      if (m_prev == '?' && c == '>') {
        m_where = Where::Text;
        const bool declaration =
            m_buf.size() > 5 && m_buf.compare(0, 5, "<?xml") == 0 && (is_space(m_buf[5]) || m_buf[5] == '?');
        if (!declaration) {
          fail("processing instruction (RFC 6120 §11.1)", out);
          return;
        }
        emit(ScanKind::Declaration, out);
        return;
      }
      m_prev = c;
      return;
    case Where::Bang:
      if (c != kCData[m_bang]) {
        fail("comment or document type declaration (RFC 6120 §11.1)", out);
        return;
      }
      if (++m_bang == kCData.size()) {
        m_brackets = 0;
        m_where = Where::CData;
      }
      return;
    case Where::CData:
    case Where::Text:
    case Where::Failed:
      return;
  }
}

std::string_view StanzaScanner::tag_name() const {
  return std::string_view(m_buf).substr(m_name_start, m_name_len);
}

// Between stanzas the name decides what the piece is: a stream (re)start, the stream's end,
// or a stanza.
void StanzaScanner::name_done(ScanResult& out) {
  if (m_name_len == 0) {
    fail("malformed tag", out);
    return;
  }
  if (m_level > 0) {
    return;
  }
  const bool stream = m_name_is_stream && m_name_len == kStreamName.size();
  if (m_end_tag) {
    if (!stream || m_stream != Stream::Open) {
      fail("end tag outside any element", out);
      return;
    }
    m_piece = Piece::EndOfStream;
  } else if (stream) {
    m_piece = Piece::Header;
  } else if (m_stream != Stream::Open) {
    fail("a stanza outside the stream", out);
    return;
  } else {
    m_piece = Piece::Stanza;
  }
  if (m_piece != Piece::Stanza && (m_size > m_limits.header_bytes || m_skip != StanzaLimit::None)) {
    fail("stream header longer than " + std::to_string(m_limits.header_bytes) + " bytes", out);
  } else if (m_piece == Piece::Stanza && m_size > m_limits.stanza_bytes && m_skip == StanzaLimit::None) {
    skip_from_here(StanzaLimit::Size);
  }
}

void StanzaScanner::tag_done(ScanResult& out) {
  if (m_end_tag) {
    end_tag_done(out);
  } else {
    start_tag_done(m_prev == '/', out);
  }
}

void StanzaScanner::start_tag_done(bool empty, ScanResult& out) {
  if (m_level == 0) {
    if (m_piece == Piece::Header) {
      if (empty) {
        fail("an empty stream header", out);
        return;
      }
      m_stream = Stream::Open;
      emit(ScanKind::StreamHeader, out);
      return;
    }
    if (empty) {
      stanza_done(out);
      return;
    }
    m_level = 1;
    if (m_skip == StanzaLimit::None) {
      m_names.emplace_back(m_name_start, m_name_len);
    }
    return;
  }
  if (m_level + 1 > m_limits.depth && m_skip == StanzaLimit::None) {
    skip_from_here(StanzaLimit::Depth);
  }
  if (!empty) {
    ++m_level;
    if (m_skip == StanzaLimit::None) {
      m_names.emplace_back(m_name_start, m_name_len);
    }
  }
}

void StanzaScanner::end_tag_done(ScanResult& out) {
  if (m_level == 0) {
    m_stream = Stream::Ended;
    emit(ScanKind::StreamEnd, out);
    return;
  }
  if (m_skip == StanzaLimit::None) {
    const auto [offset, length] = m_names.back();
    if (std::string_view(m_buf).substr(offset, length) != tag_name()) {
      fail("mismatched end tag", out);
      return;
    }
    m_names.pop_back();
  }
  if (--m_level == 0) {
    stanza_done(out);
  }
}

// The stanza's last '>': passed on whole, or reported as dropped with the bytes skipped.
void StanzaScanner::stanza_done(ScanResult& out) {
  if (m_skip == StanzaLimit::None) {
    emit(ScanKind::Stanza, out);
    return;
  }
  out.events.push_back(ScanEvent{ScanKind::Dropped, out.pass.size(), static_cast<std::size_t>(m_size), m_skip, {}});
  m_skip = StanzaLimit::None;
  m_piece = Piece::None;
  m_size = 0;
}

// Counts every byte of the current piece and keeps it unless the piece is being skipped.
void StanzaScanner::take(std::string_view bytes, ScanResult& out) {
  m_size += bytes.size();
  if (m_skip != StanzaLimit::None) {
    return;
  }
  const bool header = m_piece == Piece::Header || m_piece == Piece::Declaration || m_piece == Piece::EndOfStream;
  // Until its name is read, a piece at the top level may still become either.
  const std::size_t limit = header                     ? m_limits.header_bytes
                            : m_piece == Piece::Stanza ? m_limits.stanza_bytes
                                                       : std::max(m_limits.header_bytes, m_limits.stanza_bytes);
  if (m_size <= limit) {
    m_buf.append(bytes);
  } else if (header) {
    fail("stream header longer than " + std::to_string(m_limits.header_bytes) + " bytes", out);
  } else {
    skip_from_here(StanzaLimit::Size);
  }
}

void StanzaScanner::skip_from_here(StanzaLimit limit) {
  m_skip = limit;
  m_piece = Piece::Stanza;
  m_names.clear();
  std::string().swap(m_buf);
}

void StanzaScanner::emit(ScanKind kind, ScanResult& out) {
  out.events.push_back(ScanEvent{kind, out.pass.size(), m_buf.size(), StanzaLimit::None, {}});
  out.pass.append(m_buf);
  m_buf.clear();
  if (m_buf.capacity() > kKeptCapacity) {
    std::string().swap(m_buf);
  }
  m_names.clear();
  m_piece = Piece::None;
  m_size = 0;
}

void StanzaScanner::fail(std::string why, ScanResult& out) {
  m_where = Where::Failed;
  out.events.push_back(ScanEvent{ScanKind::ProtocolError, out.pass.size(), 0, StanzaLimit::None, std::move(why)});
  std::string().swap(m_buf);
  m_names.clear();
}

}  // namespace mpotr::transport
