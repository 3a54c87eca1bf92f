// SPDX-License-Identifier: MIT
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "mpotr/otp/otc_import.h"

using namespace mpotr;
using namespace mpotr::otp;
namespace fs = std::filesystem;

namespace {

struct Otc {
  fs::path dir;
  Bytes pad;
  Otc() {
    std::string tmpl = (fs::temp_directory_path() / "mpotr-otc-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    DeterministicRng rng(9);
    pad.resize(8192);
    rng.fill(pad.data(), pad.size());
  }
  ~Otc() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  // Writes <uid>.<rid>.random.{store,metadata} as OTC's generate.py would, then edits.
  std::pair<std::string, std::string> write(const std::string& uid, const std::string& rid, int direction,
                                            std::uint64_t e, const std::string& log, std::uint64_t dmax,
                                            const std::function<void(nlohmann::json&)>& edit = {}) {
    const std::string base = uid + "." + rid + ".random";
    nlohmann::json j = {{"uid", uid}, {"rid", rid}, {"store_filename", base + ".store"},
                        {"metadata_filename", base + ".metadata"}, {"n_bytes", pad.size()}, {"rservice", "urandom"},
                        {"split_index", pad.size() / 2}, {"direction", direction}, {"encrypt_index", e},
                        {"decrypt_log", log}, {"decrypt_max", dmax}, {"n_eles", 13}, {"checksum", 12345}};
    if (edit) edit(j);
    const std::string sp = (dir / (base + ".store")).string(), mp = (dir / (base + ".metadata")).string();
    std::ofstream(sp, std::ios::binary).write(reinterpret_cast<const char*>(pad.data()), static_cast<std::streamsize>(pad.size()));
    std::ofstream(mp) << j.dump();
    ::chmod(sp.c_str(), 0600);
    ::chmod(mp.c_str(), 0600);
    return {sp, mp};
  }
};

OutgoingMessage msg(std::string_view t) {
  OutgoingMessage m;
  m.body.assign(t.begin(), t.end());
  return m;
}

}  // namespace

TEST_CASE("otp import of a One Time Chat pair interoperates and burns used bytes", "[otp][import]") {
  for (bool bob_first : {false, true}) {  // OTC's +1 party is alice, or bob (then the pad is mirrored)
    Otc o;
    const std::string p1 = bob_first ? "bob" : "alice", p2 = bob_first ? "alice" : "bob";
    // p1 (+1) used [0, 300); p2 (-1) used [8192-200, 8192), and p1 decrypted p2's first 100 bytes.
    auto [s1, m1] = o.write(p1, p2, 1, 300, "8092-8191,", 8092);
    auto [s2, m2] = o.write(p2, p1, -1, 8192 - 201, "0-99,", 99);
    auto i1 = import_one_time_chat(s1, m1, (o.dir / "d1").string());
    auto i2 = import_one_time_chat(s2, m2, (o.dir / "d2").string());
    REQUIRE(i1.ok());
    REQUIRE(i2.ok());
    CHECK(i1->pad_id == i2->pad_id);
    CHECK(i1->mirrored == bob_first);
    CHECK(i1->burnt_own == 300);
    CHECK(i2->burnt_own == 200);
    CHECK(i1->burnt_peer == 100);
    auto a = PadStore::open((o.dir / "d1").string(), i1->pad_id).value();
    auto b = PadStore::open((o.dir / "d2").string(), i2->pad_id).value();
    CHECK(a->descriptor().role == (p1 == "alice" ? Role::A : Role::B));
    // New messages never start inside what OTC used, and decrypt on the other side.
    auto s = a->send_package(msg("after import"));
    REQUIRE(s.ok());
    const Range used1 = bob_first ? Range{8192 - 300, 8192} : Range{0, 300};
    CHECK((s->region.begin >= used1.end || s->region.end <= used1.begin));
    CHECK(b->receive_unpackage(view(s->packet)).ok());
    auto back = b->send_package(msg("reply"));
    REQUIRE(back.ok());
    CHECK(a->receive_unpackage(view(back->packet)).ok());
  }
}

TEST_CASE("otp import refuses inconsistent One Time Chat metadata", "[otp][import]") {
  Otc o;
  const auto out = (o.dir / "out").string();
  auto expect_refused = [&](const std::function<void(nlohmann::json&)>& edit) {
    auto [s, m] = o.write("alice", "bob", 1, 0, "", 8191, edit);
    auto r = import_one_time_chat(s, m, out);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::Storage);
  };
  expect_refused([](nlohmann::json& j) { j.erase("checksum"); });
  expect_refused([](nlohmann::json& j) { j["extra"] = 1; });
  expect_refused([](nlohmann::json& j) { j["rid"] = "alice"; });
  expect_refused([](nlohmann::json& j) { j["n_bytes"] = 9000; });
  expect_refused([](nlohmann::json& j) { j["split_index"] = 0; });
  expect_refused([](nlohmann::json& j) { j["direction"] = 2; });
  expect_refused([](nlohmann::json& j) { j["encrypt_index"] = 5000; });  // in the peer's half
  expect_refused([](nlohmann::json& j) { j["decrypt_log"] = "10-20,"; });  // our own half
  expect_refused([](nlohmann::json& j) { j["decrypt_log"] = "5000-x,"; });
  expect_refused([](nlohmann::json& j) { j["rservice"] = "hwrng"; });
  expect_refused([](nlohmann::json& j) { j["store_filename"] = "other.bob.random.store"; });
  {
    auto [s, m] = o.write("alice", "bob", 1, 0, "", 8191);
    ::chmod(s.c_str(), 0644);
    CHECK(import_one_time_chat(s, m, out).error().code == ErrorCode::Storage);
  }
  CHECK_FALSE(fs::exists(out));  // every refusal happens before anything is written
  auto [s, m] = o.write("alice", "bob", 1, 0, "", 8191);
  CHECK(import_one_time_chat(s, m, out).ok());
}
