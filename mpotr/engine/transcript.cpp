// SPDX-License-Identifier: MIT
#include "mpotr/engine/transcript.h"

#include <algorithm>

#include "mpotr/engine/key_schedule.h"

namespace mpotr::detail {

MemberTranscript::MemberTranscript(const Hash32& chain_start) : m_start(chain_start), m_chain{chain_start} {}

void MemberTranscript::append(const Hash32& id) {
  ++m_count;
  m_segments.push_back(Segment{m_count, m_count, id});
  if (m_chain.size() == m_count) {  // intact so far: the chain goes on
    m_chain.push_back(ks::chain_next(m_chain.back(), id));
  }
}

void MemberTranscript::skip_to(std::uint32_t last) {
  if (last <= m_count) {
    return;
  }
  if (!m_segments.empty() && !m_segments.back().id) {
    m_segments.back().last = last;  // extends the run that ends here
  } else {
    m_segments.push_back(Segment{m_count + 1, last, std::nullopt});
  }
  m_count = last;
}

const MemberTranscript::Segment* MemberTranscript::segment_of(std::uint32_t seq) const {
  if (seq == 0 || seq > m_count) {
    return nullptr;
  }
  auto it = std::upper_bound(m_segments.begin(), m_segments.end(), seq,
                             [](std::uint32_t s, const Segment& seg) { return s < seg.first; });
  return &*std::prev(it);
}

bool MemberTranscript::fill(std::uint32_t seq, const Hash32& id) {
  const Segment* found = segment_of(seq);
  if (found == nullptr || found->id) {
    return false;
  }
  const auto at = m_segments.begin() + (found - m_segments.data());
  const Segment run = *at;
  std::vector<Segment> parts;
  if (run.first < seq) {
    parts.push_back(Segment{run.first, seq - 1, std::nullopt});
  }
  parts.push_back(Segment{seq, seq, id});
  if (seq < run.last) {
    parts.push_back(Segment{seq + 1, run.last, std::nullopt});
  }
  const auto pos = m_segments.erase(at);
  m_segments.insert(pos, parts.begin(), parts.end());
  return true;
}

std::optional<Hash32> MemberTranscript::id_at(std::uint32_t seq) const {
  const Segment* s = segment_of(seq);
  return s != nullptr ? s->id : std::nullopt;
}

std::optional<Hash32> MemberTranscript::chain_at(std::uint32_t c) const {
  return c < m_chain.size() ? std::optional<Hash32>(m_chain[c]) : std::nullopt;
}

Hash32 MemberTranscript::closing_chain(std::uint32_t last) const {
  last = std::min(last, m_count);
  if (last < m_chain.size()) {
    return m_chain[last];  // intact up to there: the ordinary chain value
  }
  Hash32 t = m_chain.back();
  auto seg = m_segments.begin() + static_cast<std::ptrdiff_t>(m_chain.size() - 1);  // the first loss
  for (; seg != m_segments.end() && seg->first <= last; ++seg) {
    if (seg->id) {
      t = ks::chain_next(t, *seg->id);
    } else {
      t = ks::chain_lost(t, seg->first, std::min(seg->last, last));
    }
  }
  return t;
}

std::size_t MemberTranscript::lost_runs() const noexcept {
  return static_cast<std::size_t>(
      std::count_if(m_segments.begin(), m_segments.end(), [](const Segment& s) { return !s.id; }));
}

}  // namespace mpotr::detail
