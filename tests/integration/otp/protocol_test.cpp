// SPDX-License-Identifier: MIT
// The pad device's request parser, in process: every malformed request is a clear error.
#include <catch2/catch.hpp>

#include <string>

#include "otp/device/protocol.h"

using namespace mpotr;
using namespace mpotr::otp::device;

namespace {

Error parse_error(const std::string& line, std::string* id = nullptr) {
  auto r = parse_request(line);
  REQUIRE(std::holds_alternative<ParseFailure>(r));
  if (id) *id = std::get<ParseFailure>(r).id_json;
  return std::get<ParseFailure>(r).error;
}

}  // namespace

TEST_CASE("padd protocol: well-formed requests parse", "[otp][device]") {
  auto r = parse_request(R"({"id":7,"op":"package","contact":"bob","message_b64":"aGk="})");
  REQUIRE(std::holds_alternative<Request>(r));
  const auto& req = std::get<Request>(r);
  CHECK(req.id_json == "7");
  CHECK(req.op == Op::Package);
  CHECK(req.contact == "bob");
  CHECK(req.payload.expose_copy() == Bytes{'h', 'i'});

  auto s = parse_request(R"({"id":"x1","op":"status"})");
  REQUIRE(std::holds_alternative<Request>(s));
  CHECK(std::get<Request>(s).id_json == "\"x1\"");
  CHECK(std::get<Request>(s).contact.empty());
}

TEST_CASE("padd protocol: malformed requests are refused with a reason", "[otp][device]") {
  CHECK(parse_error("{not json").code == ErrorCode::DecodeBadValue);
  CHECK(parse_error("").code == ErrorCode::DecodeBadValue);
  CHECK(parse_error("[1,2]").code == ErrorCode::InvalidArgument);
  CHECK(parse_error(R"({"op":"list"})").detail == "missing field \"id\"");
  CHECK(parse_error(R"({"id":-1,"op":"list"})").code == ErrorCode::InvalidArgument);
  CHECK(parse_error(R"({"id":1.5,"op":"list"})").code == ErrorCode::InvalidArgument);

  std::string id;
  CHECK(parse_error(R"({"id":3,"op":"fly"})", &id).code == ErrorCode::DecodeUnknownType);
  CHECK(id == "3");
  CHECK(parse_error(R"({"id":3,"op":7})").code == ErrorCode::InvalidArgument);
  // missing, extra, wrongly typed, duplicated fields
  CHECK(parse_error(R"({"id":1,"op":"package","contact":"bob"})").detail == "missing field \"message_b64\"");
  CHECK(parse_error(R"({"id":1,"op":"list","contact":"bob"})").detail.find("unexpected field") == 0);
  CHECK(parse_error(R"({"id":1,"op":"package","contact":5,"message_b64":"aGk="})").code == ErrorCode::InvalidArgument);
  CHECK(parse_error(R"({"id":1,"op":"list","op":"list"})").detail == "a field appears twice");
  // contacts name pad files: no path tricks
  CHECK(parse_error(R"({"id":1,"op":"status","contact":"../x"})").code == ErrorCode::InvalidArgument);
  CHECK(parse_error(R"({"id":1,"op":"status","contact":""})").code == ErrorCode::InvalidArgument);
  // strict base64: no whitespace, padding required, no stray bits
  for (const char* b64 : {"aGk", "aG k=", "aGl=", "!!!!", "aGk=\\n"}) {
    const std::string line = std::string(R"({"id":1,"op":"package","contact":"bob","message_b64":")") + b64 + "\"}";
    INFO(b64);
    CHECK(parse_error(line).detail.find("not canonical base64") != std::string::npos);
  }
}

TEST_CASE("padd protocol: package_group takes a list of distinct contacts", "[otp][device]") {
  auto r = parse_request(R"({"id":1,"op":"package_group","to":["bob","carol"],"message_b64":"aGk="})");
  REQUIRE(std::holds_alternative<Request>(r));
  CHECK(std::get<Request>(r).op == Op::PackageGroup);
  CHECK(std::get<Request>(r).to == std::vector<std::string>{"bob", "carol"});

  CHECK(parse_error(R"({"id":1,"op":"package_group","to":"bob","message_b64":"aGk="})").detail.find("array of 1-63") !=
        std::string::npos);
  CHECK(parse_error(R"({"id":1,"op":"package_group","to":[],"message_b64":"aGk="})").code == ErrorCode::InvalidArgument);
  CHECK(parse_error(R"({"id":1,"op":"package_group","to":["bob",5],"message_b64":"aGk="})").code ==
        ErrorCode::InvalidArgument);
  CHECK(parse_error(R"({"id":1,"op":"package_group","to":["../x"],"message_b64":"aGk="})").code ==
        ErrorCode::InvalidArgument);
  CHECK(parse_error(R"({"id":1,"op":"package_group","to":["bob","bob"],"message_b64":"aGk="})").detail ==
        "contact \"bob\" appears twice in \"to\"");
  CHECK(parse_error(R"({"id":1,"op":"package_group","to":["bob"],"contact":"bob","message_b64":"aGk="})")
            .detail.find("unexpected field") == 0);
  std::string many = R"({"id":1,"op":"package_group","message_b64":"aGk=","to":[)";
  for (int i = 0; i < 64; ++i) many += (i ? ",\"c" : "\"c") + std::to_string(i) + "\"";
  CHECK(parse_error(many + "]}").code == ErrorCode::InvalidArgument);
}

TEST_CASE("padd protocol: group contexts round-trip through JSON, strictly", "[otp][device]") {
  mpotr::otp::GroupContext g;
  g.group_msg_id.fill(0xab);
  g.recipients = {"alice", "bob"};
  auto back = group_from_json(group_to_json(g));
  REQUIRE(back.ok());
  CHECK(*back == g);
  auto j = group_to_json(g);
  j["group_msg_id"] = "abcd";
  CHECK(group_from_json(j).error().code == ErrorCode::InvalidArgument);
  j = group_to_json(g);
  j["recipients"] = nlohmann::json::array();
  CHECK(group_from_json(j).error().code == ErrorCode::InvalidArgument);
  j = group_to_json(g);
  j["extra"] = 1;
  CHECK(group_from_json(j).error().code == ErrorCode::InvalidArgument);
  CHECK(type_from_name("group") == mpotr::otp::MessageType::Group);
  CHECK_FALSE(type_from_name("Group").has_value());
}

TEST_CASE("padd protocol: size and depth limits", "[otp][device]") {
  std::string deep = R"({"id":1,"op":"list","x":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  CHECK(parse_error(deep).code == ErrorCode::DecodeOversize);
  std::string huge(kMaxRequestLine + 1, ' ');
  CHECK(parse_error(huge).code == ErrorCode::DecodeOversize);
  std::string long_id = R"({"id":")" + std::string(kMaxIdLength + 1, 'a') + R"(","op":"list"})";
  CHECK(parse_error(long_id).code == ErrorCode::InvalidArgument);
}

TEST_CASE("padd protocol: responses echo the id and never throw on bad UTF-8", "[otp][device]") {
  CHECK(ok_response("5", nlohmann::json{{"x", 1}}) == "{\"id\":5,\"ok\":true,\"x\":1}\n");
  const auto e = error_response("\"a\"", make_error(ErrorCode::InvalidArgument, std::string("bad \xff byte")));
  auto j = nlohmann::json::parse(e);
  CHECK(j["id"] == "a");
  CHECK(j["ok"] == false);
  CHECK(j["error"]["code"] == "invalid_argument");
}
