// SPDX-License-Identifier: MIT
// One member's entries as a receiver holds them (spec §5.11, §5.13, R-DATA-8): the entries that
// arrived, in sequence order, and runs of entries that never did. A run costs the same however
// long it is, so no number in a received message makes us store or hash more than O(1) for it.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "mpotr/bytes.h"

namespace mpotr::detail {

class MemberTranscript {
 public:
  MemberTranscript() = default;
  explicit MemberTranscript(const Hash32& chain_start);

  // Entries accounted for: 1..count() arrived or were declared lost.
  std::uint32_t count() const noexcept { return m_count; }
  // Entry count()+1 arrived (in order).
  void append(const Hash32& id);
  // Entries count()+1..last were declared lost. No-op when last ≤ count().
  void skip_to(std::uint32_t last);
  // Lost entry seq arrived after all. Returns false (nothing changed) unless seq was lost.
  bool fill(std::uint32_t seq, const Hash32& id);
  // Id of entry seq ≤ count(); nullopt while it is lost.
  std::optional<Hash32> id_at(std::uint32_t seq) const;
  // c_{m,c} (§5.11) while no loss precedes entry c, else nullopt: a loss breaks the chain for
  // the rest of the session, even if the entry arrives later.
  std::optional<Hash32> chain_at(std::uint32_t c) const;
  // The chain over entries 1..last (≤ count()) as §5.13 defines it for the transcript digest: an
  // entry steps chain_next, every maximal run of missing entries one chain_lost.
  Hash32 closing_chain(std::uint32_t last) const;
  // Entries 1..intact() arrived with no loss before them: what we can acknowledge (§5.12).
  std::uint32_t intact() const noexcept { return static_cast<std::uint32_t>(m_chain.size() - 1); }
  // Runs of lost entries held (bounded by the entries received plus one).
  std::size_t lost_runs() const noexcept;

  friend bool operator==(const MemberTranscript&, const MemberTranscript&) = default;

 private:
  // A received entry (first == last, id set) or a run of lost ones.
  struct Segment {
    std::uint32_t first = 0;
    std::uint32_t last = 0;
    std::optional<Hash32> id;
    friend bool operator==(const Segment&, const Segment&) = default;
  };
  const Segment* segment_of(std::uint32_t seq) const;

  Hash32 m_start{};
  std::vector<Segment> m_segments;  // in sequence order, covering 1..m_count
  std::vector<Hash32> m_chain;      // m_chain[c] = c_{m,c} for c up to the first loss
  std::uint32_t m_count = 0;
};

}  // namespace mpotr::detail
