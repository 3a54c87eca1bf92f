// SPDX-License-Identifier: MIT
// Helpers for the known-answer tests over spec/vectors/*.json. The tests read the committed
// files and recompute every value with the library; they never run tools/mpotr-vectors.
#pragma once

#include <array>
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "mpotr/bytes.h"
#include "mpotr/result.h"

namespace mpotr::vectors {

using Json = nlohmann::json;

inline Json load(const std::string& name) {
  const std::string path = std::string(MPOTR_SOURCE_DIR) + "/spec/vectors/" + name;
  INFO("reading " << path << " (regenerate with: build/tools/mpotr-vectors --generate spec/vectors)");
  std::ifstream in(path);
  REQUIRE(in.good());
  Json doc = Json::parse(in);
  REQUIRE(doc.at("version") == 2);  // the mpOTR version the file pins
  REQUIRE(doc.at("generator") == "tools/mpotr-vectors");
  REQUIRE(doc.contains("seed"));
  REQUIRE(doc.contains("description"));
  return doc;
}

inline Bytes unhex(const Json& j) {
  const std::string s = j.get<std::string>();
  Bytes out;
  INFO("hex: " << s);
  REQUIRE(from_hex(s, out));
  return out;
}

template <std::size_t N>
std::array<std::uint8_t, N> unhex_array(const Json& j) {
  const Bytes b = unhex(j);
  REQUIRE(b.size() == N);
  std::array<std::uint8_t, N> a{};
  std::copy(b.begin(), b.end(), a.begin());
  return a;
}

inline Hash32 unhex32(const Json& j) { return unhex_array<32>(j); }
inline SecretBytes unhex_secret(const Json& j) { return SecretBytes(view(unhex(j))); }

inline std::string hex(const Bytes& b) { return to_hex(view(b)); }
inline std::string hex(const SecretBytes& s) { return to_hex(s.view()); }
template <std::size_t N>
std::string hex(const std::array<std::uint8_t, N>& a) {
  return to_hex(view(a));
}

inline std::string str(const Json& j) { return j.get<std::string>(); }

// The value of a Result the vectors say must succeed.
template <class T>
T must(Result<T> r) {
  if (!r.ok()) {
    FAIL(std::string(to_string(r.error().code)) + ": " + r.error().detail);
  }
  return std::move(r).value();
}

inline void must(Result<void> r) {
  if (!r.ok()) {
    FAIL(std::string(to_string(r.error().code)) + ": " + r.error().detail);
  }
}

// Offer.attempt is bound into the session id; templates keep the tests compiling whether or not
// the codec has the field (a file generated without it then fails the comparison, as it should).
template <class O>
void set_attempt(O& o, const Json& j) {
  if constexpr (requires { o.attempt; }) {
    o.attempt = j.value("attempt", std::uint32_t{0});
  } else {
    (void)o;
    (void)j;
  }
}

template <class O>
void put_attempt(Json& j, const O& o) {
  if constexpr (requires { o.attempt; }) {
    j["attempt"] = o.attempt;
  } else {
    (void)j;
    (void)o;
  }
}

}  // namespace mpotr::vectors
