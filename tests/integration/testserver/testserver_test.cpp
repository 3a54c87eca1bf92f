// SPDX-License-Identifier: MIT
// Integration tests of the loopback ejabberd harness (testserver/ejabberd-test and TestServer).
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>

#include "support/testserver.h"

using mpotr::test::TestServer;
using mpotr::test::TestServerOptions;

namespace {

class Socket {
 public:
  explicit Socket(int fd) : m_fd(fd) {}
  ~Socket() {
    if (m_fd >= 0) ::close(m_fd);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int get() const { return m_fd; }
  bool ok() const { return m_fd >= 0; }

 private:
  int m_fd;
};

// Connected TCP socket to 127.0.0.1:port, or an invalid one when the connection is refused.
Socket connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Socket(-1);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return Socket(-1);
  }
  return Socket(fd);
}

bool send_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads until `until` appears, the peer closes, or 5 s pass.
std::string read_until(int fd, const std::string& until) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (until.empty() || got.find(until) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

// Opens an XMPP client stream and returns everything up to the end of <stream:features>.
std::string stream_features(std::uint16_t port) {
  Socket s = connect_loopback(port);
  if (!s.ok()) return "";
  const std::string header =
      "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
      "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
  if (!send_all(s.get(), header)) return "";
  return read_until(s.get(), "</stream:features>");
}

// Minimal HTTP/1.1 POST to the ejabberd API on loopback; returns "<status> <body>".
std::string api_post(std::uint16_t port, const std::string& command, const std::string& json) {
  Socket s = connect_loopback(port);
  if (!s.ok()) return "connect failed";
  std::ostringstream req;
  req << "POST /api/" << command << " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      << "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " << json.size()
      << "\r\n\r\n"
      << json;
  if (!send_all(s.get(), req.str())) return "send failed";
  const std::string response = read_until(s.get(), "");
  const auto sp = response.find(' ');
  const auto body = response.find("\r\n\r\n");
  if (sp == std::string::npos || body == std::string::npos) return "bad response: " + response;
  return response.substr(sp + 1, 3) + " " + response.substr(body + 4);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// A process is gone when /proc has no entry or only a zombie (PID 1 in a container may be
// slow to reap the orphaned beam).
bool process_gone(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  if (!in) return true;
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = stat.rfind(") ");
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

// PIDs of running processes whose name is `name` (from /proc/PID/comm).
std::set<std::string> pids_named(const std::string& name) {
  std::set<std::string> pids;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return pids;
  while (const dirent* e = ::readdir(proc)) {
    const std::string pid = e->d_name;
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (read_file("/proc/" + pid + "/comm") == name && !process_gone(pid)) pids.insert(pid);
  }
  ::closedir(proc);
  return pids;
}

std::string to_hex(const unsigned char* data, unsigned len, bool upper_colon) {
  std::string out;
  char byte[4];
  for (unsigned i = 0; i < len; ++i) {
    if (upper_colon && i > 0) out += ':';
    std::snprintf(byte, sizeof byte, upper_colon ? "%02X" : "%02x", data[i]);
    out += byte;
  }
  return out;
}

}  // namespace

TEST_CASE("testserver: plaintext start with users and rooms then a clean stop", "[testserver]") {
  const std::set<std::string> epmd_before = pids_named("epmd");

  TestServer server;
  REQUIRE(server.running());
  CHECK(server.host() == "127.0.0.1");
  CHECK(server.c2s_port() != 0);
  CHECK(server.http_port() != 0);
  CHECK(server.c2s_port() != server.http_port());
  CHECK(server.cert_fingerprint().empty());
  CHECK(TestServer::run_script({"status", "--dir", server.dir()}).status == 0);

  const std::string pid = read_file(server.dir() + "/server.pid");
  REQUIRE(!pid.empty());
  CHECK(read_file("/proc/" + pid + "/comm") == "beam.smp");

  // c2s answers an XMPP stream header, without STARTTLS in plaintext mode.
  const std::string features = stream_features(server.c2s_port());
  CHECK(features.find("<stream:stream") != std::string::npos);
  CHECK(features.find("</stream:features>") != std::string::npos);
  CHECK(features.find("<starttls") == std::string::npos);

  server.register_users({{"alice", "alice-pw"}, {"bob", "bob-pw"}, {"carol", "carol-pw"}});
  server.create_rooms({"lobby"});

  // Independent check over a raw HTTP connection (check_account: 0 = exists, 1 = not).
  for (const char* user : {"alice", "bob", "carol"}) {
    CHECK(api_post(server.http_port(), "check_account",
                   std::string("{\"user\":\"") + user + "\",\"host\":\"localhost\"}") == "200 0");
  }
  CHECK(api_post(server.http_port(), "check_account", R"({"user":"mallory","host":"localhost"})") ==
        "200 1");
  CHECK(api_post(server.http_port(), "check_password",
                 R"({"user":"bob","host":"localhost","password":"bob-pw"})") == "200 0");
  CHECK(api_post(server.http_port(), "muc_online_rooms", R"({"service":"conference.localhost"})")
            .find("lobby@conference.localhost") != std::string::npos);
  const std::string options =
      server.api("get_room_options", R"({"name":"lobby","service":"conference.localhost"})");
  CHECK(options.find(R"("anonymous":"false")") != std::string::npos);
  CHECK(options.find(R"("members_only":"false")") != std::string::npos);
  CHECK(options.find(R"("mam":"false")") != std::string::npos);

  // Stop is idempotent, in the wrapper and in the script.
  server.stop();
  CHECK_FALSE(server.running());
  server.stop();
  const auto again = TestServer::run_script({"stop", "--dir", server.dir()});
  CHECK(again.status == 0);
  CHECK(again.output.find("not running") != std::string::npos);
  CHECK(TestServer::run_script({"status", "--dir", server.dir()}).status == 1);

  CHECK(process_gone(pid));
  CHECK_FALSE(connect_loopback(server.c2s_port()).ok());
  CHECK_FALSE(connect_loopback(server.http_port()).ok());
  for (const auto& epmd : pids_named("epmd")) {
    INFO("epmd pid " << epmd << " appeared");
    CHECK(epmd_before.count(epmd) == 1);
  }
}

TEST_CASE("testserver: STARTTLS offered with a pinnable certificate", "[testserver]") {
  TestServerOptions opts;
  opts.tls = true;
  TestServer server(opts);

  const std::string fp = server.cert_fingerprint();
  CHECK(fp.size() == 64);
  CHECK(fp.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(read_file(server.dir() + "/cert.sha256") == fp);

  // The pin is the SHA-256 of the DER certificate, like X509_digest in libstrophe.
  FILE* pem = std::fopen((server.dir() + "/cert.pem").c_str(), "r");
  REQUIRE(pem != nullptr);
  X509* cert = PEM_read_X509(pem, nullptr, nullptr, nullptr);
  std::fclose(pem);
  REQUIRE(cert != nullptr);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned md_len = 0;
  const int digest_ok = X509_digest(cert, EVP_sha256(), md, &md_len);
  X509_free(cert);
  REQUIRE(digest_ok == 1);
  CHECK(to_hex(md, md_len, false) == fp);
  CHECK(read_file(server.dir() + "/cert.sha256-colon") == to_hex(md, md_len, true));

  // STARTTLS is offered but optional: SASL mechanisms are also offered in plaintext.
  const std::string features = stream_features(server.c2s_port());
  CHECK(features.find("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'") != std::string::npos);
  CHECK(features.find("<required/>") == std::string::npos);
  CHECK(features.find("<mechanisms") != std::string::npos);
}

TEST_CASE("testserver: tls_required refuses plaintext", "[testserver]") {
  TestServerOptions opts;
  opts.tls_required = true;
  TestServer server(opts);
  CHECK(server.cert_fingerprint().size() == 64);
  const std::string features = stream_features(server.c2s_port());
  CHECK(features.find("<starttls") != std::string::npos);
  CHECK(features.find("<required/>") != std::string::npos);
  CHECK(features.find("<mechanisms") == std::string::npos);
}

TEST_CASE("testserver: a taken port fails fast with exit 3", "[testserver]") {
  // Hold a listening socket on an ephemeral loopback port and ask the script to use it.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  Socket holder(fd);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));

  std::string dir = (std::filesystem::temp_directory_path() / "mpotr-ejabberd-port-XXXXXX").string();
  REQUIRE(::mkdtemp(dir.data()) != nullptr);
  const auto result =
      TestServer::run_script({"start", "--dir", dir, "--c2s-port", port, "--http-port", "1"});
  CHECK(result.status == 3);
  CHECK(result.output.find("port " + port + " is already in use") != std::string::npos);
  CHECK(TestServer::run_script({"stop", "--dir", dir}).status == 0);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}
