// SPDX-License-Identifier: MIT
// mpotr-bench-otp: what one-time-pad messages cost on this machine, with real files and real
// durability (fdatasync before any pad byte is released): package (alice's store) and
// unpackage (bob's store) per message, for each reservation block size (1 message per durable
// write, up to kDefaultReserveBlock), and the pad bytes each message consumes.
//
//   mpotr-bench-otp [--report=bench-report.json] [--readme=README.md] [--messages=N] [--dir=PATH]
// --report merges an "otp" section into that JSON file; --readme replaces the table between
// <!-- bench-otp-table --> markers. The pads live in a temp dir under --dir (default $TMPDIR),
// which should be on the disk the device would use: fdatasync cost is the point.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../bench_output.h"

#include "mpotr/otp/pad_store.h"
#include "mpotr/rng.h"

using namespace mpotr;
using namespace mpotr::otp;

namespace {

constexpr double kGoalDurableMessagesPerSecond = 5000;  // issue 5: batched, never-reuse kept

struct Row {
  std::size_t message_len = 0;
  std::uint64_t reserve_block = 0;
  std::size_t messages = 0;
  double package_us = 0;    // per message, including the amortized durable reservation
  double unpackage_us = 0;  // per message: verify, durable record, destroy
  double pad_bytes = 0;     // per message
  double messages_per_second = 0;
};

[[noreturn]] void die(const std::string& what) {
  std::cerr << "mpotr-bench-otp: " << what << '\n';
  std::exit(1);
}

template <class T>
T must(Result<T> r, const char* what) {
  if (!r.ok()) die(std::string(what) + ": " + r.error().detail);
  return std::move(r).value();
}

Row measure(const std::string& base, std::size_t message_len, std::uint64_t block, std::size_t messages) {
  const std::string dir = base + "/run-" + std::to_string(message_len) + "-" + std::to_string(block);
  std::filesystem::create_directories(dir + "/a");
  std::filesystem::create_directories(dir + "/b");
  std::filesystem::permissions(dir + "/a", std::filesystem::perms::owner_all);
  std::filesystem::permissions(dir + "/b", std::filesystem::perms::owner_all);
  SystemRng rng;
  RngByteSource source(rng);
  const std::uint64_t pad_size = (message_len + 256) * messages * 2 + 4 * kMaxReserveBlock;
  const GeneratedPad pad = must(generate_pad(dir + "/a", "alice@localhost", dir + "/b", "bob@localhost", pad_size, source),
                                "generate_pad");
  auto alice = must(PadStore::open(dir + "/a", pad.pad_id), "open alice");
  auto bob = must(PadStore::open(dir + "/b", pad.pad_id), "open bob");
  if (auto r = alice->set_reserve_block(block); !r.ok()) die("reserve block: " + r.error().detail);

  OutgoingMessage msg;
  msg.type = MessageType::Chat;
  msg.body = Bytes(message_len, 0x41);
  std::vector<Bytes> packets;
  packets.reserve(messages);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < messages; ++i) {
    packets.push_back(must(alice->send_package(msg), "send_package").packet);
  }
  const auto t1 = std::chrono::steady_clock::now();
  for (const auto& p : packets) {
    (void)must(bob->receive_unpackage(view(p)), "receive_unpackage");
  }
  const auto t2 = std::chrono::steady_clock::now();

  Row row;
  row.message_len = message_len;
  row.reserve_block = block;
  row.messages = messages;
  const double send_s = std::chrono::duration<double>(t1 - t0).count();
  row.package_us = send_s * 1e6 / static_cast<double>(messages);
  row.unpackage_us = std::chrono::duration<double>(t2 - t1).count() * 1e6 / static_cast<double>(messages);
  row.messages_per_second = static_cast<double>(messages) / send_s;
  // Pad consumed by the receiver is exact per packet; the sender's block may be partly unused.
  row.pad_bytes = static_cast<double>(bob->status().peer_consumed) / static_cast<double>(messages);
  alice.reset();
  bob.reset();
  std::filesystem::remove_all(dir);
  return row;
}

std::string table(const std::vector<Row>& rows) {
  std::ostringstream t;
  t << "| message | durable write every | package | unpackage | durable sends/s | pad bytes per message |\n";
  t << "|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    char line[256];
    std::snprintf(line, sizeof line, "| %zu B | %s | %.1f µs | %.1f µs | %.0f | %.0f |\n", r.message_len,
                  r.reserve_block <= r.message_len + 128 ? "message" : (std::to_string(r.reserve_block / 1024) + " KiB").c_str(),
                  r.package_us, r.unpackage_us, r.messages_per_second, r.pad_bytes);
    t << line;
  }
  return t.str();
}


}  // namespace

int main(int argc, char** argv) {
  std::string report_path = "bench-report.json";
  std::string readme_path;
  std::string base_dir = std::filesystem::temp_directory_path().string();
  std::size_t messages = 2000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--report=", 0) == 0) {
      report_path = a.substr(9);
    } else if (a.rfind("--readme=", 0) == 0) {
      readme_path = a.substr(9);
    } else if (a.rfind("--messages=", 0) == 0) {
      messages = static_cast<std::size_t>(std::strtoul(a.c_str() + 11, nullptr, 10));
    } else if (a.rfind("--dir=", 0) == 0) {
      base_dir = a.substr(6);
    } else {
      std::cerr << "usage: mpotr-bench-otp [--report=PATH] [--readme=README.md] [--messages=N] [--dir=PATH]\n";
      return 2;
    }
  }
  if (messages < 10 || messages > 1'000'000) die("--messages must be 10..1000000");
  std::string tmpl = base_dir + "/mpotr-bench-otp-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) die("cannot make a temp dir under " + base_dir);
  const std::string base = tmpl;

  std::vector<Row> rows;
  for (std::size_t len : {std::size_t{100}, std::size_t{1000}}) {
    // One durable write per message (block = one message's cost), then the batched default.
    rows.push_back(measure(base, len, len + 128, std::min<std::size_t>(messages, 500)));
    rows.push_back(measure(base, len, kDefaultReserveBlock, messages));
  }
  std::filesystem::remove_all(base);

  const std::string t = table(rows);
  std::cout << t;
  bool met = true;
  for (const auto& r : rows) {
    if (r.reserve_block == kDefaultReserveBlock && r.message_len == 100) {
      met = r.messages_per_second >= kGoalDurableMessagesPerSecond;
      std::cout << "goal: >= " << kGoalDurableMessagesPerSecond << " durable 100-byte sends/s batched: "
                << (met ? "met" : "NOT met") << " (" << static_cast<long>(r.messages_per_second) << "/s)\n";
    }
  }

  nlohmann::json j;
  j["goal_durable_sends_per_second"] = kGoalDurableMessagesPerSecond;
  j["goal_met"] = met;
  for (const auto& r : rows) {
    j["rows"].push_back({{"message_bytes", r.message_len},
                         {"reserve_block_bytes", r.reserve_block},
                         {"messages", r.messages},
                         {"package_us", r.package_us},
                         {"unpackage_us", r.unpackage_us},
                         {"durable_sends_per_second", r.messages_per_second},
                         {"pad_bytes_per_message", r.pad_bytes}});
  }
  if (!mpotr::bench::merge_report_section(report_path, "otp", j)) die("cannot write " + report_path);
  std::cout << "report written to " << report_path << '\n';
  if (!readme_path.empty()) {
    if (!mpotr::bench::replace_between_markers(readme_path, "bench-otp-table", t)) die("no <!-- bench-otp-table --> markers in " + readme_path);
    std::cout << "table written to " << readme_path << '\n';
  }
  return 0;  // the figures and the verdict are the output; a slow disk is not a test failure
}
