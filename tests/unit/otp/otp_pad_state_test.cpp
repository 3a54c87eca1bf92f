// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include "mpotr/otp/pad_state.h"

using namespace mpotr;
using namespace mpotr::otp;

namespace {
PadState fresh(Role me, std::uint64_t size = 10000) { return initial_state(PadId{}, me, size, size / 2).value(); }
bool overlaps(Range a, Range b) { return a.begin < b.end && b.begin < a.end; }
}  // namespace

TEST_CASE("otp both directions exhaust their halves without overlap", "[otp][state]") {
  PadState a = fresh(Role::A), b = fresh(Role::B);
  std::vector<Range> used_a, used_b;
  for (PadState* s : {&a, &b}) {
    auto& used = s == &a ? used_a : used_b;
    std::uint64_t seq = 0;
    for (;;) {
      auto r = reserve_block(*s, 700);
      if (!r.ok()) {
        CHECK(r.error().code == ErrorCode::LimitExceeded);
        break;
      }
      *s = r->state;
      while (reserved_bytes(*s) >= 45) {
        auto t = take(*s, 45);
        REQUIRE(t.ok());
        CHECK(t->seq > seq);  // strictly increasing
        seq = t->seq;
        used.push_back(t->region);
        *s = t->state;
      }
      REQUIRE(check_consistent(*s).ok());
    }
    CHECK(unreserved_bytes(*s) == 0);
  }
  for (auto x : used_a) {
    CHECK(x.end <= 5000);
    for (auto y : used_b) REQUIRE_FALSE(overlaps(x, y));
  }
  for (auto y : used_b) CHECK(y.begin >= 5000);
  CHECK(used_a.front() == Range{0, 45});
  CHECK(used_b.front() == Range{10000 - 45, 10000});
}

TEST_CASE("otp take needs a reservation and a halted pad never sends", "[otp][state]") {
  PadState a = fresh(Role::A);
  CHECK(take(a, 10).error().code == ErrorCode::InvalidState);
  CHECK(reserve_block(a, 0).error().code == ErrorCode::InvalidArgument);
  CHECK(reserve_block(a, kMaxReserveBlock + 1).error().code == ErrorCode::InvalidArgument);
  a = reserve_block(a, 100).value().state;
  CHECK(take(a, 101).error().code == ErrorCode::InvalidState);
  const PadState h = halted(a);
  CHECK(take(h, 10).error().code == ErrorCode::InvalidState);
  CHECK(reserve_block(h, 10).error().code == ErrorCode::InvalidState);
}

TEST_CASE("otp accept refuses replays and overlaps and leaves the state unchanged", "[otp][state]") {
  PadState b = fresh(Role::B);  // receives A's half [0, 5000)
  b = accept(b, {0, 50}, 1).value();
  b = accept(b, {100, 150}, 3).value();
  const PadState before = b;
  CHECK(accept(b, {0, 50}, 1).error().code == ErrorCode::Duplicate);
  CHECK(accept(b, {10, 20}, 1).error().code == ErrorCode::Duplicate);
  CHECK(accept(b, {40, 60}, 2).error().code == ErrorCode::Replay);
  CHECK(accept(b, {90, 101}, 2).error().code == ErrorCode::Replay);
  CHECK(accept(b, {4990, 5001}, 9).error().code == ErrorCode::DecodeBadValue);  // crosses the fence
  CHECK(accept(b, {6000, 6100}, 9).error().code == ErrorCode::DecodeBadValue);  // our own half
  CHECK(accept(b, {7, 7}, 9).error().code == ErrorCode::DecodeBadValue);
  CHECK(b == before);
  REQUIRE(gaps(b) == std::vector<Range>{{50, 100}});
  b = accept(b, {50, 100}, 2).value();  // late arrival fills the gap, ranges merge
  CHECK(b.received == std::vector<Range>{{0, 150}});
  CHECK(gaps(b).empty());
  CHECK(b.peer_max_seq == 3);
  CHECK(b.generation == before.generation + 1);

  PadState a = fresh(Role::A);  // receives B's half [5000, 10000), from the top
  a = accept(a, {9900, 10000}, 1).value();
  a = accept(a, {9700, 9800}, 3).value();
  CHECK(gaps(a) == std::vector<Range>{{9800, 9900}});
}

TEST_CASE("otp received ranges are bounded", "[otp][state]") {
  PadState b = initial_state(PadId{}, Role::B, 1u << 20, 1u << 19).value();
  for (std::uint64_t i = 0; i < kMaxReceivedRanges; ++i) b = accept(b, {i * 2, i * 2 + 1}, i).value();
  CHECK(accept(b, {kMaxReceivedRanges * 2, kMaxReceivedRanges * 2 + 1}, 1).error().code == ErrorCode::LimitExceeded);
  CHECK(accept(b, {1, 2}, 1).ok());  // filling a gap merges, so it still fits
}

TEST_CASE("otp state snapshot round trips and rejects corruption", "[otp][state]") {
  PadState a = fresh(Role::A);
  a = reserve_block(a, 1000).value().state;
  a = take(a, 45).value().state;
  a = accept(a, {9000, 9100}, 4).value();
  const Bytes enc = encode_state(a);
  auto back = decode_state(view(enc));
  REQUIRE(back.ok());
  // After a restart the unused rest of the reservation is burnt and seq continues above it.
  CHECK(back->send_ptr == a.reserve_ptr);
  CHECK(back->next_seq == a.seq_reserved);
  CHECK(back->received == a.received);
  CHECK(back->generation == a.generation);
  for (std::size_t i = 0; i < enc.size(); ++i) {
    Bytes t = enc;
    t[i] ^= 0x04;
    INFO("byte " << i);
    CHECK(decode_state(view(t)).error().code == ErrorCode::Storage);
  }
  CHECK(decode_state(ByteView(enc).first(enc.size() - 1)).error().code == ErrorCode::Storage);
  PadState bad = a;
  bad.send_ptr = a.reserve_ptr + 1;  // pointer ahead of its reservation
  CHECK(check_consistent(bad).error().code == ErrorCode::Storage);
  bad = a;
  bad.received = {{9000, 9100}, {9050, 9200}};
  CHECK(check_consistent(bad).error().code == ErrorCode::Storage);
  bad = a;
  bad.reserve_ptr = 6000;  // into B's half
  CHECK_FALSE(decode_state(view(encode_state(bad))).ok());
}

TEST_CASE("otp initial state validates size and fence", "[otp][state]") {
  CHECK(initial_state(PadId{}, Role::A, kMinPadSize - 1, 100).error().code == ErrorCode::InvalidArgument);
  CHECK(initial_state(PadId{}, Role::A, 10000, 0).error().code == ErrorCode::InvalidArgument);
  CHECK(initial_state(PadId{}, Role::A, 10000, 10000).error().code == ErrorCode::InvalidArgument);
}
