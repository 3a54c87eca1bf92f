// SPDX-License-Identifier: MIT
#include "mpotr/otp/pad_state.h"

#include <algorithm>
#include <limits>

#include "mpotr/crypto/crypto.h"

namespace mpotr::otp {
namespace {

Error inconsistent(const std::string& why) { return make_error(ErrorCode::Storage, "pad state inconsistent: " + why); }

// The next n bytes from ptr in our direction (A upward from 0, B downward from the end); ptr
// moves past them. Callers have checked that n bytes are there.
Range advance(std::uint64_t& ptr, std::uint64_t n, Role me) {
  if (me == Role::A) {
    ptr += n;
    return {ptr - n, ptr};
  }
  ptr -= n;
  return {ptr, ptr + n};
}

}  // namespace

Result<PadState> initial_state(const PadId& id, Role me, std::uint64_t size, std::uint64_t fence) {
  if (size < kMinPadSize || size > kMaxPadSize) return make_error(ErrorCode::InvalidArgument, "pad size out of range");
  if (fence == 0 || fence >= size) return make_error(ErrorCode::InvalidArgument, "fence outside the pad");
  PadState s;
  s.pad_id = id;
  s.me = me;
  s.size = size;
  s.fence = fence;
  s.send_ptr = s.reserve_ptr = (me == Role::A) ? 0 : size;
  return s;
}

Range half_of(const PadState& s, Role r) noexcept { return r == Role::A ? Range{0, s.fence} : Range{s.fence, s.size}; }

std::uint64_t unreserved_bytes(const PadState& s) noexcept {
  return s.me == Role::A ? s.fence - s.reserve_ptr : s.reserve_ptr - s.fence;
}
std::uint64_t reserved_bytes(const PadState& s) noexcept {
  return s.me == Role::A ? s.reserve_ptr - s.send_ptr : s.send_ptr - s.reserve_ptr;
}

Result<void> check_consistent(const PadState& s) {
  if (s.size < kMinPadSize || s.size > kMaxPadSize) return inconsistent("size out of range");
  if (s.fence == 0 || s.fence >= s.size) return inconsistent("fence outside the pad");
  if (s.me != Role::A && s.me != Role::B) return inconsistent("bad role");
  if (s.phase != SendPhase::Healthy && s.phase != SendPhase::Exhausted && s.phase != SendPhase::Halted)
    return inconsistent("bad phase");
  if (s.me == Role::A) {
    if (!(s.send_ptr <= s.reserve_ptr && s.reserve_ptr <= s.fence)) return inconsistent("send pointers outside A's half");
  } else {
    if (!(s.fence <= s.reserve_ptr && s.reserve_ptr <= s.send_ptr && s.send_ptr <= s.size))
      return inconsistent("send pointers outside B's half");
  }
  if (s.next_seq == 0 || s.next_seq > s.seq_reserved) return inconsistent("sequence counters out of order");
  if (s.received.size() > kMaxReceivedRanges) return inconsistent("too many received ranges");
  const Range peer = half_of(s, other(s.me));
  for (std::size_t i = 0; i < s.received.size(); ++i) {
    const Range& r = s.received[i];
    if (r.begin >= r.end || r.begin < peer.begin || r.end > peer.end) return inconsistent("received range outside the peer's half");
    // Strictly after the previous one: adjacent ranges are always merged.
    if (i > 0 && r.begin <= s.received[i - 1].end) return inconsistent("received ranges overlap or are not merged");
  }
  return {};
}

std::vector<Range> gaps(const PadState& s) {
  std::vector<Range> out;
  if (s.received.empty()) return out;
  const Range peer = half_of(s, other(s.me));
  if (other(s.me) == Role::A) {
    // A sends upward from 0: holes below the highest consumed byte.
    std::uint64_t cursor = peer.begin;
    for (const auto& r : s.received) {
      if (r.begin > cursor) out.push_back({cursor, r.begin});
      cursor = r.end;
    }
  } else {
    // B sends downward from the end: holes above the lowest consumed byte.
    std::uint64_t cursor = peer.end;
    for (auto it = s.received.rbegin(); it != s.received.rend(); ++it) {
      if (it->end < cursor) out.push_back({it->end, cursor});
      cursor = it->begin;
    }
    std::reverse(out.begin(), out.end());
  }
  return out;
}

Result<Reservation> reserve_block(const PadState& s, std::uint64_t want) {
  if (s.phase == SendPhase::Halted) return make_error(ErrorCode::InvalidState, "pad halted after an inconsistency: sending disabled");
  if (want == 0 || want > kMaxReserveBlock) return make_error(ErrorCode::InvalidArgument, "reservation size out of range");
  const std::uint64_t avail = unreserved_bytes(s);
  if (avail == 0) return make_error(ErrorCode::LimitExceeded, "pad exhausted: no bytes left in our half");
  const std::uint64_t n = std::min(want, avail);
  Reservation r{s, {}};
  r.block = advance(r.state.reserve_ptr, n, s.me);
  // Enough sequence numbers for the most messages this block could carry (cumulatively, see
  // spec/otp.md O-12), so seq never repeats after a restart either.
  const std::uint64_t more = n / kMinPadCost + 1;
  if (s.seq_reserved > std::numeric_limits<std::uint64_t>::max() - more)
    return make_error(ErrorCode::LimitExceeded, "sequence numbers exhausted");
  r.state.seq_reserved += more;
  r.state.generation += 1;
  return r;
}

Result<Taken> take(const PadState& s, std::uint64_t len) {
  if (s.phase == SendPhase::Halted) return make_error(ErrorCode::InvalidState, "pad halted after an inconsistency: sending disabled");
  if (len == 0) return make_error(ErrorCode::InvalidArgument, "empty region");
  if (reserved_bytes(s) < len) return make_error(ErrorCode::InvalidState, "not enough reserved pad: reserve a block first");
  if (s.next_seq >= s.seq_reserved) return make_error(ErrorCode::InvalidState, "no reserved sequence number");
  Taken t{s, {}, s.next_seq};
  t.region = advance(t.state.send_ptr, len, s.me);
  t.state.next_seq += 1;
  return t;
}

Result<void> check_acceptable(const PadState& s, Range region) {
  const Range peer = half_of(s, other(s.me));
  if (region.begin >= region.end || region.begin < peer.begin || region.end > peer.end)
    return make_error(ErrorCode::DecodeBadValue, "region outside the sender's half of the pad");
  // First consumed range ending after region.begin: the only candidates for overlap start here.
  auto it = std::upper_bound(s.received.begin(), s.received.end(), region.begin,
                             [](std::uint64_t v, const Range& r) { return v < r.end; });
  if (it != s.received.end() && it->begin < region.end) {
    if (it->begin <= region.begin && region.end <= it->end)
      return make_error(ErrorCode::Duplicate, "pad region already consumed (replayed packet)");
    return make_error(ErrorCode::Replay, "pad region overlaps a consumed region");
  }
  return {};
}

Result<PadState> accept(const PadState& s, Range region, std::uint64_t seq) {
  MPOTR_CHECK(check_acceptable(s, region));
  PadState n = s;
  auto it = std::lower_bound(n.received.begin(), n.received.end(), region.begin,
                             [](const Range& r, std::uint64_t v) { return r.begin < v; });
  it = n.received.insert(it, region);
  // Merge with adjacent neighbours (never overlapping: checked above).
  auto idx = static_cast<std::size_t>(it - n.received.begin());
  if (idx + 1 < n.received.size() && n.received[idx].end == n.received[idx + 1].begin) {
    n.received[idx].end = n.received[idx + 1].end;
    n.received.erase(n.received.begin() + static_cast<std::ptrdiff_t>(idx) + 1);
  }
  if (idx > 0 && n.received[idx - 1].end == n.received[idx].begin) {
    n.received[idx - 1].end = n.received[idx].end;
    n.received.erase(n.received.begin() + static_cast<std::ptrdiff_t>(idx));
  }
  if (n.received.size() > kMaxReceivedRanges)
    return make_error(ErrorCode::LimitExceeded, "too many disjoint received regions (kMaxReceivedRanges)");
  n.peer_max_seq = std::max(n.peer_max_seq, seq);
  n.generation += 1;
  return n;
}

PadState halted(const PadState& s) {
  PadState n = s;
  n.phase = SendPhase::Halted;
  return n;
}

// ---- snapshot encoding ----
namespace {
constexpr std::uint8_t kStateMagic[4] = {'O', 'T', 'P', 'S'};
constexpr std::uint8_t kStateVersion = 1;
constexpr std::size_t kStateHashSize = 32;

void put_u64(Bytes& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}
std::array<std::uint8_t, kStateHashSize> state_hash(ByteView v) { return crypto::blake2b<kStateHashSize>(v); }
constexpr std::size_t kStateFixed = 4 + 1 + kPadIdSize + 1 + 8 + 8 + 8 + 1 + 8 + 8 + 8 + 4;
}  // namespace

Bytes encode_state(const PadState& s) {
  Bytes out(std::begin(kStateMagic), std::end(kStateMagic));
  out.push_back(kStateVersion);
  append(out, view(s.pad_id));
  out.push_back(static_cast<std::uint8_t>(s.me));
  put_u64(out, s.size);
  put_u64(out, s.fence);
  put_u64(out, s.generation);
  out.push_back(static_cast<std::uint8_t>(s.phase));
  put_u64(out, s.reserve_ptr);
  put_u64(out, s.seq_reserved);
  put_u64(out, s.peer_max_seq);
  const auto n = static_cast<std::uint32_t>(s.received.size());
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  for (const auto& r : s.received) {
    put_u64(out, r.begin);
    put_u64(out, r.end);
  }
  append(out, view(state_hash(view(out))));
  return out;
}

Result<PadState> decode_state(ByteView d) {
  if (d.size() < kStateFixed + kStateHashSize) return inconsistent("state file truncated");
  const auto body = d.first(d.size() - kStateHashSize);
  if (!ct_equal(view(state_hash(body)), d.last(kStateHashSize))) return inconsistent("state checksum mismatch");
  if (!std::equal(std::begin(kStateMagic), std::end(kStateMagic), d.begin())) return inconsistent("not a pad state file");
  if (d[4] != kStateVersion) return inconsistent("unsupported state version");
  PadState s;
  const std::uint8_t* p = d.data() + 5;
  std::copy(p, p + kPadIdSize, s.pad_id.begin());
  p += kPadIdSize;
  if (*p > 1) return inconsistent("bad role");
  s.me = static_cast<Role>(*p++);
  s.size = get_u64(p), p += 8;
  s.fence = get_u64(p), p += 8;
  s.generation = get_u64(p), p += 8;
  if (*p > 2) return inconsistent("bad phase");
  s.phase = static_cast<SendPhase>(*p++);
  s.reserve_ptr = s.send_ptr = get_u64(p), p += 8;
  s.seq_reserved = s.next_seq = get_u64(p), p += 8;
  s.peer_max_seq = get_u64(p), p += 8;
  const std::uint32_t n = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
  p += 4;
  if (n > kMaxReceivedRanges) return inconsistent("too many received ranges");
  if (body.size() != kStateFixed + std::size_t{n} * 16) return inconsistent("state file length");
  for (std::uint32_t i = 0; i < n; ++i) {
    s.received.push_back({get_u64(p), get_u64(p + 8)});
    p += 16;
  }
  MPOTR_CHECK(check_consistent(s));
  return s;
}

}  // namespace mpotr::otp
