// SPDX-License-Identifier: MIT
// Group messages through real pad devices: one request packages a pairwise copy per contact,
// all carrying the same authenticated group context; the pre-check is all-or-nothing.
#include <catch2/catch.hpp>

#include "mpotr/otp/packet.h"
#include "otp/device/rpc_pad_device.h"
#include "padd_harness.h"

using namespace padd_test;

namespace {

// alice shares a pad with bob and one with carol; bob and carol share none.
struct Trio {
  TempDir root;
  std::string alice_sock, bob_sock, carol_sock;
  explicit Trio(std::uint64_t carol_pad = 1 << 20) {
    make_pad_between(root, "alice", "bob", 1 << 20);
    make_pad_between(root, "alice", "carol", carol_pad);
    alice_sock = root.sub("run-a") + "/padd.sock";
    bob_sock = root.sub("run-b") + "/padd.sock";
    carol_sock = root.sub("run-c") + "/padd.sock";
  }
  std::string dir(const std::string& who) const { return root.path() + "/" + who; }
};

void check_error(const json& r, const std::string& code, const std::string& detail_part) {
  INFO(r.dump());
  CHECK(r["ok"] == false);
  CHECK(r["error"]["code"] == code);
  CHECK(r["error"]["detail"].get<std::string>().find(detail_part) != std::string::npos);
}

}  // namespace

TEST_CASE("padd: a group message is one pairwise packet per contact with one shared context", "[otp][device]") {
  Trio t;
  Daemon alice(t.dir("alice"), t.alice_sock);
  Daemon bob(t.dir("bob"), t.bob_sock);
  Daemon carol(t.dir("carol"), t.carol_sock);
  auto a = connect(t.alice_sock);
  auto b = connect(t.bob_sock);
  auto c = connect(t.carol_sock);

  auto r = call(a, package_group_req(1, {"carol", "bob"}, "to both of you"));
  INFO(r.dump());
  REQUIRE(r["ok"] == true);
  const auto group = r["group"];
  CHECK(group["recipients"] == json::array({"alice", "bob", "carol"}));  // sorted, sender included
  CHECK(group["group_msg_id"].get<std::string>().size() == 32);
  REQUIRE(r["packets"].size() == 2);
  CHECK(r["packets"][0]["contact"] == "carol");  // in the order asked
  CHECK(r["packets"][1]["contact"] == "bob");

  auto ob = call(b, unpackage_req(2, "alice", r["packets"][1]["packet_b64"]));
  auto oc = call(c, unpackage_req(3, "alice", r["packets"][0]["packet_b64"]));
  REQUIRE(ob["ok"] == true);
  REQUIRE(oc["ok"] == true);
  for (const auto* o : {&ob, &oc}) {
    CHECK(unb64((*o)["message_b64"]) == "to both of you");
    CHECK((*o)["type"] == "group");
    CHECK((*o)["seq"] == 1);
    CHECK((*o)["group"] == group);
  }
  // bob cannot open carol's copy: it is under a pad he does not hold.
  check_error(call(b, unpackage_req(4, "alice", r["packets"][0]["packet_b64"])), "unknown_session", "no pad with id");
  // A 1:1 packet says so.
  auto one = call(a, package_req(5, "bob", "just you"));
  auto o1 = call(b, unpackage_req(6, "alice", one["packet_b64"]));
  CHECK(o1["type"] == "chat");
  CHECK_FALSE(o1.contains("group"));
}

TEST_CASE("padd: a group message nobody can fully receive consumes no pad at all", "[otp][device]") {
  Trio t(4096);  // alice's half of the carol pad: 2048 bytes
  Daemon alice(t.dir("alice"), t.alice_sock);
  auto a = connect(t.alice_sock);
  const auto bob_before = send_remaining(a, "bob");
  const auto carol_before = send_remaining(a, "carol");

  check_error(call(a, package_group_req(1, {"bob", "dave"}, "hi")), "invalid_argument", "no pad shared with dave");
  check_error(call(a, package_group_req(2, {"bob", "alice"}, "hi")), "invalid_argument", "not sent to yourself");
  check_error(call(a, package_group_req(3, {"bob", "bob"}, "hi")), "invalid_argument", "appears twice");
  check_error(call(a, package_group_req(4, {}, "hi")), "invalid_argument", "array of 1-63");
  // bob's pad could take it, carol's cannot: neither is touched.
  check_error(call(a, package_group_req(5, {"bob", "carol"}, std::string(3000, 'x'))), "limit_exceeded", "carol");
  CHECK(send_remaining(a, "bob") == bob_before);
  CHECK(send_remaining(a, "carol") == carol_before);

  auto ok = call(a, package_group_req(6, {"bob", "carol"}, "fits"));
  REQUIRE(ok["ok"] == true);
  CHECK(send_remaining(a, "bob") == bob_before - ok["packets"][0]["pad_bytes"].get<std::uint64_t>());
}

TEST_CASE("padd: one confirmation covers the whole group message", "[otp][device]") {
  Trio t;
  int answers[2];
  REQUIRE(::pipe2(answers, O_CLOEXEC) == 0);
  Daemon alice(t.dir("alice"), t.alice_sock, opts({"--confirm", "ask"}, answers[0]));
  ::close(answers[0]);
  auto a = connect(t.alice_sock);
  REQUIRE(::write(answers[1], "y\n", 2) == 2);  // exactly one answer
  auto r = call(a, package_group_req(1, {"bob", "carol"}, "one question"));
  INFO(r.dump());
  CHECK(r["ok"] == true);
  CHECK(r["packets"].size() == 2);
  REQUIRE(::write(answers[1], "n\n", 2) == 2);
  const auto before = send_remaining(a, "bob");
  check_error(call(a, package_group_req(2, {"bob", "carol"}, "refused")), "invalid_state", "refused");
  CHECK(send_remaining(a, "bob") == before);
  ::close(answers[1]);
}

TEST_CASE("RpcPadDevice: the chat's view of real devices, errors keep their codes", "[otp][device]") {
  Trio t;
  Daemon alice(t.dir("alice"), t.alice_sock);
  Daemon bob(t.dir("bob"), t.bob_sock);
  mpotr::otp::device::RpcPadDevice a(t.alice_sock);
  mpotr::otp::device::RpcPadDevice b(t.bob_sock);

  auto st = a.status();
  REQUIRE(st.ok());
  CHECK(st->me == "alice");
  REQUIRE(st->contacts.size() == 2);
  CHECK(st->contacts[0].contact == "bob");
  CHECK(st->contacts[0].health == "healthy");

  auto sealed = a.package_group({"bob", "carol"}, mpotr::as_bytes(std::string("via rpc")));
  REQUIRE(sealed.ok());
  CHECK(sealed->group.recipients == std::vector<std::string>{"alice", "bob", "carol"});
  REQUIRE(sealed->packets.size() == 2);
  auto opened = b.unpackage("alice", mpotr::view(sealed->packets[0].packet));
  REQUIRE(opened.ok());
  CHECK(std::string(opened->body.view().begin(), opened->body.view().end()) == "via rpc");
  CHECK(opened->type == mpotr::otp::MessageType::Group);
  CHECK(opened->group == sealed->group);

  // The daemon's error codes come back as the project's ErrorCodes.
  auto replay = b.unpackage("alice", mpotr::view(sealed->packets[0].packet));
  REQUIRE_FALSE(replay.ok());
  CHECK((replay.error().code == mpotr::ErrorCode::Replay || replay.error().code == mpotr::ErrorCode::Duplicate));
  auto nobody = a.package_group({"dave"}, mpotr::as_bytes(std::string("x")));
  CHECK(nobody.error().code == mpotr::ErrorCode::InvalidArgument);
  CHECK(nobody.error().detail == "pad device: no pad shared with dave");
  mpotr::otp::device::RpcPadDevice gone(t.root.path() + "/nothing-here.sock");
  auto unreachable = gone.status();
  CHECK(unreachable.error().code == mpotr::ErrorCode::Storage);
  CHECK(unreachable.error().detail.find("cannot reach the pad device at") == 0);
}
