// SPDX-License-Identifier: MIT
// mpotr-chat's command line: every option accepted, every kind of mistake refused with a
// message that says what is wrong.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "options.h"

using namespace mpotr;
using namespace mpotr::chat;

namespace {

Environment env_with_password() {
  Environment env;
  env.home = "/home/alice";
  env.password = "secret";
  return env;
}

std::vector<std::string> base_args() { return {"--jid", "alice@localhost", "--room", "room@conference.localhost"}; }

std::vector<std::string> with(std::vector<std::string> extra) {
  auto args = base_args();
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

Options parse_ok(const std::vector<std::string>& args, const Environment& env = env_with_password()) {
  auto r = parse_options(args, env);
  if (!r.ok()) {
    FAIL("unexpected error: " << r.error().detail);
  }
  return r.value();
}

std::string parse_error(const std::vector<std::string>& args, const Environment& env = env_with_password()) {
  auto r = parse_options(args, env);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::InvalidArgument);
  return r.error().detail;
}

}  // namespace

TEST_CASE("chat options: defaults from the JID and the environment", "[chat][options]") {
  const Options o = parse_ok(base_args());
  CHECK(o.jid == "alice@localhost");
  CHECK(o.room == "room@conference.localhost");
  CHECK(o.nick == "alice");
  CHECK(o.password == "secret");
  CHECK(o.password_file.empty());
  CHECK(o.server_host.empty());  // the JID's domain, through DNS SRV
  CHECK(o.server_port == 0);
  CHECK_FALSE(o.tls_disabled);
  CHECK(o.ca_file.empty());
  CHECK(o.pin_sha256.empty());
  CHECK_FALSE(o.trust_any_cert);
  CHECK(o.key_file == "/home/alice/.local/share/mpotr/identity.json");
  CHECK(o.trust_file == "/home/alice/.local/share/mpotr/trust.json");
  CHECK(o.admission == AdmissionPolicy::Trusted);
  CHECK_FALSE(o.json);
  CHECK_FALSE(o.verbose);
  CHECK(o.reconnect);
  CHECK(o.timeouts.setup == kDefaultSetupTimeoutMs);
  CHECK(o.timeouts.shutdown == kDefaultShutdownTimeoutMs);
  CHECK(o.roster_settle_ms == 0);
  CHECK_FALSE(o.help);
  CHECK_FALSE(o.version);
}

TEST_CASE("chat options: every option set", "[chat][options]") {
  Environment env;  // no password in the environment: it comes from the file
  env.home = "/home/alice";
  const Options o = parse_ok({"--jid", "alice@example.org", "--room", "talk@muc.example.org", "--nick", "Alice A",
                              "--password-file", "/run/pw", "--server", "xmpp.example.org:5223", "--tls", "required",
                              "--ca-file", "/etc/ca.pem", "--pin-sha256",
                              "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
                              "--insecure-trust-any-cert", "--key-file", "/keys/id.json", "--trust-file", "/keys/t.json",
                              "--trust", "verified", "--json", "--verbose", "--no-reconnect", "--timeouts",
                              "setup=1000,heartbeat=200,gap=300,confirm=400,shutdown=500", "--roster-settle", "250"},
                             env);
  CHECK(o.nick == "Alice A");
  CHECK(o.password_file == "/run/pw");
  CHECK(o.password.empty());
  CHECK(o.server_host == "xmpp.example.org");
  CHECK(o.server_port == 5223);
  CHECK(o.ca_file == "/etc/ca.pem");
  CHECK(o.pin_sha256 == "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  CHECK(o.trust_any_cert);
  CHECK(o.key_file == "/keys/id.json");
  CHECK(o.trust_file == "/keys/t.json");
  CHECK(o.admission == AdmissionPolicy::VerifiedOnly);
  CHECK(o.json);
  CHECK(o.verbose);
  CHECK_FALSE(o.reconnect);
  CHECK(o.timeouts.setup == 1000);
  CHECK(o.timeouts.heartbeat == 200);
  CHECK(o.timeouts.gap == 300);
  CHECK(o.timeouts.confirm == 400);
  CHECK(o.timeouts.shutdown == 500);
  CHECK(o.roster_settle_ms == 250);
}

TEST_CASE("chat options: --opt=value form and partial timeouts", "[chat][options]") {
  const Options o = parse_ok({"--jid=bob@localhost", "--room=r@conference.localhost", "--password=pw", "--timeouts=gap=42"});
  CHECK(o.jid == "bob@localhost");
  CHECK(o.nick == "bob");
  CHECK(o.password == "pw");
  CHECK(o.timeouts.gap == 42);
  CHECK(o.timeouts.setup == kDefaultSetupTimeoutMs);
}

TEST_CASE("chat options: --help and --version win over everything else", "[chat][options]") {
  CHECK(parse_ok({"--help"}).help);
  CHECK(parse_ok({"-h"}).help);
  CHECK(parse_ok({"--jid", "not a jid", "--help"}).help);
  CHECK(parse_ok({"--version"}).version);
  CHECK(parse_ok({"-V"}).version);
  CHECK(usage_text().find("--jid JID") != std::string::npos);
  CHECK(usage_text().find("MPOTR_PASSWORD") != std::string::npos);
}

TEST_CASE("chat options: password sources", "[chat][options]") {
  Environment no_pw;
  no_pw.home = "/home/alice";
  CHECK(parse_error(base_args(), no_pw).find("no password") != std::string::npos);
  CHECK(parse_error(base_args(), Environment{"/h", "", std::string()}).find("no password") != std::string::npos);
  CHECK(parse_ok(with({"--password", "pw"}), no_pw).password == "pw");
  CHECK(parse_ok(with({"--password", "override"})).password == "override");  // beats the environment
  CHECK(parse_error(with({"--password", "a", "--password-file", "/f"})).find("only one of --password and --password-file") !=
        std::string::npos);
  CHECK(parse_error(with({"--password", ""})).find("--password: empty") != std::string::npos);
  CHECK(parse_error(with({"--password-file", ""})).find("--password-file: empty") != std::string::npos);
}

TEST_CASE("chat options: required options and JIDs", "[chat][options]") {
  CHECK(parse_error({"--room", "r@c.localhost"}).find("--jid is required") != std::string::npos);
  CHECK(parse_error({"--jid", "alice@localhost"}).find("--room is required") != std::string::npos);
  for (const char* bad : {"alice", "@localhost", "alice@", "alice@localhost/res", "a b@localhost", "a@b@c"}) {
    INFO(bad);
    CHECK(parse_error({"--jid", bad, "--room", "r@c.localhost"}).find("expected a bare JID") != std::string::npos);
  }
  CHECK(parse_error({"--jid", "alice@localhost", "--room", "room"}).find("expected a room JID") != std::string::npos);
  CHECK(parse_error({"--jid", "alice@localhost", "--room", "room@c/nick"}).find("expected a room JID") != std::string::npos);
}

TEST_CASE("chat options: nick", "[chat][options]") {
  CHECK(parse_error(with({"--nick", ""})).find("--nick: must be 1 to 64 bytes") != std::string::npos);
  CHECK(parse_error(with({"--nick", "   "})).find("--nick") != std::string::npos);
  CHECK(parse_error(with({"--nick", "a\x1b[2Jb"})).find("control characters") != std::string::npos);
  CHECK(parse_error(with({"--nick", std::string(65, 'n')})).find("--nick") != std::string::npos);
  CHECK(parse_ok(with({"--nick", std::string(64, 'n')})).nick == std::string(64, 'n'));
  const std::string long_local(65, 'x');
  CHECK(parse_error({"--jid", long_local + "@localhost", "--room", "r@c.localhost"}).find("choose one with --nick") !=
        std::string::npos);
  CHECK(parse_ok({"--jid", long_local + "@localhost", "--room", "r@c.localhost", "--nick", "x"}).nick == "x");
}

TEST_CASE("chat options: unknown, repeated and incomplete options", "[chat][options]") {
  CHECK(parse_error(with({"--frobnicate"})) == "unknown option '--frobnicate' (see --help)");
  CHECK(parse_error(with({"stray"})).find("unexpected argument 'stray'") != std::string::npos);
  CHECK(parse_error(with({"-j"})).find("unexpected argument '-j'") != std::string::npos);
  CHECK(parse_error(with({"--"})).find("unexpected argument '--'") != std::string::npos);
  CHECK(parse_error(with({"--jid", "bob@localhost"})) == "--jid given more than once");
  CHECK(parse_error(with({"--json", "--json"})) == "--json given more than once");
  CHECK(parse_error(with({"--nick"})) == "--nick needs a value");
  CHECK(parse_error(with({"--json=yes"})) == "--json takes no value");
}

TEST_CASE("chat options: --server", "[chat][options]") {
  auto server = [](const std::string& s) {
    const Options o = parse_ok(with({"--server", s}));
    return std::pair<std::string, int>(o.server_host, o.server_port);
  };
  CHECK(server("xmpp.example.org") == std::pair<std::string, int>("xmpp.example.org", 5222));
  CHECK(server("127.0.0.1:15222") == std::pair<std::string, int>("127.0.0.1", 15222));
  CHECK(server("[::1]:5300") == std::pair<std::string, int>("::1", 5300));
  CHECK(server("[::1]") == std::pair<std::string, int>("::1", 5222));
  CHECK(server("::1") == std::pair<std::string, int>("::1", 5222));
  CHECK(parse_error(with({"--server", "host:0"})).find("port must be a number from 1 to 65535") != std::string::npos);
  CHECK(parse_error(with({"--server", "host:65536"})).find("port must be") != std::string::npos);
  CHECK(parse_error(with({"--server", "host:abc"})).find("port must be") != std::string::npos);
  CHECK(parse_error(with({"--server", "host:"})).find("empty port") != std::string::npos);
  CHECK(parse_error(with({"--server", ":5222"})).find("expected HOST or HOST:PORT") != std::string::npos);
  CHECK(parse_error(with({"--server", "[::1"})).find("missing ']'") != std::string::npos);
  CHECK(parse_error(with({"--server", "[::1]x"})).find("expected ':PORT'") != std::string::npos);
}

TEST_CASE("chat options: --tls disabled only on loopback", "[chat][options]") {
  const Options local = parse_ok(with({"--tls", "disabled"}));  // alice@localhost: the domain is loopback
  CHECK(local.tls_disabled);
  CHECK(local.server_host == "localhost");  // explicit, so DNS SRV cannot send us elsewhere
  CHECK(local.server_port == 5222);
  CHECK(parse_ok(with({"--tls", "disabled", "--server", "127.0.0.1:15222"})).tls_disabled);
  CHECK(parse_ok(with({"--tls", "disabled", "--server", "127.1.2.3"})).tls_disabled);
  CHECK(parse_ok(with({"--tls", "disabled", "--server", "[::1]:15222"})).tls_disabled);
  CHECK(parse_ok(with({"--tls", "disabled", "--server", "LocalHost"})).tls_disabled);

  const std::string refused = parse_error(with({"--tls", "disabled", "--server", "xmpp.example.org"}));
  CHECK(refused.find("--tls disabled is only allowed for a server on this machine") != std::string::npos);
  CHECK(refused.find("'xmpp.example.org'") != std::string::npos);
  CHECK(parse_error({"--jid", "alice@example.org", "--room", "r@c.example.org", "--tls", "disabled"})
            .find("not 'example.org'") != std::string::npos);
  CHECK(parse_error(with({"--tls", "disabled", "--server", "128.0.0.1"})).find("only allowed") != std::string::npos);
  CHECK(parse_error(with({"--tls", "disabled", "--server", "10.0.0.1"})).find("only allowed") != std::string::npos);
  CHECK(parse_error(with({"--tls", "off"})) == "--tls 'off': expected 'required' or 'disabled'");
  CHECK(parse_error(with({"--tls", "disabled", "--insecure-trust-any-cert"})).find("need TLS") != std::string::npos);
  CHECK(parse_error(with({"--tls", "disabled", "--ca-file", "/ca.pem"})).find("need TLS") != std::string::npos);
}

TEST_CASE("chat options: loopback addresses", "[chat][options]") {
  for (const char* yes : {"127.0.0.1", "127.255.255.254", "127.0.0.0", "::1", "localhost", "LOCALHOST", "0:0:0:0:0:0:0:1"}) {
    INFO(yes);
    CHECK(is_loopback_host(yes));
  }
  for (const char* no : {"", "128.0.0.1", "127.0.0", "127.0.0.1.5", "127.0.0.256", "127.0.0.1a", "localhost.example.org",
                         "::2", "1270.0.0.1", "example.org", "127..0.1"}) {
    INFO(no);
    CHECK_FALSE(is_loopback_host(no));
  }
}

TEST_CASE("chat options: --pin-sha256", "[chat][options]") {
  const std::string hex64(64, 'A');
  CHECK(parse_ok(with({"--pin-sha256", hex64})).pin_sha256 == std::string(64, 'a'));
  CHECK(parse_error(with({"--pin-sha256", std::string(63, 'a')})).find("expected 64 hex digits") != std::string::npos);
  CHECK(parse_error(with({"--pin-sha256", std::string(63, 'a') + "g"})).find("is not hex") != std::string::npos);
}

TEST_CASE("chat options: key and trust file locations", "[chat][options]") {
  Environment xdg = env_with_password();
  xdg.xdg_data_home = "/data";
  CHECK(parse_ok(base_args(), xdg).key_file == "/data/mpotr/identity.json");
  CHECK(parse_ok(base_args(), xdg).trust_file == "/data/mpotr/trust.json");
  Environment relative = env_with_password();
  relative.xdg_data_home = "data";  // relative: ignored, as the XDG spec says
  CHECK(parse_ok(base_args(), relative).key_file == "/home/alice/.local/share/mpotr/identity.json");
  CHECK(parse_ok(with({"--key-file", "id.json"})).trust_file == "trust.json");
  CHECK(parse_ok(with({"--key-file", "/id.json"})).trust_file == "/trust.json");
  CHECK(parse_ok(with({"--key-file", "keys/id.json"})).trust_file == "keys/trust.json");

  Environment nowhere;
  nowhere.password = "pw";
  CHECK(parse_error(base_args(), nowhere).find("neither XDG_DATA_HOME nor HOME is set; use --key-file FILE") !=
        std::string::npos);
  CHECK(parse_ok(with({"--key-file", "/k.json"}), nowhere).key_file == "/k.json");
  CHECK(parse_error(with({"--key-file", ""})) == "--key-file: empty file name");
  CHECK(parse_error(with({"--trust-file", ""})) == "--trust-file: empty file name");
  CHECK(parse_error(with({"--key-file", "/a.json", "--trust-file", "/a.json"})).find("must be different") !=
        std::string::npos);
  CHECK(parse_error(with({"--ca-file", ""})) == "--ca-file: empty file name");
}

TEST_CASE("chat options: --trust", "[chat][options]") {
  CHECK(parse_ok(with({"--trust", "tofu"})).admission == AdmissionPolicy::Trusted);
  CHECK(parse_ok(with({"--trust", "verified"})).admission == AdmissionPolicy::VerifiedOnly);
  CHECK(parse_error(with({"--trust", "always"})) == "--trust 'always': expected 'tofu' or 'verified'");
}

TEST_CASE("chat options: --timeouts and --roster-settle", "[chat][options]") {
  CHECK(parse_error(with({"--timeouts", ""})).find("--timeouts: empty") != std::string::npos);
  CHECK(parse_error(with({"--timeouts", "setup"})).find("'setup' is not KEY=MS") != std::string::npos);
  CHECK(parse_error(with({"--timeouts", "setup=1,"})).find("'' is not KEY=MS") != std::string::npos);
  CHECK(parse_error(with({"--timeouts", "nap=5"})).find("unknown timeout 'nap'") != std::string::npos);
  CHECK(parse_error(with({"--timeouts", "gap=5,gap=6"})).find("'gap' given more than once") != std::string::npos);
  CHECK(parse_error(with({"--timeouts", "gap=x"})).find("'x' is not a number of milliseconds") != std::string::npos);
  CHECK(parse_error(with({"--timeouts", "gap=-5"})).find("is not a number") != std::string::npos);
  CHECK(parse_error(with({"--timeouts", "gap=0"})).find("out of range") != std::string::npos);
  CHECK(parse_error(with({"--timeouts", "gap=86400001"})).find("out of range") != std::string::npos);
  CHECK(parse_error(with({"--timeouts", "gap=99999999999999999999999"})).find("is not a number") != std::string::npos);
  CHECK(parse_ok(with({"--roster-settle", "0"})).roster_settle_ms == 0);
  CHECK(parse_error(with({"--roster-settle", "600001"})).find("--roster-settle: 600001 is out of range") !=
        std::string::npos);
  CHECK(parse_error(with({"--roster-settle", "1s"})).find("--roster-settle: '1s' is not a number") != std::string::npos);

  auto t = parse_timeouts("heartbeat=7", Timeouts{});
  REQUIRE(t.ok());
  CHECK(t->heartbeat == 7);
  CHECK(t->gap == kDefaultGapTimeoutMs);
}

TEST_CASE("chat options: the pad device and OTP mode", "[chat][options][otp]") {
  const Options none = parse_ok(base_args());
  CHECK(none.pad_socket.empty());
  CHECK_FALSE(none.otp);
  const Options o = parse_ok(with({"--pad-socket", "/run/user/1000/mpotr/padd.sock", "--otp"}));
  CHECK(o.pad_socket == "/run/user/1000/mpotr/padd.sock");
  CHECK(o.otp);
  CHECK(parse_error(with({"--otp"})) == "--otp needs --pad-socket PATH (the socket of your pad device, mpotr-padd)");
  CHECK(parse_error(with({"--pad-socket", ""})) == "--pad-socket: empty path");
}
