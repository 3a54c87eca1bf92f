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
