// SPDX-License-Identifier: MIT
// Interactive lines and JSON command lines become the same Command; anything malformed is an
// error and never a message sent by accident.
#include <catch2/catch.hpp>

#include <string>

#include "commands.h"

using namespace mpotr;
using namespace mpotr::chat;

namespace {

const std::string kFpPlain = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";
const std::string kFpGrouped = "01234567 89ABCDEF 01234567 89ABCDEF 01234567 89ABCDEF 01234567 89ABCDEF";

Command interactive(std::string_view line) {
  auto r = parse_interactive_line(line);
  if (!r.ok()) {
    FAIL("unexpected error for '" << line << "': " << r.error().detail);
  }
  REQUIRE(r.value().has_value());
  return *r.value();
}

std::string interactive_error(std::string_view line) {
  auto r = parse_interactive_line(line);
  REQUIRE_FALSE(r.ok());
  return r.error().detail;
}

Command json_cmd(std::string_view line, nlohmann::json expected_id = nullptr) {
  JsonCommandLine r = parse_json_command(line);
  if (!r.command.ok()) {
    FAIL("unexpected error for " << line << ": " << r.command.error().detail);
  }
  REQUIRE(r.command.value().has_value());
  CHECK(r.id == expected_id);
  return *r.command.value();
}

std::string json_error(std::string_view line, nlohmann::json expected_id = nullptr) {
  JsonCommandLine r = parse_json_command(line);
  REQUIRE_FALSE(r.command.ok());
  CHECK(r.id == expected_id);
  return r.command.error().detail;
}

template <class T>
const T& as(const Command& c) {
  REQUIRE(std::holds_alternative<T>(c));
  return std::get<T>(c);
}

}  // namespace

TEST_CASE("chat commands: plain lines are messages, // escapes a leading slash", "[chat][commands]") {
  CHECK(as<SendText>(interactive("hello world")).text == "hello world");
  CHECK(as<SendText>(interactive("  indented stays as typed")).text == "  indented stays as typed");
  CHECK(as<SendText>(interactive("//who is there")).text == "/who is there");
  CHECK(as<SendText>(interactive("//")).text == "/");
  CHECK(as<SendText>(interactive("a/b")).text == "a/b");
  CHECK(command_name(interactive("hi")) == "send");
}

TEST_CASE("chat commands: blank lines do nothing", "[chat][commands]") {
  for (const char* blank : {"", " ", "\t  "}) {
    auto r = parse_interactive_line(blank);
    REQUIRE(r.ok());
    CHECK_FALSE(r.value().has_value());
    JsonCommandLine j = parse_json_command(blank);
    REQUIRE(j.command.ok());
    CHECK_FALSE(j.command.value().has_value());
  }
}

TEST_CASE("chat commands: every interactive command", "[chat][commands]") {
  as<ShowWho>(interactive("/who"));
  as<ShowWho>(interactive("/who  "));
  as<ShowStatus>(interactive("/status"));
  as<RestartSetup>(interactive("/restart"));
  as<Leave>(interactive("/leave"));
  as<Quit>(interactive("/quit"));
  as<ShowHelp>(interactive("/help"));
  CHECK(as<ShowFingerprint>(interactive("/fingerprint")).nick.empty());
  CHECK(as<ShowFingerprint>(interactive("/fingerprint bob")).nick == "bob");
  CHECK(as<ShowFingerprint>(interactive("/fingerprint Bob Smith ")).nick == "Bob Smith");
  CHECK(as<AcceptKey>(interactive("/trust bob")).nick == "bob");
  CHECK(as<AcceptKey>(interactive("/trust\tbob")).nick == "bob");
  CHECK(as<BlockMember>(interactive("/block carol")).nick == "carol");
  CHECK(as<BlockMember>(interactive("/block Carol Jones")).nick == "Carol Jones");
  CHECK(as<SetPolicy>(interactive("/policy verified")).policy == AdmissionPolicy::VerifiedOnly);
  CHECK(as<SetPolicy>(interactive("/policy trusted")).policy == AdmissionPolicy::Trusted);

  const Command verify = interactive("/verify bob " + kFpPlain);
  const auto& v = as<VerifyKey>(verify);
  CHECK(v.nick == "bob");
  CHECK(v.fingerprint == kFpGrouped);
  CHECK(as<VerifyKey>(interactive("/verify bob " + kFpGrouped)).fingerprint == kFpGrouped);
  // Lower case, colons, a nick with spaces, a nick that looks like hex.
  std::string lower = kFpPlain;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  CHECK(as<VerifyKey>(interactive("/verify bob " + lower)).fingerprint == kFpGrouped);
  const Command spaced_cmd = interactive("/verify Bob Smith " + kFpGrouped);
  const auto& spaced = as<VerifyKey>(spaced_cmd);
  CHECK(spaced.nick == "Bob Smith");
  CHECK(spaced.fingerprint == kFpGrouped);
  CHECK(as<VerifyKey>(interactive("/verify dead beef " + kFpGrouped)).nick == "dead beef");
  CHECK(as<VerifyKey>(interactive("/verify bob 01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:"
                                  "01:23:45:67:89:AB:CD:EF"))
            .fingerprint == kFpGrouped);

  CHECK(command_name(interactive("/who")) == "who");
  CHECK(command_name(interactive("/status")) == "status");
  CHECK(command_name(interactive("/fingerprint")) == "fingerprint");
  CHECK(command_name(interactive("/trust x")) == "trust");
  CHECK(command_name(interactive("/block x")) == "block");
  CHECK(command_name(interactive("/policy verified")) == "policy");
  CHECK(command_name(interactive("/verify x " + kFpPlain)) == "verify");
  CHECK(command_name(interactive("/restart")) == "restart");
  CHECK(command_name(interactive("/leave")) == "leave");
  CHECK(command_name(interactive("/quit")) == "quit");
  CHECK(command_name(interactive("/help")) == "help");
}

TEST_CASE("chat commands: interactive mistakes are errors, never messages", "[chat][commands]") {
  CHECK(interactive_error("/frobnicate").find("unknown command /frobnicate") != std::string::npos);
  CHECK(interactive_error("/frobnicate").find("nothing was sent") != std::string::npos);
  CHECK(interactive_error("/").find("unknown command /") != std::string::npos);
  CHECK(interactive_error("/WHO").find("unknown command") != std::string::npos);
  CHECK(interactive_error("/who bob") == "/who takes no arguments");
  CHECK(interactive_error("/status now") == "/status takes no arguments");
  CHECK(interactive_error("/leave now") == "/leave takes no arguments");
  CHECK(interactive_error("/quit x") == "/quit takes no arguments");
  CHECK(interactive_error("/restart x") == "/restart takes no arguments");
  CHECK(interactive_error("/help x") == "/help takes no arguments");
  CHECK(interactive_error("/trust").find("usage: /trust NICK") != std::string::npos);
  CHECK(interactive_error("/trust   ").find("usage: /trust NICK") != std::string::npos);
  CHECK(interactive_error("/block").find("usage: /block NICK") != std::string::npos);
  CHECK(interactive_error("/policy").find("usage: /policy trusted|verified") != std::string::npos);
  CHECK(interactive_error("/policy sometimes").find("usage: /policy trusted|verified") != std::string::npos);
  CHECK(interactive_error("/policy Verified").find("usage: /policy trusted|verified") != std::string::npos);
  CHECK(interactive_error("/verify").find("usage: /verify NICK FINGERPRINT") != std::string::npos);
  CHECK(interactive_error("/verify bob").find("no fingerprint of 64 hex digits") != std::string::npos);
  CHECK(interactive_error("/verify bob 1234").find("no fingerprint of 64 hex digits") != std::string::npos);
  CHECK(interactive_error("/verify bob " + kFpPlain + "00").find("no fingerprint") != std::string::npos);
  CHECK(interactive_error("/verify bob " + kFpPlain.substr(0, 63) + "G").find("no fingerprint") != std::string::npos);
  CHECK(interactive_error("/verify " + kFpPlain).find("missing nick") != std::string::npos);
  // A very long unknown command name is cut in the message.
  CHECK(interactive_error("/" + std::string(1000, 'x')).size() < 300);
}

TEST_CASE("chat commands: oversize lines are refused", "[chat][commands]") {
  const std::string huge(kMaxLineLen + 1, 'a');
  auto r = parse_interactive_line(huge);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::LimitExceeded);
  CHECK(r.error().detail.find("line longer than 65536 bytes") != std::string::npos);
  JsonCommandLine j = parse_json_command("{\"cmd\":\"send\",\"text\":\"" + huge + "\"}");
  REQUIRE_FALSE(j.command.ok());
  CHECK(j.command.error().code == ErrorCode::LimitExceeded);
  CHECK(as<SendText>(interactive(std::string(kMaxLineLen, 'a'))).text.size() == kMaxLineLen);
}

TEST_CASE("chat commands: every JSON command", "[chat][commands]") {
  CHECK(as<SendText>(json_cmd(R"({"cmd":"send","text":"hi there"})")).text == "hi there");
  CHECK(as<SendText>(json_cmd(R"({"cmd":"send","text":"/not a command"})")).text == "/not a command");
  CHECK(as<SendText>(json_cmd(R"({"cmd":"send","text":"two\nlines"})")).text == "two\nlines");
  as<ShowWho>(json_cmd(R"({"cmd":"who"})"));
  as<ShowStatus>(json_cmd(R"({"cmd":"status"})"));
  CHECK(as<ShowFingerprint>(json_cmd(R"({"cmd":"fingerprint"})")).nick.empty());
  CHECK(as<ShowFingerprint>(json_cmd(R"({"cmd":"fingerprint","nick":"bob"})")).nick == "bob");
  const Command verify = json_cmd(R"({"cmd":"verify","nick":"bob","fingerprint":")" + kFpGrouped + "\"}");
  const auto& v = as<VerifyKey>(verify);
  CHECK(v.nick == "bob");
  CHECK(v.fingerprint == kFpGrouped);
  CHECK(as<VerifyKey>(json_cmd(R"({"cmd":"verify","nick":"bob","fingerprint":")" + kFpPlain + "\"}")).fingerprint ==
        kFpGrouped);
  CHECK(as<AcceptKey>(json_cmd(R"({"cmd":"trust","nick":"bob"})")).nick == "bob");
  CHECK(as<BlockMember>(json_cmd(R"({"cmd":"block","nick":"carol"})")).nick == "carol");
  CHECK(as<SetPolicy>(json_cmd(R"({"cmd":"policy","policy":"verified"})")).policy == AdmissionPolicy::VerifiedOnly);
  as<RestartSetup>(json_cmd(R"({"cmd":"restart"})"));
  as<Leave>(json_cmd(R"({"cmd":"leave"})"));
  as<Quit>(json_cmd(R"({"cmd":"quit"})"));
  // Unknown fields are ignored (forward compatibility); surrounding whitespace is fine.
  as<ShowWho>(json_cmd(R"(  {"cmd":"who","verbose":true}  )"));
}

TEST_CASE("chat commands: JSON ids are echoed, whatever their type", "[chat][commands]") {
  as<ShowWho>(json_cmd(R"({"cmd":"who","id":7})", 7));
  as<ShowWho>(json_cmd(R"({"id":"abc","cmd":"who"})", "abc"));
  as<ShowWho>(json_cmd(R"({"cmd":"who","id":null})", nullptr));
  as<ShowWho>(json_cmd(R"({"cmd":"who","id":{"n":1}})", nlohmann::json{{"n", 1}}));
  // Also on errors, once the object could be read.
  CHECK(json_error(R"({"cmd":"nope","id":42})", 42).find("unknown cmd \"nope\"") != std::string::npos);
  CHECK(json_error(R"({"cmd":"send","id":"x"})", "x").find("\"send\" needs \"text\"") != std::string::npos);
}

TEST_CASE("chat commands: malformed JSON and wrong fields are command errors", "[chat][commands]") {
  CHECK(json_error("not json").find("malformed JSON") != std::string::npos);
  CHECK(json_error(R"({"cmd":"send","text":"unterminated)").find("malformed JSON") != std::string::npos);
  CHECK(json_error(R"({"cmd":"who"} {"cmd":"who"})").find("malformed JSON") != std::string::npos);
  CHECK(json_error("\"who\"").find("must be a JSON object") != std::string::npos);
  CHECK(json_error("[1,2]").find("must be a JSON object") != std::string::npos);
  CHECK(json_error("42").find("must be a JSON object") != std::string::npos);
  CHECK(json_error(R"({})") == "missing \"cmd\"");
  CHECK(json_error(R"({"cmd":5})") == "\"cmd\" must be a string");
  CHECK(json_error(R"({"cmd":"help"})").find("unknown cmd \"help\"") != std::string::npos);
  CHECK(json_error(R"({"cmd":"WHO"})").find("unknown cmd") != std::string::npos);
  CHECK(json_error(R"({"cmd":"send"})") == "\"send\" needs \"text\"");
  CHECK(json_error(R"({"cmd":"send","text":5})") == "\"text\" must be a string");
  CHECK(json_error(R"({"cmd":"send","text":["a"]})") == "\"text\" must be a string");
  CHECK(json_error(R"({"cmd":"send","text":""})") == "\"text\" must not be empty");
  CHECK(json_error(R"({"cmd":"fingerprint","nick":1})") == "\"nick\" must be a string");
  CHECK(json_error(R"({"cmd":"fingerprint","nick":""})") == "\"nick\" must not be empty");
  CHECK(json_error(R"({"cmd":"trust"})") == "\"trust\" needs \"nick\"");
  CHECK(json_error(R"({"cmd":"trust","nick":null})") == "\"nick\" must be a string");
  CHECK(json_error(R"({"cmd":"block"})") == "\"block\" needs \"nick\"");
  CHECK(json_error(R"({"cmd":"policy"})") == "\"policy\" needs \"policy\"");
  CHECK(json_error(R"({"cmd":"policy","policy":"all"})") == "policy 'all': expected 'trusted' or 'verified'");
  CHECK(json_error(R"({"cmd":"policy","policy":1})") == "\"policy\" must be a string");
  CHECK(json_error(R"({"cmd":"verify","nick":"bob"})") == "\"verify\" needs \"fingerprint\"");
  CHECK(json_error(R"({"cmd":"verify","fingerprint":"00"})") == "\"verify\" needs \"nick\"");
  CHECK(json_error(R"({"cmd":"verify","nick":"bob","fingerprint":123})") == "\"fingerprint\" must be a string");
  CHECK(json_error(R"({"cmd":"verify","nick":"bob","fingerprint":"1234"})").find("bad fingerprint") != std::string::npos);
  CHECK(json_error(R"({"cmd":"verify","nick":"bob","fingerprint":")" + std::string(1000, 'A') + "\"}")
            .find("too long") != std::string::npos);
  // Deep nesting is refused before parsing.
  const std::string deep = R"({"cmd":"who","x":)" + std::string(1000, '[') + std::string(1000, ']') + "}";
  CHECK(json_error(deep).find("nested deeper") != std::string::npos);
  // Brackets inside strings do not count.
  as<SendText>(json_cmd(R"({"cmd":"send","text":")" + std::string(100, '[') + "\"}"));
  // Invalid UTF-8 inside a string is malformed JSON.
  CHECK(json_error("{\"cmd\":\"send\",\"text\":\"\xff\"}").find("malformed JSON") != std::string::npos);
}

TEST_CASE("chat commands: help lists every command", "[chat][commands]") {
  std::string all;
  for (const auto& line : interactive_help()) all += line + "\n";
  for (const char* c : {"/who", "/status", "/fingerprint", "/verify", "/trust", "/block", "/policy", "/restart", "/leave", "/quit",
                        "/help", "//"}) {
    INFO(c);
    CHECK(all.find(c) != std::string::npos);
  }
}

TEST_CASE("chat line buffer: splits, keeps partial lines, strips CR", "[chat][commands]") {
  LineBuffer buf;
  auto lines = buf.feed("one\ntw");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].value() == "one");
  lines = buf.feed("o\r\nthree\n\n");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].value() == "two");
  CHECK(lines[1].value() == "three");
  CHECK(lines[2].value().empty());
  CHECK(buf.feed("").empty());
  lines = buf.feed("tail");
  CHECK(lines.empty());
  auto last = buf.finish();
  REQUIRE(last.has_value());
  CHECK(last->value() == "tail");
  CHECK_FALSE(buf.finish().has_value());
}

TEST_CASE("chat line buffer: an oversize line is reported once and dropped", "[chat][commands]") {
  LineBuffer buf(8);
  auto lines = buf.feed("12345678\n123456789\nok\n");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].value() == "12345678");
  REQUIRE_FALSE(lines[1].ok());
  CHECK(lines[1].error().code == ErrorCode::LimitExceeded);
  CHECK(lines[1].error().detail == "line longer than 8 bytes: discarded, nothing was sent");
  CHECK(lines[2].value() == "ok");

  // Arriving in pieces: reported as soon as it is too long, the rest is skipped up to the newline.
  lines = buf.feed("abcdefghij");
  REQUIRE(lines.size() == 1);
  CHECK_FALSE(lines[0].ok());
  CHECK(buf.feed("klmnop").empty());
  CHECK(buf.feed(std::string(100000, 'z')).empty());
  lines = buf.feed("qrs\nnext\n");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].value() == "next");

  // "\r\n" does not count towards the length.
  lines = buf.feed("12345678\r\n");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].value() == "12345678");

  // Unterminated oversize line at the end of input: already reported, nothing more.
  CHECK(buf.feed("0123456789").size() == 1);
  CHECK_FALSE(buf.finish().has_value());
}

TEST_CASE("chat line buffer: default bound is 64 KiB", "[chat][commands]") {
  LineBuffer buf;
  auto lines = buf.feed(std::string(kMaxLineLen, 'a') + "\n" + std::string(kMaxLineLen + 1, 'b') + "\n");
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].value().size() == kMaxLineLen);
  CHECK_FALSE(lines[1].ok());
}

TEST_CASE("chat commands: /otp actions, typed and as JSON", "[chat][otp]") {
  auto otp = [](std::string_view line) {
    auto r = parse_interactive_line(line);
    REQUIRE(r.ok());
    REQUIRE(r.value().has_value());
    REQUIRE(std::holds_alternative<OtpCommand>(*r.value()));
    return std::get<OtpCommand>(*r.value());
  };
  using A = OtpCommand::Action;
  CHECK(otp("/otp on").action == A::On);
  CHECK(otp("/otp off").action == A::Off);
  CHECK(otp("/otp").action == A::Status);
  CHECK(otp("/otp aliases").action == A::Aliases);
  const auto alias = otp("/otp alias team bob carol@localhost");
  CHECK(alias.action == A::Alias);
  CHECK(alias.name == "team");
  CHECK(alias.members == std::vector<std::string>{"bob", "carol@localhost"});
  const auto to = otp("/otp to team  hello  there ");
  CHECK(to.action == A::To);
  CHECK(to.name == "team");
  CHECK(to.text == "hello  there");
  CHECK(otp("/otp unalias team").name == "team");
  for (const char* bad : {"/otp on now", "/otp alias team", "/otp to team", "/otp unalias", "/otp unalias a b", "/otp fly"}) {
    INFO(bad);
    auto r = parse_interactive_line(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::InvalidArgument);
    CHECK(r.error().detail.find("/otp") != std::string::npos);
  }

  auto json_otp = [](std::string_view line) {
    auto r = parse_json_command(line);
    REQUIRE(r.command.ok());
    REQUIRE(std::holds_alternative<OtpCommand>(*r.command.value()));
    return std::get<OtpCommand>(*r.command.value());
  };
  CHECK(json_otp(R"({"cmd":"otp","action":"on"})").action == A::On);
  const auto jalias = json_otp(R"({"cmd":"otp","action":"alias","name":"t","members":["bob","carol"]})");
  CHECK(jalias.members == std::vector<std::string>{"bob", "carol"});
  const auto jto = json_otp(R"({"cmd":"otp","action":"to","name":"t","text":"  spaced  "})");
  CHECK(jto.text == "  spaced  ");  // verbatim
  CHECK(command_name(Command{jto}) == "otp");
  for (const char* bad : {R"({"cmd":"otp"})", R"({"cmd":"otp","action":"alias","name":"t","members":"bob"})",
                          R"({"cmd":"otp","action":"on","text":"x"})", R"({"cmd":"otp","action":"to","name":"a b","text":"x"})",
                          R"({"cmd":"otp","action":"alias","name":"t","members":["b c"]})"}) {
    INFO(bad);
    CHECK_FALSE(parse_json_command(bad).command.ok());
  }
}
