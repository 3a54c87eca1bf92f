// SPDX-License-Identifier: MIT
// mpotr-pad: generate both copies of a pad (with progress), list and status through the
// daemon's socket and from the files; bad command lines are refused.
#include <catch2/catch.hpp>

#include "padd_harness.h"

using namespace padd_test;

TEST_CASE("mpotr-pad: generate, then list and status by socket and by directory", "[otp][device][cli]") {
  TempDir root;
  const std::string mine = root.path() + "/alice";
  const std::string media = root.path() + "/usb-stick";
  auto g = run({MPOTR_PAD_PATH, "generate", "--me", "alice", "--peer", "bob", "--size", "3M", "--out", mine,
                "--peer-out", media});
  INFO(g.output);
  REQUIRE(g.status == 0);
  CHECK(g.output.find("100.0%") != std::string::npos);  // the progress line reaches the end
  CHECK(g.output.find("MB/s") != std::string::npos);
  CHECK(g.output.find("ETA") != std::string::npos);

  auto l = run({MPOTR_PAD_PATH, "list", "--dir", media});
  INFO(l.output);
  CHECK(l.status == 0);
  CHECK(l.output.rfind("alice  pad ", 0) == 0);  // bob's copy: his contact is alice
  CHECK(l.output.find("3.0 MiB") != std::string::npos);

  auto s = run({MPOTR_PAD_PATH, "status", "--dir", mine});
  INFO(s.output);
  CHECK(s.status == 0);
  CHECK(s.output.find("bob  pad ") == 0);
  CHECK(s.output.find("send 1572864 B left") != std::string::npos);  // half of 3 MiB

  const std::string sock = root.sub("run") + "/padd.sock";
  Daemon alice(mine, sock);
  auto c = connect(sock);
  REQUIRE(call(c, package_req(1, "bob", "hello"))["ok"] == true);
  auto ls = run({MPOTR_PAD_PATH, "list", "--socket", sock});
  CHECK(ls.status == 0);
  CHECK(ls.output == "bob\n");
  auto st = run({MPOTR_PAD_PATH, "status", "--socket", sock, "--contact", "bob"});
  INFO(st.output);
  CHECK(st.status == 0);
  CHECK(st.output.find("bob  send ") == 0);
  CHECK(st.output.find("send 1572864 B left") == std::string::npos);  // one message was sent
  // While the daemon holds the pad, reading it directly is refused (the store's lock).
  CHECK(run({MPOTR_PAD_PATH, "status", "--dir", mine}).status != 0);
}

TEST_CASE("mpotr-pad: bad command lines are refused with a reason", "[otp][device][cli]") {
  TempDir root;
  const std::vector<std::vector<std::string>> bad = {
      {MPOTR_PAD_PATH},
      {MPOTR_PAD_PATH, "fly"},
      {MPOTR_PAD_PATH, "generate", "--me", "alice"},
      {MPOTR_PAD_PATH, "generate", "--me", "alice", "--peer", "bob", "--size", "12Q", "--out", root.path() + "/a",
       "--peer-out", root.path() + "/b"},
      {MPOTR_PAD_PATH, "generate", "--me", "alice", "--peer", "alice", "--size", "1M", "--out", root.path() + "/a",
       "--peer-out", root.path() + "/b"},
      {MPOTR_PAD_PATH, "list", "--dir", root.path(), "--socket", root.path() + "/s"},
      {MPOTR_PAD_PATH, "status", "--socket", root.path() + "/nothing-here"},
      {MPOTR_PAD_PATH, "list", "--bogus", "1"},
  };
  for (const auto& args : bad) {
    auto r = run(args);
    INFO((args.size() > 1 ? args[1] : std::string("(none)")));
    INFO(r.output);
    CHECK(r.status == 2);
    CHECK(r.output.rfind("mpotr-pad: ", 0) == 0);
  }
}

TEST_CASE("mpotr-pad import-otc: both One Time Chat parties import, then their devices talk", "[otp][device][cli]") {
  TempDir root;
  // One Time Chat's files for a pair, as its generate.py writes them: the same random store
  // for both, a JSON metadata file each. alice (+1) used [0, 300); bob (-1) used the last 200.
  mpotr::Bytes pad(8192);
  mpotr::SystemRng().fill(pad.data(), pad.size());
  auto write_otc = [&](const std::string& uid, const std::string& rid, int direction, std::uint64_t e,
                       const std::string& log, std::uint64_t dmax) {
    const std::string name = uid + "." + rid + ".random";
    const std::string base = root.sub("otc-" + uid) + "/" + name;
    json j = {{"uid", uid}, {"rid", rid}, {"store_filename", name + ".store"}, {"metadata_filename", name + ".metadata"},
              {"n_bytes", pad.size()}, {"rservice", "urandom"}, {"split_index", pad.size() / 2},
              {"direction", direction}, {"encrypt_index", e}, {"decrypt_log", log}, {"decrypt_max", dmax},
              {"n_eles", 13}, {"checksum", 1}};
    std::ofstream(base + ".store", std::ios::binary)
        .write(reinterpret_cast<const char*>(pad.data()), static_cast<std::streamsize>(pad.size()));
    std::ofstream(base + ".metadata") << j.dump();
    ::chmod((base + ".store").c_str(), 0600);
    ::chmod((base + ".metadata").c_str(), 0600);
    return base;
  };
  const std::string a = write_otc("alice", "bob", 1, 300, "", 8191);
  const std::string b = write_otc("bob", "alice", -1, 8192 - 201, "0-99,", 99);

  auto ia = run({MPOTR_PAD_PATH, "import-otc", "--store", a + ".store", "--metadata", a + ".metadata", "--out",
                 root.path() + "/alice"});
  INFO(ia.output);
  REQUIRE(ia.status == 0);
  CHECK(ia.output.find(" imported to ") != std::string::npos);
  CHECK(ia.output.find("burnt: 300 B of ours") != std::string::npos);
  auto ib = run({MPOTR_PAD_PATH, "import-otc", "--store", b + ".store", "--metadata", b + ".metadata", "--out",
                 root.path() + "/bob"});
  INFO(ib.output);
  REQUIRE(ib.status == 0);
  CHECK(ib.output.find("burnt: 200 B of ours, 100 B of the peer's") != std::string::npos);
  // The same pad id on both sides, found independently (the output also holds a progress line).
  auto pad_id = [](const std::string& out) {
    const auto at = out.find("\npad ");
    return at == std::string::npos ? std::string("none") : out.substr(at + 5, 32);
  };
  CHECK(pad_id(ia.output) != "none");
  CHECK(pad_id(ia.output) == pad_id(ib.output));

  const std::string sa = root.sub("run-a") + "/padd.sock", sb = root.sub("run-b") + "/padd.sock";
  Daemon alice(root.path() + "/alice", sa);
  Daemon bob(root.path() + "/bob", sb);
  auto ca = connect(sa);
  auto cb = connect(sb);
  auto p = call(ca, package_req(1, "bob", "after the import"));
  REQUIRE(p["ok"] == true);
  CHECK(p["offset"].get<std::uint64_t>() >= 300);  // never inside what One Time Chat used
  auto o = call(cb, unpackage_req(2, "alice", p["packet_b64"]));
  REQUIRE(o["ok"] == true);
  CHECK(unb64(o["message_b64"]) == "after the import");

  // Bad input: a missing option, a missing file, a second import over the first.
  auto missing = run({MPOTR_PAD_PATH, "import-otc", "--store", a + ".store", "--out", root.path() + "/x"});
  CHECK(missing.status == 2);
  CHECK(missing.output.find("import-otc needs --metadata") != std::string::npos);
  auto nofile = run({MPOTR_PAD_PATH, "import-otc", "--store", a + ".nope", "--metadata", a + ".metadata", "--out",
                     root.path() + "/x"});
  CHECK(nofile.status != 0);
  CHECK(nofile.output.find("import failed") != std::string::npos);
}
