// SPDX-License-Identifier: MIT
// STARTTLS against the test server's self-signed certificate: the certificate policy options
// of the transport (pin, CA file, trust-any for tests) and refusal of everything else.
#include <catch2/catch.hpp>

#include "support/testserver.h"
#include "support/xmpp_room.h"

using namespace mpotr;
using namespace mpotr::test;
using transport::ClientState;
using transport::TlsMode;
using transport::TlsPolicy;

namespace {

const std::string kRoom = "tls@conference.localhost";

ClientState connect_with(const TestServer& server, const TlsPolicy& tls, std::string* notices = nullptr) {
  XmppRoomOptions o;
  o.port = server.c2s_port();
  o.tls = tls;
  o.reconnect = false;
  XmppRooms rooms(o);
  XmppMember& m = rooms.add("alice", kRoom);
  rooms.start(m);
  rooms.run_until(
      [&] {
        const auto s = m.client->state();
        return s == ClientState::InRoom || s == ClientState::Failed || s == ClientState::Closed;
      },
      10000);
  if (notices != nullptr) {
    *notices = rooms.dump(m);
  }
  return m.client->state();
}

}  // namespace

TEST_CASE("tls: the server certificate is accepted by pin or CA file and refused otherwise", "[integration][xmpp][tls]") {
  TestServer server(TestServerOptions{true, true});  // STARTTLS required
  server.register_users({{"alice", "pw-alice"}});
  server.create_rooms({"tls"});
  const std::string pin = server.cert_fingerprint();
  REQUIRE(pin.size() == 64);
  std::string log;

  SECTION("pinned SHA-256 fingerprint") {
    CHECK(connect_with(server, TlsPolicy{TlsMode::Required, {}, pin, false}, &log) == ClientState::InRoom);
    INFO(log);
    CHECK(log.find("over TLS") != std::string::npos);
    CHECK(log.find("pinned SHA-256") != std::string::npos);
  }
  SECTION("pin written in upper case with colons") {
    std::string colon;
    for (std::size_t i = 0; i < pin.size(); i += 2) {
      colon += (i ? ":" : "") + pin.substr(i, 2);
    }
    for (auto& c : colon) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK(connect_with(server, TlsPolicy{TlsMode::Required, {}, colon, false}, &log) == ClientState::InRoom);
  }
  SECTION("the certificate as a CA file") {
    CHECK(connect_with(server, TlsPolicy{TlsMode::Required, server.dir() + "/cert.pem", {}, false}, &log) ==
          ClientState::InRoom);
  }
  SECTION("a wrong pin is refused before any password is sent") {
    std::string wrong = pin;
    wrong[0] = wrong[0] == '0' ? '1' : '0';
    CHECK(connect_with(server, TlsPolicy{TlsMode::Required, {}, wrong, false}, &log) == ClientState::Failed);
    INFO(log);
    CHECK(log.find("certificate rejected") != std::string::npos);
  }
  SECTION("no pin and no CA: the self-signed certificate is refused") {
    CHECK(connect_with(server, TlsPolicy{TlsMode::Required, {}, {}, false}, &log) == ClientState::Failed);
  }
  SECTION("trust-any connects but says so") {
    CHECK(connect_with(server, TlsPolicy{TlsMode::Required, {}, {}, true}, &log) == ClientState::InRoom);
    INFO(log);
    CHECK(log.find("NOT verified") != std::string::npos);
  }
  SECTION("plaintext is refused by a server that requires TLS") {
    CHECK(connect_with(server, TlsPolicy{TlsMode::Disabled, {}, {}, false}, &log) == ClientState::Failed);
  }
}
