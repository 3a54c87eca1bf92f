// SPDX-License-Identifier: MIT
// The daemon's dispatcher in process, over a fake pad service: authentication, the
// confirmation policy and exceptions never reach the pad, and are logged.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <stdexcept>

#include "otp/device/server.h"
#include "padd_harness.h"

using namespace mpotr;
using namespace mpotr::otp::device;
using json = nlohmann::json;

namespace {

class FakePads final : public PadService {
 public:
  int packaged = 0;
  bool throw_on_package = false;
  std::string me() const override { return "alice"; }
  Result<std::vector<std::string>> contacts() override { return std::vector<std::string>{"bob"}; }
  Result<ContactStatus> status(const std::string& c) override {
    if (c != "bob") return make_error(ErrorCode::InvalidArgument, "no pad shared with " + c);
    return ContactStatus{c, 1000 - 100 * static_cast<std::uint64_t>(packaged), 1000};
  }
  Result<std::uint64_t> package_cost(const std::string&, std::size_t len) override { return 45 + len; }
  Result<Packaged> package(const std::string&, ByteView m) override {
    if (throw_on_package) throw std::runtime_error("disk on fire\n2026-01-01T00:00:00Z forged");
    ++packaged;
    return Packaged{Bytes(m.begin(), m.end()), 0, 45 + m.size()};
  }
  Result<std::vector<std::uint64_t>> group_cost(const std::vector<std::string>& to, std::size_t len) override {
    for (const auto& c : to) {
      if (c != "bob") return make_error(ErrorCode::InvalidArgument, "no pad shared with " + c);
    }
    return std::vector<std::uint64_t>(to.size(), 70 + len);
  }
  Result<GroupPackaged> package_group(const std::vector<std::string>& to, ByteView m) override {
    ++packaged;
    GroupPackaged g;
    g.group.recipients = {"alice", "bob"};
    for (const auto& c : to) g.copies.emplace_back(c, Packaged{Bytes(m.begin(), m.end()), 0, 70 + m.size()});
    return g;
  }
  Result<Unpackaged> unpackage(const std::string&, ByteView) override {
    return make_error(ErrorCode::BadMac, "tag mismatch");
  }
};

json handle(Dispatcher& d, ConnContext& ctx, const std::string& line, bool* closed = nullptr) {
  bool close = false;
  auto out = d.handle(line, ctx, close);
  if (closed) *closed = close;
  REQUIRE(!out.empty());
  REQUIRE(out.back() == '\n');
  return json::parse(out);
}

}  // namespace

TEST_CASE("padd dispatcher: TCP needs auth first, a wrong token closes", "[otp][device]") {
  padd_test::TempDir dir;
  FakePads pads;
  Confirmer confirm(ConfirmMode::Auto, -1, -1);
  AnomalyLog log;
  REQUIRE(log.open(dir.path() + "/log").ok());
  Dispatcher d(pads, confirm, log, SecretBytes(as_bytes("0123456789abcdef-token")));
  const std::string pkg = R"({"id":1,"op":"package","contact":"bob","message_b64":"aGk="})";

  ConnContext tcp{true, false, "127.0.0.1:1"};
  bool closed = false;
  CHECK(handle(d, tcp, pkg, &closed)["ok"] == false);
  CHECK(closed);
  CHECK(handle(d, tcp, R"({"id":2,"op":"auth","token":"0123456789abcdef-tokeN"})", &closed)["ok"] == false);
  CHECK(closed);
  CHECK(pads.packaged == 0);
  CHECK(handle(d, tcp, R"({"id":3,"op":"auth","token":"0123456789abcdef-token"})", &closed)["ok"] == true);
  CHECK_FALSE(closed);
  CHECK(handle(d, tcp, pkg)["ok"] == true);
  CHECK(pads.packaged == 1);

  ConnContext local{false, true, "uid=0"};
  CHECK(handle(d, local, pkg)["ok"] == true);  // Unix socket: authenticated by uid
  const auto text = padd_test::read_text(dir.path() + "/log");
  CHECK(text.find("auth_failure") != std::string::npos);
  CHECK(text.find("0123456789abcdef") == std::string::npos);
}

TEST_CASE("padd dispatcher: a refused prompt never reaches the pad", "[otp][device]") {
  int answers[2];
  REQUIRE(::pipe2(answers, O_CLOEXEC) == 0);
  const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  FakePads pads;
  Confirmer confirm(ConfirmMode::Ask, answers[0], devnull);
  padd_test::TempDir dir;
  AnomalyLog log;
  REQUIRE(log.open(dir.path() + "/log").ok());
  Dispatcher d(pads, confirm, log, SecretBytes());
  ConnContext local{false, true, "uid=0"};
  const std::string pkg = R"({"id":1,"op":"package","contact":"bob","message_b64":"aGk="})";
  // Answers may arrive in pieces and several at once.
  REQUIRE(::write(answers[1], "no\nY", 4) == 4);
  CHECK(handle(d, local, pkg)["error"]["detail"] == "refused by the device owner");
  CHECK(pads.packaged == 0);
  REQUIRE(::write(answers[1], "es\n", 3) == 3);
  CHECK(handle(d, local, pkg)["ok"] == true);
  CHECK(pads.packaged == 1);
  ::close(answers[1]);
  CHECK(handle(d, local, pkg)["ok"] == false);  // EOF refuses
  CHECK(pads.packaged == 1);
  ::close(answers[0]);
  ::close(devnull);
}

TEST_CASE("padd dispatcher: exceptions and store errors become error responses", "[otp][device]") {
  FakePads pads;
  Confirmer confirm(ConfirmMode::Auto, -1, -1);
  AnomalyLog log;
  padd_test::TempDir dir;
  REQUIRE(log.open(dir.path() + "/log").ok());
  Dispatcher d(pads, confirm, log, SecretBytes());
  ConnContext local{false, true, "uid=0"};
  pads.throw_on_package = true;
  bool closed = false;
  auto r = handle(d, local, R"({"id":1,"op":"package","contact":"bob","message_b64":"aGk="})", &closed);
  CHECK(r["error"]["code"] == "internal");
  CHECK(closed);
  auto u = handle(d, local, R"({"id":2,"op":"unpackage","contact":"bob","packet_b64":"aGk="})");
  CHECK(u["error"]["code"] == "bad_mac");
  auto s = handle(d, local, R"({"id":3,"op":"status"})");
  CHECK(s["contacts"][0]["send_remaining"] == 1000);
  CHECK(s["contacts"][0]["health"] == "healthy");
  CHECK(handle(d, local, R"({"id":4,"op":"status","contact":"carol"})")["ok"] == false);
  const auto text = padd_test::read_text(dir.path() + "/log");
  // Logged text cannot start a line of its own: control characters are replaced.
  CHECK(text.find("internal_error detail=\"disk on fire?2026-01-01T00:00:00Z forged\"") != std::string::npos);
  CHECK(text.find("\n2026-01-01T00:00:00Z forged") == std::string::npos);
  CHECK(text.find("mac_failure") != std::string::npos);
}
