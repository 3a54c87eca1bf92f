// SPDX-License-Identifier: MIT
// mpotr-bench: Google Benchmark's own output, then the goal table (markdown) and a JSON report.
//   mpotr-bench [--report=<path>] [--benchmark_*=…]
// --report defaults to bench-report.json in the current directory. A fast smoke run:
//   mpotr-bench --benchmark_min_time=0.01
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "bench.h"
#include "report.h"
#include "wire.h"

int main(int argc, char** argv) {
  using namespace mpotr::bench;  // NOLINT(google-build-using-namespace)

  // Our own flag first: Google Benchmark rejects flags it does not know.
  std::string report_path = "bench-report.json";
  std::vector<char*> args;
  constexpr std::string_view kReportFlag = "--report=";
  for (int i = 0; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i > 0 && a.substr(0, kReportFlag.size()) == kReportFlag) {
      report_path = std::string(a.substr(kReportFlag.size()));
      continue;
    }
    args.push_back(argv[i]);
  }
  int bench_argc = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&bench_argc, args.data());
  if (benchmark::ReportUnrecognizedArguments(bench_argc, args.data())) {
    return 2;
  }
  if (report_path.empty()) {
    std::cerr << "mpotr-bench: --report needs a path\n";
    return 2;
  }

  try {
    register_primitives();
    register_engine();

    CollectingReporter reporter(::isatty(STDOUT_FILENO) != 0 ? benchmark::ConsoleReporter::OO_Color
                                                              : benchmark::ConsoleReporter::OO_None);
    if (benchmark::RunSpecifiedBenchmarks(&reporter) == 0) {
      // --benchmark_list_tests, or a filter that matched nothing: no measurements, no report.
      std::cerr << "mpotr-bench: no benchmark ran; no report written\n";
      benchmark::Shutdown();
      return 0;
    }
    const auto results = reporter.results();

    const WireReport wire = measure_wire();
    const auto rows = build_rows(results, wire);

    std::cout.flush();
    print_table(std::cout, rows);
    print_setup_ops(std::cout);
    print_setup_breakdown(std::cout, results);
    print_chat_ops(std::cout);
    print_wire(std::cout, wire);

    const nlohmann::json report = report_json(rows, results, wire);
    std::ofstream out(report_path);
    out << report.dump(2) << '\n';
    out.close();
    if (!out) {
      std::cerr << "mpotr-bench: cannot write " << report_path << '\n';
      return 1;
    }
    std::cout << "\nreport written to " << report_path << '\n';

    int failed_benchmarks = 0;
    for (const auto& [name, m] : results) {
      if (!m.error.empty()) {
        std::cerr << "mpotr-bench: " << name << " failed: " << m.error << '\n';
        ++failed_benchmarks;
      }
    }
    benchmark::Shutdown();
    // Goal misses are reported, not an exit status (timings on shared CI machines are noisy);
    // a benchmark that could not run is.
    return failed_benchmarks == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "mpotr-bench: " << e.what() << '\n';
    return 1;
  }
}
