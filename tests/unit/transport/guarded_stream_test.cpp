// SPDX-License-Identifier: MIT
// The guard between the server and libstrophe, driven by hand: a fake server the test plays
// (plain, or TLS with a certificate made here) and a socket standing in for libstrophe's.
// Every wait is a bounded loop of poll() turns.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mpotr/store/unique_fd.h"
#include "mpotr/transport/guarded_stream.h"
#include "mpotr/transport/xmpp_resolve.h"

using namespace mpotr;
using namespace mpotr::transport;
using mpotr::store::UniqueFd;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kServerHeader =
    "<?xml version='1.0'?><stream:stream from='localhost' id='s1' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
// libstrophe's header, told apart from the guard's own by its xml:lang.
const std::string kClientHeader =
    "<?xml version='1.0'?><stream:stream to='localhost' xml:lang='en' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
const std::string kStartTlsFeatures =
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";

template <auto Fn>
struct Free {
  template <class T>
  void operator()(T* p) const noexcept {
    Fn(p);
  }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Free<::EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Free<::X509_free>>;
using CtxPtr = std::unique_ptr<SSL_CTX, Free<::SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Free<::SSL_free>>;

UniqueFd listen_loopback(std::uint16_t& port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0);
  REQUIRE(::listen(fd.get(), 8) == 0);
  REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  port = ntohs(addr.sin_port);
  return fd;
}

SocketAddress loopback_address(std::uint16_t port) {
  SocketAddress a;
  auto* in = reinterpret_cast<sockaddr_in*>(&a.addr);
  in->sin_family = AF_INET;
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  in->sin_port = htons(port);
  a.len = sizeof(sockaddr_in);
  a.label = "127.0.0.1:" + std::to_string(port);
  return a;
}

// Connects a non-blocking socket to the guard's listener; adopt: bound by the guard first, as
// libstrophe's sockopt callback does.
UniqueFd connect_to(GuardedStream& guard, bool adopt) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  if (adopt) {
    REQUIRE(guard.adopt_client_socket(fd.get()).ok());
  }
  const SocketAddress a = loopback_address(guard.listen_port());
  const int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a.addr), a.len);
  REQUIRE((rc == 0 || errno == EINPROGRESS));
  return fd;
}

// A self-signed P-256 certificate for `name`, usable as its own CA.
struct TestCert {
  KeyPtr key;
  CertPtr cert;
  std::string pem_path;
  std::string fingerprint;

  explicit TestCert(const std::string& name) {
    key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    REQUIRE(key);
    cert.reset(X509_new());
    X509* x = cert.get();
    REQUIRE(X509_set_version(x, 2) == 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    REQUIRE(X509_set_pubkey(x, key.get()) == 1);
    X509_NAME* subject = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
    X509_set_issuer_name(x, subject);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    const std::string san = "DNS:" + name;
    for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, san.c_str()}, std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      REQUIRE(ext != nullptr);
      X509_add_ext(x, ext, -1);
      X509_EXTENSION_free(ext);
    }
    REQUIRE(X509_sign(x, key.get(), EVP_sha256()) > 0);
    char path[] = "/tmp/mpotr-guard-test-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    pem_path = path;
    FILE* f = ::fdopen(fd, "w");
    REQUIRE(f != nullptr);
    PEM_write_X509(f, x);
    std::fclose(f);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    X509_digest(x, EVP_sha256(), digest, &len);
    char hex[3];
    for (unsigned int i = 0; i < len; ++i) {
      std::snprintf(hex, sizeof hex, "%02X", digest[i]);
      fingerprint += std::string(i == 0 ? "" : ":") + hex;  // as openssl x509 -fingerprint prints it
    }
  }
  ~TestCert() { ::unlink(pem_path.c_str()); }
};

// The server's end: plain bytes, then (start_tls) TLS over the same socket.
struct FakeServer {
  UniqueFd listener;
  UniqueFd conn;
  std::string in;   // everything received (decrypted under TLS)
  std::string out;  // waiting to be sent
  bool eof = false;
  CtxPtr ctx;
  SslPtr ssl;
  bool tls_after_out = false;  // switch to TLS once `out` is sent (after <proceed/>)

  void step() {
    if (!conn.valid()) {
      conn.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!conn.valid()) return;
    }
    while (!out.empty()) {
      const int n = ssl ? SSL_write(ssl.get(), out.data(), static_cast<int>(out.size()))
                        : static_cast<int>(::send(conn.get(), out.data(), out.size(), MSG_NOSIGNAL));
      if (n <= 0) break;
      out.erase(0, static_cast<std::size_t>(n));
    }
    if (out.empty() && tls_after_out && !ssl) {
      ssl.reset(SSL_new(ctx.get()));
      SSL_set_fd(ssl.get(), conn.get());
      SSL_set_accept_state(ssl.get());
    }
    char buf[65536];
    while (true) {
      const int n = ssl ? SSL_read(ssl.get(), buf, sizeof buf) : static_cast<int>(::recv(conn.get(), buf, sizeof buf, 0));
      if (n > 0) {
        in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0 && !ssl) eof = true;
      if (ssl) ERR_clear_error();
      break;
    }
  }
};

// libstrophe's stand-in.
struct FakeClient {
  UniqueFd fd;
  std::string in;
  std::string out;
  bool eof = false;

  void step() {
    while (!out.empty()) {
      const ssize_t n = ::send(fd.get(), out.data(), out.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      out.erase(0, static_cast<std::size_t>(n));
    }
    char buf[65536];
    while (true) {
      const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n > 0) {
        in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) eof = true;
      break;
    }
  }
};

struct Rig {
  std::uint16_t server_port = 0;
  FakeServer server;
  std::unique_ptr<GuardedStream> guard;
  FakeClient client;

  explicit Rig(TlsPolicy tls, std::string domain = "localhost",
               std::chrono::milliseconds negotiation = kGuardNegotiationTimeout) {
    server.listener = listen_loopback(server_port);
    GuardConfig config;
    config.domain = std::move(domain);
    config.tls = std::move(tls);
    config.negotiation_timeout = negotiation;
    auto g = GuardedStream::open(std::move(config), {loopback_address(server_port)});
    REQUIRE(g.ok());
    guard = std::move(g).value();
    client.fd = connect_to(*guard, true);
  }

  void turn() {
    std::vector<pollfd> fds;
    const bool busy = guard->busy();
    guard->want(fds);
    ::poll(fds.data(), fds.size(), busy ? 0 : 5);
    guard->service(fds);
    server.step();
    client.step();
  }

  bool drive(const std::function<bool()>& done, int timeout_ms = 3000) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!done()) {
      if (Clock::now() > deadline) return done();
      turn();
    }
    return true;
  }

  // Plain: both streams open through the guard.
  void open_streams() {
    client.out = kClientHeader;
    REQUIRE(drive([&] { return server.in == kClientHeader; }));
    server.out = kServerHeader;
    REQUIRE(drive([&] { return client.in == kServerHeader; }));
  }
};

TlsPolicy plain() { return TlsPolicy{TlsMode::Disabled, {}, {}, false}; }

std::string nested(std::size_t depth) {
  std::string s = "<message from='room@conference.localhost/mallory' type='groupchat'>";
  for (std::size_t i = 0; i < depth; ++i) s += "<a>";
  for (std::size_t i = 0; i < depth; ++i) s += "</a>";
  return s + "</message>";
}

}  // namespace

TEST_CASE("guard: only the connection from libstrophe's bound port is accepted", "[transport][guard]") {
  std::uint16_t port = 0;
  FakeServer server;
  server.listener = listen_loopback(port);
  GuardConfig config;
  config.domain = "localhost";
  config.tls = plain();
  auto g = GuardedStream::open(config, {loopback_address(port)});
  REQUIRE(g.ok());
  GuardedStream& guard = **g;
  // An intruder connects first, libstrophe's stand-in second.
  FakeClient intruder;
  intruder.fd = connect_to(guard, false);
  FakeClient client;
  client.fd = connect_to(guard, true);
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  intruder.out = "<stream:stream to='localhost'>";
  client.out = kClientHeader;
  while ((server.in.size() < kClientHeader.size() || !intruder.eof) && Clock::now() < deadline) {
    std::vector<pollfd> fds;
    guard.want(fds);
    ::poll(fds.data(), fds.size(), 5);
    guard.service(fds);
    server.step();
    client.step();
    intruder.step();
  }
  CHECK(intruder.eof);
  CHECK(server.in == kClientHeader);  // the intruder's bytes went nowhere
  CHECK(guard.phase() == GuardedStream::Phase::Relaying);
}

TEST_CASE("guard: relays both ways and drops stanzas over the limits, counting them", "[transport][guard]") {
  Rig rig(plain());
  rig.open_streams();
  CHECK_FALSE(rig.guard->secured());
  const std::string ok1 = "<message from='room@conference.localhost/alice' type='groupchat'><body>1</body></message>";
  const std::string ok2 = "<presence from='room@conference.localhost/bob'/>";
  const std::string deep = nested(10'000);
  const std::string big = "<message><body>" + std::string(2 * 1024 * 1024, 'x') + "</body></message>";
  rig.server.out = ok1 + deep + " " + big + ok2;
  const std::string expected = kServerHeader + ok1 + " " + ok2;
  REQUIRE(rig.drive([&] { return rig.client.in.size() >= expected.size(); }, 10000));
  CHECK(rig.client.in == expected);
  const DropCounts drops = rig.guard->take_drops();
  CHECK(drops.over_depth == 1);
  CHECK(drops.over_depth_bytes == deep.size());
  CHECK(drops.over_size == 1);
  CHECK(drops.over_size_bytes == big.size());
  CHECK_FALSE(rig.guard->take_drops().any());

  // libstrophe's bytes pass unchanged, whatever they are.
  rig.client.out = "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>";
  REQUIRE(rig.drive([&] { return rig.server.in.ends_with("</iq>"); }));

  // The server ends its stream and closes; libstrophe sees the end.
  rig.server.out = "</stream:stream>";
  REQUIRE(rig.drive([&] { return rig.client.in.ends_with("</stream:stream>"); }));
  ::shutdown(rig.server.conn.get(), SHUT_WR);
  REQUIRE(rig.drive([&] { return rig.client.eof; }));
}

TEST_CASE("guard: what is not XMPP ends the connection with the reason", "[transport][guard]") {
  Rig rig(plain());
  rig.open_streams();
  rig.server.out = "<message><!-- comment --></message>";
  REQUIRE(rig.drive([&] { return rig.guard->failed(); }));
  CHECK(rig.guard->failure() == "the server sent what is not XMPP (comment or document type declaration (RFC 6120 §11.1))");
  REQUIRE(rig.drive([&] { return rig.client.eof; }));
}

TEST_CASE("guard: STARTTLS refused, missing or answered with a stream error fails before TLS", "[transport][guard]") {
  const TlsPolicy required{TlsMode::Required, {}, {}, false};
  struct Case {
    std::string features;
    std::string answer;  // to <starttls/>
    std::string failure;
  };
  const std::vector<Case> cases = {
      {"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:features>", "",
       "the server does not offer STARTTLS, and TLS is required"},
      {kStartTlsFeatures, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", "the server refused STARTTLS"},
      {"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>", "",
       "the server refused the stream: host-unknown"},
      {kStartTlsFeatures, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq/>", "the server sent data after <proceed/>"},
  };
  for (const Case& c : cases) {
    INFO(c.failure);
    Rig rig(required);
    rig.client.out = kClientHeader;  // held: nothing of libstrophe's may pass before TLS
    REQUIRE(rig.drive([&] { return rig.server.in.find("<stream:stream") != std::string::npos; }));
    CHECK(rig.server.in.find("to='localhost'") != std::string::npos);
    rig.server.out = kServerHeader + c.features;
    if (!c.answer.empty()) {
      REQUIRE(rig.drive([&] { return rig.server.in.find("<starttls") != std::string::npos; }));
      rig.server.out = c.answer;
    }
    REQUIRE(rig.drive([&] { return rig.guard->failed(); }));
    CHECK(rig.guard->failure() == c.failure);
    CHECK(rig.server.in.find(kClientHeader) == std::string::npos);
    CHECK(rig.drive([&] { return rig.client.eof; }));
  }
}

TEST_CASE("guard: a server that never completes STARTTLS times out", "[transport][guard]") {
  Rig rig(TlsPolicy{TlsMode::Required, {}, {}, false}, "localhost", std::chrono::milliseconds(200));
  REQUIRE(rig.drive([&] { return rig.guard->failed(); }));
  CHECK(rig.guard->failure() == "the server did not complete STARTTLS in time");
}

TEST_CASE("guard: TLS by CA file for the JID's domain, by pin, by trust-any, or refused", "[transport][guard]") {
  const TestCert cert("localhost");
  struct Case {
    const char* name;
    TlsPolicy policy;
    std::string domain;
    bool accepted;
    std::string note;  // accepted: the certificate note; refused: the start of the failure
  };
  const std::string pin = cert.fingerprint;  // upper case with colons: normalised
  const std::vector<Case> cases = {
      {"CA file, right name", {TlsMode::Required, cert.pem_path, {}, false}, "localhost", true, ""},
      {"CA file, other name", {TlsMode::Required, cert.pem_path, {}, false}, "example.org", false,
       "server certificate rejected: hostname mismatch"},
      {"pin, other name", {TlsMode::Required, {}, pin, false}, "example.org", true,
       "server certificate accepted by its pinned SHA-256 fingerprint"},
      {"trust-any", {TlsMode::Required, {}, {}, true}, "localhost", true,
       "server certificate NOT verified (--insecure-trust-any-cert is for tests only)"},
      {"nothing vouches", {TlsMode::Required, {}, {}, false}, "localhost", false,
       "server certificate rejected: self-signed certificate"},
      {"wrong pin", {TlsMode::Required, {}, std::string(64, 'a'), false}, "localhost", false,
       "server certificate rejected: self-signed certificate"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Rig rig(c.policy, c.domain);
    rig.server.ctx.reset(SSL_CTX_new(TLS_server_method()));
    REQUIRE(SSL_CTX_use_certificate(rig.server.ctx.get(), cert.cert.get()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(rig.server.ctx.get(), cert.key.get()) == 1);
    rig.client.out = kClientHeader;
    REQUIRE(rig.drive([&] { return rig.server.in.find("<stream:stream") != std::string::npos; }));
    rig.server.out = kServerHeader + kStartTlsFeatures;
    REQUIRE(rig.drive([&] { return rig.server.in.find("<starttls") != std::string::npos; }));
    rig.server.in.clear();
    rig.server.out = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    rig.server.tls_after_out = true;
    REQUIRE(rig.drive([&] { return rig.guard->phase() == GuardedStream::Phase::Relaying || rig.guard->failed(); }));
    if (!c.accepted) {
      CHECK(rig.guard->failure().starts_with(c.note));
      CHECK(rig.server.in.empty());  // not a byte of libstrophe's went to an unverified server
      continue;
    }
    REQUIRE_FALSE(rig.guard->failed());
    CHECK(rig.guard->secured());
    CHECK(rig.guard->certificate_note() == c.note);
    CHECK(rig.guard->certificate_unverified() == c.policy.trust_any);
    // libstrophe's stream begins over TLS, and the server's new stream reaches it.
    REQUIRE(rig.drive([&] { return rig.server.in == kClientHeader; }));
    rig.server.out = kServerHeader + "<stream:features/>";
    REQUIRE(rig.drive([&] { return rig.client.in == kServerHeader + "<stream:features/>"; }));
  }
}

TEST_CASE("guard: SRV answers are ordered by priority, then weight, and '.' refuses", "[transport][guard]") {
  // A DNS response for _xmpp-client._tcp.example.org with the given (priority, weight, port, target).
  const auto answer = [](const std::vector<std::tuple<int, int, int, std::string>>& records) {
    std::vector<unsigned char> m = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, static_cast<unsigned char>(records.size()), 0, 0, 0, 0};
    const auto name = [&m](const std::string& dotted) {
      std::size_t start = 0;
      while (start < dotted.size()) {
        std::size_t end = dotted.find('.', start);
        if (end == std::string::npos) end = dotted.size();
        m.push_back(static_cast<unsigned char>(end - start));
        m.insert(m.end(), dotted.begin() + static_cast<std::ptrdiff_t>(start), dotted.begin() + static_cast<std::ptrdiff_t>(end));
        start = end + 1;
      }
      m.push_back(0);
    };
    const auto u16 = [&m](int v) {
      m.push_back(static_cast<unsigned char>(v >> 8));
      m.push_back(static_cast<unsigned char>(v & 0xff));
    };
    name("_xmpp-client._tcp.example.org");
    u16(33);
    u16(1);
    for (const auto& [priority, weight, port, target] : records) {
      m.push_back(0xc0);
      m.push_back(12);  // the question's name
      u16(33);
      u16(1);
      u16(0);
      u16(300);
      const std::size_t rdlength_at = m.size();
      u16(0);
      u16(priority);
      u16(weight);
      u16(port);
      name(target);
      const std::size_t rdlength = m.size() - rdlength_at - 2;
      m[rdlength_at] = static_cast<unsigned char>(rdlength >> 8);
      m[rdlength_at + 1] = static_cast<unsigned char>(rdlength & 0xff);
    }
    return m;
  };
  const auto ordered = parse_srv_answer(answer({{20, 0, 5222, "c.example.org"},
                                                {10, 10, 5223, "b.example.org"},
                                                {10, 60, 5224, "a.example.org"}}));
  REQUIRE(ordered);
  CHECK(*ordered == std::vector<ServerTarget>{{"a.example.org", 5224}, {"b.example.org", 5223}, {"c.example.org", 5222}});
  const auto refused = parse_srv_answer(answer({{0, 0, 0, ""}}));
  REQUIRE(refused);
  CHECK(refused->empty());
  CHECK_FALSE(parse_srv_answer(answer({})));  // no records: fall back to the domain
  const std::vector<unsigned char> garbage = {1, 2, 3};
  CHECK_FALSE(parse_srv_answer(garbage));
  // An explicit host needs no DNS at all.
  const auto targets = xmpp_client_targets("example.org", "127.0.0.1", 0);
  REQUIRE(targets.ok());
  CHECK(*targets == std::vector<ServerTarget>{{"127.0.0.1", kXmppClientPort}});
}
