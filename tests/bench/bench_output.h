// SPDX-License-Identifier: MIT
// Where the stand-alone benchmarks (mpotr-bench-xmpp, mpotr-bench-otp) put their results: a
// section of the shared JSON report, and a table between markers in the README.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace mpotr::bench {

// Sets report[section] in the JSON file at `path` (created, or replaced if unreadable).
inline bool merge_report_section(const std::string& path, const std::string& section, const nlohmann::json& value) {
  nlohmann::json report = nlohmann::json::object();
  if (std::ifstream in(path); in) {
    report = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (report.is_discarded() || !report.is_object()) report = nlohmann::json::object();
  }
  report[section] = value;
  std::ofstream out(path);
  out << report.dump(2) << '\n';
  return static_cast<bool>(out);
}

// Replaces what lies between "<!-- marker -->\n" and "<!-- /marker -->" in the file at `path`.
inline bool replace_between_markers(const std::string& path, const std::string& marker, const std::string& body) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream buf;
  buf << in.rdbuf();
  std::string text = buf.str();
  const std::string open = "<!-- " + marker + " -->\n";
  const std::string close = "<!-- /" + marker + " -->";
  const auto a = text.find(open);
  const auto b = text.find(close);
  if (a == std::string::npos || b == std::string::npos || b < a) return false;
  text.replace(a + open.size(), b - a - open.size(), body);
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace mpotr::bench
