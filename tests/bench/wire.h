// SPDX-License-Identifier: MIT
// Wire bytes per chat line: the encoded Data message Engine::send_text broadcasts, and its
// base64 form as it travels in an XMPP <body>. Sizes, not timings: computed once after the
// timed benchmarks.
#pragma once

#include <cstddef>
#include <vector>

namespace mpotr::bench {

// Goal: base64 wire ≤ 200 + 1.34 × text length.
inline constexpr double kWireFixedAllowance = 200.0;
inline constexpr double kWirePerByteAllowance = 1.34;
// The room size the goal applies to; the others are reported for information.
inline constexpr std::size_t kWireGoalMembers = 3;
inline const std::vector<std::size_t> kWireMembers = {3, 10, 20};
inline const std::vector<std::size_t> kWireTextSizes = {0, 1, 16, 64, 100, 140, 256, 512, 1000, 1024, 2048, 4096};
inline constexpr std::size_t kWireSweepMax = 4096;

struct WireRow {
  std::size_t members = 0;
  std::size_t text = 0;  // 0: an acknowledgement-only entry (Heartbeat), same layout, no text
  std::size_t wire = 0;  // encoded message bytes
  std::size_t base64 = 0;
  double goal = 0;       // allowed base64 bytes
  bool pass = false;
};

struct WireSweep {
  std::size_t members = 0;
  std::size_t from = 0, to = 0;    // text lengths checked, every one
  bool pass = false;
  double worst_margin = 0;         // max over lengths of base64 − goal (≤ 0 passes)
  std::size_t worst_text = 0;
  std::size_t max_overhead = 0;    // max over lengths of wire − text
  std::size_t min_overhead = 0;
};

struct WireReport {
  std::vector<WireRow> rows;
  WireSweep sweep;
};

inline std::size_t base64_size(std::size_t len) { return 4 * ((len + 2) / 3); }
inline double wire_goal(std::size_t text) { return kWireFixedAllowance + kWirePerByteAllowance * static_cast<double>(text); }

WireReport measure_wire();

}  // namespace mpotr::bench
