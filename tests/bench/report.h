// SPDX-License-Identifier: MIT
// Turning Google Benchmark's results into the goal table and bench-report.json.
#pragma once

#include <benchmark/benchmark.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "wire.h"

namespace mpotr::bench {

// Seconds per iteration of one benchmark (CPU time of the thread; for manual-time benchmarks the
// manual time, which the bench also takes from the thread CPU clock).
struct Measurement {
  double seconds = 0;
  std::int64_t iterations = 0;
  std::string error;  // non-empty: the benchmark failed
};

// The normal console output, plus a copy of every result keyed by benchmark name. With
// repetitions, the median aggregate wins; otherwise the mean of the repetitions.
class CollectingReporter : public benchmark::ConsoleReporter {
 public:
  explicit CollectingReporter(OutputOptions opts) : ConsoleReporter(opts) {}
  void ReportRuns(const std::vector<Run>& reports) override;
  std::map<std::string, Measurement> results() const;

 private:
  std::map<std::string, std::vector<Measurement>> m_runs;
  std::map<std::string, Measurement> m_medians;
  std::map<std::string, std::string> m_errors;
};

struct Row {
  std::string name;
  std::string unit;  // "us", "ms" or "B"
  std::optional<double> measured;
  std::optional<double> floor;
  std::optional<double> ratio;
  std::optional<double> goal;  // upper bound on goal_on
  std::string goal_on;         // "ratio" or "measured"
  std::optional<bool> pass;    // empty: informational row, or not measured
  nlohmann::json extra = nlohmann::json::object();
};

std::vector<Row> build_rows(const std::map<std::string, Measurement>& results, const WireReport& wire);

void print_table(std::ostream& out, const std::vector<Row>& rows);
void print_setup_ops(std::ostream& out);
void print_setup_breakdown(std::ostream& out, const std::map<std::string, Measurement>& results);
void print_chat_ops(std::ostream& out);
void print_wire(std::ostream& out, const WireReport& wire);

nlohmann::json machine_info();
nlohmann::json report_json(const std::vector<Row>& rows, const std::map<std::string, Measurement>& results,
                           const WireReport& wire);

}  // namespace mpotr::bench
