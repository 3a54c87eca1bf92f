// SPDX-License-Identifier: MIT
#include "report.h"

#include <openssl/crypto.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench.h"

namespace mpotr::bench {

namespace {

constexpr double kSetupGoal = 1.33;  // setup CPU per member at n = 100, × floor
constexpr std::size_t kSetupGoalMembers = 100;
constexpr double kChatGoal = 1.25;   // send / receive, × floor

double micro(double s) { return s * 1e6; }
double milli(double s) { return s * 1e3; }

std::optional<double> seconds_of(const std::map<std::string, Measurement>& results, const std::string& name) {
  auto it = results.find(name);
  if (it == results.end() || !it->second.error.empty()) {
    return std::nullopt;
  }
  return it->second.seconds;
}

std::optional<double> sum(std::initializer_list<std::pair<double, std::optional<double>>> terms) {
  double total = 0;
  for (const auto& [count, value] : terms) {
    if (!value) {
      return std::nullopt;
    }
    total += count * *value;
  }
  return total;
}

void finish(Row& r) {
  if (r.measured && r.floor && *r.floor > 0) {
    r.ratio = *r.measured / *r.floor;
  }
  if (r.goal) {
    const std::optional<double>& v = r.goal_on == "ratio" ? r.ratio : r.measured;
    if (v) {
      r.pass = *v <= *r.goal + 1e-12;
    }
  }
}

// The per-member operation counts of one setup (spec §5; mpotr/engine/attempt.cpp):
//   Attempt::start      3 key generations (ephemeral DH key E, signing key S, El Gamal r)
//   on_offer, per peer  3 point decodes (peer A, E, S)
//   send_key_share      per peer 3 ECDH (triple DH: A·E', E·A', E·E') + 1 ECDH (El Gamal r·E'),
//                       then 1 signature
//   on_key_share        per peer 1 verify, 1 point decode (R), 1 ECDH (El Gamal E·R)
//   send_attest         1 signature
//   on_attest           per peer 1 verify
struct SetupCounts {
  double keygen, sign, verify, ecdh, decode;
};
SetupCounts expected_setup_counts(std::size_t n) {
  const double k = static_cast<double>(n - 1);
  return {3, 2, 2 * k, 5 * k, 4 * k};
}

struct Floors {
  std::optional<double> sign, verify, ecdh, keygen, decode;
};

Floors wrapper_floors(const std::map<std::string, Measurement>& r) {
  return {seconds_of(r, names::kSign), seconds_of(r, names::kVerify), seconds_of(r, names::kEcdh),
          seconds_of(r, names::kKeygen), seconds_of(r, names::kDecode)};
}

Floors raw_floors(const std::map<std::string, Measurement>& r) {
  return {seconds_of(r, names::kRawSign), seconds_of(r, names::kRawVerify), seconds_of(r, names::kRawEcdh),
          seconds_of(r, names::kRawKeygen), seconds_of(r, names::kRawDecode)};
}

std::optional<double> setup_floor(std::size_t n, const Floors& f) {
  const SetupCounts c = expected_setup_counts(n);
  return sum({{c.keygen, f.keygen}, {c.sign, f.sign}, {c.verify, f.verify}, {c.ecdh, f.ecdh}, {c.decode, f.decode}});
}

std::string fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string fmt_value(const std::optional<double>& v, const std::string& unit) {
  if (!v) {
    return "—";
  }
  if (unit == "B") {
    return fmt(*v, 0) + " B";
  }
  if (unit == "ms") {
    return fmt(*v, 3) + " ms";
  }
  return fmt(*v, 2) + " µs";
}

nlohmann::json opt(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

nlohmann::json ops_json(const OpCounts& c) {
  return {{"keygen", c.keygen()},          {"sign", c.sign},
          {"verify", c.verify},            {"ecdh", c.ecdh},
          {"point_decode", c.decode},      {"fixed_base_mul", c.fixed_base_mul},
          {"variable_base_mul", c.other_mul}, {"sign_reproducible", c.sign_reproducible},
          {"sha256_oneshot", c.sha_oneshot}, {"sha256_init", c.sha_init},
          {"sha256_bytes", c.sha_bytes},   {"aes_init", c.aes_init},
          {"aes_bytes", c.aes_bytes},      {"evp_md_ctx_new", c.md_ctx_new},
          {"evp_cipher_ctx_new", c.cipher_ctx_new}, {"bn_ctx_secure_new", c.bn_ctx_secure_new},
          {"evp_pkey_new", c.pkey_new},    {"evp_pkey_ctx_new", c.pkey_ctx_new}};
}

}  // namespace

// --- collecting ----------------------------------------------------------------------------

void CollectingReporter::ReportRuns(const std::vector<Run>& reports) {
  ConsoleReporter::ReportRuns(reports);
  for (const Run& run : reports) {
    const std::string name = run.run_name.function_name;
    if (run.error_occurred) {
      m_errors[name] = run.error_message.empty() ? "error" : run.error_message;
      continue;
    }
    const bool manual = run.run_name.time_type == "manual_time";
    const double in_unit = manual ? run.GetAdjustedRealTime() : run.GetAdjustedCPUTime();
    Measurement m;
    m.seconds = in_unit / benchmark::GetTimeUnitMultiplier(run.time_unit);
    m.iterations = run.iterations;
    if (run.run_type == Run::RT_Iteration) {
      m_runs[name].push_back(m);
    } else if (run.aggregate_name == "median" && run.aggregate_unit == benchmark::kTime) {
      m_medians[name] = m;
    }
  }
}

std::map<std::string, Measurement> CollectingReporter::results() const {
  std::map<std::string, Measurement> out;
  for (const auto& [name, runs] : m_runs) {
    Measurement m;
    for (const auto& r : runs) {
      m.seconds += r.seconds;
      m.iterations += r.iterations;
    }
    m.seconds /= static_cast<double>(runs.size());
    out[name] = m;
  }
  for (const auto& [name, m] : m_medians) {
    const std::int64_t iterations = out[name].iterations;
    out[name] = m;
    out[name].iterations = iterations;
  }
  for (const auto& [name, e] : m_errors) {
    out[name].error = e;
  }
  return out;
}

// --- rows ----------------------------------------------------------------------------------

std::vector<Row> build_rows(const std::map<std::string, Measurement>& results, const WireReport& wire) {
  std::vector<Row> rows;
  auto us = [&](const std::string& name) -> std::optional<double> {
    auto s = seconds_of(results, name);
    return s ? std::optional<double>(micro(*s)) : std::nullopt;
  };

  // Primitive floors: the engine's wrapper against the same operation straight on OpenSSL.
  struct Prim {
    const char* label;
    std::string wrapper, raw;
  };
  const std::vector<Prim> prims = {
      {"primitive: ECDSA P-256 sign", names::kSign, names::kRawSign},
      {"primitive: ECDSA P-256 sign, vector mode", names::kSignReproducible, names::kRawSign},
      {"primitive: ECDSA P-256 verify", names::kVerify, names::kRawVerify},
      {"primitive: ECDH P-256", names::kEcdh, names::kRawEcdh},
      {"primitive: keygen (d·G)", names::kKeygen, names::kRawKeygen},
      {"primitive: point decode", names::kDecode, names::kRawDecode},
      {"primitive: AES-128-CTR 100 B", names::aes(kSmallText), names::raw_aes(kSmallText)},
      {"primitive: AES-128-CTR 4 KiB", names::aes(kLargeText), names::raw_aes(kLargeText)},
      {"primitive: SHA-256 100 B", names::sha(kSmallText), names::raw_sha(kSmallText)},
      {"primitive: SHA-256 4 KiB", names::sha(kLargeText), names::raw_sha(kLargeText)},
  };
  for (const auto& p : prims) {
    Row r;
    r.name = p.label;
    r.unit = "us";
    r.measured = us(p.wrapper);
    r.floor = us(p.raw);
    r.extra["benchmark"] = p.wrapper;
    r.extra["floor_benchmark"] = p.raw;
    r.extra["floor_is"] = "the same operation called directly on OpenSSL";
    finish(r);
    rows.push_back(std::move(r));
  }

  // Setup CPU per member.
  const Floors wf = wrapper_floors(results);
  const Floors rf = raw_floors(results);
  for (std::size_t n : kSetupSizes) {
    Row r;
    r.name = "setup CPU per member, n=" + std::to_string(n);
    r.unit = "ms";
    auto m = seconds_of(results, names::setup(n));
    if (m) {
      r.measured = milli(*m);
    }
    if (auto f = setup_floor(n, wf)) {
      r.floor = milli(*f);
    }
    if (n == kSetupGoalMembers) {
      r.goal = kSetupGoal;
      r.goal_on = "ratio";
    }
    finish(r);
    const SetupCounts c = expected_setup_counts(n);
    r.extra["benchmark"] = names::setup(n);
    r.extra["expected_ops"] = {{"keygen", c.keygen}, {"sign", c.sign}, {"verify", c.verify},
                               {"ecdh", c.ecdh},     {"point_decode", c.decode}};
    if (auto it = setup_infos().find(n); it != setup_infos().end() && op_counts_available()) {
      r.extra["measured_ops"] = ops_json(it->second.ops);
    }
    if (auto f = setup_floor(n, rf); f && r.measured) {
      r.extra["floor_openssl"] = milli(*f);
      r.extra["ratio_openssl"] = *r.measured / milli(*f);
    }
    rows.push_back(std::move(r));
  }

  // Chat lines: send = sign + AES(text) + 2·SHA-256(message); receive = verify + AES + 2·SHA-256:
  // one pass for the signature's digest (also the entry's id), one for the group MAC (v2).
  for (const bool sending : {true, false}) {
    for (std::size_t len : {kSmallText, kLargeText}) {
      Row r;
      r.name = std::string(sending ? "send_text " : "receive ") + (len == kSmallText ? "100 B" : "4 KiB") +
               " (n=" + std::to_string(kChatMembers) + ")";
      r.unit = "us";
      const std::string bench = sending ? names::send(len) : names::receive(len);
      r.measured = us(bench);
      const std::size_t wire_len = data_wire_size(kChatMembers, len);
      auto pk = sending ? us(names::kSign) : us(names::kVerify);
      auto pk_raw = sending ? us(names::kRawSign) : us(names::kRawVerify);
      r.floor = sum({{1, pk}, {1, us(names::aes(len))}, {2, us(names::sha(wire_len))}});
      r.goal = kChatGoal;
      r.goal_on = "ratio";
      finish(r);
      r.extra["benchmark"] = bench;
      r.extra["message_bytes"] = wire_len;
      if (auto it = chat_ops().find(bench); it != chat_ops().end() && op_counts_available()) {
        r.extra["measured_ops"] = ops_json(it->second);
      }
      if (auto it = chat_wire_sizes().find(len); it != chat_wire_sizes().end()) {
        r.extra["message_bytes"] = it->second;
      }
      if (auto f = sum({{1, pk_raw}, {1, us(names::raw_aes(len))}, {2, us(names::sha(wire_len))}}); f && r.measured) {
        r.extra["floor_openssl"] = *f;
        r.extra["ratio_openssl"] = *r.measured / *f;
      }
      rows.push_back(std::move(r));
    }
  }

  // Wire bytes: base64 size of the Data message; floor = the text itself.
  for (const auto& w : wire.rows) {
    if (w.members != kWireGoalMembers ||
        (w.text != 0 && w.text != 1 && w.text != 100 && w.text != 1000 && w.text != 4096)) {
      continue;
    }
    Row r;
    r.name = "wire base64, n=" + std::to_string(w.members) + ", text " + std::to_string(w.text) + " B" +
             (w.text == 0 ? " (heartbeat)" : "");
    r.unit = "B";
    r.measured = static_cast<double>(w.base64);
    r.floor = static_cast<double>(w.text);
    r.goal = w.goal;
    r.goal_on = "measured";
    finish(r);
    r.extra["wire_bytes"] = w.wire;
    r.extra["overhead"] = w.wire - w.text;
    r.extra["base64_overhead"] = w.base64 - w.text;
    rows.push_back(std::move(r));
  }
  if (wire.sweep.members != 0) {
    const WireSweep& s = wire.sweep;
    Row r;
    r.name = "wire base64, n=" + std::to_string(s.members) + ", every text " + std::to_string(s.from) + ".." +
             std::to_string(s.to) + " B (worst: " + std::to_string(s.worst_text) + " B)";
    r.unit = "B";
    const double goal = wire_goal(s.worst_text);
    r.measured = goal + s.worst_margin;
    r.floor = static_cast<double>(s.worst_text);
    r.goal = goal;
    r.goal_on = "measured";
    finish(r);
    r.pass = s.pass;
    r.extra["worst_margin"] = s.worst_margin;
    r.extra["overhead_min"] = s.min_overhead;
    r.extra["overhead_max"] = s.max_overhead;
    rows.push_back(std::move(r));
  }
  return rows;
}

// --- output --------------------------------------------------------------------------------

void print_table(std::ostream& out, const std::vector<Row>& rows) {
  out << "\n## mpotr-bench goals\n\n";
  out << "| name | measured | floor | ratio | goal | pass/fail |\n";
  out << "|---|---:|---:|---:|---|---|\n";
  for (const Row& r : rows) {
    std::string goal = "—";
    if (r.goal) {
      goal = r.goal_on == "ratio" ? "ratio ≤ " + fmt(*r.goal, 2) : "≤ " + fmt_value(r.goal, r.unit);
    }
    std::string verdict = "info";
    if (r.goal) {
      verdict = !r.pass ? "n/a" : (*r.pass ? "pass" : "**FAIL**");
    }
    out << "| " << r.name << " | " << fmt_value(r.measured, r.unit) << " | " << fmt_value(r.floor, r.unit) << " | "
        << (r.ratio ? fmt(*r.ratio, 3) : "—") << " | " << goal << " | " << verdict << " |\n";
  }
  out << "\nPrimitive rows: floor = the same operation called directly on OpenSSL. Setup floor = 3·keygen + 2·sign +"
         " (n−1)·(5·ECDH + 2·verify + 4·point decode); send floor = sign + AES(text) + 2·SHA-256(message); receive"
         " floor = verify + AES(text) + 2·SHA-256(message); all from the mpotr::crypto rows. Times are thread CPU"
         " time. See tests/bench/README.md.\n";
}

void print_setup_ops(std::ostream& out) {
  if (setup_infos().empty()) {
    return;
  }
  out << "\n## setup: operations of one member (measured, expected in parentheses when different)\n\n";
  if (!op_counts_available()) {
    out << "(operation counting needs an ELF linker's --wrap; not available in this build)\n";
    return;
  }
  out << "| n | keygen | sign | verify | ECDH | point decode | SHA-256 inits | SHA-256 bytes | EVP_MD_CTX_new |"
         " EVP_PKEY built | EVP_PKEY_CTX new | payloads in | bytes in | room CPU (all members) |\n";
  out << "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& [n, info] : setup_infos()) {
    const SetupCounts e = expected_setup_counts(n);
    auto cell = [](std::uint64_t got, double want) {
      std::string s = std::to_string(got);
      if (static_cast<double>(got) != want) {
        s += " (" + fmt(want, 0) + ")";
      }
      return s;
    };
    const OpCounts& c = info.ops;
    out << "| " << n << " | " << cell(c.keygen(), e.keygen) << " | " << cell(c.sign, e.sign) << " | "
        << cell(c.verify, e.verify) << " | " << cell(c.ecdh, e.ecdh) << " | " << cell(c.decode, e.decode) << " | "
        << c.sha_init + c.sha_oneshot << " | " << c.sha_bytes << " | " << c.md_ctx_new << " | " << c.pkey_new
        << " | " << c.pkey_ctx_new << " | " << info.messages << " | " << info.bytes << " | " << fmt(info.room_cpu_seconds, 2) << " s |\n";
  }
}

namespace {

std::optional<double> part_floor(const SetupPart& p, const Floors& f) {
  return sum({{p.keygen, f.keygen}, {p.sign, f.sign}, {p.verify, f.verify}, {p.ecdh, f.ecdh}, {p.decode, f.decode}});
}

nlohmann::json parts_json(const SetupInfo& info, const Floors& f) {
  nlohmann::json parts = nlohmann::json::array();
  for (const auto& p : info.parts) {
    nlohmann::json j = {{"part", p.name},
                        {"calls", p.calls},
                        {"ms", milli(p.seconds)},
                        {"expected_ops",
                         {{"keygen", p.keygen}, {"sign", p.sign}, {"verify", p.verify}, {"ecdh", p.ecdh},
                          {"point_decode", p.decode}}}};
    if (auto fl = part_floor(p, f)) {
      j["floor_ms"] = milli(*fl);
    }
    if (op_counts_available()) {
      j["ops"] = ops_json(p.ops);
    }
    parts.push_back(std::move(j));
  }
  return parts;
}

}  // namespace

void print_setup_breakdown(std::ostream& out, const std::map<std::string, Measurement>& results) {
  if (setup_infos().empty()) {
    return;
  }
  const SetupInfo& info = setup_infos().rbegin()->second;
  const Floors f = wrapper_floors(results);
  double total = 0, total_floor = 0;
  for (const auto& p : info.parts) {
    total += p.seconds;
    total_floor += part_floor(p, f).value_or(0);
  }
  out << "\n## setup breakdown, n=" << info.n << ": member 0's engine calls by kind (best of 3 untimed replays,"
      << " " << fmt(milli(total), 3) << " ms in all; floor " << fmt(milli(total_floor), 3) << " ms)\n\n";
  out << "| part | calls | measured | floor | excess | share of excess | SHA-256 inits | SHA-256 bytes |"
         " EVP_MD_CTX_new | EVP_PKEY built | EVP_PKEY_CTX new |\n";
  out << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  const double excess_all = total - total_floor;
  for (const auto& p : info.parts) {
    const auto fl = part_floor(p, f);
    const double excess = p.seconds - fl.value_or(0);
    out << "| " << p.name << " | " << p.calls << " | " << fmt(milli(p.seconds), 3) << " ms | "
        << (fl ? fmt(milli(*fl), 3) + " ms" : "—") << " | " << fmt(milli(excess), 3) << " ms | "
        << (excess_all > 0 ? fmt(100 * excess / excess_all, 0) + " %" : "—") << " | "
        << p.ops.sha_init + p.ops.sha_oneshot << " | " << p.ops.sha_bytes << " | " << p.ops.md_ctx_new << " | "
        << p.ops.pkey_new << " | " << p.ops.pkey_ctx_new << " |\n";
  }
}

void print_chat_ops(std::ostream& out) {
  if (chat_ops().empty() || !op_counts_available()) {
    return;
  }
  out << "\n## chat: operations of one call\n\n";
  out << "| call | sign | verify | SHA-256 inits | SHA-256 bytes | AES bytes | EVP_MD_CTX_new | EVP_CIPHER_CTX_new |"
         " BN_CTX_secure_new | EVP_PKEY_CTX new |\n";
  out << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& [name, c] : chat_ops()) {
    out << "| " << name << " | " << c.sign << " | " << c.verify << " | " << c.sha_init + c.sha_oneshot << " | "
        << c.sha_bytes << " | " << c.aes_bytes << " | " << c.md_ctx_new << " | " << c.cipher_ctx_new << " | "
        << c.bn_ctx_secure_new << " | " << c.pkey_ctx_new << " |\n";
  }
}

void print_wire(std::ostream& out, const WireReport& wire) {
  out << "\n## wire bytes per chat line (Data message; base64 as in an XMPP body)\n\n";
  out << "| members | text | wire | overhead (wire − text) | base64 | base64 − text | goal (base64 ≤ 200 + 1.34·text) |\n";
  out << "|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& w : wire.rows) {
    out << "| " << w.members << " | " << w.text << (w.text == 0 ? " (heartbeat)" : "") << " | " << w.wire << " | "
        << w.wire - w.text << " | " << w.base64 << " | " << w.base64 - w.text << " | ≤ " << fmt(w.goal, 0) << " "
        << (w.members == kWireGoalMembers ? (w.pass ? "pass" : "**FAIL**") : (w.pass ? "(info: within)" : "(info: over)"))
        << " |\n";
  }
  if (wire.sweep.members != 0) {
    out << "\nEvery text length " << wire.sweep.from << ".." << wire.sweep.to << " at n=" << wire.sweep.members
        << ": overhead " << wire.sweep.min_overhead << ".." << wire.sweep.max_overhead << " B, worst base64 margin "
        << fmt(wire.sweep.worst_margin, 1) << " B at " << wire.sweep.worst_text << " B ("
        << (wire.sweep.pass ? "pass" : "FAIL") << ").\n";
  }
}

nlohmann::json machine_info() {
  nlohmann::json m;
  std::string model = "unknown";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      if (auto colon = line.find(':'); colon != std::string::npos) {
        model = line.substr(line.find_first_not_of(" \t", colon + 1));
      }
      break;
    }
  }
  m["cpu"] = model;
  m["cores"] = std::thread::hardware_concurrency();
  m["openssl"] = ::OpenSSL_version(OPENSSL_VERSION);
#if defined(MPOTR_BENCH_BUILD_TYPE)
  m["build_type"] = MPOTR_BENCH_BUILD_TYPE;
#endif
  m["clock"] = "thread CPU time (CLOCK_THREAD_CPUTIME_ID)";
  // What one manual timing costs (two clock reads), to judge the per-call timings.
  constexpr int kReads = 1000;
  const double t0 = thread_cpu_seconds();
  double sink = 0;
  for (int i = 0; i < kReads; ++i) {
    sink += thread_cpu_seconds();
  }
  const double t1 = thread_cpu_seconds();
  benchmark::DoNotOptimize(sink);
  m["clock_read_ns"] = (t1 - t0) / kReads * 1e9;
  return m;
}

nlohmann::json report_json(const std::vector<Row>& rows, const std::map<std::string, Measurement>& results,
                           const WireReport& wire) {
  nlohmann::json j;
  j["machine"] = machine_info();
  j["rows"] = nlohmann::json::array();
  for (const Row& r : rows) {
    nlohmann::json row = {{"name", r.name},
                          {"unit", r.unit},
                          {"measured", opt(r.measured)},
                          {"floor", opt(r.floor)},
                          {"ratio", opt(r.ratio)},
                          {"goal", opt(r.goal)},
                          {"goal_on", r.goal ? nlohmann::json(r.goal_on) : nlohmann::json(nullptr)},
                          {"pass", r.pass ? nlohmann::json(*r.pass) : nlohmann::json(nullptr)}};
    row.update(r.extra);
    j["rows"].push_back(std::move(row));
  }
  nlohmann::json bench = nlohmann::json::object();
  for (const auto& [name, m] : results) {
    bench[name] = {{"seconds", m.seconds}, {"iterations", m.iterations}};
    if (!m.error.empty()) {
      bench[name]["error"] = m.error;
    }
  }
  j["benchmarks"] = bench;
  nlohmann::json setup = nlohmann::json::array();
  for (const auto& [n, info] : setup_infos()) {
    setup.push_back({{"n", n},
                     {"ops", op_counts_available() ? ops_json(info.ops) : nlohmann::json(nullptr)},
                     {"payloads_in", info.messages},
                     {"bytes_in", info.bytes},
                     {"room_cpu_seconds", info.room_cpu_seconds},
                     {"parts", parts_json(info, wrapper_floors(results))}});
  }
  j["setup"] = setup;
  nlohmann::json chat = nlohmann::json::object();
  if (op_counts_available()) {
    for (const auto& [name, c] : chat_ops()) {
      chat[name] = ops_json(c);
    }
  }
  j["chat_ops"] = chat;
  nlohmann::json w;
  w["rows"] = nlohmann::json::array();
  for (const auto& r : wire.rows) {
    w["rows"].push_back({{"members", r.members},
                         {"text", r.text},
                         {"wire", r.wire},
                         {"overhead", r.wire - r.text},
                         {"base64", r.base64},
                         {"goal", r.goal},
                         {"within_goal", r.pass}});
  }
  w["sweep"] = {{"members", wire.sweep.members},     {"from", wire.sweep.from},
                {"to", wire.sweep.to},               {"pass", wire.sweep.pass},
                {"worst_margin", wire.sweep.worst_margin}, {"worst_text", wire.sweep.worst_text},
                {"overhead_min", wire.sweep.min_overhead}, {"overhead_max", wire.sweep.max_overhead}};
  j["wire"] = w;
  return j;
}

}  // namespace mpotr::bench
